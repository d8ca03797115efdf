# ---
# jupyter:
#   flatlab:
#     assignment: hw5
#     title: 'Scenario III: SAM generalizes although flat memorizers exist'
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw5 · Scenario III: SAM generalizes although flat memorizers exist
#
# The last architecture is **Sim-LN**: f(x) = W2·h(x)/max(‖h(x)‖, ε), h = relu(W1 x + b1).
# The paper shows (Section 5):
#
# * every interpolator has Tr ∇²L ≥ 2, and that floor is reached by **memorizing**
#   interpolators (Theorem 5.1) as well as by the XOR network;
# * yet 1-SAM generalizes almost perfectly (Fig. 6), also when the first-layer norm is held
#   fixed so sharpness cannot fall by inflating it (Fig. 6b).
#
# Together with hw4 this is the paper's title: the flattest models include useless ones,
# in scenario II SAM fails and here it succeeds, so SAM must be doing something beyond
# minimizing sharpness. Estimated time: 3 hours.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.lab.plotting import COLORS
from flatlab.models import get_params, make_model, model_from_config, set_params
from flatlab.sharpness import gauss_newton_trace
from flatlab.train import Phase, TrainConfig, train

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def sim_ln_net(params, eps=1e-6):
    """A flatlab 'sim_ln' model holding {"W1": (m, d), "b1": (m,), "W2": (m,)}."""
    m, d = params["W1"].shape
    return set_params(make_model("sim_ln", d, m, seed=0, eps=eps), params)


# %% [markdown]
# ## 1. Where the trace of a Sim-LN net comes from (task `hw5.grad_parts`, 4 points)
#
# With u = h/‖h‖ (when ‖h‖ > ε) and z = W1 x + b1:
#
# * ∇_{W2} f = u, a **unit** vector: the output layer contributes exactly 1 to ‖∇_θ f(x)‖²;
# * ∇_z f = D·(I − u uᵀ)·W2/‖h‖ with D = diag(1[z > 0]), and ∇_{W1} f = ∇_z f·xᵀ,
#   ∇_{b1} f = ∇_z f, so the first layer contributes (‖x‖² + 1)·‖∇_z f‖².
#
# (If ‖h‖ ≤ ε, f = W2·h/ε: ∇_{W2} f = h/ε and ∇_z f = D·W2/ε.) Write
# `sim_ln_grad_parts(W1, b1, W2, X, eps)` returning an (n, 2) tensor: per example, the squared
# norm of the output-layer gradient and of the first-layer gradient (W1 and b1 together),
# from these formulas, without autograd.

# %% flatlab={"forbid": ["flatlab.sharpness.per_example_grad_sq_norms", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.hessian_trace", "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward", "torch.func.grad", "torch.func.vmap", "torch.func.jacrev", "torch.func.jacfwd", "torch.autograd.functional.jacobian", "flatlab._closed_form.grad_sq_norms", "flatlab._closed_form.gauss_newton_trace_closed"], "function": "sim_ln_grad_parts", "id": "hw5.grad_parts", "points": 4, "role": "task", "summary": "closed form per example: [||grad_W2 f||^2, (||x||^2+1) ||D (I - u u^T) W2 / ||h||  ||^2] (the eps branch when ||h|| <= eps), shape (n, 2), no autograd"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    """Per-example squared gradient norms of a Sim-LN net, split by layer. Returns (n, 2): [output layer, first layer]."""
    ### BEGIN SOLUTION
    Z = X @ W1.T + b1
    H = torch.relu(Z)
    D = (Z > 0).double()
    norms = H.norm(dim=1, keepdim=True)
    big = norms > eps
    U = H / norms.clamp_min(eps)
    proj = W2 - (U @ W2)[:, None] * U  # (I - u u^T) W2 per row
    gz = torch.where(big, D * proj / norms.clamp_min(eps), D * W2 / eps)
    out = U.pow(2).sum(1)
    first = (X.pow(2).sum(1) + 1) * gz.pow(2).sum(1)
    return torch.stack([out, first], 1)
    ### END SOLUTION


# %% flatlab={"id": "hw5.grad_parts", "role": "public_test"}
_Xg = flatlab.xor_parity(12, 6, seed=0)[0] * torch.linspace(0.5, 2.0, 12)[:, None]  # ‖x‖² varies, not d
_mg = flatlab.make_model("sim_ln", 6, 8, seed=1)


def _parts_check(model, X):
    """(your sim_ln_grad_parts, flatlab's per-layer values) on a Sim-LN model: flatlab gives the total, the output
    layer's part is ‖∇_{W2} f‖² = ‖features‖², the first layer's part is the rest."""
    mine = sim_ln_grad_parts(model.W1.detach(), model.b1.detach(), model.W2.detach(), X, model.config.eps)
    with torch.no_grad():
        out = model.features(X).pow(2).sum(1)
    return mine, torch.stack([out, flatlab.sharpness.per_example_grad_sq_norms(model, X) - out], 1)


_P, _R = _parts_check(_mg, _Xg)
assert isinstance(_P, torch.Tensor) and tuple(_P.shape) == (12, 2), (
    f"sim_ln_grad_parts must return a tensor of shape (n, 2) = (12, 2); got {type(_P).__name__} of shape "
    f"{tuple(getattr(_P, 'shape', ()))}")
assert _P.dtype == torch.float64, f"sim_ln_grad_parts must return float64 (the inputs' dtype), got {_P.dtype}"
_err = (_P[:, 0] - _R[:, 0]).abs().max()
assert _err < 1e-10, (f"column 0 (the output layer, ‖∇_{{W2}} f‖² = ‖u‖², 1 when ‖h‖ > ε) is off by up to {_err:.3g}")
_P1, _ = _parts_check(flatlab.constructions.generalizing_sim_ln(6, width=8), flatlab.xor_parity(12, 6, seed=0)[0])
assert _P1[:, 1].abs().max() < 1e-10, (
    f"on the Sim-LN XOR net exactly one neuron j fires on each hypercube point, so u = e_j and the first-layer part must "
    f"be 0; yours is up to {_P1[:, 1].abs().max():.3g}: ∇_z f = D·(I − u uᵀ)·W2/‖h‖ projects W2 off u and keeps only "
    "active neurons (D)")
_live = _R[:, 1] > 1e-12  # examples with a nonzero first-layer part
_ratio = _P[_live, 1] / _R[_live, 1]
assert ((_P[:, 1] - _R[:, 1]).abs() <= 1e-8 * _R[:, 1] + 1e-12).all(), (
    f"column 1 (the first layer, W1 and b1 together) is between {_ratio.min():.4g} and {_ratio.max():.4g} times the "
    "value from autograd: it is (‖x‖² + 1)·‖∇_z f‖² (‖x‖² from W1, 1 from b1)")
_me = flatlab.make_model("sim_ln", 6, 8, seed=2, eps=0.5)
with torch.no_grad():  # ‖h‖ < ε = 0.5 on every input: f = W2·h/ε
    _me.W1.mul_(0.01)
    _me.b1.copy_(torch.linspace(0.001, 0.01, 8))
_Pe, _Re = _parts_check(_me, _Xg)
_err = (_Pe - _Re).abs().max(0).values
assert _err.max() < 1e-10, (
    f"where ‖h‖ ≤ ε (f = W2·h/ε) your parts are off by up to {_err[0]:.3g} (column 0) and {_err[1]:.3g} (column 1): "
    "there ∇_{W2} f = h/ε (column 0 below 1) and ∇_z f = D·W2/ε")
print("hw5.grad_parts: OK")


# %% flatlab={"id": "hw5.grad_parts", "role": "hidden_test"}
def _ln_case(rng, n=None, d=None, m=None, eps=1e-6):
    n = int(rng.integers(2, 30)) if n is None else n
    d = int(rng.integers(2, 20)) if d is None else d
    m = int(rng.integers(2, 40)) if m is None else m
    model = flatlab.make_model("sim_ln", d, m, seed=int(rng.integers(2**31)), eps=eps,
                               init_scale=float(np.exp(rng.uniform(-2, 1))))
    X, y = flatlab.xor_parity(n, d, seed=int(rng.integers(2**31)))
    return model, X, y


def _autograd_parts(model, X):
    names = flatlab.models.param_names(model)
    theta = flatlab.models.flatten_params(model).detach().clone()
    J = torch.func.vmap(torch.func.grad(lambda t, x: flatlab.models.functional_forward(model, t, x[None])[0]),
                        in_dims=(None, 0))(theta, X)
    sizes = [p.numel() for p in model.parameters()]
    blocks = dict(zip(names, torch.split(J, sizes, dim=1)))
    return torch.stack([blocks["W2"].pow(2).sum(1), blocks["W1"].pow(2).sum(1) + blocks["b1"].pow(2).sum(1)], 1)


def _check_parts(got, want):
    got = np.asarray(got, dtype=float)
    assert got.shape == tuple(want.shape), f"sim_ln_grad_parts returned shape {got.shape}; expected (n, 2) = {tuple(want.shape)}"
    assert_close(got[:, 0], want[:, 0], rtol=1e-8, atol=1e-12, name="column 0 (output layer)")
    assert_close(got[:, 1], want[:, 1], rtol=1e-8, atol=1e-12, name="column 1 (first layer, W1 and b1)")


def test_grad_parts_random(student, rng):
    """sim_ln_grad_parts must match autograd's per-example squared gradient norms of the W2 block (column 0) and of the (W1, b1) block (column 1) on random Sim-LN nets and inputs of varied norms."""
    model, X, _ = _ln_case(rng)
    X = X * torch.as_tensor(rng.uniform(0.5, 2.0, size=(X.shape[0], 1)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    _check_parts(student.sim_ln_grad_parts(p["W1"], p["b1"], p["W2"], X, 1e-6), _autograd_parts(model, X))


def test_grad_parts_eps_branch(student, rng):
    """sim_ln_grad_parts must handle inputs with ||h|| <= eps (f = W2.h/eps there: output part ||h||^2/eps^2, grad_z f = D.W2/eps), matching autograd."""
    model, X, _ = _ln_case(rng, eps=0.5)
    with torch.no_grad():
        model.W1.mul_(0.01)
        model.b1.copy_(torch.as_tensor(rng.uniform(0.001, 0.01, size=model.config.width)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    _check_parts(student.sim_ln_grad_parts(p["W1"], p["b1"], p["W2"], X, 0.5), _autograd_parts(model, X))


# %% flatlab={"feedback": "the projection (I - u u^T) is missing: grad_z f = D (I - u u^T) W2 / ||h||, since u = h/||h|| depends on h too", "id": "hw5.grad_parts", "name": "no_projection", "role": "mistake"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    Z = X @ W1.T + b1
    H = torch.relu(Z)
    D = (Z > 0).double()
    norms = H.norm(dim=1, keepdim=True)
    U = H / norms.clamp_min(eps)
    gz = D * W2 / norms.clamp_min(eps)
    return torch.stack([U.pow(2).sum(1), (X.pow(2).sum(1) + 1) * gz.pow(2).sum(1)], 1)


# %% flatlab={"feedback": "the first-layer part misses the bias: it is (||x||^2 + 1) ||grad_z f||^2, the +1 from b1", "id": "hw5.grad_parts", "name": "missing_bias_term", "role": "mistake"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    Z = X @ W1.T + b1
    H = torch.relu(Z)
    D = (Z > 0).double()
    norms = H.norm(dim=1, keepdim=True)
    U = H / norms.clamp_min(eps)
    proj = W2 - (U @ W2)[:, None] * U
    gz = torch.where(norms > eps, D * proj / norms.clamp_min(eps), D * W2 / eps)
    return torch.stack([U.pow(2).sum(1), X.pow(2).sum(1) * gz.pow(2).sum(1)], 1)


# %% flatlab={"feedback": "the relu mask D = diag(1[z > 0]) is missing: inactive neurons get a first-layer gradient", "id": "hw5.grad_parts", "name": "no_relu_mask", "role": "mistake"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    H = torch.relu(X @ W1.T + b1)
    norms = H.norm(dim=1, keepdim=True)
    U = H / norms.clamp_min(eps)
    proj = W2 - (U @ W2)[:, None] * U
    gz = torch.where(norms > eps, proj / norms.clamp_min(eps), W2 / eps).expand_as(H)
    return torch.stack([U.pow(2).sum(1), (X.pow(2).sum(1) + 1) * gz.pow(2).sum(1)], 1)


# %% flatlab={"feedback": "the output-layer part is set to 1, which holds only when ||h|| > eps: below eps it is ||h||^2/eps^2", "id": "hw5.grad_parts", "name": "output_part_one", "role": "mistake"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    Z = X @ W1.T + b1
    H = torch.relu(Z)
    D = (Z > 0).double()
    norms = H.norm(dim=1, keepdim=True)
    U = H / norms.clamp_min(eps)
    proj = W2 - (U @ W2)[:, None] * U
    gz = torch.where(norms > eps, D * proj / norms.clamp_min(eps), D * W2 / eps)
    return torch.stack([torch.ones(X.shape[0]), (X.pow(2).sum(1) + 1) * gz.pow(2).sum(1)], 1)


# %% flatlab={"feedback": "the eps branch is missing: where ||h|| <= eps, f = W2.h/eps is linear in h, so grad_z f = D W2/eps with no projection", "id": "hw5.grad_parts", "name": "no_eps_branch", "role": "mistake"}
def sim_ln_grad_parts(W1, b1, W2, X, eps=1e-6):
    Z = X @ W1.T + b1
    H = torch.relu(Z)
    D = (Z > 0).double()
    norms = H.norm(dim=1, keepdim=True).clamp_min(eps)
    U = H / norms
    gz = D * (W2 - (U @ W2)[:, None] * U) / norms
    return torch.stack([U.pow(2).sum(1), (X.pow(2).sum(1) + 1) * gz.pow(2).sum(1)], 1)


# %% [markdown]
# ## 2. Flatness by scaling, for free (task `hw5.flatness_scale`, 3 points)
#
# Multiplying (W1, b1) by c > 0 multiplies h by c and leaves u, hence f, unchanged (for
# ‖h‖ > ε): Sim-LN is **scale invariant** in its first layer. The first-layer gradient
# scales by 1/c, so with a_i, b_i the two parts of section 1,
#
# Tr_GN(c) = (2/n) Σ_i (a_i + b_i / c²) → (2/n) Σ_i a_i = 2 as c → ∞.
#
# Write `flatness_scale(W1, b1, W2, X, tol)`: the c for which the Gauss-Newton trace of the
# rescaled net equals (2/n) Σ_i a_i + tol.

# %% flatlab={"function": "flatness_scale", "id": "hw5.flatness_scale", "points": 3, "role": "task", "summary": "return c = sqrt((2/n) sum_i b_i / tol), b_i the first-layer part from sim_ln_grad_parts"}
def flatness_scale(W1, b1, W2, X, tol):
    """The first-layer scale c that brings the Gauss-Newton trace within tol of its infimum. Returns a float."""
    ### BEGIN SOLUTION
    parts = sim_ln_grad_parts(W1, b1, W2, X)
    return float(torch.sqrt(2.0 * parts[:, 1].mean() / tol))
    ### END SOLUTION


# %% flatlab={"id": "hw5.flatness_scale", "role": "public_test"}
# This check uses your sim_ln_grad_parts (hw5.grad_parts): it first makes sure that one is right.
_Xf = flatlab.xor_parity(12, 6, seed=0)[0] * torch.linspace(0.5, 2.0, 12)[:, None]
_mf = flatlab.make_model("sim_ln", 6, 8, seed=1)
_W1, _b1, _W2 = _mf.W1.detach(), _mf.b1.detach(), _mf.W2.detach()
with torch.no_grad():
    _out = _mf.features(_Xf).pow(2).sum(1)  # the output-layer parts a_i
_Pf = sim_ln_grad_parts(_W1, _b1, _W2, _Xf)
_Rf = torch.stack([_out, flatlab.sharpness.per_example_grad_sq_norms(_mf, _Xf) - _out], 1)
if not (isinstance(_Pf, torch.Tensor) and _Pf.shape == _Rf.shape and torch.allclose(_Pf, _Rf, rtol=1e-8, atol=1e-12)):
    raise AssertionError("this check uses your sim_ln_grad_parts from hw5.grad_parts, which is wrong: fix it first "
                         "(run its self-check)")
for _tol in (0.01, 0.3):
    _c = flatness_scale(_W1, _b1, _W2, _Xf, _tol)
    assert isinstance(_c, float) and _c > 0, f"flatness_scale must return a positive Python float, got {_c!r}"
    _big = sim_ln_net({"W1": _c * _W1, "b1": _c * _b1, "W2": _W2})
    with torch.no_grad():
        _moved = float((_big(_Xf) - _mf(_Xf)).abs().max())
    assert _moved < 1e-9, f"scaling (W1, b1) by your c = {_c:.4g} changed f by up to {_moved:.3g}"
    _excess = (gauss_newton_trace(_big, _Xf) - 2 * float(_out.mean())) / _tol
    assert abs(_excess - 1) < 1e-6, (
        f"with tol = {_tol}, after scaling (W1, b1) by your c the trace is the infimum (2/n) Σ a_i plus {_excess:.4g}·tol; "
        "it must be exactly tol: Tr_GN(c) = (2/n) Σ_i (a_i + b_i/c²), solve for c")
print("hw5.flatness_scale: OK")


# %% flatlab={"id": "hw5.flatness_scale", "role": "hidden_test"}
def _scale_target(rng):
    model, X, _ = _ln_case(rng)
    X = X * torch.as_tensor(rng.uniform(0.5, 2.0, size=(X.shape[0], 1)))
    return model, X, dict((k, v.detach()) for k, v in model.named_parameters())


def _positive_scalar(c):
    a = np.asarray(c, dtype=float) if isinstance(c, (int, float, np.ndarray)) else None
    assert a is not None and a.size == 1 and np.isfinite(a).all() and float(a.reshape(-1)[0]) > 0, (
        f"flatness_scale returned {type(c).__name__} {np.asarray(c).shape if isinstance(c, np.ndarray) else c!r}; "
        "expected one positive number")
    return float(a.reshape(-1)[0])


def test_flatness_scale_reaches_target(student, rng):
    """After scaling (W1, b1) by c = flatness_scale(W1, b1, W2, X, tol), the Gauss-Newton trace must be its infimum 2*mean(output part) plus exactly tol (c^2 = (2/n) sum_i b_i / tol). If your sim_ln_grad_parts is wrong, c is checked against the parts it returns instead: that mistake costs points in hw5.grad_parts only."""
    model, X, p = _scale_target(rng)
    tol = float(np.exp(rng.uniform(np.log(1e-4), np.log(1.0))))
    c = _positive_scalar(student.flatness_scale(p["W1"], p["b1"], p["W2"], X, tol))
    ref = _autograd_parts(model, X).numpy()
    try:
        own = np.asarray(student.sim_ln_grad_parts(p["W1"], p["b1"], p["W2"], X, 1e-6), dtype=float)
    except Exception:  # noqa: BLE001 (not implemented or crashing: graded in hw5.grad_parts)
        own = None
    if (own is not None and own.shape == ref.shape and np.all(np.isfinite(own)) and float(own[:, 1].mean()) > 0
            and not np.allclose(own, ref, rtol=1e-8, atol=1e-12)):
        if abs(c / np.sqrt(2.0 * float(own[:, 1].mean()) / tol) - 1) < 1e-8:
            return  # consistent with the student's own (wrong) first-layer parts
    big = flatlab.models.set_params(flatlab.make_model("sim_ln", model.config.d, model.config.width, seed=0),
                                    {"W1": p["W1"] * c, "b1": p["b1"] * c, "W2": p["W2"]})
    assert_close(flatlab.sharpness.gauss_newton_trace(big, X), 2.0 * float(ref[:, 0].mean()) + tol, rtol=1e-7,
                 name="the trace after scaling (W1, b1) by your c")


def test_flatness_scale_tol_dependence(student, rng):
    """flatness_scale must scale like 1/sqrt(tol): c(tol/k^2) = k*c(tol) (the excess (2/n) sum_i b_i / c^2 is tol)."""
    model, X, p = _scale_target(rng)
    tol, k = float(np.exp(rng.uniform(np.log(1e-3), np.log(1.0)))), float(rng.uniform(1.5, 4.0))
    c1 = _positive_scalar(student.flatness_scale(p["W1"], p["b1"], p["W2"], X, tol))
    c2 = _positive_scalar(student.flatness_scale(p["W1"], p["b1"], p["W2"], X, tol / k**2))
    assert abs(c2 / c1 / k - 1) < 1e-8, (
        f"dividing tol by {k:.3g}² multiplied your c by {c2 / c1:.4g}; it must multiply it by {k:.3g} (c ∝ 1/sqrt(tol))")


# %% flatlab={"feedback": "the square root is missing: the excess (2/n) sum_i b_i / c^2 equals tol for c = sqrt((2/n) sum_i b_i / tol)", "id": "hw5.flatness_scale", "name": "no_sqrt", "role": "mistake"}
def flatness_scale(W1, b1, W2, X, tol):
    parts = sim_ln_grad_parts(W1, b1, W2, X)
    return float(2.0 * parts[:, 1].mean() / tol)


# %% flatlab={"feedback": "looks like the factor 2 of the MSE trace (2/n) sum_i is missing", "id": "hw5.flatness_scale", "name": "missing_factor_two", "role": "mistake"}
def flatness_scale(W1, b1, W2, X, tol):
    parts = sim_ln_grad_parts(W1, b1, W2, X)
    return float(torch.sqrt(parts[:, 1].mean() / tol))


# %% flatlab={"feedback": "sums the first-layer parts instead of averaging them: the trace is (2/n) sum_i", "id": "hw5.flatness_scale", "name": "sum_not_mean", "role": "mistake"}
def flatness_scale(W1, b1, W2, X, tol):
    parts = sim_ln_grad_parts(W1, b1, W2, X)
    return float(torch.sqrt(2.0 * parts[:, 1].sum() / tol))


# %% flatlab={"feedback": "uses both parts a_i + b_i: only the first-layer part b_i shrinks as 1/c^2, the output part a_i stays", "id": "hw5.flatness_scale", "name": "both_parts", "role": "mistake"}
def flatness_scale(W1, b1, W2, X, tol):
    parts = sim_ln_grad_parts(W1, b1, W2, X)
    return float(torch.sqrt(2.0 * parts.sum(1).mean() / tol))


# %% [markdown]
# ## 3. Two flattest interpolators (tasks `hw5.memorizer`, 3 points, and `hw5.generalizer`, 2 points)
#
# If every input activates **exactly one** neuron j, then u = e_j, (I − u uᵀ)W2 has no
# component on the active neuron, the first-layer gradient is 0 and ‖∇_θ f‖² = 1: the trace
# is exactly 2 and f(x) = W2[j].
#
# * `sim_ln_memorizer(X, y, eps)`: width n, neuron i = the memorizing neuron of hw4 with
#   scale 1 (W1[i] = w_i/ε, b1[i] = (ε − w_i·x_i)/ε, w_i = x_i/‖x_i‖) and W2[i] = y_i.
#   Off the training set h = 0 and f = 0.
# * `sim_ln_generalizer(d, width)`: the four XOR neurons (s1, s2, 0, …), bias −1,
#   W2 = s1·s2; extra neurons dead (row 0, bias −1, output 0).
#
# Both return a dict `{"W1", "b1", "W2"}`.

# %% flatlab={"forbid": ["flatlab.constructions.memorizing_sim_ln", "flatlab.constructions.memorizing_bias"], "function": "sim_ln_memorizer", "id": "hw5.memorizer", "points": 3, "role": "task", "summary": "width n: W1[i] = w_i/eps, b1[i] = (eps - w_i.x_i)/eps with w_i = x_i/||x_i||, W2[i] = y_i; return a dict"}
def sim_ln_memorizer(X, y, eps=0.1):
    """A Sim-LN interpolator of (X (n, d), y (n,)) with trace exactly 2 that outputs 0 off the training set. Returns a dict."""
    ### BEGIN SOLUTION
    w = X / X.norm(dim=1, keepdim=True)
    return {"W1": w / eps, "b1": (eps - (w * X).sum(1)) / eps, "W2": y.clone()}
    ### END SOLUTION


# %% flatlab={"forbid": ["flatlab.constructions.generalizing_sim_ln", "flatlab.constructions.generalizing_bias"], "function": "sim_ln_generalizer", "id": "hw5.generalizer", "points": 2, "role": "task", "summary": "four neurons (s1, s2, 0, ...) with bias -1 and output s1*s2, extra neurons dead (row 0, bias -1, output 0); return a dict"}
def sim_ln_generalizer(d, width=4):
    """A Sim-LN network computing x[0]*x[1] on the hypercube with trace exactly 2. Returns a dict."""
    ### BEGIN SOLUTION
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], W2[j] = s1, s2, s1 * s2
    return {"W1": W1, "b1": b1, "W2": W2}
    ### END SOLUTION


# %% flatlab={"id": "hw5.memorizer", "role": "public_test"}
_gen = torch.Generator().manual_seed(1)
_Xs = torch.randn(8, 6, generator=_gen)
_Xs = _Xs / _Xs.norm(dim=1, keepdim=True) * torch.linspace(1.5, 2.5, 8)[:, None]  # off the hypercube: norms 1.5 to 2.5
_ys = torch.linspace(-2.0, 2.0, 8)  # real labels of both signs
_pm = sim_ln_memorizer(_Xs, _ys, 0.1)
assert isinstance(_pm, dict) and set(_pm) == {"W1", "b1", "W2"}, "sim_ln_memorizer must return a dict with keys W1, b1, W2"
_shapes = {k: tuple(v.shape) for k, v in _pm.items()}
assert _shapes == {"W1": (8, 6), "b1": (8,), "W2": (8,)}, f"for X (8, 6) the shapes must be W1 (8, 6), b1 (8,), W2 (8,); got {_shapes}"
with torch.no_grad():
    _fx = sim_ln_net(_pm)(_Xs)
assert (_fx - _ys).abs().max() < 1e-10, (
    f"the net must interpolate real labels, f(x_i) = y_i, but f(x_i)/y_i ranges over [{float((_fx / _ys).min()):.3g}, "
    f"{float((_fx / _ys).max()):.3g}]: at x_i only neuron i fires, so u = e_i and f(x_i) = W2[i]")
_ref = {k: v.detach() for k, v in flatlab.constructions.memorizing_sim_ln(_Xs, _ys, eps=0.1).named_parameters()}
for _k in ("W1", "b1"):
    _err = float((_pm[_k] - _ref[_k]).abs().max())
    assert _err < 1e-10, (
        f"{_k} differs from the construction by up to {_err:.3g} on data off the hypercube: W1[i] = w_i/ε and "
        "b1[i] = (ε − w_i·x_i)/ε with the unit direction w_i = x_i/‖x_i‖ of each point's own norm (not sqrt(d))")
_Xb, _yb = flatlab.xor_parity(60, 30, seed=0)
_Xn, _ = flatlab.xor_parity(100, 30, seed=9)  # none of them is a training point
_mem = sim_ln_net(sim_ln_memorizer(_Xb, _yb, 0.1))
_tr = gauss_newton_trace(_mem, _Xb)
assert abs(_tr - 2.0) < 1e-10, f"the trace on the hypercube training set must be exactly 2; yours is {_tr:.6g}"
with torch.no_grad():
    _off = float(_mem(_Xn).abs().max())
assert _off == 0, f"the memorizer must output exactly 0 away from the training points; max |f| there is {_off:.3g}"
print("hw5.memorizer: OK")

# %% flatlab={"id": "hw5.generalizer", "role": "public_test"}
_pg = sim_ln_generalizer(7, 6)
assert isinstance(_pg, dict) and set(_pg) == {"W1", "b1", "W2"}, "sim_ln_generalizer must return a dict with keys W1, b1, W2"
_shapes = {k: tuple(v.shape) for k, v in _pg.items()}
assert _shapes == {"W1": (6, 7), "b1": (6,), "W2": (6,)}, (
    f"sim_ln_generalizer(7, 6) must have 6 neurons in dimension 7 (W1 (6, 7), b1 (6,), W2 (6,)); got {_shapes}")
_cube = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * 7)  # all 128 points of {-1,+1}^7
with torch.no_grad():
    _fx = sim_ln_net(_pg)(_cube)
_xor = _cube[:, 0] * _cube[:, 1]
assert (_fx - _xor).abs().max() < 1e-10, (
    f"f(x) must equal x[0]·x[1] (coordinates 0 and 1) at every hypercube point; f(x)/(x[0]·x[1]) ranges over "
    f"[{float((_fx / _xor).min()):.3g}, {float((_fx / _xor).max()):.3g}]: exactly one neuron, (s1, s2) = (x[0], x[1]), "
    "must fire (bias −1), and then f = W2 of that neuron, s1·s2")
_tr = gauss_newton_trace(sim_ln_net(_pg), _cube)
assert abs(_tr - 2.0) < 1e-10, f"the trace on the hypercube must be exactly 2; yours is {_tr:.6g}"
print("hw5.generalizer: OK")


# %% flatlab={"id": "hw5.memorizer", "role": "hidden_test"}
def _exact_trace(model, X, y):
    """Reference Tr of the autograd Hessian, reverse-over-reverse (no forward-mode AD: thread-safe)."""
    theta = flatlab.models.flatten_params(model).detach().clone()
    loss = lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y)
    return float(torch.diagonal(torch.autograd.functional.hessian(loss, theta)).sum())


def _ln_net(params, eps=1e-6):
    params = {k: torch.as_tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    width, dim = params["W1"].shape
    return flatlab.models.set_params(flatlab.make_model("sim_ln", dim, width, seed=0, eps=eps), params)


def _real_labels(rng, n):
    return torch.as_tensor(rng.uniform(0.2, 2.0, size=n) * rng.choice([-1.0, 1.0], size=n))


def _sphere_shell_data(rng, n, d):
    """n distinct points with norms in [1, 3] (off the hypercube) and positive margin min_{i!=j} w_i.(x_i - x_j)."""
    while True:
        X = rng.normal(size=(n, d))
        X = torch.as_tensor(X / np.linalg.norm(X, axis=1, keepdims=True) * rng.uniform(1.0, 3.0, size=(n, 1)))
        unit = X / X.norm(dim=1, keepdim=True)
        gap = X.norm(dim=1)[:, None] - unit @ X.T
        gap.fill_diagonal_(float("inf"))
        if float(gap.min()) > 0.02:
            return X, float(gap.min())


def test_memorizer_interpolates_flat(student, rng):
    """sim_ln_memorizer must interpolate arbitrary real labels (W2[i] = y_i) with exact trace 2 (checked with the exact autograd Hessian on a small hypercube case)."""
    d = int(rng.integers(4, 8))
    X, _ = flatlab.xor_parity(int(rng.integers(3, 8)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = _real_labels(rng, X.shape[0])
    model = _ln_net(student.sim_ln_memorizer(X, y, 0.5 / np.sqrt(d)))
    with torch.no_grad():
        assert_close(model(X), y, rtol=1e-9, atol=1e-10, name="f(x_i)")
    assert_close(_exact_trace(model, X, y), 2.0, rtol=1e-8, name="the trace of your net")


def test_memorizer_matches_construction_general_data(student, rng):
    """On general data (points off the hypercube, real labels) sim_ln_memorizer must return the construction's weights: W1[i] = w_i/eps, b1[i] = (eps - w_i.x_i)/eps with w_i = x_i/||x_i|| (each point's own norm), W2[i] = y_i."""
    n, d = int(rng.integers(2, 12)), int(rng.integers(6, 20))
    X, margin = _sphere_shell_data(rng, n, d)
    y = _real_labels(rng, n)
    eps = float(rng.uniform(0.2, 0.8)) * margin
    got = student.sim_ln_memorizer(X, y, eps)
    want = flatlab.constructions.memorizing_sim_ln(X, y, eps=eps)
    for k, v in want.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), v.detach(), rtol=1e-9, atol=1e-12, name=f"your {k}")


def test_memorizer_outputs_zero_elsewhere(student, rng):
    """sim_ln_memorizer's network must output exactly 0 at hypercube points outside the training set."""
    d = int(rng.integers(8, 30))
    X, y = flatlab.xor_parity(int(rng.integers(5, 60)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = X[:, 0] * X[:, 1]
    model = _ln_net(student.sim_ln_memorizer(X, y, 0.1))
    Z, _ = flatlab.xor_parity(200, d, seed=int(rng.integers(2**31)))
    unseen = ~(Z[:, None, :] == X[None]).all(-1).any(1)
    with torch.no_grad():
        off = float(model(Z[unseen]).abs().max()) if bool(unseen.any()) else 0.0
    assert off == 0.0, f"your net outputs {off:.3g} at a hypercube point that is not a training point; it must output 0 there"


# %% flatlab={"feedback": "uses the hypercube's ||x_i|| = sqrt(d) (w_i = x_i/sqrt(d)), which is wrong off the hypercube: divide by each point's own norm", "id": "hw5.memorizer", "name": "hypercube_norm", "role": "mistake"}
def sim_ln_memorizer(X, y, eps=0.1):
    w = X / np.sqrt(X.shape[1])
    return {"W1": w / eps, "b1": (eps - (w * X).sum(1)) / eps, "W2": y.clone()}


# %% flatlab={"feedback": "copies hw4's balanced bias-net neurons: Sim-LN normalizes h, so f(x_i) = W2[i] and the output weight must be y_i itself", "id": "hw5.memorizer", "name": "balanced_copy_from_hw4", "role": "mistake"}
def sim_ln_memorizer(X, y, eps=0.1):
    norms = X.norm(dim=1)
    w = X / norms[:, None]
    r = torch.sqrt(norms.pow(2) + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * w / eps, "b1": a * (eps - (w * X).sum(1)) / eps,
            "W2": torch.sign(y) * torch.sqrt(y.abs() / r)}


# %% flatlab={"feedback": "W2 = sign(y_i) fits only +-1 labels: the output weight must be y_i", "id": "hw5.memorizer", "name": "sign_labels", "role": "mistake"}
def sim_ln_memorizer(X, y, eps=0.1):
    w = X / X.norm(dim=1, keepdim=True)
    return {"W1": w / eps, "b1": (eps - (w * X).sum(1)) / eps, "W2": torch.sign(y)}


# %% flatlab={"feedback": "the bias has the wrong sign: b1[i] = (eps - w_i.x_i)/eps makes neuron i fire only near x_i", "id": "hw5.memorizer", "name": "bias_sign_flipped", "role": "mistake"}
def sim_ln_memorizer(X, y, eps=0.1):
    w = X / X.norm(dim=1, keepdim=True)
    return {"W1": w / eps, "b1": ((w * X).sum(1) - eps) / eps, "W2": y.clone()}


# %% flatlab={"id": "hw5.generalizer", "role": "hidden_test"}
def test_generalizer_xor(student, rng):
    """sim_ln_generalizer(d, width) must return width neurons (W1 of shape (width, d)) and compute x[0]*x[1] (coordinates 0 and 1) at every hypercube point."""
    d, width = int(rng.integers(3, 40)), int(rng.integers(5, 16))
    params = student.sim_ln_generalizer(d, width)
    shape = np.asarray(params["W1"]).shape
    assert shape == (width, d), f"W1 has shape {shape} for d = {d}, width = {width}; it must be (width, d)"
    model = _ln_net(params)
    Z, _ = flatlab.xor_parity(300, d, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        assert_close(model(Z), Z[:, 0] * Z[:, 1], rtol=1e-10, atol=1e-12, name="f(x)")


def test_generalizer_flat(student, rng):
    """sim_ln_generalizer must have Gauss-Newton trace exactly 2 on any hypercube training set (one active neuron per point)."""
    d, width = int(rng.integers(3, 40)), int(rng.integers(4, 16))
    model = _ln_net(student.sim_ln_generalizer(d, width))
    Z, _ = flatlab.xor_parity(int(rng.integers(5, 60)), d, seed=int(rng.integers(2**31)))
    assert_close(flatlab.sharpness.gauss_newton_trace(model, Z), 2.0, rtol=1e-10, name="the trace of your net")


# %% flatlab={"feedback": "copies hw4's radius r = (d+1)^(1/4) and output s1*s2/r: Sim-LN normalizes h, so f = W2 of the active neuron and the output weight must be s1*s2", "id": "hw5.generalizer", "name": "radius_copy_from_hw4", "role": "mistake"}
def sim_ln_generalizer(d, width=4):
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the network always has 4 neurons: width is ignored (extra neurons must be dead: row 0, bias -1, output 0)", "id": "hw5.generalizer", "name": "width_ignored", "role": "mistake"}
def sim_ln_generalizer(d, width=4):
    W1, b1, W2 = torch.zeros(4, d), -torch.ones(4), torch.zeros(4)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], W2[j] = s1, s2, s1 * s2
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the bias is +1 instead of -1, so several neurons fire on each point and u is no longer a basis vector", "id": "hw5.generalizer", "name": "bias_plus_one", "role": "mistake"}
def sim_ln_generalizer(d, width=4):
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = s1, s2, 1.0, s1 * s2
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the neurons read coordinates 1 and 2 (W1[j, 1], W1[j, 2]) instead of the label coordinates 0 and 1", "id": "hw5.generalizer", "name": "off_by_one_coordinates", "role": "mistake"}
def sim_ln_generalizer(d, width=4):
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 1], W1[j, 2], W2[j] = s1, s2, s1 * s2
    return {"W1": W1, "b1": b1, "W2": W2}


# %% [markdown]
# ## 4. Projected SAM (task `hw5.projected_step`, 3 points)
#
# Because of the scale invariance, a sharpness minimizer could lower the trace simply by
# growing ‖(W1, b1)‖ (section 2). Fig. 6b rules this out: after every step, rescale
# (W1, b1) jointly to a fixed Frobenius norm R. Write
# `projected_sam_step(model, X, y, lr, rho, R)`: one SAM step on the batch (X, y) (as in
# hw2), then the projection, in place. Return the batch loss before the step.

# %% flatlab={"forbid": ["flatlab.train.reference.minibatch_epoch", "flatlab.train.reference.one_sam_epoch", "flatlab.train.reference.project_first_layer", "flatlab.train.reference.SAM", "flatlab.train.engine.one_sam"], "function": "projected_sam_step", "id": "hw5.projected_step", "points": 3, "role": "task", "summary": "one SAM step on (X, y) in place, then rescale (W1, b1) jointly to Frobenius norm R; return the loss before the step"}
def projected_sam_step(model, X, y, lr, rho, R):
    """SAM step then projection of (W1, b1) onto the sphere of radius R. Returns the loss before the step (a float)."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    loss = flatlab.mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    gnorm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        if gnorm > 0:
            for p, g in zip(params, grads):
                p.add_(rho * g / gnorm)
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    with torch.no_grad():
        for p, o, g in zip(params, old, grads):
            p.copy_(o - lr * g)
        norm = torch.sqrt(model.W1.pow(2).sum() + model.b1.pow(2).sum())
        model.W1.mul_(R / norm)
        model.b1.mul_(R / norm)
    return float(loss.detach())
    ### END SOLUTION


# %% flatlab={"id": "hw5.projected_step", "role": "public_test"}
_Xp, _yp = flatlab.xor_parity(4, 6, seed=3)
_m1 = flatlab.make_model("sim_ln", 6, 8, seed=1)
_m2 = flatlab.make_model("sim_ln", 6, 8, seed=1)
with torch.no_grad():
    _loss0 = float(flatlab.mse(_m1(_Xp), _yp))
_ret = projected_sam_step(_m1, _Xp, _yp, 0.05, 0.1, 3.0)
flatlab.train.reference.minibatch_epoch(_m2, _Xp, _yp, 0.05, 0.1, list(range(4)), batch_size=4, project_norm=3.0)
assert isinstance(_ret, float), f"projected_sam_step must return the loss as a Python float, got {type(_ret).__name__}"
assert abs(_ret - _loss0) <= 1e-12 * max(1.0, _loss0), (
    f"projected_sam_step must return the batch loss before the step; you returned {_ret / _loss0:.4g}× it "
    "(computed after the update?)")
_norm = float(torch.sqrt(_m1.W1.detach().pow(2).sum() + _m1.b1.detach().pow(2).sum()))
assert abs(_norm / 3.0 - 1) < 1e-10, (
    f"after the step ‖(W1, b1)‖_F must be R = 3; yours is {_norm / 3.0:.4g}·R: rescale W1 and b1 jointly, by one "
    "factor R/‖(W1, b1)‖_F, and leave W2 alone")
_err = float((flatlab.flatten_params(_m1) - flatlab.flatten_params(_m2)).detach().abs().max())
assert _err < 1e-10, (
    f"the projection is right but the SAM step is not: your parameters differ from flatlab's SAM step + projection by "
    f"up to {_err:.3g}; the ascent point is θ + ρ·g/‖g‖, the gradient is taken there and the step starts from θ")
print("hw5.projected_step: OK")


# %% flatlab={"id": "hw5.projected_step", "role": "hidden_test"}
def _projected_case(rng):
    model, X, y = _ln_case(rng, n=int(rng.integers(1, 6)))
    return model, X, y, float(rng.uniform(0.01, 0.2)), float(rng.uniform(0.01, 1.0)), float(rng.uniform(0.5, 20))


def _params_after(after):
    return after["params"] if isinstance(after, dict) else dict(after.named_parameters())


def test_projected_step_matches(student, rng):
    """The parameters after projected_sam_step must equal one SAM step on the batch (ascent to theta + rho g/||g||, gradient there, step from theta) followed by the rescaling of (W1, b1) to norm R. (The return value is checked by another test.)"""
    model, X, y, lr, rho, R = _projected_case(rng)
    _, (after, *_) = student.call("projected_sam_step", model, X, y, lr, rho, R, return_args=True)
    ref = flatlab.models.model_from_config(model.config, flatlab.models.get_params(model))
    flatlab.train.reference.minibatch_epoch(ref, X, y, lr, rho, list(range(X.shape[0])), batch_size=X.shape[0], project_norm=R)
    got = _params_after(after)
    for k, v in ref.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), v.detach(), rtol=1e-8, atol=1e-12, name=f"your {k} after the step")


def test_projected_step_projection(student, rng):
    """After projected_sam_step, (W1, b1) must have joint Frobenius norm exactly R (one common factor for W1 and b1 together; W2 is not part of the projection). Only the projection is checked here."""
    model, X, y, lr, rho, R = _projected_case(rng)
    _, (after, *_) = student.call("projected_sam_step", model, X, y, lr, rho, R, return_args=True)
    got = _params_after(after)
    norm = float(np.sqrt((np.asarray(got["W1"], dtype=float) ** 2).sum() + (np.asarray(got["b1"], dtype=float) ** 2).sum()))
    assert abs(norm / R - 1) < 1e-9, f"after your step ||(W1, b1)||_F is {norm / R:.6g} R; it must be R"


def test_projected_step_returns_loss_before(student, rng):
    """projected_sam_step must return the batch loss (MSE on (X, y)) of the model as it was before the step, as a float. Only the return value is checked here."""
    model, X, y, lr, rho, R = _projected_case(rng)
    with torch.no_grad():
        want = float(flatlab.mse(model(X), y))
    got = student.projected_sam_step(model, X, y, lr, rho, R)
    assert_close(got, want, rtol=1e-10, atol=1e-14, name="the loss you returned")


# %% flatlab={"feedback": "returns the loss after the update; the task asks for the batch loss before the step", "id": "hw5.projected_step", "name": "returns_loss_after", "role": "mistake"}
def projected_sam_step(model, X, y, lr, rho, R):
    params = list(model.parameters())
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    gnorm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        if gnorm > 0:
            for p, g in zip(params, grads):
                p.add_(rho * g / gnorm)
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    with torch.no_grad():
        for p, o, g in zip(params, old, grads):
            p.copy_(o - lr * g)
        norm = torch.sqrt(model.W1.pow(2).sum() + model.b1.pow(2).sum())
        model.W1.mul_(R / norm)
        model.b1.mul_(R / norm)
        return float(flatlab.mse(model(X), y))


# %% flatlab={"feedback": "the gradient is taken at theta, not at the ascent point theta + rho g/||g||: that is a plain gradient step", "id": "hw5.projected_step", "name": "gradient_at_theta", "role": "mistake"}
def projected_sam_step(model, X, y, lr, rho, R):
    params = list(model.parameters())
    loss = flatlab.mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)
        norm = torch.sqrt(model.W1.pow(2).sum() + model.b1.pow(2).sum())
        model.W1.mul_(R / norm)
        model.b1.mul_(R / norm)
    return float(loss.detach())


# %% flatlab={"feedback": "the ascent step is rho*g instead of rho*g/||g||: normalize the gradient so that the perturbation has norm rho", "id": "hw5.projected_step", "name": "not_normalized", "role": "mistake"}
def projected_sam_step(model, X, y, lr, rho, R):
    params = list(model.parameters())
    loss = flatlab.mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(rho * g)
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    with torch.no_grad():
        for p, o, g in zip(params, old, grads):
            p.copy_(o - lr * g)
        norm = torch.sqrt(model.W1.pow(2).sum() + model.b1.pow(2).sum())
        model.W1.mul_(R / norm)
        model.b1.mul_(R / norm)
    return float(loss.detach())


# %% flatlab={"feedback": "W1 and b1 are each rescaled to norm R; the projection rescales them jointly, so that ||(W1, b1)||_F = R", "id": "hw5.projected_step", "name": "separate_projection", "role": "mistake"}
def projected_sam_step(model, X, y, lr, rho, R):
    params = list(model.parameters())
    loss = flatlab.mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    gnorm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        if gnorm > 0:
            for p, g in zip(params, grads):
                p.add_(rho * g / gnorm)
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    with torch.no_grad():
        for p, o, g in zip(params, old, grads):
            p.copy_(o - lr * g)
        model.W1.mul_(R / model.W1.norm())
        model.b1.mul_(R / model.b1.norm())
    return float(loss.detach())


# %% flatlab={"feedback": "all parameters, W2 included, are rescaled to norm R: only the first layer (W1, b1) is projected", "id": "hw5.projected_step", "name": "projects_all_params", "role": "mistake"}
def projected_sam_step(model, X, y, lr, rho, R):
    params = list(model.parameters())
    loss = flatlab.mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    gnorm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    old = [p.detach().clone() for p in params]
    with torch.no_grad():
        if gnorm > 0:
            for p, g in zip(params, grads):
                p.add_(rho * g / gnorm)
    grads = torch.autograd.grad(flatlab.mse(model(X), y), params)
    with torch.no_grad():
        for p, o, g in zip(params, old, grads):
            p.copy_(o - lr * g)
        norm = torch.sqrt(sum(p.pow(2).sum() for p in params))
        for p in params:
            p.mul_(R / norm)
    return float(loss.detach())


# %% [markdown]
# ## 5. Experiment: a zoo of flattest Sim-LN models
#
# d = 30, n = 100, width 500. We compare
# (1) your memorizer and (2) your generalizer (trace exactly 2);
# (3) a plain GD interpolator and (4) the same network with (W1, b1) scaled by your
# `flatness_scale(tol = 0.01)`: the same function, now nearly flattest;
# (5) 1-SAM from a small first layer (init ×0.01, lr 0.1, ρ 0.1, 1,000 epochs) and
# (6) projected 1-SAM (R = 10, lr 0.01, ρ 0.1 → 0.5 → 1, 500 epochs each), both through
# the engine (`flatlab.train.train`), after checking the engine against your
# `projected_sam_step` on one epoch. ~40 s.

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
Xtr, ytr = data.X_train, data.y_train
zoo, histories = {}, {}
zoo["memorizer"] = sim_ln_net(sim_ln_memorizer(Xtr, ytr, 0.1))
zoo["generalizer"] = sim_ln_net(sim_ln_generalizer(30, 4))

t0 = time.perf_counter()
gd_net = make_model("sim_ln", 30, 500, seed=0)
histories["GD"] = train(gd_net, data, TrainConfig("gd", (Phase(2000, 0.1),), log_every=100))
zoo["GD"] = gd_net
p = {k: v.detach() for k, v in gd_net.named_parameters()}
c = flatness_scale(p["W1"], p["b1"], p["W2"], Xtr, 0.01)
zoo[f"GD × {c:.0f}"] = sim_ln_net({"W1": c * p["W1"], "b1": c * p["b1"], "W2": p["W2"]})
print(f"GD: {time.perf_counter() - t0:.1f} s, scale c = {c:.1f}")

t0 = time.perf_counter()
sam_net = make_model("sim_ln", 30, 500, seed=0, init_scale=0.01)
histories["1-SAM"] = train(sam_net, data, TrainConfig("one_sam", (Phase(1000, 0.1, 0.1),), log_every=50))
zoo["1-SAM"] = sam_net
print(f"1-SAM: {time.perf_counter() - t0:.1f} s")

t0 = time.perf_counter()
proj_net = make_model("sim_ln", 30, 500, seed=0)
flatlab.train.reference.project_first_layer(proj_net, 10.0)
# your projected step, one epoch of single-example steps, against the engine's kernel
mine = model_from_config(proj_net.config, get_params(proj_net))
order = np.random.default_rng(0).permutation(100)
for i in order:
    projected_sam_step(mine, Xtr[i:i + 1], ytr[i:i + 1], 0.01, 0.1, 10.0)
fast = {k: v.numpy().copy() for k, v in get_params(proj_net).items()}
flatlab.train.engine.one_sam(fast, "sim_ln", Xtr.numpy(), ytr.numpy(), order, 0.01, 0.1, project_norm=10.0)
print("max |engine - your projected step| after one epoch:",
      max(float(np.abs(fast[k] - v.detach().numpy()).max()) for k, v in mine.named_parameters()))
histories["projected 1-SAM"] = train(proj_net, data, TrainConfig(
    "one_sam", (Phase(500, 0.01, 0.1), Phase(500, 0.01, 0.5), Phase(500, 0.01, 1.0)), project_norm=10.0, log_every=50))
zoo["projected 1-SAM"] = proj_net
print(f"projected 1-SAM: {time.perf_counter() - t0:.1f} s")

summary = {}
for name, net in zoo.items():
    with torch.no_grad():
        summary[name] = (gauss_newton_trace(net, Xtr), float(flatlab.mse(net(Xtr), ytr)),
                         flatlab.accuracy(net(data.X_test), data.y_test))
    print(f"{name:16s} trace {summary[name][0]:8.3f}  train MSE {summary[name][1]:.1e}  test acc {summary[name][2]:.3f}")

# %% flatlab={"role": "experiment"}
# one colour per model in both panels: flatlab's method colours for the trained runs (the rescaled GD net is GD's
# function, so it keeps GD's colour with an open marker), fixed colours for the two constructions
COLOR = {"GD": COLORS["gd_wd"], "1-SAM": COLORS["one_sam"], "projected 1-SAM": COLORS["one_sam_projected"],
         "memorizer": "#8c564b", "generalizer": "#ff7f0e"}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, (tr, _, acc) in summary.items():
    excess = max(tr - 2.0, 0.0)
    color = COLOR.get(name, COLOR["GD"])  # "GD × c": the rescaled GD net
    axes[0].scatter(excess, acc, s=60, edgecolors=color, facecolors=color if name in COLOR else "none")
    axes[0].annotate(name, (excess, acc), textcoords="offset points", xytext=(6, -12 if "projected" in name else 4), fontsize=9)
axes[0].set_xscale("symlog", linthresh=1e-3)
axes[0].set(xlabel="Tr ∇²L − 2 (excess over the floor; symlog)", ylabel="test accuracy", ylim=(-0.05, 1.08),
            xlim=(-2e-4, 50), title="flattest does not mean generalizing")
for name, h in histories.items():
    axes[1].plot(h.epoch, h.test_acc, "o-", ms=3, color=COLOR[name], label=name)
axes[1].set(xlabel="epoch", ylabel="test accuracy", ylim=(0.4, 1.02), title="training runs")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown] flatlab={"id": "hw5.q_scenario3", "points": 3, "role": "manual"}
# **Question (3 points, graded by hand).** Read the left plot. Which models are (nearly) flattest, and what are their
# test accuracies? Could 1-SAM's success be explained by "1-SAM finds a flattest
# interpolator"? Why does the projected run matter for that argument?
#
# <!-- BEGIN SOLUTION -->
# The memorizer, the generalizer and the rescaled GD interpolator all sit at trace ≈ 2 (the
# floor; 2.01 for the rescaled net by construction) and so do both 1-SAM runs (≈ 2.0-2.1),
# but their test accuracies are 0, 1, ≈ 0.6 and ≈ 0.93-0.97. Flatness alone cannot separate
# them: the rescaled GD net is a near-flattest model that generalizes as badly as plain GD,
# obtained without any training, and the memorizer is exactly flattest with accuracy 0. So
# "1-SAM finds a flattest interpolator" is true but explains nothing: it would be equally
# true of a memorizer. The projected run keeps ‖(W1, b1)‖ = 10, so 1-SAM cannot reach low
# sharpness by the trivial route of inflating the first layer (section 2); it still
# generalizes, so its preference is for *which* flat solution, not just for flatness.
# <!-- END SOLUTION -->

# %% [markdown] flatlab={"id": "hw5.q_reflection", "points": 4, "role": "manual"}
# **Closing reflection (4 points, graded by hand; about 200 words).** Put the three scenarios side by side (hw3,
# hw4, hw5). For each, say whether all flattest interpolators generalize and whether 1-SAM
# generalizes. Then propose one concrete hypothesis for what else 1-SAM's dynamics must be
# doing, and one experiment with this library that could test it (name the measurement).
#
# <!-- BEGIN SOLUTION -->
# Scenario I (no-bias, Sim-BN): all flattest interpolators generalize and 1-SAM generalizes
# - flatness explains it. Scenario II (bias): flattest interpolators include a memorizer
# and the XOR net; 1-SAM reaches the minimal trace yet generalizes poorly (≈ 0.67), worse
# than the sharper GD+wd solution. Scenario III (Sim-LN): flattest memorizers exist, yet
# 1-SAM generalizes (≈ 0.93-0.97). Flatness is therefore neither sufficient for
# generalization (II, III) nor what decides SAM's success (it is flat in II and III alike).
# Hypothesis: the trajectory matters - 1-SAM's per-example perturbation acts early, during
# feature learning, as a regularizer that favours features shared by many examples (neurons
# firing on many training points) over neuron-per-example fits; once the net interpolates
# it only moves along the flat set. Test: log the memorization index, the median firing
# count and the x1x2 share along 1-SAM runs for the bias and Sim-LN nets (flatlab.diagnostics)
# and compare with an explicit trace penalty that reaches the same trace
# (flatlab.train.penalty, `flatlab reproduce beyond`): if the penalty generalizes in II where 1-SAM does not,
# the difference lies in the dynamics, not in the sharpness reached.
# <!-- END SOLUTION -->
