"""The flattest interpolators of the paper, built by hand as ordinary flatlab models.

Four constructions, each returned as a model from :func:`flatlab.models.make_model` with
its weights set by :func:`flatlab.models.set_params`. Training data ``X`` is ``(n, d)``,
labels ``y`` are ``(n,)``. A ``width`` larger than the minimal one pads the net with
*dead* neurons: first-layer row 0, bias -1 (so the pre-activation is -1 on every input,
away from the ReLU kink) and output weight 0. They change neither f nor the trace.

Bias net, f(x) = W2 · relu(W1 x + b1) (Section 4)
--------------------------------------------------
At an interpolator, Tr ∇²L = (2/n) Σ_i ‖∇_θ f(x_i)‖² (Lemma 4.1) and Cauchy–Schwarz gives
‖∇_θ f(x_i)‖² ≥ 2‖(x_i, 1)‖·|y_i|; on the hypercube with ±1 labels the floor is
**4·sqrt(d+1)** (``flatlab.sharpness.bias_trace_lower_bound``).

- :func:`memorizing_bias` (Thm 4.1), width n, one neuron per training point, with
  w_i = x_i/‖x_i‖, r_i = sqrt(‖x_i‖² + 1) and a margin ε:
  ``W1[i] = sqrt(r_i|y_i|)·w_i/ε``, ``b1[i] = sqrt(r_i|y_i|)·(ε - w_i·x_i)/ε``,
  ``W2[i] = sign(y_i)·sqrt(|y_i|/r_i)``. Neuron i outputs sqrt(r_i|y_i|) on x_i and 0 on
  every other point whose projection on w_i is below w_i·x_i - ε, so f(x_i) = y_i, f = 0
  off the training set (zero-one test accuracy 0), and ‖∇f(x_i)‖² = 2 r_i |y_i| meets the
  bound. On the hypercube w_i·(x_i - x_j) = 2·Hamming(x_i, x_j)/sqrt(d) ≥ 2/sqrt(d), so any
  ε < 2/sqrt(d) works.
- :func:`generalizing_bias` (Prop 4.2, Eq. 5), four neurons, one per sign pattern
  (s1, s2): ``W1 row = r·(s1, s2, 0, …, 0)``, ``b1 = -r``, ``W2 = s1·s2/r`` with
  r = (d+1)^(1/4). The neuron (s1, s2) has pre-activation r·(s1 x1 + s2 x2 - 1), i.e. r
  when (x1, x2) = (s1, s2) and ≤ -r otherwise, so f(x) = x1·x2 on the whole hypercube and
  ‖∇f‖² = (d+1)/r² + r² = 2·sqrt(d+1) at every point. (The constant (d²+1)^(1/4) found in
  one transcription of the paper gives trace 62.1 at d = 30, not the floor 22.27.)

Sim-LN net, f(x) = W2 · h(x)/max(‖h(x)‖, eps), h = relu(W1 x + b1) (Section 5)
---------------------------------------------------------------------------------
Derivation (ours; the paper states the results, Thm 5.1 / Props 5.1, 5.2). With
u = h/‖h‖ (‖h‖ > eps): ∇_{W2} f = u, a unit vector, and with z = W1 x + b1,
∇_z f = D·(I - u uᵀ)W2/‖h‖ (D = diag 1[z > 0]), ∇_{W1} f = ∇_z f xᵀ, ∇_{b1} f = ∇_z f.
Hence ‖∇_θ f(x)‖² = 1 + (‖x‖² + 1)·‖D(I - u uᵀ)W2‖²/‖h‖² ≥ 1 and Tr ∇²L ≥ 2 at every
interpolator with ‖h(x_i)‖ ≥ eps (if ‖h‖ < eps, ‖∇_z f‖ ≥ |f|/‖h‖ > 1/eps is far larger).
The floor **2** is attained exactly when every input activates exactly one neuron:
then u = e_j, D(I - u uᵀ)W2 = 0 and f(x) = W2[j]. Both constructions below do this; the
scale ``scale`` of the active pre-activation is irrelevant to f (scale invariance) and
only needs ``scale > eps``.

- :func:`memorizing_sim_ln`: the bias-net memorizer's neurons with output weight y_i:
  ``W1[i] = scale·w_i/ε``, ``b1[i] = scale·(ε - w_i·x_i)/ε``, ``W2[i] = y_i``. Off the
  training set h = 0, so f = 0 (test accuracy 0) with trace exactly 2.
- :func:`generalizing_sim_ln`: the four XOR neurons ``W1 row = scale·(s1, s2, 0, …)``,
  ``b1 = -scale``, ``W2 = s1·s2``: f(x) = x1·x2 on the hypercube, trace exactly 2.

>>> from flatlab.data import xor_parity
>>> X, y = xor_parity(100, 30, seed=0)
>>> model = memorizing_bias(X, y)
>>> float((model(X) - y).abs().max()) < 1e-12
True
"""
from __future__ import annotations

import math

import torch

from ._checks import check_positive
from .data import check_xy
from .models import make_model, set_params

__all__ = [
    "BIAS_DEFAULT_EPS",
    "sim_ln_trace_floor",
    "optimal_radius",
    "memorizing_bias",
    "generalizing_bias",
    "memorizing_sim_ln",
    "generalizing_sim_ln",
]

BIAS_DEFAULT_EPS = 0.1  # margin ε of the memorizing neurons; must be < 2/sqrt(d) on the hypercube
_SIGNS = ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0))  # (s1, s2) of the four XOR neurons


def sim_ln_trace_floor() -> float:
    """Minimal Tr ∇²L over Sim-LN interpolators (‖h(x_i)‖ ≥ eps): 2, for any d and n."""
    return 2.0


def optimal_radius(d: int) -> float:
    """r = (d+1)^(1/4), the scale of Prop 4.2 that minimizes (d+1)/r² + r²."""
    _check_d(d)
    return (d + 1) ** 0.25


def _check_d(d) -> int:
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d must be an int >= 2 (XOR uses two coordinates), got {d!r}")
    return d


def _check_width(width, needed: int) -> int:
    if width is None:
        return needed
    if isinstance(width, bool) or not isinstance(width, int) or width < needed:
        raise ValueError(f"width must be an int >= {needed} (the construction's neurons), got {width!r}")
    return width


def _check_scale(scale) -> float:
    scale = check_positive(scale, "scale")
    if scale <= 1e-6:
        raise ValueError(f"scale must exceed the Sim-LN floor eps = 1e-6 (else ‖h‖ < eps), got {scale!r}")
    return scale


def _empty_params(width: int, d: int, dtype) -> dict[str, torch.Tensor]:
    """Dead neurons everywhere: W1 = 0, b1 = -1, W2 = 0 (pre-activation -1 on every input)."""
    return {
        "W1": torch.zeros(width, d, dtype=dtype),
        "b1": torch.full((width,), -1.0, dtype=dtype),
        "W2": torch.zeros(width, dtype=dtype),
    }


def _memorizer_directions(X: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate memorizer inputs; return unit directions w (n, d) and projections w_i·x_i (n,)."""
    check_xy(X, y)
    n, d = X.shape
    if d < 1 or n < 1:
        raise ValueError(f"X must be non-empty, got shape {tuple(X.shape)}")
    if (y == 0).any():
        raise ValueError("y must be nonzero (a memorizing neuron carries sign(y_i)); got a zero label")
    norms = X.norm(dim=1)
    if (norms == 0).any():
        raise ValueError("X must not contain the zero vector (its direction x_i/‖x_i‖ is undefined)")
    if torch.unique(X, dim=0).shape[0] < n:
        raise ValueError("X must not contain duplicate training points: "
                         "one neuron cannot memorize two labels")
    w = X / norms[:, None]
    proj = (w * X).sum(1)  # w_i·x_i = ‖x_i‖
    gap = proj[:, None] - w @ X.T  # gap[i, j] = w_i·(x_i - x_j) > 0 for distinct points on a sphere
    gap.fill_diagonal_(float("inf"))
    margin = float(gap.min()) if n > 1 else float("inf")
    on_cube = bool(((X == 1) | (X == -1)).all())
    bound = min(margin, 2.0 / math.sqrt(d)) if on_cube else margin
    if not 0 < eps < bound:
        where = (f"2/sqrt(d) = {2 / math.sqrt(d):.4g} on the hypercube" if on_cube
                 else f"the data margin {margin:.4g}")
        raise ValueError(f"eps must be in (0, {where}) so that neuron i fires on x_i only, got {eps!r}")
    return w, proj


def memorizing_bias(X: torch.Tensor, y: torch.Tensor, *, eps: float = BIAS_DEFAULT_EPS,
                    width: int | None = None) -> torch.nn.Module:
    """Thm 4.1: a flattest bias-net interpolator that memorizes (test accuracy 0).

    X: (n, d) distinct nonzero training points; y: (n,) nonzero labels; eps: the margin ε
    (0 < ε < 2/sqrt(d) on the hypercube, < min_{i≠j} w_i·(x_i - x_j) otherwise); width:
    >= n (default n). Neuron i (< n) is the memorizer of x_i (module docstring).
    Trace at the solution: (2/n) Σ_i 2·sqrt(‖x_i‖²+1)·|y_i| (= 4·sqrt(d+1) on the cube).
    """
    eps = check_positive(eps, "eps")
    w, proj = _memorizer_directions(X, y, eps)
    n, d = X.shape
    width = _check_width(width, n)
    r = (X.pow(2).sum(1) + 1).sqrt()
    a = (r * y.abs()).sqrt()
    params = _empty_params(width, d, X.dtype)
    params["W1"][:n] = a[:, None] * w / eps
    params["b1"][:n] = a * (eps - proj) / eps
    params["W2"][:n] = torch.sign(y) * (y.abs() / r).sqrt()
    return set_params(make_model("bias", d, width, seed=0, dtype=X.dtype), params)


def _xor_params(d: int, width: int, row_scale: float, out: tuple[float, ...], dtype) -> dict:
    params = _empty_params(width, d, dtype)
    for k, (s1, s2) in enumerate(_SIGNS):
        params["W1"][k, 0], params["W1"][k, 1] = row_scale * s1, row_scale * s2
        params["b1"][k] = -row_scale
        params["W2"][k] = out[k]
    return params


def generalizing_bias(d: int, *, width: int | None = None, r: float | None = None,
                      dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """Prop 4.2 (Eq. 5): a flattest bias-net interpolator with f(x) = x1·x2 on {-1,+1}^d.

    d: input dimension (>= 2); width: >= 4 (default 4); r: neuron scale, default
    (d+1)^(1/4), the only value that reaches the floor 4·sqrt(d+1). Neurons 0-3 are
    (s1, s2) = (+,+), (+,-), (-,+), (-,-): row r·(s1, s2, 0, …), bias -r, output s1·s2/r.
    """
    d = _check_d(d)
    width = _check_width(width, 4)
    r = optimal_radius(d) if r is None else check_positive(r, "r")
    out = tuple(s1 * s2 / r for s1, s2 in _SIGNS)
    return set_params(make_model("bias", d, width, seed=0, dtype=dtype), _xor_params(d, width, r, out, dtype))


def memorizing_sim_ln(X: torch.Tensor, y: torch.Tensor, *, eps: float = BIAS_DEFAULT_EPS,
                      width: int | None = None, scale: float = 1.0) -> torch.nn.Module:
    """A flattest Sim-LN interpolator that memorizes (Thm 5.1 / Prop 5.1): trace exactly 2.

    X: (n, d) distinct nonzero points; y: (n,) nonzero labels; eps: margin ε as in
    :func:`memorizing_bias`; width >= n; scale: the active pre-activation on x_i (must
    exceed the model's eps 1e-6). W1[i] = scale·w_i/ε, b1[i] = scale·(ε - w_i·x_i)/ε,
    W2[i] = y_i: each x_i activates neuron i alone, so f(x_i) = y_i, f = 0 off the set.
    """
    eps = check_positive(eps, "eps")
    scale = _check_scale(scale)
    w, proj = _memorizer_directions(X, y, eps)
    n, d = X.shape
    width = _check_width(width, n)
    params = _empty_params(width, d, X.dtype)
    params["W1"][:n] = scale * w / eps
    params["b1"][:n] = scale * (eps - proj) / eps
    params["W2"][:n] = y
    return set_params(make_model("sim_ln", d, width, seed=0, dtype=X.dtype), params)


def generalizing_sim_ln(d: int, *, width: int | None = None, scale: float = 1.0,
                        dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A flattest Sim-LN interpolator with f(x) = x1·x2 on {-1,+1}^d (Prop 5.2): trace 2.

    Neuron (s1, s2): row scale·(s1, s2, 0, …), bias -scale, output weight s1·s2. Exactly one
    neuron is active on each hypercube point, so the normalized feature is a unit vector.
    """
    d = _check_d(d)
    width = _check_width(width, 4)
    scale = _check_scale(scale)
    out = tuple(s1 * s2 for s1, s2 in _SIGNS)
    model = make_model("sim_ln", d, width, seed=0, dtype=dtype)
    return set_params(model, _xor_params(d, width, scale, out, dtype))
