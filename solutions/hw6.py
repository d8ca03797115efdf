# ---
# jupyter:
#   flatlab:
#     assignment: hw6
#     title: 'Capstone: equal sharpness, opposite generalization'
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw6 · Capstone: equal sharpness, opposite generalization
#
# The paper's title is a claim: sharpness-minimization algorithms do *not only* minimize
# sharpness. In this capstone you test it directly. You build a third sharpness minimizer,
# one that does nothing *but* minimize sharpness: gradient descent on
#
# L(θ) + λ(t)·S(θ),  S(θ) = (2/n) Σ_i ‖∇_θ f(x_i)‖²,
#
# the trace of the Hessian at an interpolator (Lemma 4.1). On the bias net (scenario II) it
# reaches the same minimal trace 4·sqrt(d+1) as 1-SAM. Then you ask which of the two
# generalizes, and why. You also write a diagnostic that tells a memorizing network from a
# generalizing one, and you build a flattest non-generalizing Sim-LN model in one line.
#
# Tools from earlier assignments are in `flatlab`: `flatlab.make_model`, `flatlab.make_dataset`,
# `model.hidden(X)` (post-activation features, (n, m)), `flatlab.constructions`, and the
# reference runs in `flatlab.lab.beyond` (GD+wd, 1-SAM, label-noise SGD). Estimated time: 4 hours.

# %%
import dataclasses
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
import flatlab.lab.beyond
import flatlab.constructions
import flatlab.diagnostics
import flatlab.lab.runner
import flatlab.train.penalty
import flatlab.sharpness
from flatlab.lab.plotting import COLORS
from flatlab.losses import accuracy, mse

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# %% [markdown]
# ## 1. The penalty S in closed form (4 points)
#
# For the bias net f(x) = W2·relu(W1 x + b1), write h = relu(W1 x + b1). The per-example
# gradient has three blocks: ∇_{W2} f = h(x), ∇_{b1_j} f = W2_j·1[h_j(x) > 0],
# ∇_{W1_j} f = W2_j·1[h_j(x) > 0]·x. So
#
# S = (2/n) [ Σ_i ‖h(x_i)‖² + Σ_i (‖x_i‖² + 1) Σ_j W2_j² 1[h_j(x_i) > 0] ]
#
# (no `+ 1` for the no-bias net, which has no b1). Write `penalty_value(model, X)` for
# `bias` and `no_bias` models and any inputs X (not only hypercube points). Return a 0-dim
# **tensor that autograd can differentiate** with respect to the model's parameters (you
# will train with it), computed from the activations in O(n·m·d), without per-example gradients.

# %% flatlab={"forbid": ["flatlab.train.penalty.sharpness_penalty", "flatlab.train.penalty.sharpness_penalty_closed_form", "flatlab.train.penalty.sharpness_penalty_generic", "flatlab.train.penalty.per_example_grads", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms", "flatlab.sharpness.hessian_trace", "flatlab._closed_form.grad_sq_norms", "flatlab._closed_form.gauss_newton_trace_closed"], "function": "penalty_value", "id": "hw6.penalty", "points": 4, "role": "task", "summary": "return S = (2/n)[sum ||h(x_i)||^2 + sum_i (||x_i||^2 [+1]) sum_j W2_j^2 1[h_ij>0]] as a differentiable 0-dim tensor"}
def penalty_value(model, X):
    """S(θ) = (2/n) Σ_i ‖∇θ f(x_i)‖² for a relu bias / no_bias net, from activations. X (n, d). Returns a 0-dim tensor with autograd."""
    ### BEGIN SOLUTION
    pre = X @ model.W1.T
    if model.config.arch == "bias":
        pre = pre + model.b1
    h = torch.relu(pre)
    active = (pre > 0).to(pre.dtype)
    q = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
    return 2.0 / X.shape[0] * (h.pow(2).sum() + (q[:, None] * active * model.W2.pow(2)).sum())
    ### END SOLUTION


# %% flatlab={"id": "hw6.penalty", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_Xg = torch.randn(10, 5, generator=torch.Generator().manual_seed(6)) * 1.5  # general (non-hypercube) inputs
for _arch in ("bias", "no_bias"):
    _m = flatlab.make_model(_arch, 5, 7, seed=1)
    _S = penalty_value(_m, _X)
    assert isinstance(_S, torch.Tensor) and _S.ndim == 0, f"{_arch}: return a 0-dim tensor, got {type(_S).__name__}"
    assert _S.requires_grad, f"{_arch}: the result must be differentiable (do not detach, call float()/.item() or use no_grad)"
    _ref = flatlab.sharpness.gauss_newton_trace(_m, _X)
    _r = float(_S.detach()) / _ref
    assert abs(_r - 1) < 1e-9, (f"{_arch}: S is {_r:.4g}x (2/n) Σ_i ‖∇θ f(x_i)‖² on hypercube inputs: check the factor 2/n, "
                                "the bias b1 inside relu and the +1 of the bias input (bias net only)")
    _r = float(penalty_value(_m, _Xg).detach()) / flatlab.sharpness.gauss_newton_trace(_m, _Xg)
    assert abs(_r - 1) < 1e-9, f"{_arch}: on Gaussian inputs S is {_r:.4g}x the trace: use each input's own ‖x_i‖², not d"
    _mine = torch.autograd.grad(penalty_value(_m, _X), list(_m.parameters()), allow_unused=True)
    _want = torch.autograd.grad(flatlab.train.penalty.sharpness_penalty(_m, _X), list(_m.parameters()))
    for (_k, _), _a, _b in zip(_m.named_parameters(), _mine, _want):
        assert _a is not None and torch.allclose(_a, _b, rtol=1e-9, atol=1e-12), \
            f"{_arch}: the gradient of your S with respect to {_k} is wrong: S must stay a function of the parameters (no detach)"
_g = flatlab.constructions.generalizing_bias(5)
_Xc = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * 5)
_r = float(penalty_value(_g, _Xc).detach()) / (4 * math.sqrt(6))
assert abs(_r - 1) < 1e-9, f"the generalizing construction sits at 4·sqrt(d+1); your S there is {_r:.4g}x that"
print("hw6.penalty: OK")


# %% flatlab={"id": "hw6.penalty", "role": "hidden_test"}
import math

import flatlab.constructions
import flatlab.diagnostics
import flatlab.train.penalty
import flatlab.sharpness
from flatlab.losses import mse


def _case(rng, arch, n=None, d=None, m=None):
    n = int(rng.integers(4, 40)) if n is None else n
    d = int(rng.integers(2, 12)) if d is None else d
    m = int(rng.integers(2, 30)) if m is None else m
    seed = int(rng.integers(2**31))
    X, y = flatlab.xor_parity(n, d, seed=seed)
    model = flatlab.make_model(arch, d, m, seed=seed + 1)
    with torch.no_grad():
        model.W1.mul_(float(np.exp(rng.uniform(-1, 1))))
    return model, X, y


def _gaussian_like(rng, X):
    """General inputs of X's shape: Gaussian rows of varying norms (the hypercube shortcut ||x||^2 = d fails)."""
    return torch.as_tensor(rng.normal(size=tuple(X.shape)) * rng.uniform(0.3, 2.5, size=(X.shape[0], 1)))


def test_penalty_bias(student, rng):
    """penalty_value must equal (2/n) sum_i ||grad_theta f(x_i)||^2 on random bias nets (remember the +1 of the bias input)."""
    for _ in range(3):
        model, X, _ = _case(rng, "bias")
        assert_close(student.penalty_value(model, X), flatlab.train.penalty.sharpness_penalty(model, X).detach(), rtol=1e-9)


def test_penalty_no_bias(student, rng):
    """penalty_value must handle a no-bias net: no b1, and no +1 term."""
    model, X, _ = _case(rng, "no_bias")
    assert_close(student.penalty_value(model, X), flatlab.train.penalty.sharpness_penalty(model, X).detach(), rtol=1e-9)


def test_penalty_general_inputs(student, rng):
    """penalty_value must use each input's own ||x_i||^2 (not d): checked on Gaussian inputs, bias and no-bias nets."""
    for arch in ("bias", "no_bias"):
        model, X, _ = _case(rng, arch)
        X = _gaussian_like(rng, X)
        assert_close(student.penalty_value(model, X), flatlab.train.penalty.sharpness_penalty(model, X).detach(), rtol=1e-9)


def test_penalty_returns_tensor(student, rng):
    """penalty_value must return a 0-dim tensor (a Python float from .item() or float() cannot be differentiated)."""
    model, X, _ = _case(rng, "bias")
    got = student.penalty_value(model, X)
    if not isinstance(got, np.ndarray):
        raise AssertionError(f"penalty_value returned a {type(got).__name__}, not a tensor: keep S a tensor so that "
                             "autograd can differentiate it")
    if got.size != 1:  # (the grader's transport returns a 0-dim tensor as shape (1,))
        raise AssertionError(f"penalty_value returned a tensor of shape {got.shape}; expected a 0-dim tensor")


def test_penalty_constructions(student, rng):
    """At the two flattest bias constructions (memorizing and generalizing) S must equal the floor 4 sqrt(d+1)."""
    d = int(rng.integers(3, 9))
    X, y = flatlab.xor_parity(int(rng.integers(5, 20)), d, seed=int(rng.integers(2**31)))
    X = torch.unique(X, dim=0)
    y = X[:, 0] * X[:, 1]
    for model in (flatlab.constructions.memorizing_bias(X, y), flatlab.constructions.generalizing_bias(d)):
        assert_close(student.penalty_value(model, X), 4 * math.sqrt(d + 1), rtol=1e-9)


# %% flatlab={"feedback": "S is returned as a Python float (.item()), which autograd cannot differentiate: return the 0-dim tensor", "id": "hw6.penalty", "name": "returns_float", "role": "mistake"}
def penalty_value(model, X):
    pre = X @ model.W1.T
    if model.config.arch == "bias":
        pre = pre + model.b1
    h = torch.relu(pre)
    q = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
    S = 2.0 / X.shape[0] * (h.pow(2).sum() + (q[:, None] * (pre > 0).double() * model.W2.pow(2)).sum())
    return S.item()


# %% flatlab={"feedback": "the +1 of the bias input is missing: for the bias net the b1-block adds W2_j\u00b2 per active neuron, so q_i = \u2016x_i\u2016\u00b2 + 1", "id": "hw6.penalty", "name": "no_plus_one", "role": "mistake"}
def penalty_value(model, X):
    pre = X @ model.W1.T
    if model.config.arch == "bias":
        pre = pre + model.b1
    h = torch.relu(pre)
    q = X.pow(2).sum(1)
    return 2.0 / X.shape[0] * (h.pow(2).sum() + (q[:, None] * (pre > 0).double() * model.W2.pow(2)).sum())


# %% flatlab={"feedback": "the activations ignore b1: for the bias net h = relu(W1 x + b1)", "id": "hw6.penalty", "name": "no_b1_in_relu", "role": "mistake"}
def penalty_value(model, X):
    pre = X @ model.W1.T
    h = torch.relu(pre)
    q = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
    return 2.0 / X.shape[0] * (h.pow(2).sum() + (q[:, None] * (pre > 0).double() * model.W2.pow(2)).sum())


# %% flatlab={"feedback": "the factor 2 of S = (2/n) \u03a3_i \u2016\u2207f(x_i)\u2016\u00b2 is missing", "id": "hw6.penalty", "name": "missing_factor_2", "role": "mistake"}
def penalty_value(model, X):
    pre = X @ model.W1.T
    if model.config.arch == "bias":
        pre = pre + model.b1
    h = torch.relu(pre)
    q = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
    return (h.pow(2).sum() + (q[:, None] * (pre > 0).double() * model.W2.pow(2)).sum()) / X.shape[0]


# %% flatlab={"feedback": "\u2016x_i\u2016\u00b2 is replaced by d, which holds only on the hypercube: use each input's own squared norm", "id": "hw6.penalty", "name": "hypercube_norm", "role": "mistake"}
def penalty_value(model, X):
    pre = X @ model.W1.T
    if model.config.arch == "bias":
        pre = pre + model.b1
    h = torch.relu(pre)
    q = X.shape[1] + (1.0 if model.config.arch == "bias" else 0.0)
    return 2.0 / X.shape[0] * (h.pow(2).sum() + (q * (pre > 0).double() * model.W2.pow(2)).sum())


# %% [markdown]
# ## 2. Its gradient, by hand (4 points)
#
# Training on L + λS needs ∇θ(L + λS). For relu, 1[h > 0] is piecewise constant, so only
# h and W2² carry gradient through S. With pre = X W1ᵀ + b1, a = 1[pre > 0], r_i = 2(f(x_i) − y_i)/n
# and q_i = ‖x_i‖² + 1, derive:
#
# * ∂/∂pre_ij of L + λS:  G_ij = r_i W2_j a_ij + λ·(4/n)·h_ij,
# * ∇W1 = Gᵀ X, ∇b1 = Σ_i G_i, ∇W2 = hᵀ r + λ·(4/n)·W2 ⊙ (aᵀ q).
#
# Check each line yourself, then write `objective_grad(model, X, y, lam)`: a dict
# `{"W1": (m, d), "b1": (m,), "W2": (m,)}` (no `"b1"` for a no-bias net, where q_i = ‖x_i‖²)
# computed **from these formulas** (no autograd: this is what makes a step as cheap as a GD step),
# for any inputs X.

# %% flatlab={"forbid": ["flatlab.train.penalty.penalized_grads"], "function": "objective_grad", "id": "hw6.objective_grad", "points": 4, "role": "task", "summary": "return {'W1','b1','W2'} = gradient of mse(f(X), y) + lam*S from the closed-form formulas (no b1 for no_bias)"}
def objective_grad(model, X, y, lam):
    """∇θ [mse(f(X), y) + lam·S(θ)] for a relu bias / no_bias net, by hand. Returns a dict name -> tensor."""
    ### BEGIN SOLUTION
    n = X.shape[0]
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).to(pre.dtype)
        h = pre * a
        r = 2.0 * (h @ model.W2 - y) / n
        q = X.pow(2).sum(1) + (1.0 if bias else 0.0)
        G = r[:, None] * model.W2 * a + 4.0 * lam / n * h
        out = {"W1": G.T @ X}
        if bias:
            out["b1"] = G.sum(0)
        out["W2"] = h.T @ r + 4.0 * lam / n * model.W2 * (a.T @ q)
    return out
    ### END SOLUTION


# %% flatlab={"id": "hw6.objective_grad", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_Xg = torch.randn(12, 5, generator=torch.Generator().manual_seed(7)) * 1.5  # general (non-hypercube) inputs
for _arch in ("bias", "no_bias"):
    for _inputs, _where in ((_X, "hypercube"), (_Xg, "Gaussian")):
        _m = flatlab.make_model(_arch, 5, 7, seed=2)
        _obj = mse(_m(_inputs), _y) + 0.3 * flatlab.train.penalty.sharpness_penalty(_m, _inputs)
        _want = dict(zip([k for k, _ in _m.named_parameters()], torch.autograd.grad(_obj, list(_m.parameters()))))
        _got = objective_grad(_m, _inputs, _y, 0.3)
        assert isinstance(_got, dict) and set(_got) == set(_want), \
            f"{_arch}: return a dict with keys {sorted(_want)}, got {sorted(_got) if isinstance(_got, dict) else type(_got).__name__}"
        for _k in _want:
            assert tuple(_got[_k].shape) == tuple(_want[_k].shape), f"{_arch}: {_k} must have shape {tuple(_want[_k].shape)}"
            _err = float((_got[_k] - _want[_k]).norm() / _want[_k].norm())
            assert _err < 1e-9, (f"{_arch}, {_where} inputs: the gradient for {_k} is off by {_err:.2g} (relative): check "
                                 "r_i = 2(f(x_i) − y_i)/n, the penalty factor λ·4/n and q_i = ‖x_i‖² (+1 for the bias net)")
_m = flatlab.make_model("bias", 5, 7, seed=2)
_want = torch.autograd.grad(mse(_m(_X), _y), list(_m.parameters()))
for (_k, _), _w in zip(_m.named_parameters(), _want):
    assert torch.allclose(objective_grad(_m, _X, _y, 0.0)[_k], _w, rtol=1e-9, atol=1e-12), \
        f"with lam = 0 the gradient for {_k} must be the plain MSE gradient"
print("hw6.objective_grad: OK")


# %% flatlab={"id": "hw6.objective_grad", "role": "hidden_test"}
def _autograd_objective(model, X, y, lam):
    obj = mse(model(X), y) + lam * flatlab.train.penalty.sharpness_penalty(model, X)
    names = [k for k, _ in model.named_parameters()]
    return dict(zip(names, torch.autograd.grad(obj, list(model.parameters()))))


def _check_grad(student, rng, arch, general=False):
    model, X, y = _case(rng, arch)
    if general:
        X = _gaussian_like(rng, X)
    lam = float(rng.uniform(0.1, 2.0))
    got = student.objective_grad(model, X, y, lam)
    want = _autograd_objective(model, X, y, lam)
    assert isinstance(got, dict) and set(got) == set(want), f"return a dict with keys {sorted(want)}"
    for k in want:
        assert_close(got[k], want[k], rtol=1e-8, atol=1e-11, name=f"the gradient for {k}")


def test_objective_grad_bias(student, rng):
    """objective_grad must equal the autograd gradient of mse + lam*S on random bias nets, for every parameter."""
    _check_grad(student, rng, "bias")


def test_objective_grad_no_bias(student, rng):
    """objective_grad must handle no-bias nets: keys W1 and W2 only, q_i = ||x_i||^2."""
    _check_grad(student, rng, "no_bias")


def test_objective_grad_general_inputs(student, rng):
    """objective_grad must use each input's own ||x_i||^2 (not d): checked on Gaussian inputs, bias and no-bias nets."""
    _check_grad(student, rng, "bias", general=True)
    _check_grad(student, rng, "no_bias", general=True)


def test_objective_grad_lam_zero(student, rng):
    """With lam = 0, objective_grad must be the plain MSE gradient."""
    model, X, y = _case(rng, "bias")
    got = student.objective_grad(model, X, y, 0.0)
    for k, v in _autograd_objective(model, X, y, 0.0).items():
        assert isinstance(got, dict) and k in got, f"the result must have the key {k!r}"
        assert_close(got[k], v, rtol=1e-8, atol=1e-11, name=f"the gradient for {k}")


# %% flatlab={"feedback": "the residual lacks the 2 of the squared loss: r_i = 2(f(x_i) \u2212 y_i)/n", "id": "hw6.objective_grad", "name": "residual_without_2", "role": "mistake"}
def objective_grad(model, X, y, lam):
    n = X.shape[0]
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).double()
        h = pre * a
        r = (h @ model.W2 - y) / n
        q = X.pow(2).sum(1) + (1.0 if bias else 0.0)
        G = r[:, None] * model.W2 * a + 4.0 * lam / n * h
        out = {"W1": G.T @ X}
        if bias:
            out["b1"] = G.sum(0)
        out["W2"] = h.T @ r + 4.0 * lam / n * model.W2 * (a.T @ q)
    return out


# %% flatlab={"feedback": "the penalty part uses \u03bb\u00b72/n; differentiating h\u00b2 and W2\u00b2 brings another 2, so it is \u03bb\u00b74/n", "id": "hw6.objective_grad", "name": "penalty_factor_2_over_n", "role": "mistake"}
def objective_grad(model, X, y, lam):
    n = X.shape[0]
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).double()
        h = pre * a
        r = 2.0 * (h @ model.W2 - y) / n
        q = X.pow(2).sum(1) + (1.0 if bias else 0.0)
        G = r[:, None] * model.W2 * a + 2.0 * lam / n * h
        out = {"W1": G.T @ X}
        if bias:
            out["b1"] = G.sum(0)
        out["W2"] = h.T @ r + 2.0 * lam / n * model.W2 * (a.T @ q)
    return out


# %% flatlab={"feedback": "q_i lacks the +1 of the bias input for the bias net (q_i = \u2016x_i\u2016\u00b2 + 1)", "id": "hw6.objective_grad", "name": "q_without_one", "role": "mistake"}
def objective_grad(model, X, y, lam):
    n = X.shape[0]
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).double()
        h = pre * a
        r = 2.0 * (h @ model.W2 - y) / n
        q = X.pow(2).sum(1)
        G = r[:, None] * model.W2 * a + 4.0 * lam / n * h
        out = {"W1": G.T @ X}
        if bias:
            out["b1"] = G.sum(0)
        out["W2"] = h.T @ r + 4.0 * lam / n * model.W2 * (a.T @ q)
    return out


# %% flatlab={"feedback": "q_i uses d in place of \u2016x_i\u2016\u00b2, which holds only on the hypercube: use each input's own squared norm", "id": "hw6.objective_grad", "name": "hypercube_q", "role": "mistake"}
def objective_grad(model, X, y, lam):
    n, d = X.shape
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).double()
        h = pre * a
        r = 2.0 * (h @ model.W2 - y) / n
        q = torch.full((n,), d + (1.0 if bias else 0.0))
        G = r[:, None] * model.W2 * a + 4.0 * lam / n * h
        out = {"W1": G.T @ X}
        if bias:
            out["b1"] = G.sum(0)
        out["W2"] = h.T @ r + 4.0 * lam / n * model.W2 * (a.T @ q)
    return out


# %% flatlab={"feedback": "the bias net's gradient has no 'b1' entry: return \u2207b1 = \u03a3_i G_i as well", "id": "hw6.objective_grad", "name": "missing_b1", "role": "mistake"}
def objective_grad(model, X, y, lam):
    n = X.shape[0]
    bias = model.config.arch == "bias"
    with torch.no_grad():
        pre = X @ model.W1.T + (model.b1 if bias else 0.0)
        a = (pre > 0).double()
        h = pre * a
        r = 2.0 * (h @ model.W2 - y) / n
        q = X.pow(2).sum(1) + (1.0 if bias else 0.0)
        G = r[:, None] * model.W2 * a + 4.0 * lam / n * h
        return {"W1": G.T @ X, "W2": h.T @ r + 4.0 * lam / n * model.W2 * (a.T @ q)}


# %% [markdown]
# ## 3. The schedule: fit → ramp → hold → anneal (2 points)
#
# A penalty from the first step is a trap (you will see it in the experiment): the net
# must first fit the data. Then λ grows, stays, and finally decays so that the net
# re-interpolates while keeping the low sharpness. Write `lambda_schedule(epoch, lam, fit,
# ramp, hold, anneal, factor)` for 0-based epochs:
#
# * epoch < fit: 0;
# * the next `ramp` epochs: linear, λ = lam·(k+1)/ramp at the k-th ramp epoch (so it reaches lam);
# * the next `hold` epochs: lam;
# * the last `anneal` epochs: geometric, λ = lam·factor^((k+1)/anneal) at the k-th anneal epoch;
# * after that: lam·factor.

# %% flatlab={"forbid": ["flatlab.train.penalty.penalty_weight"], "function": "lambda_schedule", "id": "hw6.schedule", "points": 2, "role": "task", "summary": "0 during fit, linear ramp to lam, hold lam, then geometric decay lam*factor**((k+1)/anneal); lam*factor afterwards"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    """λ at a 0-based epoch of the fit → ramp → hold → anneal schedule. Returns a float."""
    ### BEGIN SOLUTION
    e = epoch - fit
    if e < 0:
        return 0.0
    if e < ramp:
        return lam * (e + 1) / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    return lam * factor ** min(1.0, (e + 1) / max(anneal, 1))
    ### END SOLUTION


# %% flatlab={"id": "hw6.schedule", "role": "public_test"}
_cfg = flatlab.train.penalty.PenaltyConfig(lam=0.2, fit_epochs=3, ramp_epochs=4, hold_epochs=2, anneal_epochs=5, anneal_factor=1e-2)
_phases = [("fit", 3), ("ramp", 4), ("hold", 2), ("anneal", 5), ("after-anneal", 4)]
_e = 0
for _phase, _len in _phases:
    for _k in range(_len):
        _got = lambda_schedule(_e, 0.2, 3, 4, 2, 5, 1e-2)
        _want = flatlab.train.penalty.penalty_weight(_cfg, _e)
        assert isinstance(_got, (float, int)), f"return a float, got {type(_got).__name__}"
        assert abs(_got - _want) <= 1e-12 * max(_want, 1e-300), \
            f"wrong λ at epoch {_e} (step k = {_k} of the {_phase} phase): got {_got:.6g}; re-read the rule for that phase"
        _e += 1
print("hw6.schedule: OK")


# %% flatlab={"id": "hw6.schedule", "role": "hidden_test"}
def test_schedule_matches_reference(student, rng):
    """lambda_schedule must follow fit (0) -> linear ramp -> hold -> geometric anneal -> lam*factor at every epoch."""
    c = flatlab.train.penalty.PenaltyConfig(lam=float(rng.uniform(0.001, 1)), fit_epochs=int(rng.integers(0, 6)),
                                      ramp_epochs=int(rng.integers(1, 6)), hold_epochs=int(rng.integers(0, 6)),
                                      anneal_epochs=int(rng.integers(1, 6)), anneal_factor=float(rng.uniform(1e-4, 0.5)))
    epochs = list(range(c.epochs + 3))
    got = [student.lambda_schedule(e, c.lam, c.fit_epochs, c.ramp_epochs, c.hold_epochs, c.anneal_epochs, c.anneal_factor)
           for e in epochs]  # every epoch first, then compare: the feedback can name the mistake
    for e, g in zip(epochs, got):
        assert_close(g, flatlab.train.penalty.penalty_weight(c, e), rtol=1e-12, atol=1e-15, name=f"lambda at epoch {e}")


def test_schedule_long_phases(student, rng):
    """lambda_schedule must be right at every phase boundary of a long schedule, and stay at lam*factor long after it ends."""
    c = flatlab.train.penalty.PenaltyConfig(lam=float(rng.uniform(0.01, 1)), fit_epochs=int(rng.integers(1, 40)),
                                      ramp_epochs=int(rng.integers(2, 40)), hold_epochs=int(rng.integers(1, 40)),
                                      anneal_epochs=int(rng.integers(2, 40)), anneal_factor=float(rng.uniform(1e-4, 0.5)))
    b = np.cumsum([c.fit_epochs, c.ramp_epochs, c.hold_epochs, c.anneal_epochs])
    epochs = sorted({0, *[int(x) + k for x in b for k in (-1, 0, 1)], int(b[-1]) + 100})
    got = [student.lambda_schedule(e, c.lam, c.fit_epochs, c.ramp_epochs, c.hold_epochs, c.anneal_epochs, c.anneal_factor)
           for e in epochs]
    for e, g in zip(epochs, got):
        assert_close(g, flatlab.train.penalty.penalty_weight(c, e), rtol=1e-12, atol=1e-15, name=f"lambda at epoch {e}")


# %% flatlab={"feedback": "the ramp starts at 0 (\u03bb = lam\u00b7k/ramp) and is one epoch late: at the k-th ramp epoch \u03bb = lam\u00b7(k+1)/ramp", "id": "hw6.schedule", "name": "ramp_off_by_one", "role": "mistake"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    e = epoch - fit
    if e < 0:
        return 0.0
    if e < ramp:
        return lam * e / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    return lam * factor ** min(1.0, (e + 1) / anneal)


# %% flatlab={"feedback": "the anneal decays linearly from lam to lam\u00b7factor; it is geometric, \u03bb = lam\u00b7factor^((k+1)/anneal)", "id": "hw6.schedule", "name": "linear_anneal", "role": "mistake"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    e = epoch - fit
    if e < 0:
        return 0.0
    if e < ramp:
        return lam * (e + 1) / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    t = min(1.0, (e + 1) / anneal)
    return lam * (1 - t) + lam * factor * t


# %% flatlab={"feedback": "\u03bb is 0 at epoch = fit too (<= instead of <): the ramp's first epoch is epoch fit", "id": "hw6.schedule", "name": "fit_inclusive", "role": "mistake"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    if epoch <= fit:
        return 0.0
    e = epoch - fit
    if e < ramp:
        return lam * (e + 1) / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    return lam * factor ** min(1.0, (e + 1) / anneal)


# %% flatlab={"feedback": "after the anneal \u03bb keeps decaying; it must stay at lam\u00b7factor once the schedule is over", "id": "hw6.schedule", "name": "no_final_clamp", "role": "mistake"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    e = epoch - fit
    if e < 0:
        return 0.0
    if e < ramp:
        return lam * (e + 1) / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    return lam * factor ** ((e + 1) / anneal)


# %% flatlab={"feedback": "the anneal exponent is k/anneal, one epoch late: at the k-th anneal epoch \u03bb = lam\u00b7factor^((k+1)/anneal)", "id": "hw6.schedule", "name": "anneal_off_by_one", "role": "mistake"}
def lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor):
    e = epoch - fit
    if e < 0:
        return 0.0
    if e < ramp:
        return lam * (e + 1) / ramp
    e -= ramp
    if e < hold:
        return float(lam)
    e -= hold
    return lam * factor ** min(1.0, e / anneal)


# %% [markdown]
# ## 4. A memorization index (3 points)
#
# Two flattest interpolators of the bias net exist (Section 4): one neuron per training
# point (memorizing) and four XOR neurons (generalizing). To tell trained nets apart, count
# for each neuron j the training points it fires on, c_j = #{i : h_j(x_i) > 0}, and its
# share of the training output, s_j = Σ_i |W2_j h_j(x_i)|. Write `memorization_share(model, X,
# threshold=3)`: Σ_{j : c_j ≤ threshold} s_j / Σ_j s_j (define it as 0 when Σ_j s_j = 0), for
# bias / no-bias nets. (For Sim-LN and Sim-BN, flatlab.diagnostics uses the normalized
# features; you only need h here.)

# %% flatlab={"forbid": ["flatlab.diagnostics.memorization_index", "flatlab.diagnostics.diagnose"], "function": "memorization_share", "id": "hw6.memorization", "points": 3, "role": "task", "summary": "share of sum_ij |W2_j h_j(x_i)| carried by neurons firing on <= threshold training points (0.0 if the total is 0)"}
def memorization_share(model, X, threshold=3):
    """Share of the training output carried by neurons firing on ≤ threshold rows of X (n, d). Returns a float in [0, 1]."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        h = model.hidden(X)
        s = (h * model.W2).abs().sum(0)
        total = float(s.sum())
        if total == 0.0:
            return 0.0
        counts = (h > 0).sum(0)
        return float(s[counts <= threshold].sum()) / total
    ### END SOLUTION


# %% flatlab={"id": "hw6.memorization", "role": "public_test"}
_Xm, _ym = flatlab.xor_parity(60, 12, seed=3)
_v = memorization_share(flatlab.constructions.memorizing_bias(_Xm, _ym), _Xm)
assert isinstance(_v, float), f"return a Python float, got {type(_v).__name__}"
assert abs(_v - 1.0) < 1e-12, f"the memorizing construction (each neuron fires on 1 point) must give 1.0, got {_v:.4g}"
assert abs(memorization_share(flatlab.constructions.memorizing_bias(_Xm, _ym), _Xm, threshold=1) - 1.0) < 1e-12, \
    "with threshold = 1 a neuron firing on exactly 1 point counts as memorizing (c_j <= threshold)"
assert memorization_share(flatlab.constructions.generalizing_bias(12), _Xm) == 0.0, "the XOR construction must give 0.0"
for _arch in ("bias", "no_bias"):
    _m = flatlab.make_model(_arch, 12, 40, seed=8)
    if _arch == "bias":
        with torch.no_grad():
            _m.b1.sub_(1.0)  # sparser firing
    for _thr in (2, 5, 10, 30):
        _got, _want = memorization_share(_m, _Xm[:30], _thr), flatlab.diagnostics.memorization_index(_m, _Xm[:30], threshold=_thr)
        assert abs(_got - _want) < 1e-10, (f"{_arch} net, threshold {_thr}: got {_got:.4g}, which is not the share of "
                                           "Σ_ij |W2_j h_j(x_i)| carried by neurons with c_j <= threshold (h = model.hidden(X))")
_z = flatlab.make_model("bias", 12, 10, seed=8)
with torch.no_grad():
    _z.W2.zero_()
_v = memorization_share(_z, _Xm)
assert _v == 0.0, f"when the net outputs 0 on every training point the share must be 0.0, got {_v}"
print("hw6.memorization: OK")


# %% flatlab={"id": "hw6.memorization", "role": "hidden_test"}
def test_memorization_random_nets(student, rng):
    """memorization_share must match the reference on random bias and no-bias nets for several thresholds."""
    for arch in ("bias", "no_bias"):
        model, X, _ = _case(rng, arch, n=int(rng.integers(10, 40)))
        if arch == "bias":
            with torch.no_grad():
                model.b1.sub_(float(rng.uniform(0.0, 1.5)))  # sparser firing: some neurons fire on few points
        thresholds = (0, 3, int(rng.integers(1, 10)), X.shape[0] // 2)
        got = [student.memorization_share(model, X, thr) for thr in thresholds]  # all calls first, then compare
        for thr, g in zip(thresholds, got):
            assert_close(g, flatlab.diagnostics.memorization_index(model, X, threshold=thr), rtol=1e-10, atol=1e-12,
                         name=f"the share at threshold {thr}")


def test_memorization_threshold_boundary(student, rng):
    """memorization_share must count a neuron firing on exactly `threshold` training points as memorizing (c_j <= threshold)."""
    model, X, _ = _case(rng, "bias", n=int(rng.integers(10, 40)), m=int(rng.integers(5, 30)))
    with torch.no_grad():
        model.b1.sub_(float(rng.uniform(0.5, 1.5)))
        counts = (model.hidden(X) > 0).sum(0)
        share = (model.hidden(X) * model.W2).abs().sum(0)
    live = [int(c) for c, s in zip(counts, share) if c > 0 and s > 0]
    thr = int(rng.choice(live)) if live else 1
    assert_close(student.memorization_share(model, X, thr), flatlab.diagnostics.memorization_index(model, X, threshold=thr),
                 rtol=1e-10, atol=1e-12)
    Xu = torch.unique(X, dim=0)
    memo = flatlab.constructions.memorizing_bias(Xu, Xu[:, 0] * Xu[:, 1])
    assert_close(student.memorization_share(memo, Xu, 1), 1.0, rtol=1e-12, atol=1e-12,
                 name="the memorizing construction at threshold 1")


def test_memorization_zero_output(student, rng):
    """memorization_share must return 0.0 when the net's output weights are all zero."""
    model, X, _ = _case(rng, "bias")
    with torch.no_grad():
        model.W2.zero_()
    assert_close(student.memorization_share(model, X, 3), 0.0)


# %% flatlab={"feedback": "neurons firing on exactly `threshold` points are left out (< instead of <=)", "id": "hw6.memorization", "name": "strict_threshold", "role": "mistake"}
def memorization_share(model, X, threshold=3):
    with torch.no_grad():
        h = model.hidden(X)
        s = (h * model.W2).abs().sum(0)
        total = float(s.sum())
        if total == 0.0:
            return 0.0
        return float(s[(h > 0).sum(0) < threshold].sum()) / total


# %% flatlab={"feedback": "when the net outputs 0 everywhere the share is 0/0 = NaN: return 0.0 in that case", "id": "hw6.memorization", "name": "no_zero_guard", "role": "mistake"}
def memorization_share(model, X, threshold=3):
    with torch.no_grad():
        h = model.hidden(X)
        s = (h * model.W2).abs().sum(0)
        return float(s[(h > 0).sum(0) <= threshold].sum() / s.sum())


# %% flatlab={"feedback": "this is the fraction of neurons with c_j <= threshold; the index weighs each neuron by its output share s_j", "id": "hw6.memorization", "name": "neuron_fraction", "role": "mistake"}
def memorization_share(model, X, threshold=3):
    with torch.no_grad():
        h = model.hidden(X)
        s = (h * model.W2).abs().sum(0)
        if float(s.sum()) == 0.0:
            return 0.0
        return float(((h > 0).sum(0) <= threshold).double().mean())


# %% flatlab={"feedback": "c_j counts h_j(x_i) >= 0, i.e. every point: a neuron fires where h_j(x_i) > 0", "id": "hw6.memorization", "name": "counts_nonnegative", "role": "mistake"}
def memorization_share(model, X, threshold=3):
    with torch.no_grad():
        h = model.hidden(X)
        s = (h * model.W2).abs().sum(0)
        total = float(s.sum())
        if total == 0.0:
            return 0.0
        return float(s[(h >= 0).sum(0) <= threshold].sum()) / total


# %% flatlab={"feedback": "the activations ignore b1 (relu(X W1\u1d40)): use h = model.hidden(X) = relu(W1 x + b1) for the bias net", "id": "hw6.memorization", "name": "ignores_b1", "role": "mistake"}
def memorization_share(model, X, threshold=3):
    with torch.no_grad():
        h = torch.relu(X @ model.W1.T)
        s = (h * model.W2).abs().sum(0)
        total = float(s.sum())
        if total == 0.0:
            return 0.0
        return float(s[(h > 0).sum(0) <= threshold].sum()) / total


# %% [markdown]
# ## 5. Sim-LN is blind to scale (3 points)
#
# Sim-LN computes f(x) = W2·h(x)/‖h(x)‖. Multiplying (W1, b1) by c > 0 multiplies h by c and
# leaves f unchanged. Its per-example gradient has ∇_{W2} f = h/‖h‖, of norm exactly 1, and
# first-layer blocks that scale like 1/c. Hence S(c) = 2 + (S(1) − 2)/c²: every Sim-LN
# network becomes (almost) flattest by rescaling, without changing a single prediction.
#
# Write `scale_to_floor(model, X, tol)` for a `sim_ln` model: compute S(1) from per-example
# gradients (as in hw1; `torch.func.vmap` over `torch.func.grad` is fastest) and return
# `(c, S1)` with c the smallest scale for which S(c) − 2 ≤ tol.

# %% flatlab={"forbid": ["flatlab.train.penalty.sharpness_penalty", "flatlab.train.penalty.sharpness_penalty_generic", "flatlab.train.penalty.per_example_grads", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms", "flatlab.sharpness.hessian_trace", "flatlab._closed_form.grad_sq_norms", "flatlab._closed_form.gauss_newton_trace_closed"], "function": "scale_to_floor", "id": "hw6.scale_to_floor", "points": 3, "role": "task", "summary": "compute S(1) = (2/n) sum ||grad f(x_i)||^2 for a Sim-LN net from per-example gradients; return (sqrt((S1-2)/tol), S1)"}
def scale_to_floor(model, X, tol):
    """The smallest c with S(c) - 2 <= tol for a Sim-LN net, and S(1). X (n, d). Returns (c, S1) as floats."""
    ### BEGIN SOLUTION
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f_one(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    g = vmap(grad(f_one), in_dims=(None, 0))(params, X)
    S1 = float(2.0 / X.shape[0] * sum(v.pow(2).sum() for v in g.values()))
    return math.sqrt(max(S1 - 2.0, 0.0) / tol), S1
    ### END SOLUTION


# %% flatlab={"id": "hw6.scale_to_floor", "role": "public_test"}
_X = flatlab.xor_parity(12, 5, seed=0)[0]
_ln = flatlab.make_model("sim_ln", 5, 7, seed=4)
_out = scale_to_floor(_ln, _X, 1e-3)
assert isinstance(_out, tuple) and len(_out) == 2, "return the pair (c, S1)"
_c, _S1 = _out
_want = flatlab.sharpness.gauss_newton_trace(_ln, _X)
assert abs(_S1 - _want) < 1e-9 * _want, (f"S1 is {_S1 / _want:.4g}x (2/n) Σ_i ‖∇θ f(x_i)‖²: take the gradient of each "
                                         "example's output f(x_i) separately (not of their sum) and keep the factor 2/n")
_big = flatlab.make_model("sim_ln", 5, 7, seed=4)
with torch.no_grad():
    _big.W1.mul_(_c); _big.b1.mul_(_c)
assert torch.allclose(_big(_X), _ln(_X), rtol=0, atol=1e-12), "the function must not change"
_r = (flatlab.sharpness.gauss_newton_trace(_big, _X) - 2) / 1e-3
assert abs(_r - 1) < 1e-5, (f"at your c, S(c) − 2 is {_r:.4g}x tol; it must equal tol: solve 2 + (S1 − 2)/c² = 2 + tol for c "
                            "(S falls to the floor 2, not to 0)")
print("hw6.scale_to_floor: OK")


# %% flatlab={"id": "hw6.scale_to_floor", "role": "hidden_test"}
def _sim_ln_case(rng):
    while True:  # every training point must activate some neuron (else the eps floor of Sim-LN applies)
        model, X, _ = _case(rng, "sim_ln", m=int(rng.integers(5, 15)))
        if bool((model.hidden(X).norm(dim=1) > 1e-3).all()):
            return model, X


def _pair(got):
    assert isinstance(got, (tuple, list)) and len(got) == 2, "scale_to_floor must return the pair (c, S1)"
    return got


def test_scale_to_floor_s1(student, rng):
    """scale_to_floor must return S(1) = (2/n) sum_i ||grad_theta f(x_i)||^2 of the Sim-LN net as its second value."""
    model, X = _sim_ln_case(rng)
    _, S1 = _pair(student.scale_to_floor(model, X, float(10 ** rng.uniform(-5, -2))))
    assert_close(S1, flatlab.sharpness.gauss_newton_trace(model, X), rtol=1e-8, name="S1")


def test_scale_to_floor(student, rng):
    """scale_to_floor must return the c at which S(c) - 2 = tol (S - 2 falls like 1/c^2)."""
    model, X = _sim_ln_case(rng)
    tol = float(10 ** rng.uniform(-5, -2))
    c, _ = _pair(student.scale_to_floor(model, X, tol))
    big = flatlab.make_model("sim_ln", model.config.d, model.config.width, seed=0)
    big.load_state_dict(model.state_dict())
    with torch.no_grad():
        big.W1.mul_(float(c))
        big.b1.mul_(float(c))
    assert_close(flatlab.sharpness.gauss_newton_trace(big, X) - 2.0, tol, rtol=1e-5, name="S(c) - 2 at your c")


# %% flatlab={"feedback": "c = (S1 \u2212 2)/tol misses the square root: S \u2212 2 falls like 1/c\u00b2, so c = sqrt((S1 \u2212 2)/tol)", "id": "hw6.scale_to_floor", "name": "no_sqrt", "role": "mistake"}
def scale_to_floor(model, X, tol):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    g = vmap(grad(lambda p, x: functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)), in_dims=(None, 0))(params, X)
    S1 = float(2.0 / X.shape[0] * sum(v.pow(2).sum() for v in g.values()))
    return (S1 - 2.0) / tol, S1


# %% flatlab={"feedback": "c is computed as if S fell to 0; it falls to the floor 2: S(c) = 2 + (S1 \u2212 2)/c\u00b2", "id": "hw6.scale_to_floor", "name": "forgets_floor", "role": "mistake"}
def scale_to_floor(model, X, tol):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    g = vmap(grad(lambda p, x: functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)), in_dims=(None, 0))(params, X)
    S1 = float(2.0 / X.shape[0] * sum(v.pow(2).sum() for v in g.values()))
    return math.sqrt(S1 / tol), S1


# %% flatlab={"feedback": "S1 uses the gradient of \u03a3_i f(x_i), one backward pass over the batch; S needs each example's own gradient \u2207f(x_i)", "id": "hw6.scale_to_floor", "name": "gradient_of_sum", "role": "mistake"}
def scale_to_floor(model, X, tol):
    params = list(model.parameters())
    grads = torch.autograd.grad(model(X).sum(), params)
    S1 = float(2.0 / X.shape[0] * sum(g.pow(2).sum() for g in grads))
    return math.sqrt(max(S1 - 2.0, 0.0) / tol), S1


# %% flatlab={"feedback": "S1 lacks the factor 2: S = (2/n) \u03a3_i \u2016\u2207f(x_i)\u2016\u00b2", "id": "hw6.scale_to_floor", "name": "missing_factor_2", "role": "mistake"}
def scale_to_floor(model, X, tol):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    g = vmap(grad(lambda p, x: functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)), in_dims=(None, 0))(params, X)
    S1 = float(1.0 / X.shape[0] * sum(v.pow(2).sum() for v in g.values()))
    return math.sqrt(max(S1 - 2.0, 0.0) / tol), S1


# %% flatlab={"feedback": "c is inverted: scaling the first layer by c divides S \u2212 2 by c\u00b2, so c = sqrt((S1 \u2212 2)/tol), not its reciprocal", "id": "hw6.scale_to_floor", "name": "inverse_scale", "role": "mistake"}
def scale_to_floor(model, X, tol):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}
    g = vmap(grad(lambda p, x: functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)), in_dims=(None, 0))(params, X)
    S1 = float(2.0 / X.shape[0] * sum(v.pow(2).sum() for v in g.values()))
    return math.sqrt(tol / (S1 - 2.0)), S1


# %% [markdown]
# ## 6. Experiments (ungraded)
#
# ### 6a. Four sharpness minimizers on the bias net
# d = 30, n = 100 XOR points, width 500, one seed. The reference runs (GD+wd, 1-SAM, label-noise
# SGD) come from `flatlab.lab.beyond`, shortened to fit the time budget. The penalty run is yours:
# Adam on L + λ(t)S with **your** `objective_grad` and `lambda_schedule`.

# %% flatlab={"role": "experiment"}
SEED = 0
data = flatlab.make_dataset("xor", n=100, d=30, seed=SEED)
cfg = dataclasses.replace(flatlab.lab.beyond.get_beyond_config("quick"), gd_epochs=10_000, sam_epochs=3_000,
                          label_noise=flatlab.train.penalty.LabelNoiseConfig(epochs=600, lr=0.01, sigma=0.5, anneal_epochs=100))
ref = {}
for method in ("gd_wd", "one_sam", "label_noise"):
    t0 = time.perf_counter()
    ref[method] = flatlab.lab.beyond.run_beyond_job(cfg, method, SEED)
    print(f"{method:12s} test acc {ref[method]['final']['test_acc']:.3f}  trace {ref[method]['final']['trace']:.2f}"
          f"  ({time.perf_counter() - t0:.0f} s)")


def train_with_penalty(model, data, lam=0.01, fit=500, ramp=500, hold=1000, anneal=1000, factor=1e-3, lr=0.01, log=100):
    """Adam on mse + λ(t)·S using objective_grad and lambda_schedule; returns rows (epoch, loss, test acc, S)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    params = dict(model.named_parameters())
    rows = []
    total = fit + ramp + hold + anneal
    for epoch in range(total + 1):
        if epoch % log == 0 or epoch == total:
            with torch.no_grad():
                rows.append((epoch, float(mse(model(data.X_train), data.y_train)),
                             accuracy(model(data.X_test), data.y_test), float(penalty_value(model, data.X_train))))
        if epoch == total:
            break
        g = objective_grad(model, data.X_train, data.y_train, lambda_schedule(epoch, lam, fit, ramp, hold, anneal, factor))
        for k, p in params.items():
            p.grad = g[k]
        opt.step()
    return np.array(rows)


t0 = time.perf_counter()
pen_model = flatlab.make_model("bias", 30, 500, seed=flatlab.lab.runner.INIT_SEED_OFFSET + SEED)
pen = train_with_penalty(pen_model, data)
print(f"penalty      test acc {pen[-1, 2]:.3f}  trace {pen[-1, 3]:.2f}  ({time.perf_counter() - t0:.0f} s)")
floor = 4 * math.sqrt(31)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for method, r in ref.items():
    h = r["history"]
    axes[0].semilogx(np.maximum(h["epoch"], 1), h["test_acc"], color=COLORS[method], label=r["label"])
    axes[1].loglog(np.maximum(h["epoch"], 1), h["trace"], color=COLORS[method], label=r["label"])
axes[0].semilogx(np.maximum(pen[:, 0], 1), pen[:, 2], color=COLORS["penalty"], label="your penalty")
axes[1].loglog(np.maximum(pen[:, 0], 1), pen[:, 3], color=COLORS["penalty"], label="your penalty")
axes[1].axhline(floor, color="k", ls="--", label="4·sqrt(d+1)")
axes[0].set(xlabel="epoch", ylabel="test accuracy")
axes[1].set(xlabel="epoch", ylabel="Tr ∇²L")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### 6b. What the networks compute
# Your memorization index, the median number of training points an active neuron fires on,
# the share of first-layer weight on x1, x2 (all neurons, and the four with the largest
# ‖W1_j‖·|W2_j|), for the trained nets and the two constructions.

# %% flatlab={"role": "experiment"}
nets = {"memorizing construction": flatlab.constructions.memorizing_bias(data.X_train, data.y_train),
        "generalizing construction": flatlab.constructions.generalizing_bias(30), "your penalty": pen_model}
print(f"{'':26s} {'memorization':>12s} {'median firing':>14s} {'x1,x2 share':>12s} {'top-4 x1,x2':>12s} "
      f"{'test acc':>9s}")
for name, net in nets.items():
    dg = flatlab.diagnostics.diagnose(net, data.X_train)
    with torch.no_grad():
        acc = accuracy(net(data.X_test), data.y_test)
    print(f"{name:26s} {memorization_share(net, data.X_train):12.3f} {dg['median_firing']:14.1f} "
          f"{dg['x1x2_share']:12.3f} {dg['top_x1x2_share']:12.3f} {acc:9.3f}")
for method, r in ref.items():
    dg = r["diagnostics"]
    print(f"{r['label']:26s} {dg['memorization_index']:12.3f} {dg['median_firing']:14.1f} {dg['x1x2_share']:12.3f} "
          f"{dg['top_x1x2_share']:12.3f} {r['final']['test_acc']:9.3f}")

# %% [markdown]
# ### 6c. A flattest Sim-LN model that does not generalize
# Plain full-batch GD (lr 0.1, no weight decay) fits XOR with a Sim-LN net of width 500 and
# generalizes poorly. Rescale its first layer with your `scale_to_floor`.

# %% flatlab={"role": "experiment"}
ln_data = flatlab.make_dataset("xor", n=100, d=30, seed=SEED)
ln = flatlab.make_model("sim_ln", 30, 500, seed=flatlab.lab.runner.INIT_SEED_OFFSET + SEED)
opt = torch.optim.SGD(ln.parameters(), lr=0.1)
for step in range(1500):
    opt.zero_grad()
    mse(ln(ln_data.X_train), ln_data.y_train).backward()
    opt.step()
c, S1 = scale_to_floor(ln, ln_data.X_train, 1e-3)
flat = flatlab.make_model("sim_ln", 30, 500, seed=0)
flat.load_state_dict(ln.state_dict())
with torch.no_grad():
    flat.W1.mul_(c)
    flat.b1.mul_(c)
    change = float((flat(ln_data.X_test) - ln(ln_data.X_test)).abs().max())
    print(f"GD interpolator: train loss {float(mse(ln(ln_data.X_train), ln_data.y_train)):.1e}, "
          f"test acc {accuracy(ln(ln_data.X_test), ln_data.y_test):.3f}, S = {S1:.2f}")
    print(f"rescaled by c = {c:.0f}: S = {flatlab.sharpness.gauss_newton_trace(flat, ln_data.X_train):.4f}, "
          f"max |change of f| on test points {change:.1e}, test acc {accuracy(flat(ln_data.X_test), ln_data.y_test):.3f}")

# %% [markdown] flatlab={"id": "hw6.q_equal_sharpness", "points": 3, "role": "manual"}
# **Question.** In 6a the penalty and 1-SAM end at (nearly) the same trace, the minimum
# 4·sqrt(d+1). One generalizes, the other does not. Explain in your own words why equal
# sharpness does not imply equal generalization here, using your diagnostics from 6b. What
# does this say about the claim "SAM generalizes because it finds flat minima"?
#
# <!-- BEGIN SOLUTION -->
# The set of flattest interpolators of the bias net is large: it contains the memorizing
# construction (one neuron per point: it outputs 0 off the training set, so
# its test accuracy on fresh points is 0), the XOR
# construction (accuracy 1) and many mixtures; the trace cannot tell them apart, because
# both meet the Cauchy–Schwarz bound ‖∇f(x_i)‖² ≥ 2‖(x_i, 1)‖ at every training point.
# Which flat interpolator an algorithm reaches depends on its dynamics, not on the
# sharpness it ends at. The explicit penalty moves along the full-batch gradient of S and
# lands on the XOR-like solution (weight concentrated on x1, x2; neurons firing on ~n/4
# points). 1-SAM's per-example ascent steps push it to a different flat solution whose
# neurons each fire on a small subset (~15 points): not literally the memorizing
# construction (its memorization index is ≈ 0), but a solution that fits the sample with
# many local pieces and does not extrapolate. So "SAM generalizes because it finds flat
# minima" is at best incomplete: flatness is shared by good and bad solutions, and any
# explanation must involve the implicit bias of the algorithm beyond its sharpness.
# <!-- END SOLUTION -->

# %% [markdown] flatlab={"id": "hw6.q_scale", "points": 2, "role": "manual"}
# **Question.** 6c made a flattest Sim-LN model without training. Why is that possible for
# Sim-LN but not for the bias net (hint: hw1's rescaling curve A c² + B/c²)? Given this, what
# must 1-SAM be doing on Sim-LN (scenario III) to generalize?
#
# <!-- BEGIN SOLUTION -->
# For the bias net a rescaling c of the first layer must be paired with W2/c to keep f,
# and the trace A c² + B/c² has a strictly positive minimum; for Sim-LN the output layer
# reads h/‖h‖, so the first layer alone can be scaled, f is unchanged, the W2-block of the
# gradient stays a unit vector (1 per example) and the first-layer block vanishes like 1/c²:
# S → 2, the floor, for any interpolator. Sharpness therefore carries no information about
# which Sim-LN interpolator is chosen: every one of them is (almost) flattest. Since 1-SAM
# still reaches ~0.95-1.0 test accuracy, its selection must come from its trajectory (which
# features the per-example ascent amplifies early, before the norm grows), not from
# minimizing the trace.
# <!-- END SOLUTION -->
