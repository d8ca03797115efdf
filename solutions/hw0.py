# ---
# jupyter:
#   flatlab:
#     assignment: hw0
#     title: 'The testbed: XOR parity and four two-layer networks'
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw0 · The testbed: XOR parity and four two-layer networks
#
# This course follows Wen, Li & Ma, *Sharpness Minimization Algorithms Do Not Only Minimize
# Sharpness To Achieve Better Generalization* (NeurIPS 2023, arXiv:2307.11007). Every later
# assignment runs on the testbed you build here:
#
# * **data**: points x uniform on the hypercube {-1,+1}^d with the XOR label y = x[0]·x[1]
#   (0-based indices; the paper writes x₁x₂). Only 2 of the d = 30 coordinates matter.
# * **models**: two-layer ReLU networks of width m in four flavours: *no bias*, *bias*,
#   *Sim-BN* (a simplified batch norm whose statistic comes from the training set) and
#   *Sim-LN* (a simplified layer norm).
# * **metric**: the zero-one test error Pr(y·f(x) ≤ 0).
#
# You then train a bias network with full-batch gradient descent and weight decay (GD+wd), the
# paper's baseline, and watch it generalize.
#
# **How this notebook works.** Each graded task is a function whose body is a stub
# that raises `NotImplementedError`. Fill it in, then run the *self-check* cell under it.
# The grader calls your function on fresh random inputs it does not show you, so make it
# correct in general, not just on the self-check. Do not rename the functions. Free-response
# questions are graded by hand. Estimated time: 2 hours.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.lab.plotting import COLORS
from flatlab.losses import mse

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# %% [markdown]
# ## 1. The data (2 points)
#
# Write `sample_xor(n, d, seed)`: n points drawn uniformly from {-1,+1}^d and their labels
# y = x[0]·x[1]. Use a `torch.Generator` seeded with `seed` (never the global random state), so
# the same seed gives the same sample. Return float64 tensors `X` of shape (n, d) and `y` of
# shape (n,).

# %% flatlab={"function": "sample_xor", "id": "hw0.sample_xor", "points": 2, "role": "task", "summary": "draw n points uniformly from {-1,+1}^d (seeded torch.Generator) and label them y = x[0]*x[1]"}
def sample_xor(n, d, seed):
    """XOR parity data: X (n, d) uniform on {-1,+1}^d, y (n,) = X[:, 0] * X[:, 1].

    n, d: ints (d >= 2); seed: int for a torch.Generator. Returns (X, y), float64 tensors.
    """
    ### BEGIN SOLUTION
    g = torch.Generator().manual_seed(int(seed))
    X = torch.randint(0, 2, (n, d), generator=g).to(torch.float64) * 2 - 1
    y = X[:, 0] * X[:, 1]
    return X, y
    ### END SOLUTION


# %% flatlab={"id": "hw0.sample_xor", "role": "public_test"}
X, y = sample_xor(500, 30, seed=0)
assert isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor), f"return two torch tensors (X, y), got {type(X).__name__}, {type(y).__name__}"
assert X.shape == (500, 30) and y.shape == (500,), f"shapes must be (n, d) = (500, 30) and (n,) = (500,), got {tuple(X.shape)} and {tuple(y.shape)}"
assert X.dtype == torch.float64 and y.dtype == torch.float64, f"X and y must be float64, got {X.dtype} and {y.dtype}"
assert set(X.unique().tolist()) == {-1.0, 1.0}, f"entries of X must be -1 or +1, got the values {sorted(set(X.unique().tolist()))[:5]}"
assert torch.equal(y, X[:, 0] * X[:, 1]), "y must be x[0]*x[1] (0-based: the first two columns of X)"
assert torch.equal(sample_xor(500, 30, seed=0)[0], X), "the same seed must give the same sample: draw from torch.Generator().manual_seed(seed), not the global random state"
assert not torch.equal(sample_xor(500, 30, seed=1)[0], X), "different seeds gave the same sample: seed the generator with the seed argument"
assert abs(float(X.mean())) < 0.05, f"the entries should be ±1 with probability 1/2 each, but their mean is {float(X.mean()):.2f}"
print("hw0.sample_xor: OK")


# %% flatlab={"id": "hw0.sample_xor", "role": "hidden_test"}
def test_sample_xor_shapes_values_labels(student, rng):
    """sample_xor(n, d, seed) must return float64 X of shape (n, d) with entries in {-1, +1} and float64 y = X[:,0]*X[:,1] of shape (n,)."""
    n, d, seed = int(rng.integers(5, 60)), int(rng.integers(2, 40)), int(rng.integers(2**31))
    out = student.sample_xor(n, d, seed)
    assert isinstance(out, (tuple, list)) and len(out) == 2, "sample_xor must return the pair (X, y)"
    X, y = np.asarray(out[0]), np.asarray(out[1])
    assert X.shape == (n, d) and y.shape == (n,), f"for n={n}, d={d} got shapes {X.shape} and {y.shape}; expected (n, d) and (n,)"
    assert X.dtype == np.float64 and y.dtype == np.float64, f"X and y must be float64, got {X.dtype} and {y.dtype}"
    assert np.all(np.abs(X) == 1), "entries of X must be -1 or +1"
    assert np.array_equal(y, X[:, 0] * X[:, 1]), "y must be X[:, 0] * X[:, 1] (0-based columns)"


def test_sample_xor_seeded(student, rng):
    """sample_xor must be seeded through its argument: the same seed gives the same X and y, a different seed a different X."""
    seed = int(rng.integers(2**30))
    a, ya = (np.asarray(v) for v in student.sample_xor(40, 20, seed))
    b, yb = (np.asarray(v) for v in student.sample_xor(40, 20, seed))
    c = np.asarray(student.sample_xor(40, 20, seed + 1)[0])
    assert np.array_equal(a, b) and np.array_equal(ya, yb), "two calls with the same seed gave different samples"
    assert not np.array_equal(a, c), "two different seeds gave the same sample"


def test_sample_xor_uniform(student, rng):
    """sample_xor must draw every coordinate independently and uniformly from {-1, +1}: each sign pattern of (x[0], x[1]) and of the other coordinates should appear about equally often."""
    n, d = 4000, 6
    X = np.asarray(student.sample_xor(n, d, int(rng.integers(2**31)))[0], dtype=float)
    assert X.shape == (n, d) and np.all(np.abs(X) == 1), "entries of X must be -1 or +1, shape (n, d)"
    assert np.all(np.abs(X.mean(0)) < 0.1), "every coordinate should have mean ~0"
    for a, b in [(0, 1), (2, 5)]:
        counts = [np.mean((X[:, a] == s) & (X[:, b] == t)) for s in (-1, 1) for t in (-1, 1)]
        assert max(abs(c - 0.25) for c in counts) < 0.05, "the four sign patterns should be equally likely"


# %% flatlab={"feedback": "the samples are drawn from the global random state: create torch.Generator().manual_seed(seed) and pass it as generator=", "id": "hw0.sample_xor", "name": "global_rng", "role": "mistake"}
def sample_xor(n, d, seed):
    X = torch.randint(0, 2, (n, d)).to(torch.float64) * 2 - 1
    return X, X[:, 0] * X[:, 1]


# %% flatlab={"feedback": "the label uses x[1]*x[2] (1-based indices): the paper's x1x2 is X[:, 0] * X[:, 1] in 0-based Python", "id": "hw0.sample_xor", "name": "one_based_label", "role": "mistake"}
def sample_xor(n, d, seed):
    g = torch.Generator().manual_seed(int(seed))
    X = torch.randint(0, 2, (n, d), generator=g).to(torch.float64) * 2 - 1
    return X, X[:, 1] * X[:, 2]


# %% flatlab={"feedback": "the entries are 0/1 bits, not +-1: map a bit b to 2b - 1", "id": "hw0.sample_xor", "name": "zero_one_entries", "role": "mistake"}
def sample_xor(n, d, seed):
    g = torch.Generator().manual_seed(int(seed))
    X = torch.randint(0, 2, (n, d), generator=g).to(torch.float64)
    return X, X[:, 0] * X[:, 1]


# %% flatlab={"feedback": "X and y are float32 (.float()): the course works in float64, convert with .to(torch.float64) or .double()", "id": "hw0.sample_xor", "name": "float32", "role": "mistake"}
def sample_xor(n, d, seed):
    g = torch.Generator().manual_seed(int(seed))
    X = torch.randint(0, 2, (n, d), generator=g).float() * 2 - 1
    return X, X[:, 0] * X[:, 1]


# %% flatlab={"feedback": "the generator ignores the seed argument (a fixed seed): every call returns the same sample", "id": "hw0.sample_xor", "name": "fixed_seed", "role": "mistake"}
def sample_xor(n, d, seed):
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 2, (n, d), generator=g).to(torch.float64) * 2 - 1
    return X, X[:, 0] * X[:, 1]


# %% [markdown]
# ## 2. The four architectures (7 points: 2 + 3 + 2)
#
# A two-layer network has a first layer `W1` (m, d) with bias `b1` (m,) and an output layer
# `W2` (m,). With h(x) = relu(W1 x + b1) ∈ R^m:
#
# | architecture | f(x) |
# |---|---|
# | no bias | W2 · relu(W1 x) |
# | bias | W2 · h(x) |
# | Sim-BN | Σ_j W2[j] γ[j] h_j(x) / s_j,  s_j = sqrt( (1/n) Σ_i h_j(x_i)² + ε² ) over the **training** inputs x_i |
# | Sim-LN | W2 · h(x) / max(‖h(x)‖₂, ε) |
#
# The Sim-BN statistic s is computed once from the training inputs `X_ref` and then used for
# every input, including test points: it is part of the function, like the weights. (The ε²
# inside the root keeps a neuron that is dead on every training point finite; flatlab uses
# the same convention.) Write the three forward passes; a no-bias network is a bias network
# with `b1 = 0`. All return f of shape (n,) for X of shape (n, d).

# %% flatlab={"function": "mlp_forward", "id": "hw0.forward_mlp", "points": 2, "role": "task", "summary": "return f(X) = relu(X W1^T + b1) W2, shape (n,)"}
def mlp_forward(W1, b1, W2, X):
    """Two-layer ReLU network with bias. W1 (m, d), b1 (m,), W2 (m,), X (n, d) -> f (n,)."""
    ### BEGIN SOLUTION
    return torch.relu(X @ W1.T + b1) @ W2
    ### END SOLUTION


# %% flatlab={"id": "hw0.forward_mlp", "role": "public_test"}
_X = torch.cat([flatlab.xor_parity(7, 5, seed=3)[0], torch.randn(4, 5, generator=torch.Generator().manual_seed(3))])
for _arch in ("bias", "no_bias"):
    _m = flatlab.make_model(_arch, 5, 4, seed=1)
    _b1 = _m.b1.detach() if _arch == "bias" else torch.zeros(4)
    _f = mlp_forward(_m.W1.detach(), _b1, _m.W2.detach(), _X)
    assert isinstance(_f, torch.Tensor) and _f.shape == (11,), f"f must be a tensor of shape (n,) = (11,), got {getattr(_f, 'shape', type(_f).__name__)}"
    _err = float((_f - _m(_X).detach()).abs().max())
    assert _err < 1e-10, f"mlp_forward differs from flatlab's {_arch!r} network by up to {_err:.2g}: check relu(X W1^T + b1) W2 (bias inside the relu, a sum over the m neurons)"
print("hw0.forward_mlp: OK")


# %% flatlab={"id": "hw0.forward_mlp", "role": "hidden_test"}
def test_mlp_forward_bias(student, rng):
    """mlp_forward must match flatlab's 'bias' network on random weights and inputs."""
    n, d, m = int(rng.integers(1, 30)), int(rng.integers(2, 20)), int(rng.integers(2, 40))
    model = flatlab.make_model("bias", d, m, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(rng.normal(size=(n, d)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    assert_close(student.mlp_forward(p["W1"], p["b1"], p["W2"], X), model(X).detach(), rtol=1e-10, atol=1e-12)


def test_mlp_forward_no_bias(student, rng):
    """mlp_forward with b1 = 0 must match flatlab's 'no_bias' network."""
    n, d, m = int(rng.integers(1, 30)), int(rng.integers(2, 20)), int(rng.integers(2, 40))
    model = flatlab.make_model("no_bias", d, m, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(rng.choice([-1.0, 1.0], size=(n, d)))
    got = student.mlp_forward(model.W1.detach(), torch.zeros(m), model.W2.detach(), X)
    assert_close(got, model(X).detach(), rtol=1e-10, atol=1e-12)


# %% flatlab={"feedback": "the relu is missing: h = relu(X W1^T + b1) before the output layer", "id": "hw0.forward_mlp", "name": "no_relu", "role": "mistake"}
def mlp_forward(W1, b1, W2, X):
    return (X @ W1.T + b1) @ W2


# %% flatlab={"feedback": "the bias is added after the relu: it belongs inside, relu(W1 x + b1)", "id": "hw0.forward_mlp", "name": "bias_after_relu", "role": "mistake"}
def mlp_forward(W1, b1, W2, X):
    return (torch.relu(X @ W1.T) + b1) @ W2


# %% flatlab={"feedback": "the output averages over the m neurons: f = W2 * h is a sum, with no 1/m", "id": "hw0.forward_mlp", "name": "mean_over_neurons", "role": "mistake"}
def mlp_forward(W1, b1, W2, X):
    return (torch.relu(X @ W1.T + b1) * W2).mean(1)


# %% flatlab={"feedback": "f has shape (n, 1) (W2 used as a column): return a vector of shape (n,)", "id": "hw0.forward_mlp", "name": "column_output", "role": "mistake"}
def mlp_forward(W1, b1, W2, X):
    return torch.relu(X @ W1.T + b1) @ W2[:, None]


# %% flatlab={"function": "sim_bn_forward", "id": "hw0.forward_sim_bn", "points": 3, "role": "task", "summary": "Sim-BN forward: h = relu(X W1^T + b1) scaled by gamma / s, s = sqrt(mean over X_ref of h^2 + eps^2), then times W2"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    """2-MLP-Sim-BN. W1 (m, d), b1, gamma, W2 (m,), X (n, d), X_ref (n_ref, d) -> f (n,).

    s_j = sqrt(mean_i relu(W1 x_ref_i + b1)_j^2 + eps^2), computed on X_ref (the training inputs).
    """
    ### BEGIN SOLUTION
    s = torch.relu(X_ref @ W1.T + b1).pow(2).mean(0).add(eps**2).sqrt()
    return (torch.relu(X @ W1.T + b1) * (gamma / s)) @ W2
    ### END SOLUTION


# %% flatlab={"id": "hw0.forward_sim_bn", "role": "public_test"}
_Xtr = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
_Xte = torch.cat([flatlab.xor_parity(9, 6, seed=1)[0], torch.randn(3, 6, generator=torch.Generator().manual_seed(1))])
for _eps, _dead in ((1e-6, False), (1e-2, True)):
    _m = flatlab.make_model("sim_bn", 6, 5, seed=2, X_ref=_Xtr, eps=_eps)
    with torch.no_grad():
        _m.gamma.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0, 0.8]))
        if _dead:
            _m.b1[:2] = -100.0  # neurons 0, 1 dead on every input
    _p = {k: v.detach() for k, v in _m.named_parameters()}
    _f = sim_bn_forward(_p["W1"], _p["b1"], _p["gamma"], _p["W2"], _Xte, _Xtr, _eps)
    assert isinstance(_f, torch.Tensor) and _f.shape == (12,), f"f must be a tensor of shape (n,) = (12,), got {getattr(_f, 'shape', type(_f).__name__)}"
    assert torch.isfinite(_f).all(), "f is not finite when some neurons are dead on all of X_ref: keep the eps^2 inside the square root"
    _err = float(((_f - _m(_Xte).detach()) / _m(_Xte).detach().abs().clamp_min(1e-3)).abs().max())
    _what = "eps = 1e-2 and dead neurons (is eps^2 inside the sqrt?)" if _dead else "general inputs"
    assert _err < 1e-9, (f"sim_bn_forward differs from flatlab's 'sim_bn' network ({_what}) by a relative {_err:.2g}: s_j is the "
                         "root mean square of h_j over X_ref (the training inputs, not X; not centred), and gamma scales each neuron")
print("hw0.forward_sim_bn: OK")


# %% flatlab={"id": "hw0.forward_sim_bn", "role": "hidden_test"}
def _sim_bn_case(rng, eps=1e-6):
    n, d, m = int(rng.integers(5, 40)), int(rng.integers(2, 12)), int(rng.integers(1, 30))
    seed = int(rng.integers(2**31))
    Xtr = flatlab.xor_parity(n, d, seed=seed)[0] if rng.random() < 0.5 else torch.as_tensor(rng.normal(size=(n, d)))
    Xte = torch.as_tensor(rng.normal(size=(int(rng.integers(1, 20)), d)))
    model = flatlab.make_model("sim_bn", d, m, seed=seed + 1, X_ref=Xtr, eps=eps,
                               gamma_init=float(rng.uniform(0.2, 2.0)))
    with torch.no_grad():
        model.gamma.mul_(torch.as_tensor(rng.uniform(0.5, 1.5, size=m)))
    return model, Xtr, Xte


def test_sim_bn_forward_test_points(student, rng):
    """sim_bn_forward must normalize with the statistic of X_ref (the training inputs), not of X, and match flatlab's 'sim_bn' network on new Gaussian inputs (X_ref on the hypercube or Gaussian, random gamma)."""
    model, Xtr, Xte = _sim_bn_case(rng)
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.sim_bn_forward(p["W1"], p["b1"], p["gamma"], p["W2"], Xte, Xtr, 1e-6)
    assert_close(got, model(Xte).detach(), rtol=1e-9, atol=1e-12)


def test_sim_bn_forward_dead_neurons(student, rng):
    """sim_bn_forward must stay finite and correct when some neurons are dead on every training input (the eps^2 in s)."""
    model, Xtr, Xte = _sim_bn_case(rng, eps=1e-3)
    with torch.no_grad():
        model.b1[: max(1, model.config.width // 2)] = -100.0
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.sim_bn_forward(p["W1"], p["b1"], p["gamma"], p["W2"], Xtr, Xtr, 1e-3)
    assert np.all(np.isfinite(got))
    assert_close(got, model(Xtr).detach(), rtol=1e-9, atol=1e-12)


# %% flatlab={"feedback": "s is computed from X, the inputs being evaluated: Sim-BN's statistic comes from the training inputs X_ref", "id": "hw0.forward_sim_bn", "name": "stat_from_x", "role": "mistake"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    h = torch.relu(X @ W1.T + b1)
    s = torch.sqrt(h.pow(2).mean(0) + eps**2)
    return (h * gamma / s) @ W2


# %% flatlab={"feedback": "s is the standard deviation (centred) of h_j: Sim-BN divides by the root mean square sqrt(mean h_j^2 + eps^2), without subtracting the mean", "id": "hw0.forward_sim_bn", "name": "centred_std", "role": "mistake"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    h_ref = torch.relu(X_ref @ W1.T + b1)
    s = torch.sqrt(h_ref.var(0, unbiased=False) + eps**2)
    return (torch.relu(X @ W1.T + b1) * gamma / s) @ W2


# %% flatlab={"feedback": "the square root is missing: s_j is the root of mean h_j^2 + eps^2, not the mean square", "id": "hw0.forward_sim_bn", "name": "no_sqrt", "role": "mistake"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    s = torch.relu(X_ref @ W1.T + b1).pow(2).mean(0) + eps**2
    return (torch.relu(X @ W1.T + b1) * gamma / s) @ W2


# %% flatlab={"feedback": "eps is added after the square root: the spec puts eps^2 inside, s_j = sqrt(mean h_j^2 + eps^2)", "id": "hw0.forward_sim_bn", "name": "eps_outside_sqrt", "role": "mistake"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    s = torch.relu(X_ref @ W1.T + b1).pow(2).mean(0).sqrt() + eps
    return (torch.relu(X @ W1.T + b1) * gamma / s) @ W2


# %% flatlab={"feedback": "gamma is missing: each neuron's normalized activation is scaled by its gamma_j before the output layer", "id": "hw0.forward_sim_bn", "name": "no_gamma", "role": "mistake"}
def sim_bn_forward(W1, b1, gamma, W2, X, X_ref, eps=1e-6):
    s = torch.relu(X_ref @ W1.T + b1).pow(2).mean(0).add(eps**2).sqrt()
    return (torch.relu(X @ W1.T + b1) / s) @ W2


# %% flatlab={"function": "sim_ln_forward", "id": "hw0.forward_sim_ln", "points": 2, "role": "task", "summary": "Sim-LN forward: h = relu(X W1^T + b1); f = (h / max(||h||, eps)) W2 per row"}
def sim_ln_forward(W1, b1, W2, X, eps=1e-6):
    """2-MLP-Sim-LN. W1 (m, d), b1 (m,), W2 (m,), X (n, d) -> f (n,); each row's h divided by max(||h||_2, eps)."""
    ### BEGIN SOLUTION
    h = torch.relu(X @ W1.T + b1)
    return (h / h.norm(dim=1, keepdim=True).clamp_min(eps)) @ W2
    ### END SOLUTION


# %% flatlab={"id": "hw0.forward_sim_ln", "role": "public_test"}
_m = flatlab.make_model("sim_ln", 6, 5, seed=2, eps=1e-3)
_p = {k: v.detach() for k, v in _m.named_parameters()}
_X = torch.cat([torch.zeros(1, 6), _Xte])  # row 0: x = 0; make every neuron dead there
with torch.no_grad():
    _b1 = -_p["b1"].abs() - 0.1
    _m.b1.copy_(_b1)
_f = sim_ln_forward(_p["W1"], _b1, _p["W2"], _X, 1e-3)
assert isinstance(_f, torch.Tensor) and _f.shape == (13,), f"f must be a tensor of shape (n,) = (13,), got {getattr(_f, 'shape', type(_f).__name__)}"
assert torch.isfinite(_f).all() and float(_f[0].abs()) < 1e-12, f"f(x) = {float(_f[0])} where every neuron is dead (h = 0): divide by max(||h||, eps), not ||h||"
_want = _m(_X).detach()
_err = float(((_f - _want) / _want.abs().clamp_min(1e-3)).abs().max())
assert _err < 1e-9, (f"sim_ln_forward differs from flatlab's 'sim_ln' network by a relative {_err:.2g}: normalize each row's "
                     "h = relu(W1 x + b1) (after the relu) by its own Euclidean norm, max(||h||_2, eps)")
print("hw0.forward_sim_ln: OK")


# %% flatlab={"id": "hw0.forward_sim_ln", "role": "hidden_test"}
def test_sim_ln_forward_matches(student, rng):
    """sim_ln_forward must match flatlab's 'sim_ln' network on random weights and inputs (hypercube or Gaussian X), each row's h divided by its own norm."""
    n, d, m = int(rng.integers(2, 30)), int(rng.integers(2, 20)), int(rng.integers(2, 40))
    model = flatlab.make_model("sim_ln", d, m, seed=int(rng.integers(2**31)), init_scale=float(rng.uniform(0.01, 3)))
    X = torch.as_tensor(rng.choice([-1.0, 1.0], size=(n, d)) if rng.random() < 0.5 else rng.normal(size=(n, d)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    assert_close(student.sim_ln_forward(p["W1"], p["b1"], p["W2"], X, 1e-6), model(X).detach(), rtol=1e-9, atol=1e-12)


def test_sim_ln_forward_dead_input(student, rng):
    """sim_ln_forward must return 0 (not NaN) for an input on which every neuron is dead: divide by max(||h||, eps)."""
    d, m = int(rng.integers(2, 10)), int(rng.integers(2, 20))
    model = flatlab.make_model("sim_ln", d, m, seed=int(rng.integers(2**31)), eps=1e-4)
    with torch.no_grad():
        model.b1.fill_(-1.0)
    X = torch.as_tensor(rng.normal(scale=3.0, size=(6, d)))
    X[0] = 0.0  # every pre-activation is -1 here
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = np.asarray(student.sim_ln_forward(p["W1"], p["b1"], p["W2"], X, 1e-4), dtype=float)
    want = model(X).detach().numpy()
    assert np.all(np.isfinite(got)) and abs(got[0]) < 1e-12
    assert_close(got, want, rtol=1e-9, atol=1e-12)


# %% flatlab={"feedback": "an input on which every neuron is dead gives 0/0 = NaN: divide by max(||h||, eps) (clamp the norm from below)", "id": "hw0.forward_sim_ln", "name": "no_eps", "role": "mistake"}
def sim_ln_forward(W1, b1, W2, X, eps=1e-6):
    h = torch.relu(X @ W1.T + b1)
    return (h / h.norm(dim=1, keepdim=True)) @ W2


# %% flatlab={"feedback": "the norm is taken over the batch (dim 0, one per neuron): Sim-LN divides each row h(x) by its own norm over the m neurons", "id": "hw0.forward_sim_ln", "name": "norm_over_batch", "role": "mistake"}
def sim_ln_forward(W1, b1, W2, X, eps=1e-6):
    h = torch.relu(X @ W1.T + b1)
    return (h / h.norm(dim=0, keepdim=True).clamp_min(eps)) @ W2


# %% flatlab={"feedback": "the pre-activation is normalized before the relu: Sim-LN normalizes h = relu(W1 x + b1), after the relu", "id": "hw0.forward_sim_ln", "name": "norm_before_relu", "role": "mistake"}
def sim_ln_forward(W1, b1, W2, X, eps=1e-6):
    z = X @ W1.T + b1
    return torch.relu(z / z.norm(dim=1, keepdim=True).clamp_min(eps)) @ W2


# %% flatlab={"feedback": "eps is added to the norm, ||h|| + eps: the spec divides by max(||h||, eps), which is exactly ||h|| on live inputs", "id": "hw0.forward_sim_ln", "name": "eps_added", "role": "mistake"}
def sim_ln_forward(W1, b1, W2, X, eps=1e-6):
    h = torch.relu(X @ W1.T + b1)
    return (h / (h.norm(dim=1, keepdim=True) + eps)) @ W2


# %% [markdown]
# ## 3. The zero-one error (1 point)
#
# The paper measures Pr(y·f(x) ≤ 0): a prediction of exactly 0 counts as a mistake (this
# matters in hw4, where a memorizing network outputs exactly 0 off its training set).

# %% flatlab={"forbid": ["flatlab.losses.zero_one_error", "flatlab.losses.accuracy", "flatlab.zero_one_error", "flatlab.accuracy"], "function": "zero_one_error", "id": "hw0.zero_one", "points": 1, "role": "task", "summary": "return the fraction of examples with y*f <= 0 as a float"}
def zero_one_error(f, y):
    """Fraction of examples with y * f <= 0. f, y: tensors (n,). Returns a Python float."""
    ### BEGIN SOLUTION
    return float((y * f <= 0).double().mean())
    ### END SOLUTION


# %% flatlab={"id": "hw0.zero_one", "role": "public_test"}
_e = zero_one_error(torch.tensor([0.5, -2.0, 0.0, 3.0]), torch.tensor([1.0, 1.0, 1.0, -1.0]))
assert type(_e) is float, f"zero_one_error must return a Python float (use float(...)), got {type(_e).__name__}"
assert _e != 0.5, "f = 0 must count as a mistake: the error is Pr(y·f <= 0), with <=, not <"
assert _e != 0.25, "that is the accuracy: return the error, the fraction with y·f <= 0"
assert _e == 0.75, f"zero_one_error([0.5, -2, 0, 3], [1, 1, 1, -1]) returned {_e}; expected the fraction 3/4 (a number in [0, 1], not a count)"
print("hw0.zero_one: OK")


# %% flatlab={"id": "hw0.zero_one", "role": "hidden_test"}
def test_zero_one_error_random(student, rng):
    """zero_one_error must return the fraction of y*f <= 0, counting f == 0 as an error."""
    n = int(rng.integers(2, 200))
    f = torch.as_tensor(rng.normal(size=n))
    f[torch.as_tensor(rng.random(n) < 0.2)] = 0.0
    f[0] = 0.0
    y = torch.as_tensor(rng.choice([-1.0, 1.0], size=n))
    got = student.zero_one_error(f, y)
    assert_close(got, float(((y * f) <= 0).double().mean()), rtol=1e-12, atol=1e-12)


def test_zero_one_error_float_in_unit_interval(student, rng):
    """zero_one_error must return a Python float, the fraction (not the count) of errors: 1.0 when every f is 0 or of the wrong sign."""
    n = int(rng.integers(3, 100))
    y = torch.as_tensor(rng.choice([-1.0, 1.0], size=n))
    f = -y * torch.as_tensor(rng.uniform(0.1, 2.0, size=n))
    f[: n // 2] = 0.0
    got = student.zero_one_error(f, y)
    assert isinstance(got, float), f"returned a {type(got).__name__}; expected a Python float (use float(...))"
    assert_close(got, 1.0, rtol=1e-12, atol=1e-12)


# %% flatlab={"feedback": "y*f < 0 does not count f = 0 as a mistake: the paper's error is Pr(y*f <= 0)", "id": "hw0.zero_one", "name": "strict_less", "role": "mistake"}
def zero_one_error(f, y):
    return float((y * f < 0).double().mean())


# %% flatlab={"feedback": "this returns the number of mistakes: divide by n (take the mean) to get the fraction", "id": "hw0.zero_one", "name": "count_not_fraction", "role": "mistake"}
def zero_one_error(f, y):
    return float((y * f <= 0).double().sum())


# %% flatlab={"feedback": "this is the accuracy Pr(y*f > 0): the error is one minus it", "id": "hw0.zero_one", "name": "accuracy", "role": "mistake"}
def zero_one_error(f, y):
    return float((y * f > 0).double().mean())


# %% flatlab={"feedback": "the result is a 0-d tensor: convert it with float(...) to return a Python float", "id": "hw0.zero_one", "name": "returns_tensor", "role": "mistake"}
def zero_one_error(f, y):
    return (y * f <= 0).double().mean()


# %% [markdown]
# ## 4. Training: full-batch gradient descent with weight decay (4 points)
#
# Write `train_gd(model, X, y, lr, wd, epochs)`: `epochs` steps of
# θ ← θ − lr·(∇L(θ) + wd·θ), with L the mean squared error `mse(model(X), y)` and θ every
# parameter of the model. Train **in place** and return the list of the `epochs` training
# losses, each measured *before* its step. Use `torch.autograd.grad` (or `.backward()` and
# zero the gradients yourself) and update under `torch.no_grad()`.

# %% flatlab={"forbid": ["flatlab.train.reference.gd_step", "flatlab.train.reference.minibatch_epoch", "flatlab.train.engine.gd"], "function": "train_gd", "id": "hw0.train_gd", "points": 4, "role": "task", "summary": "run `epochs` full-batch steps theta <- theta - lr*(grad mse + wd*theta) in place; return the losses before each step"}
def train_gd(model, X, y, lr, wd, epochs):
    """Full-batch GD with weight decay on the MSE, in place. Returns a list of `epochs` floats."""
    ### BEGIN SOLUTION
    params = list(model.parameters())
    losses = []
    for _ in range(int(epochs)):
        loss = mse(model(X), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * (g + wd * p))
        losses.append(float(loss.detach()))
    return losses
    ### END SOLUTION


# %% flatlab={"id": "hw0.train_gd", "role": "public_test"}
_X, _y = flatlab.xor_parity(16, 5, seed=0)
_m = flatlab.make_model("bias", 5, 8, seed=0)
_ref = flatlab.make_model("bias", 5, 8, seed=0)
_W1 = _m.W1.detach().clone()
_losses = train_gd(_m, _X, _y, lr=0.1, wd=0.05, epochs=20)
assert isinstance(_losses, list) and len(_losses) == 20, f"train_gd must return a list of `epochs` = 20 losses, got {type(_losses).__name__} of length {len(_losses) if hasattr(_losses, '__len__') else '?'}"
assert all(type(_l) is float for _l in _losses), "the losses must be Python floats (float(loss))"
assert not torch.equal(_W1, _m.W1.detach()), "the model's weights did not change: train_gd must update the model in place"
_want = []
for _ in range(20):
    _want.append(float(mse(_ref(_X), _y).detach()))
    flatlab.train.reference.gd_step(_ref, _X, _y, lr=0.1, weight_decay=0.05)
assert abs(_losses[0] - _want[0]) < 1e-12, "the first loss must be measured before the first step (the loss of the initial model)"
_gap = max(abs(_a - _b) / _b for _a, _b in zip(_losses, _want))
assert _gap < 1e-9, (f"the losses drift from flatlab's GD+wd reference (relative gap {_gap:.2g}); "
                     "each step is theta <- theta - lr*(grad L + wd*theta), with fresh gradients every step")
_gap = max(float((_p - _q).abs().max()) for _p, _q in zip(_m.parameters(), _ref.parameters()))
assert _gap < 1e-10, f"after 20 steps the weights differ from flatlab's GD+wd reference by up to {_gap:.2g}"
print("hw0.train_gd: OK")


# %% flatlab={"id": "hw0.train_gd", "role": "hidden_test"}
def _gd_reference(model, X, y, lr, wd, epochs):
    params = list(model.parameters())
    losses = []
    for _ in range(epochs):
        loss = flatlab.mse(model(X), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * (g + wd * p))
        losses.append(float(loss.detach()))
    return losses


def _check_gd(student, rng, arch):
    d, m, n = int(rng.integers(2, 8)), int(rng.integers(2, 12)), int(rng.integers(4, 20))
    seed = int(rng.integers(2**31))
    X, y = flatlab.xor_parity(n, d, seed=seed)
    kw = {"X_ref": X} if arch == "sim_bn" else {}
    model = flatlab.make_model(arch, d, m, seed=seed + 1, **kw)
    lr, wd, epochs = float(rng.uniform(0.01, 0.1)), float(rng.uniform(0.01, 0.1)), int(rng.integers(3, 12))
    losses, (after, *_) = student.call("train_gd", model, X, y, lr, wd, epochs, return_args=True)
    want = _gd_reference(model, X, y, lr, wd, epochs)
    assert_close(np.asarray(losses, dtype=float), np.asarray(want), rtol=1e-8, atol=1e-12)
    got = after["params"] if isinstance(after, dict) else dict(after.named_parameters())
    for k, q in model.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), q.detach(), rtol=1e-8, atol=1e-12)


def test_train_gd_bias(student, rng):
    """train_gd must update a bias network in place by theta <- theta - lr*(grad L + wd*theta) and return the losses measured before each step."""
    _check_gd(student, rng, "bias")


def test_train_gd_sim_bn(student, rng):
    """train_gd must work for any flatlab model (here Sim-BN, whose gamma is a parameter too): every parameter gets the GD+wd update."""
    _check_gd(student, rng, "sim_bn")


# %% flatlab={"feedback": "each loss is measured after its step: record the loss of the current model before updating it", "id": "hw0.train_gd", "name": "loss_after_step", "role": "mistake"}
def train_gd(model, X, y, lr, wd, epochs):
    params = list(model.parameters())
    losses = []
    for _ in range(int(epochs)):
        grads = torch.autograd.grad(mse(model(X), y), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * (g + wd * p))
            losses.append(float(mse(model(X), y)))
    return losses


# %% flatlab={"feedback": "the weight-decay term has the wrong sign: theta <- theta - lr*(grad + wd*theta) shrinks the weights", "id": "hw0.train_gd", "name": "wd_wrong_sign", "role": "mistake"}
def train_gd(model, X, y, lr, wd, epochs):
    params = list(model.parameters())
    losses = []
    for _ in range(int(epochs)):
        loss = mse(model(X), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * (g - wd * p))
        losses.append(float(loss))
    return losses


# %% flatlab={"feedback": "the gradients accumulate across steps: with .backward() you must zero p.grad before (or after) every step", "id": "hw0.train_gd", "name": "grads_accumulate", "role": "mistake"}
def train_gd(model, X, y, lr, wd, epochs):
    losses = []
    for _ in range(int(epochs)):
        loss = mse(model(X), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * (p.grad + wd * p)
        losses.append(float(loss))
    return losses


# %% flatlab={"feedback": "the weight decay is not multiplied by the learning rate: the step is lr*(grad + wd*theta)", "id": "hw0.train_gd", "name": "decay_not_scaled_by_lr", "role": "mistake"}
def train_gd(model, X, y, lr, wd, epochs):
    params = list(model.parameters())
    losses = []
    for _ in range(int(epochs)):
        loss = mse(model(X), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g + wd * p)
        losses.append(float(loss))
    return losses


# %% flatlab={"feedback": "a copy of the model is trained (copy.deepcopy) and the model passed in is left unchanged: train in place", "id": "hw0.train_gd", "name": "trains_a_copy", "role": "mistake"}
def train_gd(model, X, y, lr, wd, epochs):
    import copy
    model = copy.deepcopy(model)
    params = list(model.parameters())
    losses = []
    for _ in range(int(epochs)):
        loss = mse(model(X), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * (g + wd * p))
        losses.append(float(loss))
    return losses


# %% [markdown]
# ## 5. Experiment: GD+wd generalizes on XOR (questions: 3 points)
#
# d = 30, n = 100 training points, width 500 as in the paper, a bias network. We train with
# your `train_gd` in chunks of 200 epochs and record the test accuracy on 10,000 fresh points
# after each chunk, with and without weight decay. (The paper uses lr 0.01 for 1e5 epochs; lr
# 0.05 gets to the same place in ~3000 epochs. Runs in ~15 s.)

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
curves = {}
for wd in (0.05, 0.0):
    model = flatlab.make_model("bias", 30, 500, seed=0)
    epochs, acc, loss = [0], [flatlab.accuracy(model(data.X_test).detach(), data.y_test)], []
    t0 = time.perf_counter()
    for chunk in range(15):
        loss += train_gd(model, data.X_train, data.y_train, lr=0.05, wd=wd, epochs=200)
        with torch.no_grad():
            acc.append(1 - zero_one_error(model(data.X_test), data.y_test))
        epochs.append(200 * (chunk + 1))
    curves[wd] = (epochs, acc, loss)
    print(f"wd={wd}: final train loss {loss[-1]:.4f}, test accuracy {acc[-1]:.4f} ({time.perf_counter() - t0:.1f} s)")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for wd, (ep, acc, loss) in curves.items():
    style = dict(color=COLORS["gd_wd"], label=f"GD+wd (wd = {wd})") if wd > 0 else dict(color="#7f7f7f", label="GD (wd = 0)")
    axes[0].semilogy(loss, **style)
    axes[1].plot(ep, acc, marker="o", **style)
axes[0].set(xlabel="epoch", ylabel="training MSE", title="training loss")
axes[1].set(xlabel="epoch", ylabel="test accuracy", title="XOR, d=30, n=100, bias net, width 500", ylim=(0.4, 1.02))
for ax in axes:
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown] flatlab={"id": "hw0.q_generalization", "points": 2, "role": "manual"}
# **Question.** n = 100 training points are a vanishing fraction of the 2^30 ≈ 10^9 inputs, and
# a width-500 network could fit any labelling of them. Describe what the plot shows about
# the test accuracy with and without weight decay, and name one feature of the trained
# weights you would look at to explain why the network generalizes.
#
# <!-- BEGIN SOLUTION -->
# With weight decay the test accuracy climbs from chance (0.5) to ≈ 1.0 within ~2000 epochs,
# although the training loss plateaued (at ≈ 0.0075, the price of the regularizer) after a few
# hundred: generalization keeps improving after fitting. Without weight decay the network
# interpolates (training loss → 1e-30) within ~200 epochs and its test accuracy freezes near
# 0.57: once the gradient vanishes, GD stops moving and nothing pulls it towards the simple
# XOR solution. To explain the difference, look at how much of each large neuron's
# first-layer weight sits on x[0], x[1] (hw3, hw4 measure this): a generalizing net
# concentrates its weight there and ignores the other 28 coordinates.
# <!-- END SOLUTION -->

# %% [markdown] flatlab={"id": "hw0.q_statistic", "points": 1, "role": "manual"}
# **Question.** Why does Sim-BN compute its statistic on the *training* inputs and keep it
# fixed at test time, instead of normalizing each test batch by its own statistic? Give one
# concrete problem the batch statistic would cause.
#
# <!-- BEGIN SOLUTION -->
# With a batch statistic the prediction for a test point would depend on which other points
# happen to be in its batch, so f would not be a function of x alone: a single test point
# evaluated alone (batch of one) would be normalized by its own activation and every active
# neuron would output exactly γ_j, whatever x is. Fixing s on the training set makes f a fixed
# function of x, the one whose sharpness we measure on the training loss.
# <!-- END SOLUTION -->
