# ---
# jupyter:
#   flatlab:
#     assignment: hw2
#     title: SAM and 1-SAM
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw2 · SAM and 1-SAM
#
# Sharpness-aware minimization (Foret et al., 2021) replaces the loss by its worst value in
# a ball of radius ρ, max_{‖δ‖≤ρ} L(θ+δ), and approximates the inner maximum by one ascent
# step. The paper studies **1-SAM**, SAM with batch size 1: for each training example i in
# turn,
#
# g = ∇ℓ_i(θ),  θ̃ = θ + ρ·g/‖g‖,  θ ← θ − η·∇ℓ_i(θ̃),  with ℓ_i(θ) = (f_θ(x_i) − y_i)².
#
# Theory (Wen et al. 2023, building on Wen, Ma & Li 2022): with small η and ρ, 1-SAM drifts
# along the set of interpolators towards small Tr ∇²L. Full-batch GD, once it interpolates,
# has zero gradient and stays where it is. You will implement SAM and 1-SAM, find the
# quantity 1-SAM actually penalizes, and see both effects.
#
# You need `flatlab.models.flatten_params` / `functional_forward` as in hw1. A model's
# parameters are `list(model.parameters())`; update them in place under `torch.no_grad()`.
# Estimated time: 2.5 hours.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.losses import mse
from flatlab.models import flatten_params, functional_forward, get_params
from flatlab.lab.plotting import COLORS
from flatlab.sharpness import gauss_newton_trace

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# %% [markdown]
# ## 1. The SAM perturbation (2 points)
#
# Write `sam_perturbation(model, X, y, rho)`: the flat vector δ = ρ·g/‖g‖ (shape (p,), in the
# order of `flatten_params`) with g = ∇_θ mse(model(X), y). If g = 0 return a zero vector.
# Do not change the model.

# %% flatlab={"function": "sam_perturbation", "id": "hw2.sam_perturb", "points": 2, "role": "task", "summary": "return delta = rho * g / ||g|| (flat, shape (p,)) with g the gradient of mse(model(X), y); zeros if g = 0"}
def sam_perturbation(model, X, y, rho):
    """The SAM ascent step δ = ρ g/‖g‖ as a flat tensor (p,), g = ∇_θ mse(model(X), y)."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    grads = torch.autograd.grad(mse(model(X), y), params)
    g = torch.cat([gr.reshape(-1) for gr in grads])
    norm = g.norm()
    return torch.zeros_like(g) if norm == 0 else rho * g / norm
    ### END SOLUTION


# %% flatlab={"id": "hw2.sam_perturb", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_m = flatlab.make_model("bias", 5, 6, seed=1)
_theta = flatten_params(_m).detach().clone()
_d = sam_perturbation(_m, _X, _y, 0.3)
assert isinstance(_d, torch.Tensor) and _d.shape == _theta.shape, \
    f"return a flat tensor of shape {tuple(_theta.shape)} (flatten_params order), got {getattr(_d, 'shape', type(_d))}"
assert torch.equal(flatten_params(_m).detach(), _theta), "sam_perturbation changed the model's parameters: leave them as they are"
_r = float(_d.detach().norm()) / 0.3
assert abs(_r - 1) < 1e-9, f"‖δ‖ must equal ρ, got {_r:.4g}·ρ: divide ρ·g by the norm of the whole flat gradient"
with torch.no_grad():
    _up = float(mse(functional_forward(_m, _theta + _d.detach(), _X), _y) - mse(_m(_X), _y))
_want_up = flatlab.sharpness.sam_sharpness(_m, _X, _y, 0.3)
assert _up > 0, "δ must point uphill (along +g): the loss at θ + δ is lower than at θ"
assert abs(_up - _want_up) < 1e-9 * abs(_want_up), \
    f"L(θ+δ) − L(θ) is {_up / _want_up:.4g}x that of the SAM step ρ·g/‖g‖: δ is not along the full-batch gradient g"
_dead = flatlab.make_model("bias", 5, 6, seed=1)
with torch.no_grad():
    _dead.b1.fill_(-100.0)  # every neuron dead: g = 0
_d0 = sam_perturbation(_dead, _X, _y, 0.3)
assert bool(torch.isfinite(_d0).all()) and float(_d0.abs().max()) == 0.0, \
    "when the gradient is zero δ must be a zero vector (did you divide by ‖g‖ = 0?)"
print("hw2.sam_perturb: OK")


# %% flatlab={"id": "hw2.sam_perturb", "role": "hidden_test"}
def _case(rng, arch="bias", n=None, d=None, m=None):
    n = int(rng.integers(3, 14)) if n is None else n
    d = int(rng.integers(2, 7)) if d is None else d
    m = int(rng.integers(2, 10)) if m is None else m
    seed = int(rng.integers(2**31))
    X, y = flatlab.xor_parity(n, d, seed=seed)
    kw = {"X_ref": X} if arch == "sim_bn" else {}
    return flatlab.make_model(arch, d, m, seed=seed + 1, **kw), X, y


def _params_after(after):
    """Parameters of a model returned by student.call(..., return_args=True), as float arrays."""
    got = after["params"] if isinstance(after, dict) else dict(after.named_parameters())
    return {k: np.asarray(v.detach() if isinstance(v, torch.Tensor) else v, dtype=float) for k, v in got.items()}


def _assert_unchanged(model, after, what):
    got = _params_after(after)
    for k, v in model.named_parameters():
        if not np.array_equal(got[k], v.detach().numpy()):
            raise AssertionError(f"{what} changed the model's parameter {k} (it must leave the model as it was)")


def test_sam_perturbation_value(student, rng):
    """sam_perturbation must return rho * g / ||g|| for the full-batch MSE gradient g, flattened in flatten_params order."""
    for arch in ("bias", "sim_ln"):
        model, X, y = _case(rng, arch)
        rho = float(rng.uniform(0.01, 2.0))
        theta = flatlab.models.flatten_params(model).detach().clone().requires_grad_(True)
        g = torch.autograd.grad(flatlab.mse(flatlab.models.functional_forward(model, theta, X), y), theta)[0]
        got = student.sam_perturbation(model, X, y, rho)
        n = float(np.linalg.norm(np.asarray(got, dtype=float)))
        if np.shape(got) == tuple(g.shape) and abs(n / rho - 1) > 1e-6:
            raise AssertionError(f"‖δ‖ is {n / rho:.3g}·ρ; it must be exactly ρ")
        assert_close(got, rho * g / g.norm(), rtol=1e-9, atol=1e-13)


def test_sam_perturbation_zero_gradient(student, rng):
    """sam_perturbation must return a zero vector (not NaN) when the gradient is zero, e.g. when every neuron is dead."""
    model, X, y = _case(rng, "bias")
    with torch.no_grad():
        model.b1.fill_(-100.0)
    got = np.asarray(student.sam_perturbation(model, X, y, 0.1), dtype=float)
    assert got.shape == (flatlab.models.flatten_params(model).numel(),) and np.all(got == 0)


def test_sam_perturbation_model_unchanged(student, rng):
    """sam_perturbation must not change the model (its parameters after the call equal those before) and return rho * g / ||g||."""
    model, X, y = _case(rng, "bias")
    rho = float(rng.uniform(0.05, 1.0))
    got, (after, *_) = student.call("sam_perturbation", model, X, y, rho, return_args=True)
    _assert_unchanged(model, after, "sam_perturbation")
    theta = flatlab.models.flatten_params(model).detach().clone()
    g = torch.func.grad(lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y))(theta)
    assert_close(got, rho * g / g.norm(), rtol=1e-9, atol=1e-13)


# %% flatlab={"feedback": "\u03b4 is \u03c1\u00b7g instead of \u03c1\u00b7g/\u2016g\u2016: divide by the gradient's norm so that \u2016\u03b4\u2016 = \u03c1", "id": "hw2.sam_perturb", "name": "not_normalized", "role": "mistake"}
def sam_perturbation(model, X, y, rho):
    grads = torch.autograd.grad(mse(model(X), y), list(model.parameters()))
    return rho * torch.cat([gr.reshape(-1) for gr in grads])


# %% flatlab={"feedback": "when the gradient is zero, \u03c1\u00b7g/\u2016g\u2016 is 0/0 = NaN: return a zero vector in that case", "id": "hw2.sam_perturb", "name": "no_zero_guard", "role": "mistake"}
def sam_perturbation(model, X, y, rho):
    grads = torch.autograd.grad(mse(model(X), y), list(model.parameters()))
    g = torch.cat([gr.reshape(-1) for gr in grads])
    return rho * g / g.norm()


# %% flatlab={"feedback": "each parameter block is normalized separately; SAM normalizes the whole flat gradient, so \u2016\u03b4\u2016 must be \u03c1, not \u03c1\u00b7sqrt(number of blocks)", "id": "hw2.sam_perturb", "name": "per_block_norm", "role": "mistake"}
def sam_perturbation(model, X, y, rho):
    grads = torch.autograd.grad(mse(model(X), y), list(model.parameters()))
    blocks = [rho * gr.reshape(-1) / gr.norm() if gr.norm() > 0 else torch.zeros_like(gr).reshape(-1) for gr in grads]
    return torch.cat(blocks)


# %% flatlab={"feedback": "\u03b4 points downhill (\u2212\u03c1\u00b7g/\u2016g\u2016): SAM's inner step ascends, \u03b4 = +\u03c1\u00b7g/\u2016g\u2016", "id": "hw2.sam_perturb", "name": "descent_direction", "role": "mistake"}
def sam_perturbation(model, X, y, rho):
    grads = torch.autograd.grad(mse(model(X), y), list(model.parameters()))
    g = torch.cat([gr.reshape(-1) for gr in grads])
    return torch.zeros_like(g) if g.norm() == 0 else -rho * g / g.norm()


# %% flatlab={"feedback": "the model's parameters are moved to \u03b8 + \u03b4 and left there: compute \u03b4 without changing the model", "id": "hw2.sam_perturb", "name": "moves_the_model", "role": "mistake"}
def sam_perturbation(model, X, y, rho):
    params = list(model.parameters())
    grads = torch.autograd.grad(mse(model(X), y), params)
    g = torch.cat([gr.reshape(-1) for gr in grads])
    if g.norm() == 0:
        return torch.zeros_like(g)
    with torch.no_grad():
        for p, gr in zip(params, grads):
            p.add_(rho * gr / g.norm())
    return rho * g / g.norm()


# %% [markdown]
# ## 2. One SAM step (3 points)
#
# Write `sam_step(model, X, y, lr, rho)`: compute δ at θ, the gradient of the loss at θ + δ,
# restore θ and take θ ← θ − lr·∇L(θ + δ), in place. Return the loss at θ (before the step)
# as a float. (With rho = 0 this is a plain gradient step.)

# %% flatlab={"forbid": ["flatlab.train.reference.minibatch_epoch", "flatlab.train.reference.one_sam_epoch", "flatlab.train.reference.SAM", "flatlab.train.engine.one_sam"], "function": "sam_step", "id": "hw2.sam_step", "points": 3, "role": "task", "summary": "in place: theta <- theta - lr * grad L(theta + delta) with delta = sam_perturbation; return L(theta) before the step"}
def sam_step(model, X, y, lr, rho):
    """One SAM step on the batch (X (b, d), y (b,)), in place. Returns the batch loss before the step."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    theta = flatten_params(model).detach().clone()
    loss_at = lambda t: mse(functional_forward(model, t, X), y)
    g = torch.func.grad(loss_at)(theta)
    delta = torch.zeros_like(g) if g.norm() == 0 else rho * g / g.norm()
    perturbed = torch.func.grad(loss_at)(theta + delta)
    with torch.no_grad():
        loss0 = float(loss_at(theta))
        i = 0
        for p in params:
            k = p.numel()
            p.sub_(lr * perturbed[i:i + k].view_as(p))
            i += k
    return loss0
    ### END SOLUTION


# %% flatlab={"id": "hw2.sam_step", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_m = flatlab.make_model("bias", 5, 6, seed=1)
_ref = flatlab.make_model("bias", 5, 6, seed=1)
with torch.no_grad():
    _want_l0 = float(mse(_ref(_X), _y))
_l0 = sam_step(_m, _X, _y, 0.1, 0.05)
flatlab.train.reference.minibatch_epoch(_ref, _X, _y, 0.1, 0.05, list(range(12)), batch_size=12)
_gd = flatlab.make_model("bias", 5, 6, seed=1)
flatlab.train.reference.minibatch_epoch(_gd, _X, _y, 0.1, 0.0, list(range(12)), batch_size=12)
_diff = float((flatten_params(_m) - flatten_params(_ref)).detach().abs().max())
assert not torch.allclose(flatten_params(_m), flatten_params(_gd), rtol=1e-10, atol=1e-12), \
    "your step is a plain gradient step: take the gradient at θ + δ, not at θ"
assert _diff < 1e-10, (f"the parameters after sam_step are off by up to {_diff:.2g} from θ − lr·∇L(θ + δ): check that δ = ρ·g/‖g‖, "
                       "that the gradient is taken at θ + δ and that θ is restored before the update")
assert isinstance(_l0, float), f"return the loss as a Python float, got {type(_l0).__name__}"
assert abs(_l0 - _want_l0) < 1e-12 * _want_l0, \
    f"the returned loss is {_l0 / _want_l0:.4g}x the loss at θ: return L(θ) measured before the step"
print("hw2.sam_step: OK")


# %% flatlab={"id": "hw2.sam_step", "role": "hidden_test"}
def _reference_sam(model, X, y, lr, rho, batch_size, order):
    ref = flatlab.models.model_from_config(model.config, flatlab.models.get_params(model),
                                           X_ref=getattr(model, "reference", None))
    flatlab.train.reference.minibatch_epoch(ref, X, y, lr, rho, order, batch_size=batch_size)
    return ref


def test_sam_step_full_batch(student, rng):
    """sam_step must update the model in place to theta - lr * grad L(theta + rho g/||g||) (full batch)."""
    for arch in ("bias", "sim_bn"):
        model, X, y = _case(rng, arch)
        lr, rho = float(rng.uniform(0.01, 0.2)), float(rng.uniform(0.01, 0.5))
        _, (after, *_) = student.call("sam_step", model, X, y, lr, rho, return_args=True)
        ref = _reference_sam(model, X, y, lr, rho, X.shape[0], list(range(X.shape[0])))
        got = _params_after(after)
        for k, v in ref.named_parameters():
            assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12, name=f"parameter {k} after the step")


def test_sam_step_returns_loss_before(student, rng):
    """sam_step must return the batch loss L(theta) measured before the step, as a float."""
    model, X, y = _case(rng, "bias")
    got = student.sam_step(model, X, y, float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.05, 0.5)))
    with torch.no_grad():
        assert_close(got, float(flatlab.mse(model(X), y)), rtol=1e-10, atol=1e-14, name="the returned loss")


def test_sam_step_rho_zero_is_gd(student, rng):
    """sam_step with rho = 0 must be one plain gradient step."""
    model, X, y = _case(rng, "no_bias")
    lr = float(rng.uniform(0.01, 0.2))
    _, (after, *_) = student.call("sam_step", model, X, y, lr, 0.0, return_args=True)
    ref = _reference_sam(model, X, y, lr, 0.0, X.shape[0], list(range(X.shape[0])))
    got = _params_after(after)
    for k, v in ref.named_parameters():
        assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12, name=f"parameter {k} after the step")


# %% flatlab={"feedback": "the update uses the gradient at \u03b8, i.e. a plain gradient step: SAM takes the gradient at the perturbed point \u03b8 + \u03b4", "id": "hw2.sam_step", "name": "gradient_at_theta", "role": "mistake"}
def sam_step(model, X, y, lr, rho):
    params = list(model.parameters())
    loss = mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)
    return float(loss.detach())


# %% flatlab={"feedback": "\u03b8 is not restored after the ascent: the step is applied at \u03b8 + \u03b4, so the model ends at \u03b8 + \u03b4 \u2212 lr\u00b7\u2207L(\u03b8+\u03b4) instead of \u03b8 \u2212 lr\u00b7\u2207L(\u03b8+\u03b4)", "id": "hw2.sam_step", "name": "not_restored", "role": "mistake"}
def sam_step(model, X, y, lr, rho):
    params = list(model.parameters())
    loss = mse(model(X), y)
    grads = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    with torch.no_grad():
        if norm > 0:
            for p, g in zip(params, grads):
                p.add_(rho * g / norm)
    grads = torch.autograd.grad(mse(model(X), y), params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)
    return float(loss.detach())


# %% flatlab={"feedback": "the returned loss is measured after the update; return L(\u03b8) from before the step", "id": "hw2.sam_step", "name": "loss_after_step", "role": "mistake"}
def sam_step(model, X, y, lr, rho):
    params = list(model.parameters())
    theta = flatten_params(model).detach().clone()
    loss_at = lambda t: mse(functional_forward(model, t, X), y)
    g = torch.func.grad(loss_at)(theta)
    delta = torch.zeros_like(g) if g.norm() == 0 else rho * g / g.norm()
    perturbed = torch.func.grad(loss_at)(theta + delta)
    with torch.no_grad():
        i = 0
        for p in params:
            p.sub_(lr * perturbed[i:i + p.numel()].view_as(p))
            i += p.numel()
        return float(mse(model(X), y))


# %% flatlab={"feedback": "the ascent step is \u03c1\u00b7g, not \u03c1\u00b7g/\u2016g\u2016: normalize the gradient before perturbing", "id": "hw2.sam_step", "name": "unnormalized_ascent", "role": "mistake"}
def sam_step(model, X, y, lr, rho):
    params = list(model.parameters())
    theta = flatten_params(model).detach().clone()
    loss_at = lambda t: mse(functional_forward(model, t, X), y)
    g = torch.func.grad(loss_at)(theta)
    perturbed = torch.func.grad(loss_at)(theta + rho * g)
    with torch.no_grad():
        loss0 = float(loss_at(theta))
        i = 0
        for p in params:
            p.sub_(lr * perturbed[i:i + p.numel()].view_as(p))
            i += p.numel()
    return loss0


# %% [markdown]
# ## 3. One epoch of 1-SAM (3 points)
#
# Write `one_sam_epoch(model, X, y, lr, rho, order)`: for each index i in `order` (a list, a
# permutation of range(n)), one SAM step on the single example (X[i:i+1], y[i:i+1]). In place.
# Return the mean of the per-step losses (each measured before its step).

# %% flatlab={"forbid": ["flatlab.train.reference.minibatch_epoch", "flatlab.train.reference.one_sam_epoch", "flatlab.train.reference.SAM", "flatlab.train.engine.one_sam"], "function": "one_sam_epoch", "id": "hw2.one_sam_epoch", "points": 3, "role": "task", "summary": "for i in order: sam_step on the single example (X[i:i+1], y[i:i+1]); return the mean of the returned losses"}
def one_sam_epoch(model, X, y, lr, rho, order):
    """1-SAM over the examples in `order`, in place. Returns the mean per-step loss (a float)."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    losses = []
    for i in (int(j) for j in order):
        xi, yi = X[i:i + 1], y[i:i + 1]
        theta = flatten_params(model).detach().clone()
        loss_at = lambda t: mse(functional_forward(model, t, xi), yi)
        g = torch.func.grad(loss_at)(theta)
        delta = torch.zeros_like(g) if g.norm() == 0 else rho * g / g.norm()
        step = torch.func.grad(loss_at)(theta + delta)
        with torch.no_grad():
            losses.append(float(loss_at(theta)))
            k = 0
            for p in params:
                p.sub_(lr * step[k:k + p.numel()].view_as(p))
                k += p.numel()
    return float(np.mean(losses))
    ### END SOLUTION


# %% flatlab={"id": "hw2.one_sam_epoch", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_m = flatlab.make_model("bias", 5, 6, seed=1)
_ref = flatlab.make_model("bias", 5, 6, seed=1)
_order = [3, 1, 0, 2, 5, 4, 7, 6, 9, 8, 11, 10]
_want_losses = []
for _i in _order:
    with torch.no_grad():
        _want_losses.append(float(mse(_ref(_X[_i:_i + 1]), _y[_i:_i + 1])))
    flatlab.train.reference.one_sam_epoch(_ref, _X, _y, 0.05, 0.1, [_i])
_out = one_sam_epoch(_m, _X, _y, 0.05, 0.1, _order)
_diff = float((flatten_params(_m) - flatten_params(_ref)).detach().abs().max())
assert _diff < 1e-10, (f"the parameters after one_sam_epoch are off by up to {_diff:.2g}: take one SAM step per index, "
                       "in the given order, each on the single example (X[i:i+1], y[i:i+1]) "
                       "(if you call your sam_step, check hw2.sam_step first)")
assert isinstance(_out, float), f"return the mean loss as a Python float, got {type(_out).__name__}"
_want = float(np.mean(_want_losses))
assert abs(_out - _want) < 1e-10 * _want, (f"the returned value is {_out / _want:.4g}x the mean of the per-step losses: "
                                           "return the mean of the single-example losses, each measured before its step")
print("hw2.one_sam_epoch: OK")


# %% flatlab={"id": "hw2.one_sam_epoch", "role": "hidden_test"}
def test_one_sam_epoch_matches(student, rng):
    """one_sam_epoch must apply one single-example SAM step per index of `order`, in that order, in place."""
    for arch in ("bias", "sim_ln"):
        model, X, y = _case(rng, arch)
        n = X.shape[0]
        order = [int(i) for i in rng.permutation(n)]
        lr, rho = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.3))
        mean_loss, (after, *_) = student.call("one_sam_epoch", model, X, y, lr, rho, order, return_args=True)
        ref = _reference_sam(model, X, y, lr, rho, 1, order)
        got = _params_after(after)
        for k, v in ref.named_parameters():
            assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12, name=f"parameter {k} after the epoch")


def test_one_sam_epoch_mean_loss(student, rng):
    """one_sam_epoch must return the mean of the single-example losses, each measured just before its step."""
    model, X, y = _case(rng, "bias")
    order = [int(i) for i in rng.permutation(X.shape[0])]
    lr, rho = 0.05, 0.1
    got = student.one_sam_epoch(model, X, y, lr, rho, order)
    ref = flatlab.models.model_from_config(model.config, flatlab.models.get_params(model))
    losses = []
    for i in order:
        with torch.no_grad():
            losses.append(float(flatlab.mse(ref(X[i:i + 1]), y[i:i + 1])))
        flatlab.train.reference.one_sam_epoch(ref, X, y, lr, rho, [i])
    assert_close(got, float(np.mean(losses)), rtol=1e-8, atol=1e-14, name="the returned mean loss")


# %% flatlab={"feedback": "each step uses the whole batch (X, y) instead of the single example (X[i:i+1], y[i:i+1])", "id": "hw2.one_sam_epoch", "name": "full_batch_steps", "role": "mistake"}
def one_sam_epoch(model, X, y, lr, rho, order):
    return float(np.mean([sam_step(model, X, y, lr, rho) for _ in order]))


# %% flatlab={"feedback": "the examples are visited as 0, 1, ..., n\u22121: visit them in the given `order`", "id": "hw2.one_sam_epoch", "name": "ignores_order", "role": "mistake"}
def one_sam_epoch(model, X, y, lr, rho, order):
    return float(np.mean([sam_step(model, X[i:i + 1], y[i:i + 1], lr, rho) for i in range(len(order))]))


# %% flatlab={"feedback": "the returned value is the sum of the per-step losses; return their mean", "id": "hw2.one_sam_epoch", "name": "sum_of_losses", "role": "mistake"}
def one_sam_epoch(model, X, y, lr, rho, order):
    return float(sum(sam_step(model, X[i:i + 1], y[i:i + 1], lr, rho) for i in order))


# %% flatlab={"feedback": "the returned value is the full-batch loss after the epoch; return the mean of the per-step losses, each measured before its step", "id": "hw2.one_sam_epoch", "name": "final_full_loss", "role": "mistake"}
def one_sam_epoch(model, X, y, lr, rho, order):
    for i in order:
        sam_step(model, X[i:i + 1], y[i:i + 1], lr, rho)
    with torch.no_grad():
        return float(mse(model(X), y))


# %% [markdown]
# ## 4. What 1-SAM penalizes (3 points)
#
# Near an interpolator, ∇ℓ_i = 2(f_i − y_i)∇f_i points along ±∇f_i, so the ascent moves f_i
# by about ρ‖∇f_i‖ away from y_i and ℓ_i(θ̃) ≈ ρ²‖∇f_i‖². The **1-SAM sharpness**
#
# S₁(θ) = (1/n) Σ_i [ ℓ_i(θ + ρ g_i/‖g_i‖) − ℓ_i(θ) ],  g_i = ∇ℓ_i(θ),
#
# is therefore ≈ ρ²·(1/n)Σ‖∇f_i‖² = (ρ²/2)·Tr ∇²L by Lemma 4.1: the per-example worst case
# sees the *trace*, while full-batch SAM sees (ρ²/2)·λ_max-like curvature along one
# direction. Write `one_sam_sharpness(model, X, y, rho)` (a float; skip an example whose
# gradient is exactly zero, i.e. count 0 for it). Leave the model unchanged.

# %% flatlab={"function": "one_sam_sharpness", "id": "hw2.one_sam_sharpness", "points": 3, "role": "task", "summary": "return (1/n) sum_i [l_i(theta + rho g_i/||g_i||) - l_i(theta)] with g_i the gradient of the single-example loss l_i = (f(x_i)-y_i)^2"}
def one_sam_sharpness(model, X, y, rho):
    """Mean over examples of the single-example SAM loss increase. X (n, d), y (n,). Returns a float."""
    ### BEGIN SOLUTION
    theta = flatten_params(model).detach().clone()
    total = 0.0
    for i in range(X.shape[0]):
        li = lambda t: mse(functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        g = torch.func.grad(li)(theta)
        if g.norm() > 0:
            total += float(li(theta + rho * g / g.norm()) - li(theta))
    return total / X.shape[0]
    ### END SOLUTION


# %% flatlab={"id": "hw2.one_sam_sharpness", "role": "public_test"}
_X, _y = flatlab.xor_parity(12, 5, seed=0)
_m = flatlab.make_model("bias", 5, 6, seed=1)
_theta = flatten_params(_m).detach().clone()
_s = one_sam_sharpness(_m, _X, _y, 0.05)
assert isinstance(_s, float), f"return a Python float, got {type(_s).__name__}"
assert torch.equal(flatten_params(_m).detach(), _theta), "one_sam_sharpness changed the model's parameters: leave them as they are"
_want = float(np.mean([flatlab.sharpness.sam_sharpness(_m, _X[_i:_i + 1], _y[_i:_i + 1], 0.05) for _i in range(12)]))
assert abs(_s - _want) < 1e-9 * abs(_want), \
    (f"one_sam_sharpness is {_s / _want:.4g}x the mean over examples of ℓ_i(θ + ρ g_i/‖g_i‖) − ℓ_i(θ): use each example's "
     "own unit gradient g_i/‖g_i‖, subtract ℓ_i(θ), and average over the n examples")
# at an interpolator (labels = the net's own outputs) it must be (ρ²/2)·Tr ∇²L for small ρ
_yi = _m(_X).detach() + 1e-12
_ratio = one_sam_sharpness(_m, _X, _yi, 1e-4) / (1e-4**2 / 2 * gauss_newton_trace(_m, _X))
assert abs(_ratio - 1) < 0.01, f"at an interpolator one_sam_sharpness should be ≈ (ρ²/2)·Tr ∇²L, got {_ratio:.3g}x that"
print("hw2.one_sam_sharpness: OK")


# %% flatlab={"id": "hw2.one_sam_sharpness", "role": "hidden_test"}
def _ref_one_sam_sharpness(model, X, y, rho):
    theta = flatlab.models.flatten_params(model).detach().clone()
    out = []
    for i in range(X.shape[0]):
        li = lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        g = torch.func.grad(li)(theta)
        out.append(float(li(theta + rho * g / g.norm()) - li(theta)) if g.norm() > 0 else 0.0)
    return float(np.mean(out))


def test_one_sam_sharpness_value(student, rng):
    """one_sam_sharpness must average, over examples, the increase of the single-example loss after the single-example SAM ascent step."""
    for arch in ("bias", "sim_ln"):
        model, X, y = _case(rng, arch)
        rho = float(rng.uniform(0.01, 0.5))
        assert_close(student.one_sam_sharpness(model, X, y, rho), _ref_one_sam_sharpness(model, X, y, rho), rtol=1e-8, atol=1e-13)


def test_one_sam_sharpness_near_interpolation(student, rng):
    """At an interpolator, one_sam_sharpness(rho) must be close to (rho^2/2) * trace for small rho (labels set to the net's own outputs up to 1e-12)."""
    model, X, _ = _case(rng, "bias", n=int(rng.integers(4, 12)), m=int(rng.integers(4, 16)))
    with torch.no_grad():
        y = model(X) + 1e-12 * torch.as_tensor(rng.choice([-1.0, 1.0], size=X.shape[0]))
    rho = 1e-4
    want = rho**2 / 2 * flatlab.sharpness.gauss_newton_trace(model, X)
    assert_close(student.one_sam_sharpness(model, X, y, rho), want, rtol=0.01)


def test_one_sam_sharpness_model_unchanged(student, rng):
    """one_sam_sharpness must leave the model unchanged (its parameters after the call equal those before) and return the 1-SAM sharpness."""
    model, X, y = _case(rng, "bias")
    rho = float(rng.uniform(0.05, 0.5))
    got, (after, *_) = student.call("one_sam_sharpness", model, X, y, rho, return_args=True)
    _assert_unchanged(model, after, "one_sam_sharpness")
    assert_close(got, _ref_one_sam_sharpness(model, X, y, rho), rtol=1e-8, atol=1e-13)


# %% flatlab={"feedback": "the ascent step is \u03c1\u00b7g_i instead of \u03c1\u00b7g_i/\u2016g_i\u2016: normalize each example's gradient", "id": "hw2.one_sam_sharpness", "name": "not_normalized", "role": "mistake"}
def one_sam_sharpness(model, X, y, rho):
    theta = flatten_params(model).detach().clone()
    total = 0.0
    for i in range(X.shape[0]):
        li = lambda t: mse(functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        g = torch.func.grad(li)(theta)
        total += float(li(theta + rho * g) - li(theta))
    return total / X.shape[0]


# %% flatlab={"feedback": "every example is perturbed along the full-batch gradient; 1-SAM uses each example's own gradient g_i = \u2207\u2113_i(\u03b8)", "id": "hw2.one_sam_sharpness", "name": "full_batch_direction", "role": "mistake"}
def one_sam_sharpness(model, X, y, rho):
    theta = flatten_params(model).detach().clone()
    g = torch.func.grad(lambda t: mse(functional_forward(model, t, X), y))(theta)
    total = 0.0
    for i in range(X.shape[0]):
        li = lambda t: mse(functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        if g.norm() > 0:
            total += float(li(theta + rho * g / g.norm()) - li(theta))
    return total / X.shape[0]


# %% flatlab={"feedback": "the loss at \u03b8 is not subtracted: the sharpness is the increase \u2113_i(\u03b8\u0303) \u2212 \u2113_i(\u03b8), not \u2113_i(\u03b8\u0303)", "id": "hw2.one_sam_sharpness", "name": "no_baseline", "role": "mistake"}
def one_sam_sharpness(model, X, y, rho):
    theta = flatten_params(model).detach().clone()
    total = 0.0
    for i in range(X.shape[0]):
        li = lambda t: mse(functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        g = torch.func.grad(li)(theta)
        if g.norm() > 0:
            total += float(li(theta + rho * g / g.norm()))
    return total / X.shape[0]


# %% flatlab={"feedback": "the per-example increases are summed; S\u2081 is their mean (divide by n)", "id": "hw2.one_sam_sharpness", "name": "sum_not_mean", "role": "mistake"}
def one_sam_sharpness(model, X, y, rho):
    theta = flatten_params(model).detach().clone()
    total = 0.0
    for i in range(X.shape[0]):
        li = lambda t: mse(functional_forward(model, t, X[i:i + 1]), y[i:i + 1])
        g = torch.func.grad(li)(theta)
        if g.norm() > 0:
            total += float(li(theta + rho * g / g.norm()) - li(theta))
    return total


# %% flatlab={"feedback": "the ascent is applied to the model's parameters in place and never undone: the model changes, and every later example is measured at a moved point", "id": "hw2.one_sam_sharpness", "name": "moves_the_model", "role": "mistake"}
def one_sam_sharpness(model, X, y, rho):
    params = list(model.parameters())
    total = 0.0
    for i in range(X.shape[0]):
        loss0 = mse(model(X[i:i + 1]), y[i:i + 1])
        grads = torch.autograd.grad(loss0, params)
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        if norm > 0:
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.add_(rho * g / norm)
                total += float(mse(model(X[i:i + 1]), y[i:i + 1]) - loss0)
    return total / X.shape[0]


# %% [markdown]
# ## 5. Experiment: from a GD interpolator, 1-SAM lowers the trace and GD does not (ungraded)
#
# d = 30, n = 100, a bias net of width 100. Plain GD (no weight decay) first fits the data;
# its test accuracy stays near chance (recall hw0). From that interpolator we continue
# (a) with GD: your `sam_step` with ρ = 0 on the full batch, and (b) with **your**
# `one_sam_epoch` (lr 0.01, ρ = 0.1), tracking the trace (Lemma 4.1), the training loss
# and the test accuracy. Runs in ~30 s.

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
Xtr, ytr = data.X_train, data.y_train
start = flatlab.make_model("bias", 30, 100, seed=0)
for _ in range(600):
    sam_step(start, Xtr, ytr, 0.05, 0.0)


def snapshot(model):
    with torch.no_grad():
        return (gauss_newton_trace(model, Xtr), float(mse(model(Xtr), ytr)),
                flatlab.accuracy(model(data.X_test), data.y_test))


print("GD interpolator: trace %.1f, train loss %.1e, test acc %.3f" % snapshot(start))
runs = {}
gen = torch.Generator().manual_seed(0)
for name in ("GD", "1-SAM"):
    model = flatlab.models.model_from_config(start.config, get_params(start))
    rows = [snapshot(model)]
    t0 = time.perf_counter()
    for epoch in range(20):
        if name == "GD":
            sam_step(model, Xtr, ytr, 0.01, 0.0)
        else:
            one_sam_epoch(model, Xtr, ytr, 0.01, 0.1, torch.randperm(100, generator=gen).tolist())
        rows.append(snapshot(model))
    runs[name] = (np.array(rows), model)
    print(f"{name}: 20 epochs in {time.perf_counter() - t0:.1f} s, trace {rows[0][0]:.1f} -> {rows[-1][0]:.1f}")

# %% [markdown]
# Your 1-SAM takes a few milliseconds per step. `flatlab.train.engine.one_sam` runs the same
# update with a hand-derived kernel (~100× faster). We first check that it agrees with your
# implementation on one epoch, then use it to follow 1-SAM for 3,000 epochs (3·10⁵ steps).

# %% flatlab={"role": "experiment"}
from flatlab.train import engine

order = torch.randperm(100, generator=torch.Generator().manual_seed(1)).tolist()
mine = flatlab.models.model_from_config(start.config, get_params(start))
one_sam_epoch(mine, Xtr, ytr, 0.01, 0.1, order)
fast = {k: v.numpy().copy() for k, v in get_params(start).items()}
engine.one_sam(fast, "bias", Xtr.numpy(), ytr.numpy(), np.array(order), 0.01, 0.1)
print("max |engine - yours| after one epoch:",
      max(float(np.abs(fast[k] - v.detach().numpy()).max()) for k, v in mine.named_parameters()))

fast = {k: v.numpy().copy() for k, v in get_params(start).items()}
rs = np.random.default_rng(0)
long_rows, long_epochs = [snapshot(start)], [0]
t0 = time.perf_counter()
for target in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 3000):
    order = np.concatenate([rs.permutation(100) for _ in range(target - long_epochs[-1])])
    engine.one_sam(fast, "bias", Xtr.numpy(), ytr.numpy(), order, 0.01, 0.1)
    long_rows.append(snapshot(flatlab.models.model_from_config(start.config, fast)))
    long_epochs.append(target)
long_rows = np.array(long_rows)
print(f"3000 epochs of 1-SAM with the engine: {time.perf_counter() - t0:.1f} s")

bound = flatlab.sharpness.bias_trace_lower_bound(30)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
color = {"GD": COLORS.get("gd", "#7f7f7f"), "1-SAM": COLORS["one_sam"]}  # the course's method colours
for name, (rows, _) in runs.items():
    axes[0].plot(rows[:, 0], "o-", color=color[name], label=name)
axes[0].axhline(bound, color="k", ls=":", label="4·sqrt(d+1)")
axes[0].set(xlabel="epoch (your implementation)", ylabel="Tr ∇²L", title="20 epochs from a GD interpolator")
axes[1].semilogx(np.array(long_epochs) + 1, long_rows[:, 0], "o-", color=color["1-SAM"], label="1-SAM (engine)")
axes[1].axhline(bound, color="k", ls=":", label="4·sqrt(d+1)")
axes[1].set(xlabel="epoch + 1", ylabel="Tr ∇²L", title="3000 epochs of 1-SAM")
axes[2].semilogx(np.array(long_epochs) + 1, long_rows[:, 2], "o-", color=color["1-SAM"], label="1-SAM test acc")
axes[2].axhline(runs["GD"][0][-1, 2], color=color["GD"], ls="--", label="GD test acc")
axes[2].set(xlabel="epoch + 1", ylabel="test accuracy", ylim=(0.4, 1.02), title="test accuracy")
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# **Does this contradict hw4?** hw4 (scenario II) shows 1-SAM generalizing much worse than
# GD with weight decay on this same bias architecture, yet here 1-SAM's test accuracy
# climbs far above GD's. The two experiments are not the same run: here the net has width
# 100 and 1-SAM starts from a GD interpolator and runs 3,000 epochs; hw4 trains a width-500
# net from its initialization for 6,000 epochs, and there 1-SAM's test accuracy peaks near
# 0.7 and then declines while its trace sits at the floor 4·sqrt(d+1). The two runs differ
# in width, starting point and length: scenario II's failure shows up in the wide net trained
# long, and this narrow, short run does not show it. What both notebooks agree on is the
# trace: 1-SAM drives it down towards 4·sqrt(d+1). hw4 then
# shows that a trace at that floor does not decide generalization: a memorizing network
# (test accuracy 0) reaches the same minimum. So the accuracy you see here is a property of
# this run, not evidence that low trace implies generalization on bias nets.

# %% [markdown]
# ### The 1-SAM sharpness is half ρ² times the trace
# The relation holds *at* interpolators. We check it at the GD interpolator and at the
# 1-SAM solution after 3000 epochs, polished to interpolation by 20,000 full-batch GD steps
# (engine)
# (which barely move the trace). The full-batch SAM sharpness is a different quantity.

# %% flatlab={"role": "experiment"}
polished_params = {k: v.copy() for k, v in fast.items()}
engine.gd(polished_params, "bias", Xtr.numpy(), ytr.numpy(), 20000, 0.05)
polished = flatlab.models.model_from_config(start.config, polished_params)
rho = 0.01
for name, model in (("GD interpolator", start), ("1-SAM (3000 ep.) + GD polish", polished)):
    tr, loss = gauss_newton_trace(model, Xtr), float(mse(model(Xtr), ytr).detach())
    s1 = one_sam_sharpness(model, Xtr, ytr, rho)
    sfull = flatlab.sharpness.sam_sharpness(model, Xtr, ytr, rho)
    print(f"{name:30s} loss {loss:.1e} trace {tr:7.2f}   1-SAM sharpness/(ρ²Tr/2) = {s1 / (rho**2 / 2 * tr):.3f}"
          f"   full-batch SAM/(ρ²Tr/2) = {sfull / (rho**2 / 2 * tr):.3f}")

# %% [markdown] flatlab={"id": "hw2.q_why_drift", "points": 3, "role": "manual"}
# **Question.** Explain, using your measurements, why full-batch GD stays at its
# interpolator while 1-SAM moves, and what 1-SAM moves towards. Use the relation between
# `one_sam_sharpness` and the trace. What happened to the test accuracy here, and does
# that already tell you whether "low trace ⇒ generalization" holds for this architecture
# (hint: hw4)?
#
# <!-- BEGIN SOLUTION -->
# At an interpolator every ℓ_i and the full-batch gradient vanish, so GD's update is zero
# and its trace stays at ~138 (flat line). 1-SAM evaluates each example's gradient at a
# perturbed point θ + ρĝ_i, where the residual is ≈ ±ρ‖∇f_i‖; the resulting update is a
# gradient step on ≈ ρ²‖∇f_i‖² (the per-example SAM loss), i.e. on the 1-SAM sharpness, which
# the measurement shows equals (ρ²/2)·Tr ∇²L (ratio 1.00) at interpolators
# (the full-batch SAM sharpness is a different, much smaller number: it sees one direction).
# So 1-SAM descends the trace while staying near the interpolating set: 138 → ~39 in 20
# epochs and down to ≈ 4·sqrt(31) ≈ 22.3, the minimum over interpolators, after a few
# thousand. In this run the test accuracy also rose, but that does not settle the question:
# hw4 builds an interpolator with exactly the minimal trace that memorizes (test accuracy 0)
# and shows 1-SAM from scratch at width 500 generalizing worse than GD+wd, so for the bias
# net a low trace does not imply generalization.
# <!-- END SOLUTION -->
