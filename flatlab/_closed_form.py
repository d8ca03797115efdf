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
- ``second_order_trace``: Σ_i c_i Tr ∇²θ f(x_i), the part of Tr ∇²L the Gauss-Newton term drops
  (c_i = ∂L/∂f_i). Only the first layer's diagonal is nonzero (f is linear in W2, and in γ), and
  z_ij = W1_j·x'_i gives Tr_{W1_j} ∇²f_i = ‖x'_i‖² ∂²f_i/∂z_ij² (plain nets: W2_j a''(z_ij), 0 for
  relu). Sim-LN, g(h) = W2·h/s with s = ‖h‖: ∂²f/∂z_j² = a'_j² ∂²g/∂h_j² + a''_j ∂g/∂h_j, where
  ∂²g/∂h_j² = (-2 W2_j u_j - W2·u + 3 (W2·u) u_j²)/s² (0 when clamped); for relu the sum is
  f_i (1 - k_i)/s_i² with k_i the number of active neurons. Sim-BN, φ_ij = h_ij/σ_j with
  σ_j² = c Σ_l h_lj² + eps² over the reference inputs r_l (c = 1/n_ref, or 1 for the sum statistic): with q_j = c Σ_l h_lj a'_lj r'_l,
  Tr ∇²σ_j = c Σ_l (a'_lj² + h_lj a''_lj)‖r'_l‖²/σ_j - ‖q_j‖²/σ_j³ and
  Tr ∇²φ_ij = a''_ij ‖x'_i‖²/σ_j - 2 a'_ij x'_i·q_j/σ_j³ + 2 h_ij ‖q_j‖²/σ_j⁵ - h_ij Tr ∇²σ_j/σ_j²,
  and Tr_{W1_j} ∇²f_i = W2_j γ_j Tr ∇²φ_ij.
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
    "TRACE_ARCHS",
    "second_order_trace",
    "hvp_closed",
    "gn_top_direction",
]

GRAD_NORM_ARCHS = ("no_bias", "bias", "sim_ln")  # archs with a closed-form ‖∇θ f(x_i)‖²
TRACE_ARCHS = ("no_bias", "bias", "sim_ln", "sim_bn")  # archs with a closed-form Σ_i c_i Tr ∇²f(x_i)
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


def second_order_trace(model: nn.Module, X: torch.Tensor, c: torch.Tensor,
                       params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Σ_i c_i Tr ∇²θ f(x_i) on X (n, d) for c (n,) (see the module docstring): a 0-dim tensor.

    With c = ∂L/∂f this is what ``Tr ∇²L`` adds to the Gauss-Newton term; zero for relu nets
    without normalization. Sim-BN reads its statistic's inputs from ``model.reference``.
    """
    cfg = getattr(model, "config", None)
    if getattr(cfg, "arch", None) not in TRACE_ARCHS or getattr(cfg, "depth", 2) != 2:
        raise ValueError(f"model must be a two-layer net of arch {TRACE_ARCHS}, got {getattr(cfg, 'arch', None)!r}")
    P = dict(model.named_parameters()) if params is None else params
    a = activations(P, X, cfg.activation)
    D2 = torch.zeros_like(a.A) if a.D2 is None else a.D2
    if cfg.arch in ("no_bias", "bias"):
        return (c * a.xsq * (D2 @ a.W2)).sum()
    if cfg.arch == "sim_ln":
        hn = a.A.norm(dim=1)
        s = hn.clamp_min(cfg.eps)[:, None]
        U = a.A / s
        on = (hn >= cfg.eps).to(U.dtype)[:, None]  # clamped: g = W2·h/eps is linear in h
        Wu = (U @ a.W2)[:, None]  # f_i
        dg = (a.W2 - on * Wu * U) / s  # ∂g/∂h_j
        d2g = on * (-2 * a.W2 * U - Wu + 3 * Wu * U * U) / (s * s)  # ∂²g/∂h_j²
        return (c * a.xsq * (a.D1 * a.D1 * d2g + D2 * dg).sum(1)).sum()
    R = model.reference
    if R is None:
        raise ValueError("sim_bn needs its training inputs: pass X_ref to make_model or call model.set_reference")
    R = R.to(X.dtype)
    r = activations(P, R, cfg.activation)
    R1 = R if "b1" not in P else torch.cat([R, torch.ones_like(R[:, :1])], 1)
    X1 = X if "b1" not in P else torch.cat([X, torch.ones_like(X[:, :1])], 1)
    k = 1.0 if cfg.bn_stat == "sum" else 1.0 / R.shape[0]  # the statistic's reduction over the reference
    rD2 = torch.zeros_like(r.A) if r.D2 is None else r.D2
    sig = (k * (r.A * r.A).sum(0) + cfg.eps ** 2).sqrt()  # (m,) as in TwoLayerNet.bn_statistic
    Q = k * (r.A * r.D1).T @ R1  # (m, d')
    qq = (Q * Q).sum(1)
    tr_sig = k * ((r.D1 * r.D1 + r.A * rD2).T @ r.xsq) / sig - qq / sig ** 3
    T = (D2 * a.xsq[:, None] / sig - 2 * a.D1 * (X1 @ Q.T) / sig ** 3 + 2 * a.A * qq / sig ** 5
         - a.A * tr_sig / sig ** 2)  # (n, m) Tr ∇²φ_ij
    return (c * (T @ (a.W2 * P["gamma"]))).sum()


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
