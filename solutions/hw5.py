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
# ## 1. Where the trace of a Sim-LN net comes from
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
_X, _y = flatlab.xor_parity(12, 6, seed=0)
_m = flatlab.make_model("sim_ln", 6, 8, seed=1)
_P = sim_ln_grad_parts(_m.W1.detach(), _m.b1.detach(), _m.W2.detach(), _X)
assert _P.shape == (12, 2) and bool((_P[:, 0] <= 1 + 1e-12).all()), "the output-layer part is 1 (0 if every neuron is dead)"
torch.testing.assert_close(_P.sum(1), flatlab.sharpness.per_example_grad_sq_norms(_m, _X))
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


def test_grad_parts_random(student, rng):
    """sim_ln_grad_parts must match autograd's per-example gradient norms of the W2 block and of the (W1, b1) block."""
    model, X, _ = _ln_case(rng)
    X = X * torch.as_tensor(rng.uniform(0.5, 2.0, size=(X.shape[0], 1)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.sim_ln_grad_parts(p["W1"], p["b1"], p["W2"], X, 1e-6)
    assert_close(np.asarray(got, dtype=float), _autograd_parts(model, X), rtol=1e-8, atol=1e-12)


def test_grad_parts_eps_branch(student, rng):
    """sim_ln_grad_parts must handle inputs with ||h|| <= eps (f = W2.h/eps there), matching autograd."""
    model, X, _ = _ln_case(rng, eps=0.5)
    with torch.no_grad():
        model.W1.mul_(0.01)
        model.b1.copy_(torch.as_tensor(rng.uniform(0.001, 0.01, size=model.config.width)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.sim_ln_grad_parts(p["W1"], p["b1"], p["W2"], X, 0.5)
    assert_close(np.asarray(got, dtype=float), _autograd_parts(model, X), rtol=1e-8, atol=1e-12)


# %% [markdown]
# ## 2. Flatness by scaling, for free
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
_c = flatness_scale(_m.W1.detach(), _m.b1.detach(), _m.W2.detach(), _X, 0.01)
_big = sim_ln_net({"W1": _c * _m.W1.detach(), "b1": _c * _m.b1.detach(), "W2": _m.W2.detach()})
torch.testing.assert_close(_big(_X), _m(_X).detach())
assert abs(gauss_newton_trace(_big, _X) - (2 * float(_P[:, 0].mean()) + 0.01)) < 1e-6
print("hw5.flatness_scale: OK")


# %% flatlab={"id": "hw5.flatness_scale", "role": "hidden_test"}
def test_flatness_scale_reaches_target(student, rng):
    """After scaling (W1, b1) by flatness_scale(...), the Gauss-Newton trace must equal 2*mean(output part) + tol and f must be unchanged."""
    model, X, _ = _ln_case(rng)
    tol = float(np.exp(rng.uniform(np.log(1e-4), np.log(1.0))))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    c = float(student.flatness_scale(p["W1"], p["b1"], p["W2"], X, tol))
    big = flatlab.models.set_params(flatlab.make_model("sim_ln", model.config.d, model.config.width, seed=0),
                                    {"W1": p["W1"] * c, "b1": p["b1"] * c, "W2": p["W2"]})
    floor = 2.0 * float(_autograd_parts(model, X)[:, 0].mean())
    assert_close(flatlab.sharpness.gauss_newton_trace(big, X), floor + tol, rtol=1e-7)
    with torch.no_grad():
        assert_close(big(X), model(X), rtol=1e-9, atol=1e-12)


# %% [markdown]
# ## 3. Two flattest interpolators
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
_Xb, _yb = flatlab.xor_parity(60, 30, seed=0)
_Xn, _ = flatlab.xor_parity(100, 30, seed=9)
_mem = sim_ln_net(sim_ln_memorizer(_Xb, _yb, 0.1))
assert (_mem(_Xb) - _yb).abs().max() < 1e-10 and abs(gauss_newton_trace(_mem, _Xb) - 2.0) < 1e-10
assert _mem(_Xn).abs().max() == 0, "must output exactly 0 away from the training points"
print("hw5.memorizer: OK")

# %% flatlab={"id": "hw5.generalizer", "role": "public_test"}
_gen = sim_ln_net(sim_ln_generalizer(30, 6))
assert (_gen(_Xb) - _yb).abs().max() < 1e-10 and abs(gauss_newton_trace(_gen, _Xb) - 2.0) < 1e-10
assert (_gen(_Xn) - _Xn[:, 0] * _Xn[:, 1]).abs().max() < 1e-12
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


def test_memorizer_interpolates_flat(student, rng):
    """sim_ln_memorizer must interpolate arbitrary real labels with exact trace 2 (checked with the exact autograd Hessian on a small case)."""
    d = int(rng.integers(4, 8))
    X, _ = flatlab.xor_parity(int(rng.integers(3, 8)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = torch.as_tensor(rng.uniform(0.2, 2.0, size=X.shape[0]) * rng.choice([-1.0, 1.0], size=X.shape[0]))
    model = _ln_net(student.sim_ln_memorizer(X, y, 0.5 / np.sqrt(d)))
    with torch.no_grad():
        assert_close(model(X), y, rtol=1e-9, atol=1e-10)
    assert_close(_exact_trace(model, X, y), 2.0, rtol=1e-8)


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
        assert float(model(Z[unseen]).abs().max()) == 0.0


# %% flatlab={"id": "hw5.generalizer", "role": "hidden_test"}
def test_generalizer_xor_and_flat(student, rng):
    """sim_ln_generalizer(d, width) must compute x[0]*x[1] on the hypercube with the requested width, and have trace 2 on any training set."""
    d, width = int(rng.integers(2, 40)), int(rng.integers(4, 16))
    params = student.sim_ln_generalizer(d, width)
    assert np.asarray(params["W1"]).shape == (width, d)
    model = _ln_net(params)
    Z, _ = flatlab.xor_parity(300, d, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        assert_close(model(Z), Z[:, 0] * Z[:, 1], rtol=1e-10, atol=1e-12)
    assert_close(flatlab.sharpness.gauss_newton_trace(model, Z[:50]), 2.0, rtol=1e-10)


# %% [markdown]
# ## 4. Projected SAM
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
_m1 = flatlab.make_model("sim_ln", 6, 8, seed=1)
_m2 = flatlab.make_model("sim_ln", 6, 8, seed=1)
projected_sam_step(_m1, _X[:1], _y[:1], 0.05, 0.1, 3.0)
flatlab.train.reference.one_sam_epoch(_m2, _X, _y, 0.05, 0.1, [0], project_norm=3.0)
torch.testing.assert_close(flatlab.flatten_params(_m1), flatlab.flatten_params(_m2))
print("hw5.projected_step: OK")


# %% flatlab={"id": "hw5.projected_step", "role": "hidden_test"}
def test_projected_step_matches(student, rng):
    """projected_sam_step must take one SAM step on the batch and then rescale (W1, b1) jointly to Frobenius norm R."""
    model, X, y = _ln_case(rng, n=int(rng.integers(1, 6)))
    lr, rho, R = float(rng.uniform(0.01, 0.2)), float(rng.uniform(0.01, 1.0)), float(rng.uniform(0.5, 20))
    loss0, (after, *_) = student.call("projected_sam_step", model, X, y, lr, rho, R, return_args=True)
    ref = flatlab.models.model_from_config(model.config, flatlab.models.get_params(model))
    flatlab.train.reference.minibatch_epoch(ref, X, y, lr, rho, list(range(X.shape[0])), batch_size=X.shape[0], project_norm=R)
    got = after["params"] if isinstance(after, dict) else dict(after.named_parameters())
    for k, v in ref.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), v.detach(), rtol=1e-8, atol=1e-12)
    with torch.no_grad():
        assert_close(loss0, float(flatlab.mse(model(X), y)), rtol=1e-10, atol=1e-14)


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
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, (tr, _, acc) in summary.items():
    excess = max(tr - 2.0, 0.0)
    axes[0].scatter(excess, acc, s=60)
    axes[0].annotate(name, (excess, acc), textcoords="offset points", xytext=(6, -12 if "projected" in name else 4), fontsize=9)
axes[0].set_xscale("symlog", linthresh=1e-3)
axes[0].set(xlabel="Tr ∇²L − 2 (excess over the floor; symlog)", ylabel="test accuracy", ylim=(-0.05, 1.08),
            xlim=(-2e-4, 50), title="flattest does not mean generalizing")
for name, h in histories.items():
    axes[1].plot(h.epoch, h.test_acc, "o-", ms=3, label=name)
axes[1].set(xlabel="epoch", ylabel="test accuracy", ylim=(0.4, 1.02), title="training runs")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown] flatlab={"id": "hw5.q_scenario3", "points": 3, "role": "manual"}
# **Question.** Read the left plot. Which models are (nearly) flattest, and what are their
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
# **Closing reflection (about 200 words).** Put the three scenarios side by side (hw3,
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
