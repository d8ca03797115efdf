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
# ## 1. The exact trace (4 points)
#
# Write `hessian_trace_exact(model, X, y)`: build the full Hessian of L with respect to θ
# (p × p) with autograd and return its trace as a float. This costs p Hessian-vector
# products and p² memory: fine for a few thousand parameters, hopeless for the paper's
# 16,000 (2 GB, ~20 s).

# %% flatlab={"forbid": ["flatlab.sharpness.hessian_trace", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms", "flatlab._closed_form.second_order_trace"], "function": "hessian_trace_exact", "id": "hw1.trace_exact", "points": 4, "role": "task", "summary": "return the trace of the autograd Hessian of the MSE loss w.r.t. the flat parameters"}
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
    _t = hessian_trace_exact(_m, _X, _y)
    assert type(_t) is float, f"hessian_trace_exact must return a Python float, got {type(_t).__name__}"
    _want = flatlab.sharpness.hessian_trace(_m, _X, _y, method="exact")
    _hint = ("it matches the ReLU nets but not Sim-LN: include the second-order term of f, i.e. differentiate L twice "
             "(not only the Gauss-Newton part)" if _arch == "sim_ln" else
             "the trace is the sum of the diagonal of the Hessian of L = mse (a mean over the n examples) "
             "with respect to all parameters")
    assert abs(_t - _want) < 1e-8 * max(1, abs(_want)), f"{_arch} net: your trace is about {_t / _want:.2g}x flatlab's exact trace; {_hint}"
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


# %% flatlab={"feedback": "this is the Gauss-Newton trace (2/n) sum ||grad f_i||^2: it equals the exact trace for ReLU nets only; differentiate L twice to include the residual term", "id": "hw1.trace_exact", "name": "gauss_newton_only", "role": "mistake"}
def hessian_trace_exact(model, X, y):
    theta = flatten_params(model).detach().clone()
    f_one = lambda t, x: functional_forward(model, t, x[None])[0]
    J = torch.func.vmap(torch.func.grad(f_one), in_dims=(None, 0))(theta, X)
    return float(2.0 * J.pow(2).sum(1).mean())


# %% flatlab={"feedback": "this sums every entry of the Hessian: the trace is the sum of its diagonal only", "id": "hw1.trace_exact", "name": "sum_of_all_entries", "role": "mistake"}
def hessian_trace_exact(model, X, y):
    theta = flatten_params(model).detach().clone()
    H = torch.func.hessian(loss_of_theta(model, X, y))(theta)
    return float(H.sum())


# %% flatlab={"feedback": "the loss is the sum of squared errors, n times the MSE: L is the mean over the n examples", "id": "hw1.trace_exact", "name": "sum_loss", "role": "mistake"}
def hessian_trace_exact(model, X, y):
    theta = flatten_params(model).detach().clone()
    H = torch.func.hessian(lambda t: (functional_forward(model, t, X) - y).pow(2).sum())(theta)
    return float(torch.diagonal(H).sum())


# %% flatlab={"feedback": "only the first layer's block (W1) of the Hessian is summed: the trace runs over every parameter, b1, W2 (and gamma) included", "id": "hw1.trace_exact", "name": "first_layer_only", "role": "mistake"}
def hessian_trace_exact(model, X, y):
    theta = flatten_params(model).detach().clone()
    H = torch.func.hessian(loss_of_theta(model, X, y))(theta)
    k = model.W1.numel()
    return float(torch.diagonal(H)[:k].sum())


# %% [markdown]
# ## 2. Hutchinson's estimator (3 points)
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
_out = hutchinson_trace(_m, _X, _y, 200, seed=0)
assert isinstance(_out, tuple) and len(_out) == 2 and all(type(_v) is float for _v in _out), "return (estimate, stderr): a tuple of two Python floats"
_est, _se = _out
_exact = flatlab.sharpness.hessian_trace(_m, _X, _y, method="exact")
_ref = flatlab.sharpness.hessian_trace(_m, _X, _y, method="hutchinson", n_probes=200, seed=1)
assert math.isfinite(_se) and _se > 0, f"stderr must be positive and finite, got {_se}: draw a fresh probe for every z^T H z"
assert 0.6 < _se / _ref.stderr < 1.6, (f"your stderr is about {_se / _ref.stderr:.2g}x flatlab's for the same number of probes: "
                                        "it is the sample standard deviation of the z^T H z divided by sqrt(n_probes)")
assert abs(_est - _exact) < 5 * _ref.stderr, "the estimate is more than 5 standard errors from the exact trace: average z^T H z over the probes"
assert hutchinson_trace(_m, _X, _y, 200, seed=0) == _out, "the same seed gave another result: draw every probe from torch.Generator().manual_seed(seed), not the global random state"
assert hutchinson_trace(_m, _X, _y, 200, seed=1) != _out, "another seed gave the same result: seed the generator with the seed argument"
_m1 = flatlab.make_model("bias", 4, 1, seed=0)  # one neuron, rescaled: the Hessian has one dominant diagonal entry
with torch.no_grad():
    _m1.W1.mul_(10.0); _m1.b1.mul_(10.0); _m1.W2.div_(10.0)
_s1 = hutchinson_trace(_m1, _X, _y, 100, seed=0)[1]
_r1 = flatlab.sharpness.hessian_trace(_m1, _X, _y, method="hutchinson", n_probes=100, seed=0).stderr
assert _s1 < 2 * _r1, (f"on a net whose Hessian has one dominant diagonal entry your stderr is {_s1 / _r1:.2g}x that of Rademacher "
                       "probes: draw entries +1/-1 with probability 1/2 (Gaussian probes carry the diagonal's variance)")
print("hw1.hutchinson: OK")


# %% flatlab={"id": "hw1.hutchinson", "role": "hidden_test"}
def _hessian_of(model, X, y):
    theta = flatlab.models.flatten_params(model).detach().clone()
    return torch.autograd.functional.hessian(lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y), theta)


def _rademacher_se(H, k):
    """The exact standard error of the mean of k Rademacher z^T H z: sqrt(2 sum_{i != j} H_ij^2 / k)."""
    off = float(H.pow(2).sum() - torch.diagonal(H).pow(2).sum())
    return float(np.sqrt(2.0 * max(off, 0.0) / k))


def _hutchinson_call(student, model, X, y, k, seed):
    out = student.hutchinson_trace(model, X, y, k, seed)
    assert isinstance(out, (tuple, list)) and len(out) == 2, "hutchinson_trace must return the pair (estimate, stderr)"
    est, se = float(np.asarray(out[0])), float(np.asarray(out[1]))
    assert np.isfinite(est) and np.isfinite(se) and se > 0, f"estimate and stderr must be finite and stderr > 0, got stderr {se:.3g}"
    return est, se


def _dominant_diagonal_case(rng):
    """A one-neuron bias net with (W1, b1) scaled by 10, W2 by 1/10: one diagonal entry dominates its Hessian."""
    for _ in range(50):
        model, X, y = _small_case(rng, "bias", m=1)
        with torch.no_grad():
            model.W1.mul_(10.0); model.b1.mul_(10.0); model.W2.div_(10.0)
        H = _hessian_of(model, X, y)
        off = float(H.pow(2).sum() - torch.diagonal(H).pow(2).sum())
        if off > 0 and float(H.pow(2).sum()) > 16 * off:
            return model, X, y, H
    raise RuntimeError("no dominant-diagonal case found")


def test_hutchinson_unbiased(student, rng):
    """hutchinson_trace must be unbiased: with 300 probes the estimate should lie within 5 (exact) standard errors of the exact trace, with a finite stderr."""
    model, X, y = _small_case(rng, "bias")
    k = 300
    est, se = _hutchinson_call(student, model, X, y, k, int(rng.integers(2**31)))
    H = _hessian_of(model, X, y)
    exact, sd = float(torch.diagonal(H).sum()), _rademacher_se(H, k)
    assert abs(est - exact) <= 5 * sd + 1e-9 * abs(exact), "the estimate is more than 5 standard errors from the exact trace"


def test_hutchinson_stderr(student, rng):
    """hutchinson_trace's stderr must be the standard error of the mean, (sample std of the z^T H z)/sqrt(n_probes) (compared with the exact standard error on the same problem)."""
    model, X, y = _small_case(rng, "sim_ln", m=6)
    k = 250
    est, se = _hutchinson_call(student, model, X, y, k, int(rng.integers(2**31)))
    sd = _rademacher_se(_hessian_of(model, X, y), k)
    assert 0.6 < se / sd < 1.6, f"your stderr is about {se / sd:.2g}x the exact standard error; expected 0.6x to 1.6x"


def test_hutchinson_rademacher_probes(student, rng):
    """hutchinson_trace must use Rademacher probes (entries +-1): on a net whose Hessian has one dominant diagonal entry their z^T H z barely varies, Gaussian probes' does."""
    model, X, y, H = _dominant_diagonal_case(rng)
    k = 300
    est, se = _hutchinson_call(student, model, X, y, k, int(rng.integers(2**31)))
    exact, sd = float(torch.diagonal(H).sum()), _rademacher_se(H, k)
    assert se < 1.33 * sd, f"your stderr is about {se / sd:.2g}x that of Rademacher probes on this problem: are the probes Gaussian?"
    assert se > 0.75 * sd, f"your stderr is about {se / sd:.2g}x that of Rademacher probes on this problem; expected about 1x"
    assert abs(est - exact) <= 5 * sd + 1e-9 * abs(exact), "the estimate is more than 5 Rademacher standard errors from the exact trace"


def test_hutchinson_seeded(student, rng):
    """hutchinson_trace must draw its probes from a generator seeded with its seed argument: same seed, same result; another seed, another result."""
    model, X, y = _small_case(rng, "no_bias")
    seed = int(rng.integers(2**30))
    a = _hutchinson_call(student, model, X, y, 5, seed)
    b = _hutchinson_call(student, model, X, y, 5, seed)
    c = _hutchinson_call(student, model, X, y, 5, seed + 1)
    assert a == b, "two calls with the same seed gave different results"
    assert a != c, "two different seeds gave the same result"


# %% flatlab={"feedback": "the probes are Gaussian (torch.randn): the task asks for Rademacher probes, entries +-1 with probability 1/2, which have a smaller variance", "id": "hw1.hutchinson", "name": "gaussian_probes", "role": "mistake"}
def hutchinson_trace(model, X, y, n_probes, seed):
    g = torch.Generator().manual_seed(int(seed))
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    vals = []
    for _ in range(int(n_probes)):
        z = torch.randn(theta.shape, generator=g)
        Hz = torch.autograd.grad(grad, theta, z, retain_graph=True)[0]
        vals.append(float(z @ Hz))
    vals = torch.tensor(vals)
    return float(vals.mean()), float(vals.std() / math.sqrt(len(vals)))


# %% flatlab={"feedback": "the probes come from the global random state, so the seed argument has no effect: draw them with generator=torch.Generator().manual_seed(seed)", "id": "hw1.hutchinson", "name": "global_rng", "role": "mistake"}
def hutchinson_trace(model, X, y, n_probes, seed):
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    vals = []
    for _ in range(int(n_probes)):
        z = torch.randint(0, 2, theta.shape).to(theta.dtype) * 2 - 1
        Hz = torch.autograd.grad(grad, theta, z, retain_graph=True)[0]
        vals.append(float(z @ Hz))
    vals = torch.tensor(vals)
    return float(vals.mean()), float(vals.std() / math.sqrt(len(vals)))


# %% flatlab={"feedback": "the second value is the standard deviation of the z^T H z: the standard error of their mean divides it by sqrt(n_probes)", "id": "hw1.hutchinson", "name": "std_not_stderr", "role": "mistake"}
def hutchinson_trace(model, X, y, n_probes, seed):
    g = torch.Generator().manual_seed(int(seed))
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    vals = []
    for _ in range(int(n_probes)):
        z = torch.randint(0, 2, theta.shape, generator=g).to(theta.dtype) * 2 - 1
        Hz = torch.autograd.grad(grad, theta, z, retain_graph=True)[0]
        vals.append(float(z @ Hz))
    vals = torch.tensor(vals)
    return float(vals.mean()), float(vals.std())


# %% flatlab={"feedback": "one probe is drawn before the loop and reused, so every z^T H z is the same (stderr 0): draw a fresh probe for each of the n_probes", "id": "hw1.hutchinson", "name": "one_probe_reused", "role": "mistake"}
def hutchinson_trace(model, X, y, n_probes, seed):
    g = torch.Generator().manual_seed(int(seed))
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    z = torch.randint(0, 2, theta.shape, generator=g).to(theta.dtype) * 2 - 1
    vals = []
    for _ in range(int(n_probes)):
        Hz = torch.autograd.grad(grad, theta, z, retain_graph=True)[0]
        vals.append(float(z @ Hz))
    vals = torch.tensor(vals)
    return float(vals.mean()), float(vals.std() / math.sqrt(len(vals)))


# %% [markdown]
# ## 3. Lemma 4.1# %% [markdown]
# ## 3. Lemma 4.1: the trace from per-example gradients (3 points)
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
_Xg = torch.randn(12, 4, generator=torch.Generator().manual_seed(2))
for _arch, _Xc in (("bias", _X), ("sim_ln", _X), ("sim_bn", _Xg)):
    _m = flatlab.make_model(_arch, 4, 5, seed=1, **({"X_ref": _Xc} if _arch == "sim_bn" else {}))
    _t = gauss_newton_trace(_m, _Xc)
    assert type(_t) is float, f"gauss_newton_trace must return a Python float, got {type(_t).__name__}"
    _want = flatlab.sharpness.gauss_newton_trace(_m, _Xc)
    assert abs(_t - _want) < 1e-8 * max(1, abs(_want)), (
        f"{_arch} net: your value is about {_t / _want:.2g}x flatlab's Gauss-Newton trace: it is (2/n) times the sum over "
        "examples of the squared norm of each example's own gradient of f (not of the batch gradient)")
print("hw1.gn_trace: OK")


# %% flatlab={"id": "hw1.gn_trace", "role": "hidden_test"}
def test_gn_trace_equals_exact_for_relu(student, rng):
    """For a ReLU net without normalization, gauss_newton_trace must equal the exact trace (the second-order term of f vanishes)."""
    model, X, y = _small_case(rng, "bias", n=int(rng.integers(4, 40)), d=int(rng.integers(2, 12)), m=int(rng.integers(2, 30)))
    X = torch.as_tensor(rng.normal(size=tuple(X.shape)))  # general inputs, not only the hypercube
    assert_close(student.gauss_newton_trace(model, X), flatlab.sharpness.gauss_newton_trace(model, X), rtol=1e-8, atol=1e-12)


def test_gn_trace_normalized(student, rng):
    """gauss_newton_trace must use the full per-example gradient of f, including the paths through Sim-LN's norm and Sim-BN's training statistic."""
    for arch in ("sim_ln", "sim_bn"):
        model, X, y = _small_case(rng, arch, m=int(rng.integers(2, 12)))
        assert_close(student.gauss_newton_trace(model, X), flatlab.sharpness.gauss_newton_trace(model, X), rtol=1e-8, atol=1e-12)


# %% flatlab={"feedback": "looks like the factor 2 of Lemma 4.1 is missing: the trace is (2/n) sum_i ||grad f(x_i)||^2", "id": "hw1.gn_trace", "name": "missing_factor_2", "role": "mistake"}
def gauss_newton_trace(model, X):
    theta = flatten_params(model).detach().clone()
    f_one = lambda t, x: functional_forward(model, t, x[None])[0]
    J = torch.func.vmap(torch.func.grad(f_one), in_dims=(None, 0))(theta, X)
    return float(J.pow(2).sum(1).mean())


# %% flatlab={"feedback": "the squared gradient norms are summed, not averaged: Lemma 4.1 has a 1/n (the MSE is a mean)", "id": "hw1.gn_trace", "name": "sum_not_mean", "role": "mistake"}
def gauss_newton_trace(model, X):
    theta = flatten_params(model).detach().clone()
    f_one = lambda t, x: functional_forward(model, t, x[None])[0]
    J = torch.func.vmap(torch.func.grad(f_one), in_dims=(None, 0))(theta, X)
    return float(2.0 * J.pow(2).sum())


# %% flatlab={"feedback": "this is the squared norm of the gradient of sum_i f(x_i) (one batch gradient): Lemma 4.1 needs each example's own gradient, squared, then averaged", "id": "hw1.gn_trace", "name": "batch_gradient", "role": "mistake"}
def gauss_newton_trace(model, X):
    grads = torch.autograd.grad(model(X).sum(), list(model.parameters()))
    return float(2.0 / X.shape[0] * sum(g.pow(2).sum() for g in grads))


# %% flatlab={"feedback": "the gradient norms are not squared: Lemma 4.1 averages ||grad f(x_i)||^2", "id": "hw1.gn_trace", "name": "norm_not_squared", "role": "mistake"}
def gauss_newton_trace(model, X):
    theta = flatten_params(model).detach().clone()
    f_one = lambda t, x: functional_forward(model, t, x[None])[0]
    J = torch.func.vmap(torch.func.grad(f_one), in_dims=(None, 0))(theta, X)
    return float(2.0 * J.norm(dim=1).mean())


# %% [markdown]
# ## 4. The top eigenvalue by power iteration (3 points)
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
assert type(_lam) is float, f"top_eigenvalue_power must return a Python float, got {type(_lam).__name__}"
_ref = flatlab.sharpness.top_eigenvalue(_m, _X, _y).value
assert abs(_lam - _ref) < 1e-4 * abs(_ref), (f"after 300 iterations your value differs from flatlab's top eigenvalue by a relative {abs(_lam / _ref - 1):.1e}: "
                                             "iterate v <- Hv/||Hv|| (H the Hessian of the MSE, a mean) and return v^T H v for a unit v")
_a, _b = top_eigenvalue_power(_m, _X, _y, 3, seed=0), top_eigenvalue_power(_m, _X, _y, 3, seed=0)
assert _a == _b, "two runs with the same seed gave different values after 3 iterations: draw the start from torch.Generator().manual_seed(seed)"
assert top_eigenvalue_power(_m, _X, _y, 3, seed=1) != _a, "another seed gave the same value after 3 iterations: seed the generator with the seed argument"
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


def test_top_eig_seeded(student, rng):
    """top_eigenvalue_power must start from a Gaussian vector drawn from a generator seeded with its seed argument: after 3 iterations the same seed gives the same value, another seed another value."""
    model, X, y = _small_case(rng, "bias")
    seed = int(rng.integers(2**30))
    a = student.top_eigenvalue_power(model, X, y, 3, seed)
    b = student.top_eigenvalue_power(model, X, y, 3, seed)
    c = student.top_eigenvalue_power(model, X, y, 3, seed + 1)
    assert all(isinstance(v, float) and np.isfinite(v) for v in (a, b, c)), "top_eigenvalue_power must return a finite Python float"
    assert a == b, "two calls with the same seed gave different values"
    assert a != c, "two different seeds gave the same value"


# %% flatlab={"feedback": "v is never normalized, so it grows like lambda^k and v^T H v is not the eigenvalue: set v <- Hv/||Hv|| each step (or divide by v^T v)", "id": "hw1.top_eig", "name": "no_normalization", "role": "mistake"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(int(seed)))
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = torch.autograd.grad(grad, theta, v, retain_graph=True)[0]
        rayleigh = float(v @ Hv)
        v = Hv
    return rayleigh


# %% flatlab={"feedback": "the Hessian-vector products are of the summed squared error, n times the MSE: L is the mean over the examples", "id": "hw1.top_eig", "name": "sum_loss", "role": "mistake"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    loss = (functional_forward(model, theta, X) - y).pow(2).sum()
    grad = torch.autograd.grad(loss, theta, create_graph=True)[0]
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(int(seed)))
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = torch.autograd.grad(grad, theta, v, retain_graph=True)[0]
        rayleigh = float(v @ Hv)
        v = Hv / Hv.norm()
    return rayleigh


# %% flatlab={"feedback": "the loop never updates v (the new direction goes to another variable), so this is the Rayleigh quotient of the random start", "id": "hw1.top_eig", "name": "stale_vector", "role": "mistake"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(int(seed)))
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = torch.autograd.grad(grad, theta, v, retain_graph=True)[0]
        rayleigh = float(v @ Hv)
        w = Hv / Hv.norm()
    return rayleigh


# %% flatlab={"feedback": "the start vector comes from the global random state, so the seed argument has no effect: use generator=torch.Generator().manual_seed(seed)", "id": "hw1.top_eig", "name": "global_rng", "role": "mistake"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(loss_of_theta(model, X, y)(theta), theta, create_graph=True)[0]
    v = torch.randn(theta.shape)
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = torch.autograd.grad(grad, theta, v, retain_graph=True)[0]
        rayleigh = float(v @ Hv)
        v = Hv / Hv.norm()
    return rayleigh


# %% flatlab={"feedback": "Hv by a finite difference of gradients with a step of 1e-3 is only accurate to about 1e-3: use double backpropagation, Hv = grad of (grad L . v)", "id": "hw1.top_eig", "name": "finite_difference_hvp", "role": "mistake"}
def top_eigenvalue_power(model, X, y, n_iter, seed):
    L = loss_of_theta(model, X, y)
    theta = flatten_params(model).detach().clone()

    def grad_at(t):
        t = t.clone().requires_grad_(True)
        return torch.autograd.grad(L(t), t)[0]

    g0 = grad_at(theta)
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(int(seed)))
    v = v / v.norm()
    rayleigh = 0.0
    for _ in range(int(n_iter)):
        Hv = (grad_at(theta + 1e-3 * v) - g0) / 1e-3
        rayleigh = float(v @ Hv)
        v = Hv / Hv.norm()
    return rayleigh


# %% [markdown]
# ## 5. Worst-case (SAM) sharpness (2 points)
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
_before = [_q.detach().clone() for _q in _m.parameters()]
_v = sam_sharpness(_m, _X, _y, 0.1)
assert type(_v) is float, f"sam_sharpness must return a Python float, got {type(_v).__name__}"
assert all(torch.equal(_a, _q.detach()) for _a, _q in zip(_before, _m.parameters())), "sam_sharpness changed the model's parameters: evaluate L(theta + delta) on a copy of theta"
_want = flatlab.sharpness.sam_sharpness(_m, _X, _y, 0.1)
assert _v > 0 or _want <= 0, "the sharpness should be positive here: step up the gradient, theta + rho*g/||g||, and subtract L(theta)"
assert abs(_v - _want) < 1e-10 * max(1.0, abs(_want)), (f"your value is about {_v / _want:.2g}x flatlab's: return L(theta + rho*g/||g||) - L(theta), "
                                                       "the perturbation of norm exactly rho")
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


# %% flatlab={"feedback": "delta = rho*g is not normalized: divide by ||g|| so that ||delta|| = rho", "id": "hw1.sam_sharpness", "name": "not_normalized", "role": "mistake"}
def sam_sharpness(model, X, y, rho):
    L = loss_of_theta(model, X, y)
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    L0 = L(theta)
    g = torch.autograd.grad(L0, theta)[0]
    with torch.no_grad():
        return float(L(theta + rho * g) - L0)


# %% flatlab={"feedback": "this returns L(theta + delta), the perturbed loss: the sharpness subtracts L(theta)", "id": "hw1.sam_sharpness", "name": "perturbed_loss", "role": "mistake"}
def sam_sharpness(model, X, y, rho):
    L = loss_of_theta(model, X, y)
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    g = torch.autograd.grad(L(theta), theta)[0]
    with torch.no_grad():
        return float(L(theta + rho * g / g.norm()))


# %% flatlab={"feedback": "the step goes down the gradient (theta - rho*g/||g||): the worst case is the ascent direction, +rho*g/||g||", "id": "hw1.sam_sharpness", "name": "descent_step", "role": "mistake"}
def sam_sharpness(model, X, y, rho):
    L = loss_of_theta(model, X, y)
    theta = flatten_params(model).detach().clone().requires_grad_(True)
    L0 = L(theta)
    g = torch.autograd.grad(L0, theta)[0]
    with torch.no_grad():
        return float(L(theta - rho * g / g.norm()) - L0)


# %% flatlab={"feedback": "the perturbation is added to the model's parameters in place and never removed: the model must be left unchanged", "id": "hw1.sam_sharpness", "name": "mutates_model", "role": "mistake"}
def sam_sharpness(model, X, y, rho):
    params = list(model.parameters())
    L0 = mse(model(X), y)
    grads = torch.autograd.grad(L0, params)
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.add_(rho * g / norm)
        return float(mse(model(X), y) - L0)


# %% [markdown]
# ## 6. Same function, different sharpness (3 points)
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
_gn = flatlab.sharpness.gauss_newton_trace  # flatlab's, so that this check does not depend on your gauss_newton_trace
_Xg = torch.randn(12, 4, generator=torch.Generator().manual_seed(2))


def _scaled(arch, c):
    m = flatlab.make_model(arch, 4, 5, seed=1)
    with torch.no_grad():
        m.W1.mul_(c * 3.0); m.W2.div_(c)
        if arch == "bias":
            m.b1.mul_(c * 3.0)
    return m


for _arch, _Xc in (("bias", 2.0 * _Xg), ("no_bias", _X)):
    _out = flattest_rescaling(_scaled(_arch, 1.0), _Xc)
    assert isinstance(_out, tuple) and len(_out) == 2 and all(type(_v) is float for _v in _out), "return (c_star, trace_min): a tuple of two Python floats"
    _c, _t = _out
    assert _c > 0, f"c_star must be positive, got {_c}"
    _tc = _gn(_scaled(_arch, _c), _Xc)
    assert abs(_t - _tc) < 1e-8 * _tc, (f"{_arch} net: trace_min is about {_t / _tc:.2g}x the trace of the net rescaled by your c_star: check A and B "
                                        "(B uses each input's own ||x_i||^2, plus 1 for a bias net only) and return A c*^2 + B / c*^2 at your c*")
    _slope = (_gn(_scaled(_arch, _c * 1.001), _Xc) - _gn(_scaled(_arch, _c / 1.001), _Xc)) / _tc
    _hint = " (for Gaussian inputs ||x||^2 is not d; and the +1 is only for the bias net's b1)" if _arch == "bias" else " (a no-bias net has no +1)"
    assert abs(_slope) < 1e-6, (f"{_arch} net: c_star is not the minimizer, the trace still {'rises' if _slope > 0 else 'falls'} with c there: "
                                "solve d/dc (A c^2 + B/c^2) = 0 exactly (no grid search)" + _hint)
print("hw1.flattest_rescaling: OK")


# %% flatlab={"id": "hw1.flattest_rescaling", "role": "hidden_test"}
def _rescaled(model, c):
    scale = {"W1": c, "b1": c, "W2": 1.0 / c}
    new = {k: v.detach() * scale[k] for k, v in model.named_parameters()}
    return flatlab.models.model_from_config(model.config, new)


def _check_rescaling(student, rng, arch, gaussian):
    model, X, y = _small_case(rng, arch, n=int(rng.integers(4, 40)), d=int(rng.integers(2, 12)), m=int(rng.integers(2, 30)))
    if gaussian:
        X = torch.as_tensor(rng.normal(scale=float(rng.uniform(0.5, 2.0)), size=tuple(X.shape)))
    with torch.no_grad():
        model.W1.mul_(float(np.exp(rng.uniform(-2, 2))))
    out = student.flattest_rescaling(model, X)
    assert isinstance(out, (tuple, list)) and len(out) == 2, "flattest_rescaling must return the pair (c_star, trace_min)"
    c, t = float(np.asarray(out[0])), float(np.asarray(out[1]))
    assert np.isfinite(c) and c > 0, "c_star must be a positive number"
    gn = flatlab.sharpness.gauss_newton_trace
    t1, t2 = gn(model, X), gn(_rescaled(model, 2.0), X)  # T(c) = A c^2 + B / c^2 at c = 1 and c = 2
    A = (t2 - t1 / 4) / 3.75
    B = t1 - A
    c_star, t_star = (B / A) ** 0.25, 2.0 * np.sqrt(A * B)
    assert abs(c / c_star - 1) < 1e-6, (f"c_star is not the minimizer of the trace: it is off by a relative {abs(c / c_star - 1):.1e} "
                                        f"(the trace still {'rises' if c > c_star else 'falls'} with c there)")
    assert_close(t, gn(_rescaled(model, c), X), rtol=1e-7, atol=1e-12, name="trace_min")
    assert_close(t, t_star, rtol=1e-7, atol=1e-12, name="trace_min")


def test_flattest_rescaling_bias(student, rng):
    """flattest_rescaling must return the exact minimizer c* of A c^2 + B/c^2 for a bias net (with the +1 of the bias input) on general (Gaussian) inputs, and the trace of the rescaled net."""
    _check_rescaling(student, rng, "bias", gaussian=True)


def test_flattest_rescaling_no_bias(student, rng):
    """flattest_rescaling must handle a no-bias net (no +1 term: the input x has no appended 1), on hypercube inputs."""
    _check_rescaling(student, rng, "no_bias", gaussian=False)


# %% flatlab={"feedback": "c* comes from a grid search (steps of 3%), which only lands near the minimizer: set the derivative of A c^2 + B/c^2 to zero and solve for c exactly", "id": "hw1.flattest_rescaling", "name": "grid_search", "role": "mistake"}
def flattest_rescaling(model, X):
    with torch.no_grad():
        H = model.hidden(X)
        sq = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    cs = 1.03 ** torch.arange(-200.0, 201.0)
    curve = A * cs**2 + B / cs**2
    i = int(curve.argmin())
    return float(cs[i]), float(curve[i])


# %% flatlab={"feedback": "the +1 of the bias input is missing: for a bias net the first-layer gradient includes b1, so B uses ||x_i||^2 + 1", "id": "hw1.flattest_rescaling", "name": "missing_plus_one", "role": "mistake"}
def flattest_rescaling(model, X):
    with torch.no_grad():
        H = model.hidden(X)
        sq = X.pow(2).sum(1)
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    return float((B / A) ** 0.25), float(2 * (A * B).sqrt())


# %% flatlab={"feedback": "c* = sqrt(B/A) minimizes A c + B/c, not A c^2 + B/c^2: take the fourth root", "id": "hw1.flattest_rescaling", "name": "square_root", "role": "mistake"}
def flattest_rescaling(model, X):
    with torch.no_grad():
        H = model.hidden(X)
        sq = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    c = float((B / A) ** 0.5)
    return c, float(A * c**2 + B / c**2)


# %% flatlab={"feedback": "||x_i||^2 is taken to be d (true on the hypercube only): use the actual squared norm of each input", "id": "hw1.flattest_rescaling", "name": "hypercube_norm", "role": "mistake"}
def flattest_rescaling(model, X):
    with torch.no_grad():
        H = model.hidden(X)
        d = X.shape[1]
        sq = torch.full((X.shape[0],), d + (1.0 if model.config.arch == "bias" else 0.0))
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    return float((B / A) ** 0.25), float(2 * (A * B).sqrt())


# %% flatlab={"feedback": "trace_min is the trace before rescaling, A + B: return the trace at c*, A c*^2 + B/c*^2", "id": "hw1.flattest_rescaling", "name": "trace_at_c_one", "role": "mistake"}
def flattest_rescaling(model, X):
    with torch.no_grad():
        H = model.hidden(X)
        sq = X.pow(2).sum(1) + (1.0 if model.config.arch == "bias" else 0.0)
        A = 2.0 * H.pow(2).sum(1).mean()
        B = 2.0 * (sq * ((H > 0).double() @ model.W2.pow(2))).mean()
    return float((B / A) ** 0.25), float(A + B)


# %% [markdown]
# ## 7. Experiments# %% [markdown]
# ## 7. Experiments (questions: 4 points)
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
