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
from flatlab.sharpness import gauss_newton_trace

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# %% [markdown]
# ## 1. The SAM perturbation
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
_d = sam_perturbation(_m, _X, _y, 0.3)
assert _d.shape == flatten_params(_m).shape and abs(float(_d.norm()) - 0.3) < 1e-12
_theta = flatten_params(_m).detach()
assert mse(functional_forward(_m, _theta + _d, _X), _y) > mse(functional_forward(_m, _theta - _d, _X), _y), "δ must point uphill"
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


def test_sam_perturbation_value(student, rng):
    """sam_perturbation must return rho * g / ||g|| for the full-batch MSE gradient g, flattened in flatten_params order."""
    for arch in ("bias", "sim_ln"):
        model, X, y = _case(rng, arch)
        rho = float(rng.uniform(0.01, 2.0))
        theta = flatlab.models.flatten_params(model).detach().clone().requires_grad_(True)
        g = torch.autograd.grad(flatlab.mse(flatlab.models.functional_forward(model, theta, X), y), theta)[0]
        assert_close(student.sam_perturbation(model, X, y, rho), rho * g / g.norm(), rtol=1e-9, atol=1e-13)


def test_sam_perturbation_zero_gradient(student, rng):
    """sam_perturbation must return a zero vector (not NaN) when the gradient is zero, e.g. when every neuron is dead."""
    model, X, y = _case(rng, "bias")
    with torch.no_grad():
        model.b1.fill_(-100.0)
    got = np.asarray(student.sam_perturbation(model, X, y, 0.1), dtype=float)
    assert got.shape == (flatlab.models.flatten_params(model).numel(),) and np.all(got == 0)


# %% [markdown]
# ## 2. One SAM step
#
# Write `sam_step(model, X, y, lr, rho)`: compute δ at θ, the gradient of the loss at θ + δ,
# restore θ and take θ ← θ − lr·∇L(θ + δ), in place. Return the loss at θ (before the step)
# as a float. (With rho = 0 this is a plain gradient step.)

# %% flatlab={"forbid": ["flatlab.train.reference.minibatch_epoch", "flatlab.train.reference.one_sam_epoch", "flatlab.train.reference.SAM", "flatlab.train.engine.one_sam"], "function": "sam_step", "id": "hw2.sam_step", "points": 3, "role": "task", "summary": "in place: theta <- theta - lr * grad L(theta + delta) with delta = sam_perturbation; return L(theta) before the step"}
def sam_step(model, X, y, lr, rho):
    """One SAM step on the batch (X (b, d), y (b,)), in place. Returns the batch loss before the step."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    with torch.no_grad():
        loss0 = float(mse(model(X), y))
    delta = sam_perturbation(model, X, y, rho)
    theta = flatten_params(model).detach().clone()
    perturbed = torch.func.grad(lambda t: mse(functional_forward(model, t, X), y))(theta + delta)
    with torch.no_grad():
        i = 0
        for p in params:
            k = p.numel()
            p.sub_(lr * perturbed[i:i + k].view_as(p))
            i += k
    return loss0
    ### END SOLUTION


# %% flatlab={"id": "hw2.sam_step", "role": "public_test"}
_m = flatlab.make_model("bias", 5, 6, seed=1)
_ref = flatlab.make_model("bias", 5, 6, seed=1)
_l0 = sam_step(_m, _X, _y, 0.1, 0.05)
flatlab.train.reference.minibatch_epoch(_ref, _X, _y, 0.1, 0.05, list(range(12)), batch_size=12)
torch.testing.assert_close(flatten_params(_m), flatten_params(_ref))
assert abs(_l0 - float(mse(_ref(_X), _y).detach())) > 0, "return the loss before the step"
print("hw2.sam_step: OK")


# %% flatlab={"id": "hw2.sam_step", "role": "hidden_test"}
def _reference_sam(model, X, y, lr, rho, batch_size, order):
    ref = flatlab.models.model_from_config(model.config, flatlab.models.get_params(model),
                                           X_ref=getattr(model, "reference", None))
    flatlab.train.reference.minibatch_epoch(ref, X, y, lr, rho, order, batch_size=batch_size)
    return ref


def test_sam_step_full_batch(student, rng):
    """sam_step must update the model in place to theta - lr * grad L(theta + rho g/||g||) (full batch) and return L(theta) before the step."""
    for arch in ("bias", "sim_bn"):
        model, X, y = _case(rng, arch)
        lr, rho = float(rng.uniform(0.01, 0.2)), float(rng.uniform(0.01, 0.5))
        loss0, (after, *_) = student.call("sam_step", model, X, y, lr, rho, return_args=True)
        ref = _reference_sam(model, X, y, lr, rho, X.shape[0], list(range(X.shape[0])))
        got = _params_after(after)
        for k, v in ref.named_parameters():
            assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12)
        with torch.no_grad():
            assert_close(loss0, float(flatlab.mse(model(X), y)), rtol=1e-10, atol=1e-14)


def test_sam_step_rho_zero_is_gd(student, rng):
    """sam_step with rho = 0 must be one plain gradient step."""
    model, X, y = _case(rng, "no_bias")
    lr = float(rng.uniform(0.01, 0.2))
    _, (after, *_) = student.call("sam_step", model, X, y, lr, 0.0, return_args=True)
    ref = _reference_sam(model, X, y, lr, 0.0, X.shape[0], list(range(X.shape[0])))
    got = _params_after(after)
    for k, v in ref.named_parameters():
        assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12)


# %% [markdown]
# ## 3. One epoch of 1-SAM
#
# Write `one_sam_epoch(model, X, y, lr, rho, order)`: for each index i in `order` (a list, a
# permutation of range(n)), one SAM step on the single example (X[i:i+1], y[i:i+1]). In place.
# Return the mean of the per-step losses (each measured before its step).

# %% flatlab={"forbid": ["flatlab.train.reference.minibatch_epoch", "flatlab.train.reference.one_sam_epoch", "flatlab.train.reference.SAM", "flatlab.train.engine.one_sam"], "function": "one_sam_epoch", "id": "hw2.one_sam_epoch", "points": 3, "role": "task", "summary": "for i in order: sam_step on the single example (X[i:i+1], y[i:i+1]); return the mean of the returned losses"}
def one_sam_epoch(model, X, y, lr, rho, order):
    """1-SAM over the examples in `order`, in place. Returns the mean per-step loss (a float)."""
    ### BEGIN SOLUTION
    losses = [sam_step(model, X[i:i + 1], y[i:i + 1], lr, rho) for i in (int(j) for j in order)]
    return float(np.mean(losses))
    ### END SOLUTION


# %% flatlab={"id": "hw2.one_sam_epoch", "role": "public_test"}
_m = flatlab.make_model("bias", 5, 6, seed=1)
_ref = flatlab.make_model("bias", 5, 6, seed=1)
_order = [3, 1, 0, 2, 5, 4, 7, 6, 9, 8, 11, 10]
one_sam_epoch(_m, _X, _y, 0.05, 0.1, _order)
flatlab.train.reference.one_sam_epoch(_ref, _X, _y, 0.05, 0.1, _order)
torch.testing.assert_close(flatten_params(_m), flatten_params(_ref))
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
            assert_close(got[k], v.detach(), rtol=1e-8, atol=1e-12)


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
    assert_close(got, float(np.mean(losses)), rtol=1e-8, atol=1e-14)


# %% [markdown]
# ## 4. What 1-SAM penalizes
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
_m = flatlab.make_model("bias", 5, 6, seed=1)
_s = one_sam_sharpness(_m, _X, _y, 0.05)
assert _s > 0
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


# %% [markdown]
# ## 5. Experiment: from a GD interpolator, 1-SAM lowers the trace and GD does not
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
for name, (rows, _) in runs.items():
    axes[0].plot(rows[:, 0], "o-", label=name)
axes[0].axhline(bound, color="k", ls=":", label="4·sqrt(d+1)")
axes[0].set(xlabel="epoch (your implementation)", ylabel="Tr ∇²L", title="20 epochs from a GD interpolator")
axes[1].semilogx(np.array(long_epochs) + 1, long_rows[:, 0], "o-", color="C1", label="1-SAM (engine)")
axes[1].axhline(bound, color="k", ls=":", label="4·sqrt(d+1)")
axes[1].set(xlabel="epoch + 1", ylabel="Tr ∇²L", title="3000 epochs of 1-SAM")
axes[2].semilogx(np.array(long_epochs) + 1, long_rows[:, 2], "o-", color="C1", label="1-SAM test acc")
axes[2].axhline(runs["GD"][0][-1, 2], color="C0", ls="--", label="GD test acc")
axes[2].set(xlabel="epoch + 1", ylabel="test accuracy", ylim=(0.4, 1.02), title="test accuracy")
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

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
