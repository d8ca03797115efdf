"""Closed forms for the two-layer nets of ``flatlab.models``, from the activations (no autograd graph
of f is built; every formula is written in differentiable torch ops, so autograd through it gives
the exact gradient of the quantity, e.g. of the sharpness penalty).

Shapes: X (n, d); parameters W1 (m, d), b1 (m,), W2 (m,); Z = X W1ᵀ (+ b1) (n, m); x' is x with a 1
appended when the net has a bias, so ‖x'‖² = ‖x‖² (+ 1).

- ``grad_sq_norms``: ‖∇θ f(x_i)‖² (n,) for ``no_bias`` / ``bias`` (relu or softplus)

      ‖a(z_i)‖² + ‖x'_i‖² Σ_j W2_j² a'(z_ij)²,

  and for ``sim_ln`` (f = W2·u, u = h / max(‖h‖, eps), h = a(z)), with s = max(‖h‖, eps) and
  D = diag(a'(z)) (relu: 1[z > 0], so relu'(0) = 0 as in autograd):

      ‖u‖² + ‖x'‖²·‖D (W2 - c (u·W2) u)‖² / s²,   c = 1[‖h‖ >= eps],

  i.e. 1 + ‖x'‖²‖D (I - u uᵀ) W2‖²/‖h‖² when ‖h‖ >= eps (the normalization's gradient passes, as
  ``clamp_min``'s does at equality) and ‖h‖²/eps² + ‖x'‖²‖D W2‖²/eps² when clamped (0 if h = 0).
- ``gauss_newton_trace_closed``: S = (2/n) Σ_i ‖∇θ f(x_i)‖², a 0-dim tensor (Lemma 4.1).
- ``activations``, ``hvp_closed``, ``gn_top_direction``: the pieces of the closed-form
  Hessian-vector products and top Gauss-Newton eigenvector of ``no_bias`` / ``bias`` nets.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import scipy.linalg
import torch
from torch import nn

__all__ = [
    "GRAD_NORM_ARCHS",
    "HVP_ARCHS",
    "Activations",
    "activations",
    "grad_sq_norms",
    "gauss_newton_trace_closed",
    "hvp_closed",
    "gn_top_direction",
]

GRAD_NORM_ARCHS = ("no_bias", "bias", "sim_ln")  # archs with a closed-form ‖∇θ f(x_i)‖²
HVP_ARCHS = ("no_bias", "bias")  # archs with closed-form Hessian-vector products


class Activations(NamedTuple):
    """The activations a two-layer net's closed forms are built from."""

    xsq: torch.Tensor  # (n,) ‖x'_i‖² = ‖x_i‖² (+ 1 with a bias)
    W2: torch.Tensor  # (m,) output weights
    A: torch.Tensor  # (n, m) a(Z), the hidden features h before any normalization
    D1: torch.Tensor  # (n, m) a'(Z) (relu: 1[Z > 0], a constant mask)
    D2: torch.Tensor | None  # (n, m) a''(Z); None for relu


def activations(params: Mapping[str, torch.Tensor], X: torch.Tensor, activation: str) -> Activations:
    """Activations of the first layer from ``params`` (W1 (m, d), optional b1 (m,), W2 (m,)) on X (n, d)."""
    W1, W2, b1 = params["W1"], params["W2"], params.get("b1")
    Z = X @ W1.T if b1 is None else torch.addmm(b1, X, W1.T)
    if activation == "relu":
        D1 = (Z > 0).to(Z.dtype)
        A, D2 = Z * D1, None
    else:  # softplus: a' = σ, a'' = σ(z)σ(-z)
        A, D1 = nn.functional.softplus(Z), torch.sigmoid(Z)
        D2 = D1 * torch.sigmoid(-Z)
    return Activations((X * X).sum(1) + (b1 is not None), W2, A, D1, D2)


def _config(model):
    cfg = getattr(model, "config", None)
    arch = getattr(cfg, "arch", None)
    if arch not in GRAD_NORM_ARCHS:
        raise ValueError(f"model must be a two-layer net of arch {GRAD_NORM_ARCHS} for the closed form, "
                         f"got arch {arch!r}")
    return cfg


def grad_sq_norms(model: nn.Module, X: torch.Tensor,
                  params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """‖∇θ f(x_i)‖² for every row of X (n, d): a tensor (n,), differentiable in ``params``.

    ``params`` (default: the model's own parameters) maps W1, (b1,) W2 to tensors; the
    architecture, activation and eps are read from ``model.config``. X is used as given (the
    caller chooses the dtype). Raises ValueError for architectures without a closed form.
    """
    cfg = _config(model)
    P = dict(model.named_parameters()) if params is None else params
    a = activations(P, X, cfg.activation)
    if cfg.arch != "sim_ln":
        D1sq = a.D1 if a.D2 is None else a.D1 * a.D1  # relu: the mask is its own square
        return (a.A * a.A).sum(1) + a.xsq * (D1sq @ (a.W2 * a.W2))
    hn = a.A.norm(dim=1)  # (n,) as in TwoLayerNet.features
    s = hn.clamp_min(cfg.eps)[:, None]  # (n, 1)
    U = a.A / s  # (n, m) the features the output layer reads
    c = (hn >= cfg.eps).to(U.dtype)[:, None]  # the norm's gradient passes (clamp_min's rule)
    Gz = a.D1 * (a.W2 - c * (U @ a.W2)[:, None] * U) / s  # (n, m) ∇z f per example
    return (U * U).sum(1) + a.xsq * (Gz * Gz).sum(1)


def gauss_newton_trace_closed(model: nn.Module, X: torch.Tensor,
                              params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """S = (2/n) Σ_i ‖∇θ f(x_i)‖² on X (n, d): a 0-dim tensor, differentiable in ``params``."""
    return 2.0 / X.shape[0] * grad_sq_norms(model, X, params).sum()


def hvp_closed(a: Activations, X: torch.Tensor, bias: bool, c: torch.Tensor,
               w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """V (k, p) -> V ∇²L (k, p) for a no_bias/bias net, θ = (W1, (b1,) W2) flattened in that order.

    With c = ∂L/∂f (n,) and w = ∂²L/∂f² (n,): ∇²L v = Jᵀ diag(w) J v + Σ_i c_i ∇²f(x_i) v, where
    ∇²f(x_i) couples W2_j with (W1_j, b1_j) through a'(z_ij) x'_i, plus the a''(z_ij) W2_j x'_i x'_iᵀ
    block of softplus.
    """
    W2, A, D1, D2 = a.W2, a.A, a.D1, a.D2
    m, d = W2.numel(), X.shape[1]
    D1W2, cD1 = D1 * W2, c[:, None] * D1  # (n, m): ∂f_i/∂z_ij and c_i a'(z_ij)
    cD1X, cD1s = cD1.T @ X, cD1.sum(0)  # (m, d), (m,)
    cD2W2 = None if D2 is None else c[:, None] * D2 * W2

    def apply(V):
        k = V.shape[0]
        V1, u = V[:, : m * d].reshape(k, m, d), V[:, -m:]
        Jv = u @ A.T + (torch.matmul(D1W2, V1) * X).sum(-1)  # (k, n)
        if bias:
            vb = V[:, m * d: m * d + m]
            Jv = Jv + vb @ D1W2.T
        r = w * Jv
        out_W2 = r @ A + (V1 * cD1X).sum(-1)
        out_W1 = torch.matmul(D1W2.T, r[:, :, None] * X) + u[:, :, None] * cD1X
        if bias:
            out_W2 = out_W2 + vb * cD1s
            out_b1 = r @ D1W2 + u * cD1s
        if cD2W2 is not None:
            T = cD2W2 * (torch.matmul(X, V1.transpose(1, 2)) + (vb[:, None, :] if bias else 0))
            out_W1 = out_W1 + torch.matmul(T.transpose(1, 2), X)
            if bias:
                out_b1 = out_b1 + T.sum(1)
        return torch.cat([out_W1.reshape(k, -1)] + ([out_b1] if bias else []) + [out_W2], 1)

    return apply


def gn_top_direction(a: Activations, X: torch.Tensor, bias: bool, w: torch.Tensor) -> torch.Tensor:
    """The top eigenvector Jᵀ diag(√w) u (p,) of the Gauss-Newton matrix Jᵀ diag(w) J of a no_bias/bias
    net, u the top eigenvector of the n×n matrix √w K √w, K_ij = ⟨∇θ f(x_i), ∇θ f(x_j)⟩; w (n,) >= 0."""
    W2, A, D1 = a.W2, a.A, a.D1
    sw = w.clamp_min(0).sqrt()
    D1W2 = D1 * W2
    K = A @ A.T + (X @ X.T + float(bias)) * (D1W2 @ D1W2.T)
    n = X.shape[0]
    top = scipy.linalg.eigh((sw[:, None] * K * sw).numpy(), subset_by_index=[n - 1, n - 1])[1][:, 0]
    r = sw * torch.from_numpy(top)
    parts = [(D1W2.T @ (r[:, None] * X)).reshape(-1)] + ([r @ D1W2] if bias else []) + [r @ A]
    return torch.cat(parts)
