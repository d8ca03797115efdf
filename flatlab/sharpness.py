"""Sharpness measures of the training loss L(θ) = loss(f_θ(X), y) on the flat parameter vector θ.

Every measure takes ``(model, X, y)``: a model mapping X (n, d) to f (n,) (any model of
``flatlab.models`` or another ``nn.Module``), inputs X (n, d) and labels y (n,), and a
``loss``: ``"mse"`` (default, mean squared error), ``"logistic"`` (label smoothing 0.2,
Appendix B.3) or a callable ``loss(f, y) -> scalar``. All arithmetic is float64 on copies of
the parameters; the model's weights, its train/eval mode and the global RNG are never touched.

- ``hessian_trace``: Tr ∇²L by ``"exact"`` (the autograd Hessian's diagonal, small models),
  ``"closed_form"`` (the same number from the activations, any width: the Gauss-Newton term plus
  Σ_i ∂L/∂f_i Tr ∇²θ f(x_i), for the two-layer nets and ReLU nets without normalization),
  ``"gauss_newton"`` (Σ_i ∂²L/∂f_i² ‖∇θ f(x_i)‖²; for MSE Lemma 4.1's (2/n)Σ‖∇θ f(x_i)‖²: the
  true trace at an interpolator and everywhere for ReLU nets without normalization, *not* for
  Sim-LN / Sim-BN / softplus nets away from interpolation) or ``"hutchinson"`` (seeded
  Rademacher probes, with a standard error).
- ``top_eigenvalue`` (Lanczos, ARPACK's ``scipy.sparse.linalg.eigsh`` or power iteration, each
  reporting whether it converged) and ``hvp`` (Hessian-vector products).
- ``sam_sharpness`` / ``average_sharpness``: worst-case and average-case sharpness of
  Andriushchenko et al. (2023), full batch, L2 ball, MSE by default.
- ``bias_trace_lower_bound``: 4·sqrt(d+1), the minimal trace of bias-net interpolators.

For the two-layer ``no_bias`` / ``bias`` / ``sim_ln`` nets (relu or softplus), the per-example
‖∇θ f(x_i)‖² (hence the Gauss-Newton trace) have closed forms from the activations (O(n·m·d), no
autograd), and for ``no_bias`` / ``bias`` with ``mse`` or ``logistic`` so do Hessian-vector
products and the top Gauss-Newton eigenvector (all in ``flatlab._closed_form``); other models
use ``torch.func``. The tests check every path against independent autograd Hessians.
"""
from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, jacrev, vjp, vmap

from ._checks import check_positive
from ._closed_form import GRAD_NORM_ARCHS, HVP_ARCHS, TRACE_ARCHS, Activations, activations, gn_top_direction, hvp_closed
from ._closed_form import grad_sq_norms as _cf_grad_sq_norms
from ._closed_form import second_order_trace as _cf_second_order_trace
from .data import as_generator, check_xy
from .losses import get_loss, logistic, mse
from .models import TwoLayerNet, flatten_params, unflatten_params

__all__ = [
    "TRACE_METHODS",
    "EIGEN_METHODS",
    "TraceEstimate",
    "SharpnessEstimate",
    "EigenResult",
    "hessian_trace",
    "gauss_newton_trace",
    "trace_parts",
    "per_example_grad_sq_norms",
    "top_eigenvalue",
    "hvp",
    "sam_sharpness",
    "average_sharpness",
    "bias_trace_lower_bound",
    "bias_trace_lower_bound_data",
]

TRACE_METHODS = ("exact", "closed_form", "gauss_newton", "hutchinson")
EIGEN_METHODS = ("lanczos", "arpack", "power")
_F64 = torch.float64
_LOGISTIC_Q = inspect.signature(logistic).parameters["smoothing"].default / 2  # label smoothing p/2


@dataclass(frozen=True)
class TraceEstimate:
    """A Monte Carlo trace estimate: ``value`` ± ``stderr`` (std of the probes / sqrt(n_probes))."""

    value: float  # mean of zᵀ∇²L z over the probes
    stderr: float  # standard error of that mean
    n_probes: int  # number of Rademacher probes z

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class SharpnessEstimate:
    """A Monte Carlo sharpness estimate: ``value`` ± ``stderr`` over ``n_samples`` perturbations."""

    value: float  # mean loss increase
    stderr: float  # standard error of that mean
    n_samples: int  # number of (antithetic pairs of) Gaussian perturbations

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class EigenResult:
    """Top Hessian eigenvalue with an honest convergence report."""

    value: float  # the eigenvalue estimate (Rayleigh quotient of the returned vector)
    converged: bool  # True only if the relative residual met the tolerance
    n_iter: int  # Hessian-vector products used
    residual: float  # ‖H v - value·v‖₂ for the unit vector v found

    def __float__(self) -> float:
        return self.value


# ----------------------------------------------------------------------------- validation
class _Objective:
    """L(θ) = loss(f_θ(X), y) on a float64 copy θ (p,) of the model's parameters."""

    def __init__(self, model, X, y, loss="mse"):
        if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
            raise ValueError(f"model must be a torch.nn.Module with parameters, got {type(model).__name__}")
        d = getattr(getattr(model, "config", None), "d", None)
        check_xy(X, y, d=d)
        if X.shape[0] == 0:
            raise ValueError("X must have at least one row (n >= 1)")
        if not (isinstance(loss, str) or callable(loss)):
            raise ValueError(f"loss must be 'mse', 'logistic' or a callable loss(f, y), got {loss!r}")
        self.loss_fn = get_loss(loss)
        self.model, self.X, self.y = model, X.detach().to(_F64), y.detach().to(_F64)
        self.buffers = {k: b.detach().to(_F64) for k, b in model.named_buffers() if b is not None}
        self.n, self.p = X.shape[0], sum(q.numel() for q in model.parameters())
        cfg = getattr(model, "config", None)
        two_layer = isinstance(model, TwoLayerNet)
        self.closed_form = two_layer and cfg.arch in HVP_ARCHS  # closed-form products and top direction
        self.closed_norms = two_layer and cfg.arch in GRAD_NORM_ARCHS  # closed-form ‖∇θ f(x_i)‖²
        self.bias = "b1" in dict(model.named_parameters())
        self.closed_loss = self.loss_fn in (mse, logistic)

    @functools.cached_property
    def theta(self) -> torch.Tensor:
        """θ: a float64 copy of the parameters, (p,)."""
        return flatten_params(self.model).detach().to(_F64).clone()

    def f(self, theta, X=None):
        """f_θ(X): (n,)."""
        params = {**unflatten_params(self.model, theta), **self.buffers}
        return functional_call(self.model, params, (self.X if X is None else X,))

    def loss(self, theta):
        return self.loss_fn(self.f(theta), self.y)

    def loss_derivatives(self, f):
        """∂L/∂f (n,) and ∂²L/∂f² as (n,) if diagonal (mse, logistic, separable losses) else (n, n)."""
        n, y = self.n, self.y
        if self.loss_fn is mse:
            return 2 * (f - y) / n, torch.full_like(f, 2.0 / n)
        if self.loss_fn is logistic:  # ℓ = (1-q)·softplus(-z) + q·softplus(z), z = y f; softplus'' = σ σ(-·)
            z, q = y * f, _LOGISTIC_Q
            first = y * (q * torch.sigmoid(z) - (1 - q) * torch.sigmoid(-z)) / n
            return first, y**2 * torch.sigmoid(z) * torch.sigmoid(-z) / n
        f, fn = f.detach(), (lambda t: self.loss_fn(t, y))
        g = grad(fn)(f)
        Hf = jacrev(jacrev(fn))(f)
        off = Hf - torch.diag(torch.diagonal(Hf))
        return g, (torch.diagonal(Hf).clone() if not off.any() else Hf)

    # ---- per-example gradients of f
    @functools.cached_property
    def acts(self) -> Activations:
        """Activations at the model's θ (float64 copies), for the closed forms of ``_closed_form``."""
        P = {k: v.detach().to(_F64) for k, v in self.model.named_parameters()}
        return activations(P, self.X, self.model.config.activation)

    def jacobian(self, X=None):
        """∇θ f(x_i) for every row: (n, p), by vmap over per-example autograd."""
        X = self.X if X is None else X
        return vmap(grad(lambda t, x: self.f(t, x[None])[0]), in_dims=(None, 0))(self.theta, X)

    def grad_sq_norms(self, closed_form=None):
        """‖∇θ f(x_i)‖² (n,): ``_closed_form.grad_sq_norms`` on float64 copies, else autograd."""
        use = self.closed_norms if closed_form is None else closed_form
        if use:
            P = {k: v.detach().to(_F64) for k, v in self.model.named_parameters()}
            return _cf_grad_sq_norms(self.model, self.X, P)
        return self.jacobian().pow(2).sum(1)

    @property
    def closed_trace(self) -> bool:
        """Whether ``second_order`` has a closed form: the two-layer nets, and ReLU nets without
        normalization (f is linear in each single weight, so Tr ∇²θ f = 0)."""
        cfg = getattr(self.model, "config", None)
        arch = getattr(cfg, "arch", None)
        return (isinstance(self.model, TwoLayerNet) and arch in TRACE_ARCHS) or (
            arch == "deep_bias" and getattr(cfg, "activation", None) == "relu")

    def second_order(self) -> float:
        """Σ_i ∂L/∂f_i Tr ∇²θ f(x_i): what the true trace adds to the Gauss-Newton term."""
        if getattr(self.model.config, "arch", None) == "deep_bias":
            return 0.0
        P = {k: v.detach().to(_F64) for k, v in self.model.named_parameters()}
        c, _ = self.loss_derivatives(self.f(self.theta).detach())
        return float(_cf_second_order_trace(self.model, self.X, c, P))

    def gauss_newton(self):
        if self.loss_fn is mse:  # ∂²L/∂f² = 2/n, f not needed
            return float(2.0 * self.grad_sq_norms().mean())
        _, Hf = self.loss_derivatives(self.f(self.theta).detach())
        if Hf.ndim == 1:
            return float(Hf @ self.grad_sq_norms())
        J = self.jacobian()
        return float((Hf * (J @ J.T)).sum())

    # ---- Hessian-vector products
    def hvp_fn(self):
        """A function V (k, p) -> V ∇²L (k, p): closed form when available, else autograd on a kept graph."""
        if self.closed_form and self.closed_loss:
            a = self.acts
            return hvp_closed(a, self.X, self.bias, *self.loss_derivatives(a.A @ a.W2))
        theta = self.theta.clone().requires_grad_(True)
        g = torch.autograd.grad(self.loss(theta), theta, create_graph=True)[0]
        if not g.requires_grad:  # L is linear in θ: zero Hessian
            return lambda V: torch.zeros_like(V)

        def apply(V):
            if V.shape[0] == 1:
                return torch.autograd.grad(g, theta, V[0], retain_graph=True)[0].detach()[None]
            return torch.autograd.grad(g, theta, V, retain_graph=True, is_grads_batched=True)[0].detach()

        return apply

    def gauss_newton_top_direction(self):
        """The closed-form top eigenvector of the Gauss-Newton matrix (p,) (``_closed_form.gn_top_direction``)."""
        a = self.acts
        return gn_top_direction(a, self.X, self.bias, self.loss_derivatives(a.A @ a.W2)[1])


# ----------------------------------------------------------------------------- traces
def per_example_grad_sq_norms(model, X, *, method: str = "auto") -> torch.Tensor:
    """‖∇θ f(x_i)‖² for each row of X (n, d): a float64 tensor (n,).

    method: ``"auto"`` (closed form for two-layer no_bias/bias/sim_ln nets, else autograd),
    ``"closed_form"`` (``flatlab._closed_form.grad_sq_norms``) or ``"autograd"``
    (``torch.func.vmap`` of per-example gradients).
    """
    y = torch.zeros(X.shape[0], dtype=_F64) if isinstance(X, torch.Tensor) and X.ndim == 2 else None
    obj = _Objective(model, X, y)
    if method not in ("auto", "closed_form", "autograd"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'autograd', got {method!r}")
    if method == "closed_form" and not obj.closed_norms:
        raise ValueError(f"method='closed_form' needs a two-layer model of arch {GRAD_NORM_ARCHS}")
    return obj.grad_sq_norms(None if method == "auto" else method == "closed_form").detach()


def gauss_newton_trace(model, X, y=None) -> float:
    """Lemma 4.1's (2/n) Σ_i ‖∇θ f(x_i)‖² for MSE on X (n, d); y (n,) is optional (the GN trace of
    MSE does not depend on it) and only validated. Equals ``hessian_trace(..., method="gauss_newton")``."""
    if y is not None:
        check_xy(X, y)
    return float(2.0 * per_example_grad_sq_norms(model, X).mean())


def _exact_trace(obj: _Objective, chunk_size: int) -> float:
    """Σ_k e_kᵀ ∇²L e_k: the full autograd Hessian (reverse over reverse, one kept graph), built
    ``chunk_size`` rows at a time, keeping only its diagonal."""
    _, vjp_fn = vjp(grad(obj.loss), obj.theta)
    col = vmap(lambda v: vjp_fn(v)[0])
    total = 0.0
    for start in range(0, obj.p, chunk_size):
        idx = torch.arange(start, min(start + chunk_size, obj.p))
        E = torch.zeros(len(idx), obj.p, dtype=_F64)
        E[torch.arange(len(idx)), idx] = 1.0
        total += float(col(E)[torch.arange(len(idx)), idx].sum())
    return total


def _hutchinson(obj: _Objective, n_probes: int, seed, batch: int = 16) -> TraceEstimate:
    g = as_generator(seed)
    apply, vals = obj.hvp_fn(), []
    for start in range(0, n_probes, batch):
        k = min(batch, n_probes - start)
        Z = torch.randint(0, 2, (k, obj.p), generator=g).to(_F64).mul_(2).sub_(1)
        vals.append((apply(Z) * Z).sum(1))
    v = torch.cat(vals)
    return TraceEstimate(float(v.mean()), float(v.std() / math.sqrt(n_probes)), n_probes)


def _closed_parts(obj: _Objective) -> tuple[float, float]:
    """(Tr ∇²L, its Gauss-Newton term) from the closed forms; ValueError without one."""
    if not obj.closed_trace:
        arch = getattr(getattr(obj.model, "config", None), "arch", type(obj.model).__name__)
        raise ValueError(f"method='closed_form' needs a two-layer net of arch {TRACE_ARCHS} or a relu "
                         f"deep_bias net, got {arch!r}; use method='exact' or 'hutchinson'")
    gn = obj.gauss_newton()
    return gn + obj.second_order(), gn


def trace_parts(model, X, y, *, loss="mse") -> tuple[float, float]:
    """(Tr ∇²L, its Gauss-Newton term) in one pass: ``hessian_trace`` with ``"closed_form"`` and
    ``"gauss_newton"`` without computing the Gauss-Newton term twice. ValueError for a model
    without a closed form (see ``hessian_trace``)."""
    return _closed_parts(_Objective(model, X, y, loss))


def hessian_trace(model, X, y, *, loss="mse", method: str = "exact", n_probes: int = 100, seed=0,
                  max_params: int | None = 5000, chunk_size: int = 256):
    """Tr ∇²L(θ) for L = loss(f_θ(X), y); X (n, d), y (n,).

    method:
      ``"exact"``: the diagonal of the autograd Hessian (reverse over reverse, ``chunk_size`` rows
        at a time). Costs p Hessian-vector products: refused when p > ``max_params``
        (pass ``max_params=None`` to insist). Includes every dependence, e.g. Sim-BN's statistic.
      ``"closed_form"``: the exact trace again, as the Gauss-Newton term plus Σ_i ∂L/∂f_i Tr ∇²θ f(x_i)
        from the activations (``flatlab._closed_form.second_order_trace``): O(n·m·d), any width;
        for the two-layer nets (relu or softplus) and ReLU ``deep_bias`` nets, else ValueError.
      ``"gauss_newton"``: Σ_i ∂²L/∂f_i² ‖∇θ f(x_i)‖² (MSE: (2/n)Σ‖∇θ f(x_i)‖², Lemma 4.1;
        logistic: (1/n)Σ σ(y_i f_i)σ(-y_i f_i)‖∇θ f(x_i)‖²). Drops Σ_i ∂L/∂f_i Tr ∇²θ f(x_i),
        which is 0 at interpolation (MSE) and everywhere for ReLU nets without normalization, but
        not small for Sim-LN / Sim-BN nets near (not at) interpolation: it is not the trace there.
      ``"hutchinson"``: mean of zᵀ∇²L z over ``n_probes`` Rademacher probes drawn from ``seed``;
        returns a ``TraceEstimate(value, stderr, n_probes)``.
    Returns a float for ``exact`` and ``gauss_newton``.
    """
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    obj = _Objective(model, X, y, loss)
    if method == "gauss_newton":
        return obj.gauss_newton()
    if method == "closed_form":
        return _closed_parts(obj)[0]
    if method == "hutchinson":
        check_positive(n_probes, "n_probes", integer=True)
        if n_probes < 2:
            raise ValueError(f"n_probes must be >= 2 to give a standard error, got {n_probes}")
        return _hutchinson(obj, n_probes, seed)
    if max_params is not None:
        check_positive(max_params, "max_params", integer=True)
        if obj.p > max_params:
            raise ValueError(
                f"model has {obj.p} parameters > max_params={max_params}: the exact trace costs p "
                "Hessian-vector products; use method='gauss_newton' or 'hutchinson', or pass max_params=None")
    check_positive(chunk_size, "chunk_size", integer=True)
    return _exact_trace(obj, chunk_size)


# ----------------------------------------------------------------------------- spectrum
def hvp(model, X, y, v, *, loss="mse") -> torch.Tensor:
    """∇²L(θ) v for v (p,) or a batch V (k, p), θ the flat parameter vector; same shape as v."""
    obj = _Objective(model, X, y, loss)
    if not isinstance(v, torch.Tensor) or v.ndim not in (1, 2) or v.shape[-1] != obj.p:
        got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"v must be a tensor of shape ({obj.p},) or (k, {obj.p}), got {got}")
    if not torch.isfinite(v).all():
        raise ValueError("v must be finite (found NaN or inf)")
    V = v.detach().to(_F64)
    out = obj.hvp_fn()(V.reshape(-1, obj.p))
    return out.reshape(V.shape)


def _converged(res: float, lam: float, tol: float) -> bool:
    """The relative residual test, with a floor at rounding level (1e-13)."""
    return res <= 2 * max(tol, 1e-13) * abs(lam)


def _lanczos(Hv, v, tol, max_iter):
    """Lanczos with full reorthogonalization, stopping when the Ritz residual β·|s_k| <= tol·|θ|.

    Keeps the products H q_i, so the Ritz vector u = Σ s_i q_i comes with H u = Σ s_i H q_i
    without another product. Returns (u, H u), both (p,).
    """
    p = v.numel()
    Q, HQ = torch.empty(min(16, p), p, dtype=_F64), torch.empty(min(16, p), p, dtype=_F64)
    Q[0] = v
    alphas, betas = [], []
    for k in range(min(max_iter, p)):
        if k + 1 > Q.shape[0] - 1 and k + 1 < p:  # grow the buffers
            Q, HQ = torch.cat([Q, torch.empty_like(Q)]), torch.cat([HQ, torch.empty_like(HQ)])
        HQ[k] = w = Hv(Q[k])
        Qk, norm0 = Q[: k + 1], float(w.norm())
        h = Qk @ w  # h[k] = α_k; the rest is what the three-term recurrence would remove, and drift
        alphas.append(float(h[k]))
        w = w - h @ Qk
        beta = float(w.norm())
        if beta < 1e-2 * norm0:  # heavy cancellation: orthogonalize once more (twice is enough)
            w = w - (Qk @ w) @ Qk
            beta = float(w.norm())
        evals, evecs = np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
        theta, s = evals[-1], torch.from_numpy(np.ascontiguousarray(evecs[:, -1]))
        if beta * abs(float(s[-1])) <= tol * abs(theta) or beta <= 1e-14 * abs(theta) or k + 1 == p:
            break
        betas.append(beta)
        Q[k + 1] = w / beta
    return s @ Qk, s @ HQ[: k + 1]


def top_eigenvalue(model, X, y, *, loss="mse", tol: float = 1e-10, max_iter: int = 1000, seed=0,
                   method: str = "lanczos", warm_start: bool = True) -> EigenResult:
    """Largest Hessian eigenvalue of L on (X (n, d), y (n,)) from Hessian-vector products.

    ``"lanczos"``: Lanczos with full reorthogonalization, convergence tested after every product
    (the largest *algebraic* eigenvalue; memory max_iter·p). ``"arpack"``: implicitly restarted
    Lanczos of ``scipy.sparse.linalg.eigsh`` (which='LA') on a ``LinearOperator``; ARPACK builds a
    Krylov space of 8 vectors before its first test. ``"power"``: power iteration, which finds the
    eigenvalue of largest *magnitude* (signed). All start from a Gaussian vector drawn from
    ``seed``; with ``warm_start`` (two-layer no_bias/bias nets, mse/logistic) the start is the
    closed-form top eigenvector of the Gauss-Newton part plus 1e-6 of that random vector, which
    is the answer at interpolation and close to it elsewhere. They stop after about ``max_iter``
    products. The value is the Rayleigh quotient of the final unit vector v, and ``converged``
    is True only if its true residual ‖Hv - λv‖ (from actual products, not a recurrence) is
    <= tol·|λ| (floored at 1e-13·|λ|, rounding level).
    """
    if method not in EIGEN_METHODS:
        raise ValueError(f"method must be one of {EIGEN_METHODS}, got {method!r}")
    check_positive(tol, "tol")
    check_positive(max_iter, "max_iter", integer=True)
    obj = _Objective(model, X, y, loss)
    apply, count = obj.hvp_fn(), [0]

    def Hv(v):
        count[0] += 1
        return apply(v[None])[0]

    v = torch.randn(obj.p, generator=as_generator(seed), dtype=_F64)
    v /= v.norm()
    if obj.closed_form and obj.closed_loss and warm_start:
        g = obj.gauss_newton_top_direction()
        if float(g.norm()) > 0:
            v = g / g.norm() + 1e-6 * v
            v /= v.norm()
    ok = True
    if method == "power":
        lam, w = 0.0, Hv(v)
        for _ in range(max_iter - 1):
            lam = float(v @ w)
            res = float((w - lam * v).norm())
            if _converged(res, lam, tol) or float(w.norm()) == 0.0:
                return EigenResult(lam, True, count[0], res)
            v = w / w.norm()
            w = Hv(v)
        lam = float(v @ w)
        res = float((w - lam * v).norm())
        return EigenResult(lam, _converged(res, lam, tol), count[0], res)
    if method == "lanczos" or obj.p < 3:
        u, w = _lanczos(Hv, v, tol, max_iter)
        norm = u.norm()
        u, w = u / norm, w / norm
        lam = float(u @ w)
        res = float((w - lam * u).norm())
        return EigenResult(lam, _converged(res, lam, tol), count[0], res)

    def matvec(x):
        return Hv(torch.from_numpy(np.asarray(x, dtype=np.float64).ravel())).numpy()

    ncv = min(obj.p, 8)  # a small Krylov space: ARPACK tests convergence only after ncv products
    op = LinearOperator((obj.p, obj.p), dtype=np.float64, matvec=matvec)
    try:
        restarts = max(1, max_iter // ncv)
        vecs = eigsh(op, k=1, which="LA", tol=tol, maxiter=restarts, ncv=ncv, v0=v.numpy())[1]
    except ArpackNoConvergence as err:
        ok, vecs = False, err.eigenvectors
        if vecs.shape[1] == 0:
            return EigenResult(float("nan"), False, count[0], float("nan"))
    u = torch.from_numpy(np.ascontiguousarray(vecs[:, -1]))
    u = u / u.norm()
    w = Hv(u)
    lam = float(u @ w)
    res = float((w - lam * u).norm())
    return EigenResult(lam, bool(ok and _converged(res, lam, tol)), count[0], res)


# ----------------------------------------------------------------------------- Andriushchenko et al. (2023)
def _scale(obj: _Objective, adaptive: bool) -> torch.Tensor:
    return obj.theta.abs() if adaptive else torch.ones_like(obj.theta)


def sam_sharpness(model, X, y, rho: float, *, steps: int = 1, loss="mse", adaptive: bool = False,
                  seed=0) -> float:
    """Worst-case sharpness max_{‖δ/c‖₂ <= rho} L(θ+δ) - L(θ), approximated by ascent (X (n, d), y (n,)).

    c = 1, or c = |θ| if ``adaptive`` (Kwon et al.; invariant to neuron-wise rescaling).
    ``steps=1``: the SAM step δ = rho·c·ĝ with ĝ the unit gradient in the scaled coordinates.
    ``steps>1``: further normalized-gradient steps projected on the ball, the step halved when
    the loss does not rise (as in APGD); the best point is kept, so the value never decreases
    with ``steps``. At an exact stationary point the first direction is a random unit vector
    from ``seed``.
    """
    check_positive(rho, "rho")
    check_positive(steps, "steps", integer=True)
    obj = _Objective(model, X, y, loss)
    c, gL = _scale(obj, adaptive), grad(obj.loss)
    L0 = float(obj.loss(obj.theta))

    def ascent_dir(u):
        gu = c * gL(obj.theta + c * u)
        norm = gu.norm()
        return gu / norm if norm > 0 and torch.isfinite(norm) else None

    d0 = ascent_dir(torch.zeros_like(obj.theta))
    if d0 is None:
        d0 = torch.randn(obj.p, generator=as_generator(seed), dtype=_F64)
        d0 = d0 / d0.norm()
    u = rho * d0
    best = float(obj.loss(obj.theta + c * u))
    alpha, d = rho, ascent_dir(u) if steps > 1 else None
    for _ in range(steps - 1):
        if d is None:
            break
        cand = u + alpha * d
        cand = cand * min(1.0, rho / max(float(cand.norm()), 1e-300))  # project on the ball
        val = float(obj.loss(obj.theta + c * cand))
        if val > best:
            u, best = cand, val
            d = ascent_dir(u)
        else:
            alpha /= 2
    return best - L0


def average_sharpness(model, X, y, sigma: float, *, n_samples: int = 100, seed=0, loss="mse",
                      adaptive: bool = False) -> SharpnessEstimate:
    """Average-case sharpness E_{δ ~ N(0, sigma² diag(c²))} L(θ+δ) - L(θ) (X (n, d), y (n,)).

    Monte Carlo over ``n_samples`` antithetic pairs ±δ drawn from ``seed`` (unbiased; cancels the
    gradient term). c = 1, or |θ| if ``adaptive``. For a quadratic loss the mean is sigma²·Tr(H)/2.
    Returns ``SharpnessEstimate(value, stderr, n_samples)``; ``float()`` of it is the value.
    """
    check_positive(sigma, "sigma")
    check_positive(n_samples, "n_samples", integer=True)
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 to give a standard error, got {n_samples}")
    obj = _Objective(model, X, y, loss)
    c, g = _scale(obj, adaptive), as_generator(seed)
    L0 = obj.loss(obj.theta)
    batched = vmap(obj.loss)
    vals = []
    for start in range(0, n_samples, 32):
        k = min(32, n_samples - start)
        D = torch.randn(k, obj.p, generator=g, dtype=_F64) * (sigma * c)
        vals.append((batched(obj.theta + D) + batched(obj.theta - D)) / 2 - L0)
    v = torch.cat(vals).detach()
    return SharpnessEstimate(float(v.mean()), float(v.std() / math.sqrt(n_samples)), n_samples)


# ----------------------------------------------------------------------------- lower bounds
def bias_trace_lower_bound(d: int) -> float:
    """4·sqrt(d+1): the minimal MSE trace over 2-MLP-Bias interpolators of hypercube data, y = ±1."""
    check_positive(d, "d", integer=True)
    return 4.0 * math.sqrt(d + 1)


def bias_trace_lower_bound_data(X, y) -> float:
    """(2/n) Σ_i 2‖(x_i, 1)‖·|y_i|: the bound for 2-MLP-Bias interpolators of (X (n, d), y (n,))."""
    check_xy(X, y)
    X, y = X.to(_F64), y.to(_F64)
    return float(4.0 * (torch.sqrt(X.pow(2).sum(1) + 1) * y.abs()).mean())
