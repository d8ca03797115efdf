# ---
# jupyter:
#   flatlab:
#     assignment: hw1
#     title: Measuring sharpness
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw1 · Measuring sharpness
#
# The paper's sharpness is the **trace of the Hessian** of the training loss,
# Tr ∇²L(θ), with L(θ) = (1/n) Σ_i (f_θ(x_i) − y_i)². You will compute it five ways and
# learn what each costs and when two of them agree:
#
# 1. exactly, from the full autograd Hessian (small models only);
# 2. by Hutchinson's estimator with a standard error (any size, only Hessian-vector products);
# 3. by **Lemma 4.1**: at an interpolating θ, Tr ∇²L = (2/n) Σ_i ‖∇_θ f(x_i)‖² — and you
#    will see where this stops holding;
# 4. its cousin, the top eigenvalue λ_max, by power iteration on Hessian-vector products;
# 5. the worst-case (SAM) sharpness max_{‖δ‖≤ρ} L(θ+δ) − L(θ), one ascent step.
#
# Finally you will rescale a network so that its function does not change while its
# sharpness does: sharpness is a property of the parameters, not of the function.
#
# Tools: `flatlab.models.flatten_params(model)` gives θ as one vector (p,),
# `flatlab.models.functional_forward(model, theta, X)` evaluates f with a given θ (autograd
# flows through θ), `torch.func.hessian`, `torch.autograd.grad(..., create_graph=True)`.
# All losses here are the MSE. Estimated time: 3 hours.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.losses import mse
from flatlab.models import flatten_params, functional_forward, get_params, set_params

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def loss_of_theta(model, X, y):
    """L as a function of the flat parameter vector θ (p,): theta -> mse(f_theta(X), y)."""
    return lambda theta: mse(functional_forward(model, theta, X), y)


# %% [markdown]
# ## 1. The exact trace
#
# Write `hessian_trace_exact(model, X, y)`: build the full Hessian of L with respect to θ
# (p × p) with autograd and return its trace as a float. This costs p Hessian-vector
# products and p² memory: fine for a few thousand parameters, hopeless for the paper's
# 16,000 (2 GB, ~20 s).

# %% flatlab={"forbid": ["flatlab.sharpness.hessian_trace", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms"], "function": "hessian_trace_exact", "id": "hw1.trace_exact", "points": 4, "role": "task", "summary": "return the trace of the autograd Hessian of the MSE loss w.r.t. the flat parameters"}
def hessian_trace_exact(model, X, y):
    """Tr ∇²L(θ) for L = mse(model(X), y), from the full autograd Hessian. X (n, d), y (n,). Returns a float."""
    ### BEGIN SOLUTION
    theta = flatten_params(model).detach().clone()
    H = torch.func.hessian(loss_of_theta(model, X, y))(theta)
    return float(torch.diagonal(H).sum())
    ### END SOLUTION


# %% flatlab={"id": "hw1.trace_exact", "role": "public_test"}
_X, _y = flatlab.xor_parity(10, 4, seed=0)
for _arch in ("no_bias", "bias", "sim_ln"):
    _m = flatlab.make_model(_arch, 4, 5, seed=1)
    _want = flatlab.sharpness.hessian_trace(_m, _X, _y, method="exact")
    assert abs(hessian_trace_exact(_m, _X, _y) - _want) < 1e-8 * max(1, abs(_want)), _arch
print("hw1.trace_exact: OK")


# %% flatlab={"id": "hw1.trace_exact", "role": "hidden_test"}
def _exact_trace(model, X, y):
    """Reference Tr of the autograd Hessian, reverse-over-reverse (no forward-mode AD: thread-safe)."""
    theta = flatlab.models.flatten_params(model).detach().clone()
    loss = lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y)
    return float(torch.diagonal(torch.autograd.functional.hessian(loss, theta)).sum())


def _small_case(rng, arch, n=None, d=None, m=None):
    n = int(rng.integers(4, 16)) if n is None else n
    d = int(rng.integers(2, 6)) if d is None else d
    m = int(rng.integers(2, 7)) if m is None else m
    seed = int(rng.integers(2**31))
    X, y = flatlab.xor_parity(n, d, seed=seed)
    kw = {"X_ref": X} if arch == "sim_bn" else {}
    model = flatlab.make_model(arch, d, m, seed=seed + 1, **kw)
    return model, X, y


def test_trace_exact_relu_nets(student, rng):
    """hessian_trace_exact must equal the exact Hessian trace on random no-bias and bias nets."""
    for arch in ("no_bias", "bias"):
        model, X, y = _small_case(rng, arch)
        want = _exact_trace(model, X, y)
        assert_close(student.hessian_trace_exact(model, X, y), want, rtol=1e-7, atol=1e-10)


def test_trace_exact_normalized_nets(student, rng):
    """hessian_trace_exact must include every second derivative, e.g. through Sim-LN's normalization and Sim-BN's training statistic."""
    for arch in ("sim_ln", "sim_bn"):
        model, X, y = _small_case(rng, arch)
        want = _exact_trace(model, X, y)
        assert_close(student.hessian_trace_exact(model, X, y), want, rtol=1e-7, atol=1e-10)


# %% [markdown]
# ## 2. Hutchinson's estimator
#
# For a random vector z with E[z zᵀ] = I, E[zᵀ H z] = Tr H. With **Rademacher** probes
# (entries ±1 with probability ½) the variance is 2 Σ_{i≠j} H_ij², smaller than with Gaussian
# probes. Each zᵀHz needs one Hessian-vector product, which double backpropagation gives
# without forming H: Hz = ∇_θ (∇_θ L · z).
#
# Write `hutchinson_trace(model, X, y, n_probes, seed)`: draw `n_probes` Rademacher vectors
# from `torch.Generator().manual_seed(seed)`, return `(estimate, stderr)` where estimate is the
# mean of the zᵀHz and stderr = (sample standard deviation)/sqrt(n_probes).

# %% flatlab={"forbid": ["flatlab.sharpness.hessian_trace", "flatlab.sharpness.hvp"], "function": "hutchinson_trace", "id": "hw1.hutchinson", "points": 3, "role": "task", "summary": "average z^T H z over n_probes seeded Rademacher probes (Hessian-vector products by double backprop); return (mean, std/sqrt(n_probes))"}
def hutchinson_trace(model, X, y, n_probes, seed):
    """Hutchinson estimate of Tr ∇²L with Rademacher probes. Returns (estimate, stderr) as floats."""
    ### BEGIN SOLUTION
    g = torch.Generator().manual_seed(int(seed))
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    vals = []
    for _ in range(int(n_probes)):
        z = torch.randint(0, 2, theta.shape, generator=g).to(theta.dtype) * 2 - 1
        Hz = torch.autograd.grad(grad, theta, z, retain_graph=True)[0]
        vals.append(float(z @ Hz))
    vals = torch.tensor(vals)
    return float(vals.mean()), float(vals.std() / math.sqrt(len(vals)))
    ### END SOLUTION


# %% flatlab={"id": "hw1.hutchinson", "role": "public_test"}
_m = flatlab.make_model("bias", 4, 5, seed=1)
_est, _se = hutchinson_trace(_m, _X, _y, 200, seed=0)
_exact = flatlab.sharpness.hessian_trace(_m, _X, _y, method="exact")
assert _se > 0 and abs(_est - _exact) < 5 * _se, (_est, _se, _exact)
assert hutchinson_trace(_m, _X, _y, 200, seed=0) == (_est, _se), "the same seed must give the same estimate"
print("hw1.hutchinson: OK")


# %% flatlab={"id": "hw1.hutchinson", "role": "hidden_test"}
def test_hutchinson_unbiased(student, rng):
    """hutchinson_trace must be unbiased: with 300 probes the estimate should lie within 5 standard errors of the exact trace."""
    model, X, y = _small_case(rng, "bias")
    est, se = student.hutchinson_trace(model, X, y, 300, int(rng.integers(2**31)))
    exact = _exact_trace(model, X, y)
    assert se > 0 and abs(est - exact) <= 5 * se + 1e-9 * abs(exact)


def test_hutchinson_stderr(student, rng):
    """hutchinson_trace's stderr must be the standard error of the mean of Rademacher probes, std/sqrt(n_probes) (compared with a trusted estimate on the same problem)."""
    model, X, y = _small_case(rng, "sim_ln", m=6)
    k = 250
    est, se = student.hutchinson_trace(model, X, y, k, int(rng.integers(2**31)))
    ref = flatlab.sharpness.hessian_trace(model, X, y, method="hutchinson", n_probes=k, seed=int(rng.integers(2**31)))
    assert 0.6 < se / ref.stderr < 1.6, f"your stderr is about {se / ref.stderr:.1f}x a trusted estimate's; expected 0.6x to 1.6x"


def test_hutchinson_seeded(student, rng):
    """hutchinson_trace must draw its probes from the given seed: same seed, same result; another seed, another result."""
    model, X, y = _small_case(rng, "no_bias")
    seed = int(rng.integers(2**30))
    a = student.hutchinson_trace(model, X, y, 5, seed)
    b = student.hutchinson_trace(model, X, y, 5, seed)
    c = student.hutchinson_trace(model, X, y, 5, seed + 1)
    assert list(a) == list(b) and list(a) != list(c)


# %% [markdown]
# ## 3. Lemma 4.1: the trace from per-example gradients
#
# ∇²L = (2/n) Σ_i ∇f_i ∇f_iᵀ + (2/n) Σ_i (f_i − y_i) ∇²f_i. The first term is the
# Gauss-Newton matrix; its trace is (2/n) Σ_i ‖∇_θ f(x_i)‖². At an interpolating θ the
# residuals f_i − y_i vanish and **the trace is the Gauss-Newton trace** (Lemma 4.1). For
# ReLU nets without normalization Tr ∇²f_i = 0 almost everywhere (f is piecewise linear in
# each layer), so the two agree even away from interpolation; for Sim-LN and Sim-BN they
# differ until the net interpolates.
#
# Write `gauss_newton_trace(model, X)`: (2/n) Σ_i ‖∇_θ f(x_i)‖², with per-example gradients
# (a loop over examples, or `torch.func.vmap` of `torch.func.grad`). For a Sim-BN model,
# f(x_i) depends on θ also through the statistic of the training inputs; differentiate
# through it (calling the model does this for you).

# %% flatlab={"forbid": ["flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms", "flatlab.sharpness.hessian_trace", "flatlab._closed_form.grad_sq_norms", "flatlab._closed_form.gauss_newton_trace_closed"], "function": "gauss_newton_trace", "id": "hw1.gn_trace", "points": 3, "role": "task", "summary": "return (2/n) * sum_i ||grad_theta f(x_i)||^2 from per-example gradients"}
def gauss_newton_trace(model, X):
    """Lemma 4.1's (2/n) Σ_i ‖∇_θ f(x_i)‖² for X (n, d). Returns a float."""
    ### BEGIN SOLUTION
    theta = flatten_params(model).detach().clone()
    f_one = lambda t, x: functional_forward(model, t, x[None])[0]
    J = torch.func.vmap(torch.func.grad(f_one), in_dims=(None, 0))(theta, X)  # (n, p)
    return float(2.0 * J.pow(2).sum(1).mean())
    ### END SOLUTION


# %% flatlab={"id": "hw1.gn_trace", "role": "public_test"}
_m = flatlab.make_model("bias", 4, 5, seed=1)
assert abs(gauss_newton_trace(_m, _X) - hessian_trace_exact(_m, _X, _y)) < 1e-8, "for a ReLU bias net GN = exact"
_m = flatlab.make_model("sim_ln", 4, 5, seed=1)
assert abs(gauss_newton_trace(_m, _X) - flatlab.sharpness.gauss_newton_trace(_m, _X)) < 1e-8
print("hw1.gn_trace: OK")


# %% flatlab={"id": "hw1.gn_trace", "role": "hidden_test"}
def test_gn_trace_equals_exact_for_relu(student, rng):
    """For a ReLU net without normalization, gauss_newton_trace must equal the exact trace (the second-order term of f vanishes)."""
    model, X, y = _small_case(rng, "bias", n=int(rng.integers(4, 40)), d=int(rng.integers(2, 12)), m=int(rng.integers(2, 30)))
    assert_close(student.gauss_newton_trace(model, X), flatlab.sharpness.gauss_newton_trace(model, X), rtol=1e-8, atol=1e-12)


def test_gn_trace_normalized(student, rng):
    """gauss_newton_trace must use the full per-example gradient of f, including the paths through Sim-LN's norm and Sim-BN's training statistic."""
    for arch in ("sim_ln", "sim_bn"):
        model, X, y = _small_case(rng, arch, m=int(rng.integers(2, 12)))
        assert_close(student.gauss_newton_trace(model, X), flatlab.sharpness.gauss_newton_trace(model, X), rtol=1e-8, atol=1e-12)


# %% [markdown]
# ## 4. The top eigenvalue by power iteration
#
# λ_max(∇²L) is the other common sharpness (the "edge of stability" literature uses it).
# Power iteration repeats v ← Hv/‖Hv‖ and reports the Rayleigh quotient vᵀHv; it finds the
# eigenvalue of largest magnitude, which near a minimum is λ_max.
#
# Write `top_eigenvalue_power(model, X, y, n_iter, seed)`: start from a unit Gaussian vector
# drawn from `torch.Generator().manual_seed(seed)`, do `n_iter` Hessian-vector products,
# return the final Rayleigh quotient as a float.

# %% flatlab={"forbid": ["flatlab.sharpness.top_eigenvalue", "flatlab.sharpness.hvp", "torch.linalg.eigvalsh", "torch.linalg.eigh", "numpy.linalg.eigvalsh", "numpy.linalg.eigh", "scipy.sparse.linalg.eigsh"], "function": "top_eigenvalue_power", "id": "hw1.top_eig", "points": 3, "role": "task", "summary": "power iteration v <- Hv/||Hv|| with Hessian-vector products from a seeded Gaussian start; return the Rayleigh quotient v^T H v"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    """Largest-magnitude eigenvalue of ∇²L by power iteration with n_iter Hessian-vector products. Returns a float."""
    ### BEGIN SOLUTION
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(int(seed)))
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = torch.autograd.grad(grad, theta, v, retain_graph=True)[0]
        rayleigh = float(v @ Hv)
        if float(Hv.norm()) == 0.0:
            break
        v = Hv / Hv.norm()
    return rayleigh
    ### END SOLUTION


# %% flatlab={"id": "hw1.top_eig", "role": "public_test"}
_m = flatlab.make_model("bias", 4, 5, seed=1)
_lam = top_eigenvalue_power(_m, _X, _y, 300, seed=0)
_ref = flatlab.sharpness.top_eigenvalue(_m, _X, _y).value
assert abs(_lam - _ref) < 1e-4 * abs(_ref), (_lam, _ref)
print("hw1.top_eig: OK")


# %% flatlab={"id": "hw1.top_eig", "role": "hidden_test"}
def test_top_eig_power(student, rng):
    """top_eigenvalue_power must converge to the top Hessian eigenvalue (checked on nets whose top eigenvalue is well separated, with 300 iterations)."""
    for _ in range(50):
        model, X, y = _small_case(rng, str(rng.choice(["bias", "no_bias", "sim_ln"])))
        theta = flatlab.models.flatten_params(model).detach().clone()
        H = torch.autograd.functional.hessian(lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y), theta)
        ev = torch.linalg.eigvalsh(H)
        if ev[-1] > 0 and abs(ev[0]) < 0.5 * ev[-1] and abs(ev[-2]) < 0.8 * ev[-1]:
            break
    got = student.top_eigenvalue_power(model, X, y, 300, int(rng.integers(2**31)))
    assert_close(got, float(ev[-1]), rtol=1e-5, atol=1e-10)


# %% [markdown]
# ## 5. Worst-case (SAM) sharpness
#
# SAM minimizes max_{‖δ‖₂≤ρ} L(θ+δ). Its inner maximum is approximated by one ascent step
# along the normalized gradient, δ = ρ·∇L/‖∇L‖. Write `sam_sharpness(model, X, y, rho)` that
# returns L(θ + δ) − L(θ) for that δ, leaving the model unchanged. For small ρ it is
# ≈ ρ‖∇L‖ + (ρ²/2)·(curvature along the gradient): away from a minimum it measures the
# gradient more than the curvature.

# %% flatlab={"forbid": ["flatlab.sharpness.sam_sharpness"], "function": "sam_sharpness", "id": "hw1.sam_sharpness", "points": 2, "role": "task", "summary": "return L(theta + rho*g/||g||) - L(theta) with g the full-batch gradient; do not modify the model"}
def sam_sharpness(model, X, y, rho):
    """One-step worst-case sharpness L(θ + ρ g/‖g‖) − L(θ), g = ∇L(θ). Returns a float."""
    ### BEGIN SOLUTION
    L = loss_of_theta(model, X, y)
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    L0 = L(theta)
    g = torch.autograd.grad(L0, theta)[0]
    with torch.no_grad():
        return float(L(theta + rho * g / g.norm()) - L0)
    ### END SOLUTION


# %% flatlab={"id": "hw1.sam_sharpness", "role": "public_test"}
_m = flatlab.make_model("bias", 4, 5, seed=1)
assert abs(sam_sharpness(_m, _X, _y, 0.1) - flatlab.sharpness.sam_sharpness(_m, _X, _y, 0.1)) < 1e-10
print("hw1.sam_sharpness: OK")


# %% flatlab={"id": "hw1.sam_sharpness", "role": "hidden_test"}
def test_sam_sharpness_matches(student, rng):
    """sam_sharpness must equal L(theta + rho*g/||g||) - L(theta) with g the full-batch MSE gradient."""
    for arch in ("bias", "sim_ln"):
        model, X, y = _small_case(rng, arch, m=int(rng.integers(2, 20)))
        rho = float(rng.uniform(0.01, 1.0))
        want = flatlab.sharpness.sam_sharpness(model, X, y, rho)
        assert_close(student.sam_sharpness(model, X, y, rho), want, rtol=1e-8, atol=1e-12)


def test_sam_sharpness_leaves_model(student, rng):
    """sam_sharpness must not modify the model's parameters."""
    model, X, y = _small_case(rng, "bias")
    _, (after, *_) = student.call("sam_sharpness", model, X, y, 0.5, return_args=True)
    got = after["params"] if isinstance(after, dict) else dict(after.named_parameters())
    for k, q in model.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), q.detach(), rtol=0, atol=0)


# %% [markdown]
# ## 6. Same function, different sharpness
#
# For a ReLU net, relu(c·z) = c·relu(z) for c > 0, so scaling the first layer (W1, b1) by c
# and W2 by 1/c leaves f unchanged. The sharpness does change: the gradient with respect to
# W2 is h(x), which scales by c; the gradient with respect to (W1, b1) scales by 1/c. For a
# bias net,
#
# Tr ∇²L(c) = A·c² + B/c²,  A = (2/n) Σ_i ‖h(x_i)‖²,  B = (2/n) Σ_i (‖x_i‖² + 1) Σ_j W2_j² 1[h_j(x_i) > 0]
#
# (drop the +1 for a no-bias net). Write `flattest_rescaling(model, X)`: return
# `(c_star, trace_min)`, the c > 0 minimizing this curve and the minimal trace, for a
# `bias` or `no_bias` model. (Rescaling each neuron separately does even better: that is
# where hw3's Σ_j ‖W1_j‖·|W2_j| comes from.)

# %% flatlab={"function": "flattest_rescaling", "id": "hw1.flattest_rescaling", "points": 3, "role": "task", "summary": "with A = (2/n) sum ||h(x_i)||^2 and B = (2/n) sum (||x_i||^2 [+1]) sum_j W2_j^2 1[h_ij>0], return (c*, A c*^2 + B/c*^2) minimizing the trace over c"}
def flattest_rescaling(model, X):
    """The scale c* of (W1, b1) -> (c W1, c b1), W2 -> W2/c minimizing the trace, and that trace. Returns (c_star, trace_min)."""
    ### BEGIN SOLUTION
    with torch.no_grad():
        H = model.hidden(X)
        sq = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    c = float((B / A) ** 0.25)
    return c, float(2 * (A * B).sqrt())
    ### END SOLUTION


# %% flatlab={"id": "hw1.flattest_rescaling", "role": "public_test"}
_m = flatlab.make_model("bias", 4, 5, seed=1)
_c, _t = flattest_rescaling(_m, _X)
_m2 = flatlab.make_model("bias", 4, 5, seed=1)
with torch.no_grad():
    _m2.W1.mul_(_c); _m2.b1.mul_(_c); _m2.W2.div_(_c)
torch.testing.assert_close(_m2(_X), _m(_X))
assert abs(gauss_newton_trace(_m2, _X) - _t) < 1e-8 and _t <= gauss_newton_trace(_m, _X) + 1e-12
print("hw1.flattest_rescaling: OK")


# %% flatlab={"id": "hw1.flattest_rescaling", "role": "hidden_test"}
def _rescaled(model, c):
    scale = {"W1": c, "b1": c, "W2": 1.0 / c}
    new = {k: v.detach() * scale[k] for k, v in model.named_parameters()}
    return flatlab.models.model_from_config(model.config, new)


def _check_rescaling(student, rng, arch):
    model, X, y = _small_case(rng, arch, n=int(rng.integers(4, 40)), d=int(rng.integers(2, 12)), m=int(rng.integers(2, 30)))
    with torch.no_grad():
        model.W1.mul_(float(np.exp(rng.uniform(-2, 2))))
    c, t = student.flattest_rescaling(model, X)
    gn = flatlab.sharpness.gauss_newton_trace
    assert c > 0
    assert_close(t, gn(_rescaled(model, c), X), rtol=1e-7, atol=1e-12)
    assert t <= gn(_rescaled(model, c * 1.05), X) and t <= gn(_rescaled(model, c / 1.05), X), "c* is not the minimizer"


def test_flattest_rescaling_bias(student, rng):
    """flattest_rescaling must return the c minimizing A c^2 + B/c^2 for a bias net (with the +1 of the bias input) and the trace of the rescaled net."""
    _check_rescaling(student, rng, "bias")


def test_flattest_rescaling_no_bias(student, rng):
    """flattest_rescaling must handle a no-bias net (no +1 term: the input x has no appended 1)."""
    _check_rescaling(student, rng, "no_bias")


# %% [markdown]
# ## 7. Experiments
#
# ### 7a. How many probes does Hutchinson need?
# A bias net with d = 30, width 40 (1,320 parameters), n = 100. The exact trace takes a few
# seconds; then we repeat Hutchinson with k probes for 8 seeds and compare the spread of the
# error with the reported standard error.

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
Xtr, ytr = data.X_train, data.y_train
net = flatlab.make_model("bias", 30, 40, seed=0)
t0 = time.perf_counter()
exact = hessian_trace_exact(net, Xtr, ytr)
print(f"exact trace {exact:.4f} in {time.perf_counter() - t0:.1f} s; Lemma 4.1 (GN) {gauss_newton_trace(net, Xtr):.4f}")
ks, errs, ses = [4, 16, 64, 256], [], []
t0 = time.perf_counter()
for k in ks:
    runs = [hutchinson_trace(net, Xtr, ytr, k, seed) for seed in range(8)]
    errs.append(np.sqrt(np.mean([(e - exact) ** 2 for e, _ in runs])))
    ses.append(np.mean([s for _, s in runs]))
print(f"Hutchinson sweep: {time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(ks, np.array(errs) / exact, "o-", label="RMS error (8 seeds)")
ax.loglog(ks, np.array(ses) / exact, "s--", label="reported stderr")
ax.loglog(ks, ses[0] / exact * np.sqrt(ks[0] / np.array(ks)), "k:", label="∝ 1/sqrt(k)")
ax.set(xlabel="probes k", ylabel="relative to the trace", title="Hutchinson: error vs probes")
ax.legend()
plt.show()

# %% [markdown]
# ### 7b. Where Lemma 4.1 stops holding
# We train a small Sim-LN net (d = 10, width 20) and a bias net with plain full-batch GD and
# track your exact trace and your Gauss-Newton trace. For the ReLU bias net they coincide
# all along; for Sim-LN the gap (2/n) Σ_i (f_i − y_i) Tr ∇²f_i is large while the residuals
# are, and closes as the net interpolates.

# %% flatlab={"role": "experiment"}
small = flatlab.make_dataset("xor", n=40, d=10, seed=1)
track = {}
for arch, lr in (("sim_ln", 0.2), ("bias", 0.05)):
    net_ = flatlab.make_model(arch, 10, 20, seed=1)
    params = list(net_.parameters())
    rows = []
    for step in range(1501):
        loss = mse(net_(small.X_train), small.y_train)
        if step % 100 == 0:
            rows.append((step, float(loss.detach()), hessian_trace_exact(net_, small.X_train, small.y_train),
                         gauss_newton_trace(net_, small.X_train)))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    track[arch] = np.array(rows)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for arch, r in track.items():
    axes[0].semilogy(r[:, 0], np.maximum(abs(r[:, 2] - r[:, 3]), 1e-16), "o-", label=arch)
    axes[1].semilogy(r[:, 0], r[:, 1], "o-", label=arch)
axes[0].set(xlabel="GD step", ylabel="|exact trace − (2/n)Σ‖∇f_i‖²|", title="the gap Lemma 4.1 ignores")
axes[1].set(xlabel="GD step", ylabel="training MSE", title="residuals")
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()
for arch, r in track.items():
    print(f"{arch}: |exact - GN| at start {abs(r[0, 2] - r[0, 3]):.3g}, at the end {abs(r[-1, 2] - r[-1, 3]):.3g} (loss {r[-1, 1]:.2g})")

# %% [markdown]
# ### 7c. Same function, different sharpness
# A bias net trained to fit XOR (d = 30, width 100) with GD, then rescaled by c. The
# function is identical for every c; the trace, λ_max and the SAM sharpness are not.

# %% flatlab={"role": "experiment"}
net = flatlab.make_model("bias", 30, 100, seed=2)
params = list(net.parameters())
for step in range(400):
    loss = mse(net(Xtr), ytr)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 0.05 * g
print(f"train loss after GD: {float(loss.detach()):.2e}")


def rescaled(model, c):
    """A copy of a bias/no-bias model with (W1, b1) scaled by c and W2 by 1/c: the same function."""
    p = get_params(model)
    p["W1"] = p["W1"] * c
    if "b1" in p:
        p["b1"] = p["b1"] * c
    p["W2"] = p["W2"] / c
    return flatlab.models.model_from_config(model.config, p)


c_star, t_min = flattest_rescaling(net, Xtr)
cs = np.exp(np.linspace(np.log(c_star) - 1.5, np.log(c_star) + 1.5, 13))
curve = []
for c in cs:
    m_c = rescaled(net, c)
    assert torch.allclose(m_c(data.X_test), net(data.X_test))
    curve.append((gauss_newton_trace(m_c, Xtr), top_eigenvalue_power(m_c, Xtr, ytr, 50, 0),
                  sam_sharpness(m_c, Xtr, ytr, 0.05)))
curve = np.array(curve)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
for ax, col, name in zip(axes, curve.T, ("Tr ∇²L", "λ_max (power, 50 it.)", "SAM sharpness ρ=0.05")):
    ax.loglog(cs, col, "o-")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.axvline(c_star, color="k", ls=":", label=f"c* = {c_star:.2f}")
    ax.set(xlabel="rescaling c", title=name)
    ax.legend()
axes[0].axhline(t_min, color="r", ls="--")
fig.suptitle("one function, many sharpnesses (test outputs identical for every c)")
fig.tight_layout()
plt.show()
print(f"trace at c=1: {curve[np.argmin(abs(np.log(cs)))][0]:.2f}; c* = {c_star:.3f}, minimal trace {t_min:.2f}")

# %% [markdown] flatlab={"id": "hw1.q_measures", "points": 2, "role": "manual"}
# **Question.** From 7a and 7b: how many Hutchinson probes would you need for a 1% relative
# error on this network, and why is the Gauss-Newton formula the one to use for the
# paper's trained ReLU networks (give both the accuracy and the cost argument)? When would
# you *not* trust it?
#
# <!-- BEGIN SOLUTION -->
# The error falls like 1/sqrt(k); reading the relative stderr at k = 256 (a few percent here)
# and scaling by sqrt, 1% needs a few thousand probes, each a full Hessian-vector product.
# Lemma 4.1's formula is exact for ReLU nets without normalization (Tr ∇²f_i = 0 almost
# everywhere, 7b shows exact = GN to rounding at every step) and costs n per-example
# gradients, or even one pass over the activations in closed form: no probes, no variance,
# no p × p matrix. For Sim-LN and Sim-BN (and smooth activations) it drops the term
# (2/n)Σ(f_i − y_i)Tr ∇²f_i, so it is trustworthy only near interpolation, where the
# residuals vanish (7b: the gap is large early and closes as the loss falls).
# <!-- END SOLUTION -->

# %% [markdown] flatlab={"id": "hw1.q_rescaling", "points": 2, "role": "manual"}
# **Question.** 7c shows one function with many sharpness values. What does this imply for
# a claim of the form "flat minima generalize"? Which of the three measures is most
# affected, and what could a sharpness *minimizer* do to lower the trace without changing
# predictions?
#
# <!-- BEGIN SOLUTION -->
# Sharpness is not a property of the function, so "flat ⇒ generalizes" can only be meaningful
# as a statement about the *flattest* parametrization of each function (or within a fixed
# architecture's symmetries). All three measures vary by orders of magnitude along the
# rescaling; the trace has the clean A c² + B/c² form with a minimum at c*, while λ_max and
# the SAM sharpness vary similarly. A sharpness minimizer can lower the trace just by
# balancing the layers (moving to c*), with no change in predictions. This is why the paper
# compares *minimal* traces over interpolators, and why hw5's projected 1-SAM fixes the
# first-layer norm.
# <!-- END SOLUTION -->
