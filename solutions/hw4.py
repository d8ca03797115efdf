# ---
# jupyter:
#   flatlab:
#     assignment: hw4
#     title: 'Scenario II: flattest models that memorize'
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw4 · Scenario II: flattest models that memorize
#
# Add a bias to the first layer, f(x) = W2·relu(W1 x + b1), and the story of hw3 breaks.
# The paper shows (Section 4):
#
# * every interpolator of ±1 labels on the hypercube has Tr ∇²L ≥ **4·sqrt(d+1)**
#   (Lemma 4.1 + Cauchy-Schwarz);
# * a **memorizing** interpolator reaches the bound: one neuron per training point, output
#   0 everywhere else (Theorem 4.1) — test accuracy 0;
# * a **generalizing** interpolator reaches it too: four neurons computing x1·x2 (Prop. 4.2);
# * 1-SAM ends near the bound but generalizes much worse than GD with weight decay (Fig. 4).
#
# So among the flattest models some memorize and some generalize: flatness alone cannot
# explain generalization here. You will derive and check the bound, build both flattest
# solutions, and write the diagnostics that tell trained networks apart. Estimated time: 3 hours.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.models import make_model, set_params
from flatlab.lab.plotting import COLORS
from flatlab.sharpness import gauss_newton_trace
from flatlab.train import Phase, TrainConfig, train

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def bias_net(params):
    """A flatlab 'bias' model holding the given {"W1": (m, d), "b1": (m,), "W2": (m,)}."""
    m, d = params["W1"].shape
    return set_params(make_model("bias", d, m, seed=0), params)


# %% [markdown]
# ## 1. The lower bound (task `hw4.lower_bound`, 2 points)
#
# At an interpolator, Tr ∇²L = (2/n)Σ_i ‖∇_θ f(x_i)‖². For a bias net, with x' = (x, 1) and
# h_j = relu(w'_j·x'), ‖∇_θ f(x)‖² = Σ_j h_j² + ‖x'‖² Σ_j W2_j² 1[h_j > 0]. By AM-GM and
# Cauchy-Schwarz, Σ_j (h_j² + ‖x'‖² W2_j² 1[h_j>0]) ≥ 2‖x'‖ Σ_j |W2_j| h_j ≥ 2‖x'‖·|f(x)|.
# Hence Tr ∇²L ≥ (4/n) Σ_i ‖x'_i‖·|y_i|, which is 4·sqrt(d+1) on the hypercube with ±1
# labels. Write `trace_lower_bound(X, y)` for general data.

# %% flatlab={"forbid": ["flatlab.sharpness.bias_trace_lower_bound_data", "flatlab.sharpness.bias_trace_lower_bound"], "function": "trace_lower_bound", "id": "hw4.lower_bound", "points": 2, "role": "task", "summary": "return (4/n) sum_i ||(x_i, 1)|| * |y_i|"}
def trace_lower_bound(X, y):
    """(4/n) Σ_i sqrt(‖x_i‖² + 1)·|y_i| for X (n, d), y (n,). Returns a float."""
    ### BEGIN SOLUTION
    return float(4.0 * (torch.sqrt(X.pow(2).sum(1) + 1) * y.abs()).mean())
    ### END SOLUTION


# %% flatlab={"id": "hw4.lower_bound", "role": "public_test"}
_Xc, _yc = flatlab.xor_parity(50, 30, seed=0)  # the hypercube {-1,+1}^30, labels ±1
_gen = torch.Generator().manual_seed(0)
_Xg, _yg = 0.5 + 2 * torch.randn(40, 7, generator=_gen), torch.randn(40, generator=_gen)  # general data, real labels
_lb = trace_lower_bound(_Xg, _yg)
assert isinstance(_lb, float), f"trace_lower_bound must return a Python float, got {type(_lb).__name__}"
assert abs(trace_lower_bound(_Xg, -_yg) / _lb - 1) < 1e-10, (
    "flipping the signs of the labels changed your bound: it uses |y_i| (|f(x_i)| = |y_i| at an interpolator)")
assert abs(trace_lower_bound(torch.cat([_Xg, _Xg]), torch.cat([_yg, _yg])) / _lb - 1) < 1e-10, (
    "repeating every example twice changed your bound: it is an average over the examples, (4/n) Σ_i, not a sum")
_ratio = trace_lower_bound(_Xc, _yc) / (4 * np.sqrt(31))
assert abs(_ratio - 1) < 1e-10, (
    f"on the hypercube {{-1,+1}}^30 with ±1 labels the bound is 4·sqrt(d+1); yours is {_ratio:.4g}× that: "
    "check the factor 4 = 2 (Lemma 4.1) × 2 (AM-GM) and the +1 of the bias coordinate x' = (x, 1)")
_ratio = _lb / flatlab.sharpness.bias_trace_lower_bound_data(_Xg, _yg)
assert abs(_ratio - 1) < 1e-10, (
    f"on Gaussian (non-hypercube) data your bound is {_ratio:.4g}× flatlab's bias_trace_lower_bound_data: "
    "use each point's own ‖(x_i, 1)‖ = sqrt(‖x_i‖² + 1); sqrt(d+1) holds only on the hypercube")
print("hw4.lower_bound: OK")


# %% flatlab={"id": "hw4.lower_bound", "role": "hidden_test"}
def test_lower_bound_general_data(student, rng):
    """trace_lower_bound must return (4/n) sum_i sqrt(||x_i||^2 + 1) |y_i| for arbitrary real data (not only the hypercube: each point's own norm, not sqrt(d+1)) and real labels of both signs (|y_i|)."""
    n, d = int(rng.integers(2, 80)), int(rng.integers(1, 40))
    X = torch.as_tensor(rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=(n, 1)))
    y = torch.as_tensor(rng.normal(size=n))
    assert_close(student.trace_lower_bound(X, y), flatlab.sharpness.bias_trace_lower_bound_data(X, y), rtol=1e-10)


def test_lower_bound_hypercube(student, rng):
    """On hypercube data with +-1 labels, trace_lower_bound must equal 4*sqrt(d+1) (an average over the examples, the factor 4, the bias coordinate's +1)."""
    d = int(rng.integers(2, 60))
    X, y = flatlab.xor_parity(int(rng.integers(2, 100)), d, seed=int(rng.integers(2**31)))
    assert_close(student.trace_lower_bound(X, y), 4 * np.sqrt(d + 1), rtol=1e-10)


# %% flatlab={"feedback": "uses sqrt(d+1) for every point, which holds only on the hypercube: use each point's own sqrt(||x_i||^2 + 1)", "id": "hw4.lower_bound", "name": "hypercube_shortcut", "role": "mistake"}
def trace_lower_bound(X, y):
    return float(4.0 * np.sqrt(X.shape[1] + 1) * y.abs().mean())


# %% flatlab={"feedback": "uses ||x_i|| instead of ||(x_i, 1)|| = sqrt(||x_i||^2 + 1): the bias adds a coordinate 1 to every input", "id": "hw4.lower_bound", "name": "no_bias_coordinate", "role": "mistake"}
def trace_lower_bound(X, y):
    return float(4.0 * (X.norm(dim=1) * y.abs()).mean())


# %% flatlab={"feedback": "sums over the examples instead of averaging: the bound is (4/n) sum_i", "id": "hw4.lower_bound", "name": "sum_not_mean", "role": "mistake"}
def trace_lower_bound(X, y):
    return float(4.0 * (torch.sqrt(X.pow(2).sum(1) + 1) * y.abs()).sum())


# %% flatlab={"feedback": "looks like the factor 2 of AM-GM is missing: the bound is (2/n) sum_i 2 ||x'_i|| |y_i|", "id": "hw4.lower_bound", "name": "factor_two_missing", "role": "mistake"}
def trace_lower_bound(X, y):
    return float(2.0 * (torch.sqrt(X.pow(2).sum(1) + 1) * y.abs()).mean())


# %% flatlab={"feedback": "uses y_i instead of |y_i|: the bound comes from |f(x_i)| = |y_i|, so negative labels count positively", "id": "hw4.lower_bound", "name": "signed_labels", "role": "mistake"}
def trace_lower_bound(X, y):
    return float(4.0 * (torch.sqrt(X.pow(2).sum(1) + 1) * y).mean())


# %% [markdown]
# ## 2. The memorizing flattest solution (Theorem 4.1; task `hw4.memorizing`, 4 points)
#
# Width n, one neuron per training point. With w_i = x_i/‖x_i‖, r_i = sqrt(‖x_i‖² + 1) and
# a margin ε > 0:
#
# W1[i] = sqrt(r_i|y_i|)·w_i/ε,  b1[i] = sqrt(r_i|y_i|)·(ε − w_i·x_i)/ε,  W2[i] = sign(y_i)·sqrt(|y_i|/r_i).
#
# The pre-activation of neuron i is sqrt(r_i|y_i|)·(1 − (w_i·x_i − w_i·x)/ε): it equals
# sqrt(r_i|y_i|) at x_i and is negative at any x with w_i·x < w_i·x_i − ε. On the hypercube
# w_i·(x_i − x_j) ≥ 2/sqrt(d), so any ε < 2/sqrt(d) isolates every training point. Write
# `memorizing_solution(X, y, eps)` returning the dict `{"W1", "b1", "W2"}`. (Assume the
# training points are distinct.)

# %% flatlab={"forbid": ["flatlab.constructions.memorizing_bias", "flatlab.constructions.memorizing_sim_ln"], "function": "memorizing_solution", "id": "hw4.memorizing", "points": 4, "role": "task", "summary": "width n: W1[i] = sqrt(r_i|y_i|) w_i/eps, b1[i] = sqrt(r_i|y_i|)(eps - w_i.x_i)/eps, W2[i] = sign(y_i) sqrt(|y_i|/r_i), w_i = x_i/||x_i||, r_i = sqrt(||x_i||^2+1); return a dict"}
def memorizing_solution(X, y, eps=0.1):
    """Theorem 4.1's memorizing interpolator of (X (n, d), y (n,)). Returns {"W1": (n, d), "b1": (n,), "W2": (n,)}."""
    ### BEGIN SOLUTION
    norms = X.norm(dim=1)
    w = X / norms[:, None]
    r = torch.sqrt(norms.pow(2) + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * w / eps, "b1": a * (eps - (w * X).sum(1)) / eps,
            "W2": torch.sign(y) * torch.sqrt(y.abs() / r)}
    ### END SOLUTION


# %% flatlab={"id": "hw4.memorizing", "role": "public_test"}
_gen = torch.Generator().manual_seed(1)
_Xs = torch.randn(8, 6, generator=_gen)
_Xs = _Xs / _Xs.norm(dim=1, keepdim=True) * torch.linspace(1.5, 2.5, 8)[:, None]  # off the hypercube: norms 1.5 to 2.5
_ys = torch.linspace(-2.0, 2.0, 8)  # real labels of both signs
_pm = memorizing_solution(_Xs, _ys, 0.1)
assert isinstance(_pm, dict) and set(_pm) == {"W1", "b1", "W2"}, "memorizing_solution must return a dict with keys W1, b1, W2"
_shapes = {k: tuple(v.shape) for k, v in _pm.items()}
assert _shapes == {"W1": (8, 6), "b1": (8,), "W2": (8,)}, f"for X (8, 6) the shapes must be W1 (8, 6), b1 (8,), W2 (8,); got {_shapes}"
with torch.no_grad():
    _fx = bias_net(_pm)(_Xs)
assert (_fx - _ys).abs().max() < 1e-10, (
    f"the net must interpolate, f(x_i) = y_i, but f(x_i)/y_i ranges over [{float((_fx / _ys).min()):.3g}, "
    f"{float((_fx / _ys).max()):.3g}]: check sign(y_i) in W2, the division by ε, and that neuron i's pre-activation at x_i "
    "is sqrt(r_i|y_i|)")
_ratio = gauss_newton_trace(bias_net(_pm), _Xs) / flatlab.sharpness.bias_trace_lower_bound_data(_Xs, _ys)
assert abs(_ratio - 1) < 1e-8, (
    f"on data off the hypercube the trace is {_ratio:.6g}× the lower bound (4/n) Σ r_i|y_i|; it must meet it: "
    "each neuron must be balanced (pre-activation sqrt(r_i|y_i|) at x_i, |W2[i]| = sqrt(|y_i|/r_i)) with r_i = "
    "sqrt(‖x_i‖² + 1) from the point's own norm, not sqrt(d+1)")
_Xc, _yc = flatlab.xor_parity(50, 30, seed=0)
_Xnew, _ = flatlab.xor_parity(200, 30, seed=123)  # none of them is a training point
with torch.no_grad():
    _off = float(bias_net(memorizing_solution(_Xc, _yc, 0.1))(_Xnew).abs().max())
assert _off == 0, f"the memorizer must output exactly 0 away from the training points; max |f| there is {_off:.3g}"
print("hw4.memorizing: OK")


# %% flatlab={"id": "hw4.memorizing", "role": "hidden_test"}
def _net(params):
    params = {k: torch.as_tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    width, dim = params["W1"].shape
    return flatlab.models.set_params(flatlab.make_model("bias", dim, width, seed=0), params)


def _spread_data(rng, n, d):
    """n distinct points in R^d with norms in [1, 3] (off the hypercube) and their margin min_{i!=j} w_i.(x_i - x_j) > 0."""
    while True:
        X = rng.normal(size=(n, d))
        X = torch.as_tensor(X / np.linalg.norm(X, axis=1, keepdims=True) * rng.uniform(1.0, 3.0, size=(n, 1)))
        w = X / X.norm(dim=1, keepdim=True)
        gap = X.norm(dim=1)[:, None] - w @ X.T
        gap.fill_diagonal_(float("inf"))
        if float(gap.min()) > 0.02:
            return X, float(gap.min())


def _real_labels(rng, n):
    return torch.as_tensor(rng.uniform(0.2, 2.0, size=n) * rng.choice([-1.0, 1.0], size=n))


def test_memorizing_matches_theorem(student, rng):
    """memorizing_solution must return exactly Theorem 4.1's weights for the given eps on general data (points off the hypercube, real labels): w_i = x_i/||x_i||, r_i = sqrt(||x_i||^2+1) from each point's own norm."""
    n, d = int(rng.integers(2, 12)), int(rng.integers(6, 20))
    X, margin = _spread_data(rng, n, d)
    y = _real_labels(rng, n)
    eps = float(rng.uniform(0.2, 0.8)) * margin
    got = student.memorizing_solution(X, y, eps)
    want = flatlab.constructions.memorizing_bias(X, y, eps=eps)
    for k, v in want.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), v.detach(), rtol=1e-9, atol=1e-12, name=f"your {k}")


def test_memorizing_general_data_flattest(student, rng):
    """On general data (points off the hypercube, real labels) the memorizing solution must interpolate and its trace must equal the data bound (4/n) sum_i sqrt(||x_i||^2+1)|y_i| (balanced neurons, each point's own r_i)."""
    n, d = int(rng.integers(2, 12)), int(rng.integers(6, 20))
    X, margin = _spread_data(rng, n, d)
    y = _real_labels(rng, n)
    model = _net(student.memorizing_solution(X, y, 0.5 * margin))
    with torch.no_grad():
        assert_close(model(X), y, rtol=1e-9, atol=1e-10, name="f(x_i)")
    assert_close(flatlab.sharpness.gauss_newton_trace(model, X), flatlab.sharpness.bias_trace_lower_bound_data(X, y),
                 rtol=1e-8, name="the trace of your net")


def test_memorizing_flattest_and_memorizes(student, rng):
    """On the hypercube the memorizing solution must interpolate real-valued labels, reach the trace lower bound, and output exactly 0 at unseen hypercube points."""
    d = int(rng.integers(6, 30))
    X, _ = flatlab.xor_parity(int(rng.integers(2, 40)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = _real_labels(rng, X.shape[0])
    model = _net(student.memorizing_solution(X, y, 0.5 / np.sqrt(d)))
    with torch.no_grad():
        assert_close(model(X), y, rtol=1e-9, atol=1e-10, name="f(x_i)")
        assert_close(flatlab.sharpness.gauss_newton_trace(model, X), flatlab.sharpness.bias_trace_lower_bound_data(X, y),
                     rtol=1e-8, name="the trace of your net")
        Z, _ = flatlab.xor_parity(100, d, seed=int(rng.integers(2**31)))
        unseen = ~(Z[:, None, :] == X[None]).all(-1).any(1)
        if bool(unseen.any()):
            off = float(model(Z[unseen]).abs().max())
            assert off < 1e-12, f"your net outputs {off:.3g} at a hypercube point that is not a training point; it must output 0 there"


# %% flatlab={"feedback": "uses the hypercube's ||x_i|| = sqrt(d) (r_i = sqrt(d+1), w_i = x_i/sqrt(d)), which fails off the hypercube: use each point's own norm", "id": "hw4.memorizing", "name": "hypercube_norm", "role": "mistake"}
def memorizing_solution(X, y, eps=0.1):
    d = X.shape[1]
    w = X / np.sqrt(d)
    r = np.sqrt(d + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * w / eps, "b1": a * (eps - (w * X).sum(1)) / eps,
            "W2": torch.sign(y) * torch.sqrt(y.abs() / r)}


# %% flatlab={"feedback": "the neurons are not balanced (scale 1 and W2[i] = y_i): the net interpolates but its trace is above the bound; scale neuron i by sqrt(r_i|y_i|)", "id": "hw4.memorizing", "name": "unbalanced", "role": "mistake"}
def memorizing_solution(X, y, eps=0.1):
    w = X / X.norm(dim=1, keepdim=True)
    return {"W1": w / eps, "b1": (eps - (w * X).sum(1)) / eps, "W2": y.clone()}


# %% flatlab={"feedback": "the first layer is not divided by eps, so neuron i's pre-activation at x_i is eps*sqrt(r_i|y_i|) and f(x_i) = eps*y_i", "id": "hw4.memorizing", "name": "no_eps_division", "role": "mistake"}
def memorizing_solution(X, y, eps=0.1):
    norms = X.norm(dim=1)
    w = X / norms[:, None]
    r = torch.sqrt(norms.pow(2) + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * w, "b1": a * (eps - (w * X).sum(1)), "W2": torch.sign(y) * torch.sqrt(y.abs() / r)}


# %% flatlab={"feedback": "W2[i] lacks the factor sign(y_i): negative labels are fitted with the wrong sign", "id": "hw4.memorizing", "name": "sign_dropped", "role": "mistake"}
def memorizing_solution(X, y, eps=0.1):
    norms = X.norm(dim=1)
    w = X / norms[:, None]
    r = torch.sqrt(norms.pow(2) + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * w / eps, "b1": a * (eps - (w * X).sum(1)) / eps, "W2": torch.sqrt(y.abs() / r)}


# %% flatlab={"feedback": "the neuron directions are x_i, not the unit vectors w_i = x_i/||x_i||: the weights differ from Theorem 4.1's (and the margin changes with ||x_i||)", "id": "hw4.memorizing", "name": "unnormalized_direction", "role": "mistake"}
def memorizing_solution(X, y, eps=0.1):
    r = torch.sqrt(X.pow(2).sum(1) + 1)
    a = torch.sqrt(r * y.abs())
    return {"W1": a[:, None] * X / eps, "b1": a * (eps - X.pow(2).sum(1)) / eps,
            "W2": torch.sign(y) * torch.sqrt(y.abs() / r)}


# %% [markdown]
# ## 3. The generalizing flattest solution (Proposition 4.2; task `hw4.generalizing`, 3 points)
#
# Four active neurons, one per sign pattern (s1, s2) ∈ {±1}²: first-layer row
# r·(s1, s2, 0, …, 0), bias −r, output weight s1·s2/r. Neuron (s1, s2) outputs r exactly when
# (x[0], x[1]) = (s1, s2) and 0 otherwise, so f(x) = x[0]·x[1] on the whole hypercube. Each
# training point then has ‖∇_θ f‖² = (d+1)/r² + r², smallest at r = (d+1)^(1/4) where it is
# 2·sqrt(d+1): the bound again. Write `generalizing_solution(d, width)` (width ≥ 4) returning
# the dict; fill neurons beyond the fourth with *dead* neurons (row 0, bias −1, output 0),
# which change neither f nor the trace.

# %% flatlab={"forbid": ["flatlab.constructions.generalizing_bias", "flatlab.constructions.generalizing_sim_ln", "flatlab.constructions.optimal_radius"], "function": "generalizing_solution", "id": "hw4.generalizing", "points": 3, "role": "task", "summary": "four neurons r*(s1, s2, 0, ...), bias -r, output s1*s2/r with r = (d+1)^(1/4); extra neurons dead (row 0, bias -1, output 0); return a dict"}
def generalizing_solution(d, width=4):
    """Prop. 4.2's XOR network at the optimal radius. Returns {"W1": (width, d), "b1": (width,), "W2": (width,)}."""
    ### BEGIN SOLUTION
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}
    ### END SOLUTION


# %% flatlab={"id": "hw4.generalizing", "role": "public_test"}
_pg = generalizing_solution(7, 6)
assert isinstance(_pg, dict) and set(_pg) == {"W1", "b1", "W2"}, "generalizing_solution must return a dict with keys W1, b1, W2"
_shapes = {k: tuple(v.shape) for k, v in _pg.items()}
assert _shapes == {"W1": (6, 7), "b1": (6,), "W2": (6,)}, (
    f"generalizing_solution(7, 6) must have 6 neurons in dimension 7 (W1 (6, 7), b1 (6,), W2 (6,)); got {_shapes}")
_cube = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * 7)  # all 128 points of {-1,+1}^7
with torch.no_grad():
    _fx = bias_net(_pg)(_cube)
_xor = _cube[:, 0] * _cube[:, 1]
assert (_fx - _xor).abs().max() < 1e-12, (
    f"f(x) must equal x[0]·x[1] (coordinates 0 and 1) at every hypercube point; f(x)/(x[0]·x[1]) ranges over "
    f"[{float((_fx / _xor).min()):.3g}, {float((_fx / _xor).max()):.3g}]: neuron (s1, s2) must output r exactly on its "
    "own sign pattern (bias -r) and 0 elsewhere, with output weight s1·s2/r")
_ratio = gauss_newton_trace(bias_net(_pg), _cube) / (4 * np.sqrt(8))
assert abs(_ratio - 1) < 1e-9, (
    f"the trace on the hypercube is {_ratio:.6g}× the bound 4·sqrt(d+1): the radius r must minimize (d+1)/r² + r²")
print("hw4.generalizing: OK")


# %% flatlab={"id": "hw4.generalizing", "role": "hidden_test"}
def test_generalizing_computes_xor(student, rng):
    """generalizing_solution(d, width) must return width neurons (W1 of shape (width, d)) and compute f(x) = x[0]*x[1] (coordinates 0 and 1) at every hypercube point."""
    d, width = int(rng.integers(2, 50)), int(rng.integers(5, 20))
    params = student.generalizing_solution(d, width)
    shape = np.asarray(params["W1"]).shape
    assert shape == (width, d), f"W1 has shape {shape} for d = {d}, width = {width}; it must be (width, d)"
    model = _net(params)
    Z, _ = flatlab.xor_parity(300, d, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        assert_close(model(Z), Z[:, 0] * Z[:, 1], rtol=1e-10, atol=1e-12, name="f(x)")


def test_generalizing_meets_bound(student, rng):
    """generalizing_solution must reach the trace lower bound 4*sqrt(d+1) on any XOR training set (optimal radius r = (d+1)^(1/4), dead extra neurons)."""
    d, width = int(rng.integers(2, 50)), int(rng.integers(4, 12))
    model = _net(student.generalizing_solution(d, width))
    X, y = flatlab.xor_parity(int(rng.integers(5, 100)), d, seed=int(rng.integers(2**31)))
    assert_close(flatlab.sharpness.gauss_newton_trace(model, X), 4 * np.sqrt(d + 1), rtol=1e-9, name="the trace of your net")


# %% flatlab={"feedback": "the radius is sqrt(d+1) instead of (d+1)^(1/4): f is still x1*x2 but the trace (d+1)/r^2 + r^2 is not minimal", "id": "hw4.generalizing", "name": "radius_sqrt", "role": "mistake"}
def generalizing_solution(d, width=4):
    r = (d + 1) ** 0.5
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the output weight is s1*s2 instead of s1*s2/r, so f = r^2 * x1*x2 does not interpolate", "id": "hw4.generalizing", "name": "output_not_rescaled", "role": "mistake"}
def generalizing_solution(d, width=4):
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the active neurons have bias -1 instead of -r, so on its sign pattern a neuron outputs 2r - 1, not r", "id": "hw4.generalizing", "name": "bias_minus_one", "role": "mistake"}
def generalizing_solution(d, width=4):
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], W2[j] = r * s1, r * s2, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the network always has 4 neurons: width is ignored (extra neurons must be dead: row 0, bias -1, output 0)", "id": "hw4.generalizing", "name": "width_ignored", "role": "mistake"}
def generalizing_solution(d, width=4):
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(4, d), -torch.ones(4), torch.zeros(4)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 0], W1[j, 1], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}


# %% flatlab={"feedback": "the neurons read coordinates 1 and 2 (W1[j, 1], W1[j, 2]) instead of the label coordinates 0 and 1", "id": "hw4.generalizing", "name": "off_by_one_coordinates", "role": "mistake"}
def generalizing_solution(d, width=4):
    r = (d + 1) ** 0.25
    W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)
    for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
        W1[j, 1], W1[j, 2], b1[j], W2[j] = r * s1, r * s2, -r, s1 * s2 / r
    return {"W1": W1, "b1": b1, "W2": W2}


# %% [markdown]
# ## 4. Telling flat solutions apart (tasks `hw4.memorization_index`, 3 points, and `hw4.x1x2_share`, 1 point)
#
# Two diagnostics read the weights and the training activations:
#
# * the **memorization index**: the share of Σ_i Σ_j |W2_j·h_j(x_i)| (the training output,
#   neuron by neuron) carried by neurons that fire (h_j > 0) on at most `threshold` training
#   points (0.0 if the total is 0);
# * the **x1x2 share**: ‖W1[:, :2]‖_F² / ‖W1‖_F², the share of first-layer weight on the two
#   label coordinates (chance level 2/d).
#
# Write `memorization_index(W1, b1, W2, X, threshold=3)` and `x1x2_share(W1)` for bias nets.

# %% flatlab={"forbid": ["flatlab.diagnostics.memorization_index", "flatlab.diagnostics.diagnose"], "function": "memorization_index", "id": "hw4.memorization_index", "points": 3, "role": "task", "summary": "share of sum_i sum_j |W2_j h_j(x_i)| carried by neurons firing on <= threshold rows of X (0.0 if the total is 0)"}
def memorization_index(W1, b1, W2, X, threshold=3):
    """Memorization index of the bias net (W1 (m, d), b1 (m,), W2 (m,)) on training inputs X (n, d). Returns a float in [0, 1]."""
    ### BEGIN SOLUTION
    H = torch.relu(X @ W1.T + b1)
    contrib = (H * W2).abs().sum(0)
    total = float(contrib.sum())
    if total == 0.0:
        return 0.0
    return float(contrib[(H > 0).sum(0) <= threshold].sum()) / total
    ### END SOLUTION


# %% flatlab={"forbid": ["flatlab.diagnostics.x1x2_share", "flatlab.diagnostics.diagnose"], "function": "x1x2_share", "id": "hw4.x1x2_share", "points": 1, "role": "task", "summary": "return ||W1[:, :2]||_F^2 / ||W1||_F^2 (0.0 if W1 = 0)"}
def x1x2_share(W1):
    """Share of the squared Frobenius norm of W1 (m, d) on its first two columns. Returns a float."""
    ### BEGIN SOLUTION
    total = float(W1.pow(2).sum())
    return float(W1[:, :2].pow(2).sum()) / total if total > 0 else 0.0
    ### END SOLUTION


# %% flatlab={"id": "hw4.memorization_index", "role": "public_test"}
# Six training points x = (k, 1), k = 1..6, and three hand-made neurons:
# A fires on 1 point (k = 6), B on exactly 3 = threshold points (k = 4, 5, 6), C on all 6.
_Xt = torch.stack([torch.arange(1.0, 7.0), torch.ones(6)], 1)
_rows = {"A": ([1.0, 0.0], -5.5), "B": ([1.0, 0.0], -3.5), "C": ([0.0, 1.0], 0.0)}


def _index_pair(names, W2, b_shift=0.0):
    """(your memorization_index, flatlab's) for the net made of the named neurons and output weights W2."""
    p = {"W1": torch.tensor([_rows[k][0] for k in names]), "b1": torch.tensor([_rows[k][1] for k in names]) + b_shift,
         "W2": torch.tensor(W2)}
    return memorization_index(p["W1"], p["b1"], p["W2"], _Xt, 3), flatlab.diagnostics.memorization_index(bias_net(p), _Xt, threshold=3)


_v, _want = _index_pair("AC", [1.0, 1.0])
assert isinstance(_v, float), f"memorization_index must return a Python float, got {type(_v).__name__}"
assert abs(_v - _want) < 1e-12, (
    f"neuron A fires on 1 of the 6 training points, neuron C on all 6; you returned {_v:.4g}, which is not A's share "
    "of the output mass Σ_i |W2_j h_j(x_i)|: the index weighs neurons by their output (not a share of neurons), and a "
    "neuron fires on x_i when h_j(x_i) > 0")
_v, _want = _index_pair("BC", [1.0, 1.0])
assert abs(_v - _want) < 1e-12, (
    f"neuron B fires on exactly threshold = 3 training points, so it counts as memorizing (at most threshold: <=); "
    f"you returned {_v:.4g}")
_v, _want = _index_pair("AC", [-1.0, 1.0])
assert abs(_v - _want) < 1e-12, (
    f"with a negative output weight you returned {_v:.4g}: the index adds up absolute contributions |W2_j h_j(x_i)|")
_v, _ = _index_pair("ABC", [1.0, -2.0, 0.5], b_shift=-20.0)  # every neuron dead: f = 0 on the training set
assert _v == 0.0, (f"for a net that outputs 0 on every training point the index must be 0.0 (nothing to share); "
                   f"you returned {_v}: guard the division by the total")
_Xc, _yc = flatlab.xor_parity(50, 30, seed=0)
for _name, _model, _want in (("memorizing", flatlab.constructions.memorizing_bias(_Xc, _yc, eps=0.1), 1.0),
                             ("generalizing", flatlab.constructions.generalizing_bias(30, width=4), 0.0)):
    _p = {k: v.detach() for k, v in _model.named_parameters()}
    _v = memorization_index(_p["W1"], _p["b1"], _p["W2"], _Xc)
    assert abs(_v - _want) < 1e-12, f"flatlab's {_name} construction must have index {_want}; you returned {_v:.4g}"
print("hw4.memorization_index: OK")

# %% flatlab={"id": "hw4.x1x2_share", "role": "public_test"}
_v = x1x2_share(torch.zeros(3, 30))
assert _v == 0.0, f"x1x2_share(W1 = 0) must be 0.0 (guard the division by ‖W1‖_F² = 0); you returned {_v}"
_W = torch.zeros(5, 30)
_W[:, 0], _W[:, 1] = torch.arange(1.0, 6.0), -2.0
_v = x1x2_share(_W)
assert isinstance(_v, float), f"x1x2_share must return a Python float, got {type(_v).__name__}"
assert abs(_v - 1.0) < 1e-12, (
    f"a W1 whose only nonzero columns are 0 and 1 has share 1; you returned {_v:.4g}: the label coordinates x1, x2 "
    "are the columns W1[:, 0] and W1[:, 1], over all neurons (rows)")
_v = x1x2_share(torch.ones(3, 30))
assert abs(_v - 2 / 30) < 1e-12, (
    f"with all entries equal the share must be 2/d = 2/30 ≈ 0.0667; you returned {_v:.4g}: it is a ratio of squared "
    "Frobenius norms")
_W = torch.randn(6, 9, generator=torch.Generator().manual_seed(2)) * torch.arange(1.0, 7.0)[:, None]
_v = x1x2_share(_W)
_want = flatlab.diagnostics.x1x2_share(bias_net({"W1": _W, "b1": torch.zeros(6), "W2": torch.zeros(6)}))
assert abs(_v - _want) < 1e-12, (
    f"on a random W1 whose rows have different norms you returned {_v:.4g}, not flatlab.diagnostics.x1x2_share's "
    "value: it is one ratio ‖W1[:, :2]‖_F² / ‖W1‖_F² over all entries, not an average of per-neuron shares")
print("hw4.x1x2_share: OK")


# %% flatlab={"id": "hw4.memorization_index", "role": "hidden_test"}
def _firing_net(rng, X, counts, W2):
    """A bias net whose neuron j fires (h > 0) on exactly counts[j] rows of X (random directions, biases between projections)."""
    m, d = len(counts), X.shape[1]
    W1 = torch.as_tensor(rng.normal(size=(m, d)))
    proj = torch.sort(X @ W1.T, dim=0, descending=True).values  # (n, m)
    b1 = torch.empty(m)
    for j, k in enumerate(counts):
        lo = proj[k, j] if k < X.shape[0] else proj[-1, j] - 1.0
        hi = proj[k - 1, j] if k > 0 else proj[0, j] + 1.0
        b1[j] = -(lo + hi) / 2
    return flatlab.models.set_params(flatlab.make_model("bias", d, m, seed=0), {"W1": W1, "b1": b1, "W2": torch.as_tensor(W2)})


def test_memorization_index_trained_like(student, rng):
    """memorization_index must match the definition on random bias nets whose neurons fire on varied numbers of training points (output weights of both signs: |W2_j h_j|)."""
    d, m, n = int(rng.integers(3, 20)), int(rng.integers(5, 60)), int(rng.integers(5, 60))
    model = flatlab.make_model("bias", d, m, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        model.b1.add_(torch.as_tensor(rng.uniform(-3.0, 0.5, size=m)))
    X, _ = flatlab.xor_parity(n, d, seed=int(rng.integers(2**31)))
    thr = int(rng.integers(1, 6))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.memorization_index(p["W1"], p["b1"], p["W2"], X, thr)
    assert_close(got, flatlab.diagnostics.memorization_index(model, X, threshold=thr), rtol=1e-9, atol=1e-12)


def test_memorization_index_threshold_inclusive(student, rng):
    """memorization_index must count neurons firing (h_j > 0) on at most threshold training points: exactly threshold included (<=), on general (Gaussian) data."""
    n, d, thr = int(rng.integers(12, 40)), int(rng.integers(2, 10)), int(rng.integers(1, 6))
    X = torch.as_tensor(rng.normal(size=(n, d)))
    counts = [thr, thr, thr + 1, n] + [int(c) for c in rng.integers(1, n + 1, size=int(rng.integers(0, 6)))]
    W2 = rng.uniform(0.3, 2.0, size=len(counts)) * rng.choice([-1.0, 1.0], size=len(counts))
    model = _firing_net(rng, X, counts, W2)
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.memorization_index(p["W1"], p["b1"], p["W2"], X, thr)
    assert_close(got, flatlab.diagnostics.memorization_index(model, X, threshold=thr), rtol=1e-9, atol=1e-12)


def test_memorization_index_constructions(student, rng):
    """memorization_index must be 1 for the memorizing construction and 0 for the generalizing one."""
    d = int(rng.integers(10, 30))
    X, y = flatlab.xor_parity(int(rng.integers(60, 100)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = X[:, 0] * X[:, 1]
    mem = flatlab.constructions.memorizing_bias(X, y, eps=0.3 / np.sqrt(d))
    gen = flatlab.constructions.generalizing_bias(d, width=6)
    for model, want in ((mem, 1.0), (gen, 0.0)):
        p = dict((k, v.detach()) for k, v in model.named_parameters())
        assert_close(student.memorization_index(p["W1"], p["b1"], p["W2"], X, 3), want, atol=1e-12)


def test_memorization_index_dead_net(student, rng):
    """memorization_index must return 0.0 (not NaN, no division by zero) for a net whose output is 0 on every training point."""
    d, m = int(rng.integers(3, 20)), int(rng.integers(2, 20))
    model = flatlab.make_model("bias", d, m, seed=int(rng.integers(2**31)))
    X, _ = flatlab.xor_parity(int(rng.integers(5, 40)), d, seed=int(rng.integers(2**31)))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    b1 = -(p["W1"].abs().sum(1) + torch.as_tensor(rng.uniform(0.5, 2.0, size=m)))  # every pre-activation < 0
    got = student.memorization_index(p["W1"], b1, p["W2"], X, int(rng.integers(1, 6)))
    assert isinstance(got, (int, float)) and not np.isnan(got) and got == 0.0, (
        f"your index is {got!r} for a net that outputs 0 on every training point; it must be 0.0")


# %% flatlab={"feedback": "a neuron firing on exactly threshold training points must count as memorizing: at most threshold means <=, not <", "id": "hw4.memorization_index", "name": "strict_threshold", "role": "mistake"}
def memorization_index(W1, b1, W2, X, threshold=3):
    H = torch.relu(X @ W1.T + b1)
    contrib = (H * W2).abs().sum(0)
    total = float(contrib.sum())
    if total == 0.0:
        return 0.0
    return float(contrib[(H > 0).sum(0) < threshold].sum()) / total


# %% flatlab={"feedback": "the contributions are summed with their signs: the index shares out sum_i sum_j |W2_j h_j(x_i)|, absolute values", "id": "hw4.memorization_index", "name": "no_abs", "role": "mistake"}
def memorization_index(W1, b1, W2, X, threshold=3):
    H = torch.relu(X @ W1.T + b1)
    contrib = (H * W2).sum(0)
    total = float(contrib.sum())
    if total == 0.0:
        return 0.0
    return float(contrib[(H > 0).sum(0) <= threshold].sum()) / total


# %% flatlab={"feedback": "returns the share of neurons that fire on few points; the index is the share of output mass |W2_j h_j(x_i)| they carry", "id": "hw4.memorization_index", "name": "neuron_share", "role": "mistake"}
def memorization_index(W1, b1, W2, X, threshold=3):
    H = torch.relu(X @ W1.T + b1)
    if float((H * W2).abs().sum()) == 0.0:
        return 0.0
    return float(((H > 0).sum(0) <= threshold).double().mean())


# %% flatlab={"feedback": "divides by a total of 0 for a net that outputs 0 on the training set (NaN): return 0.0 in that case", "id": "hw4.memorization_index", "name": "nan_on_dead", "role": "mistake"}
def memorization_index(W1, b1, W2, X, threshold=3):
    H = torch.relu(X @ W1.T + b1)
    contrib = (H * W2).abs().sum(0)
    return float(contrib[(H > 0).sum(0) <= threshold].sum() / contrib.sum())


# %% flatlab={"feedback": "counts the rows where h_j >= 0, which is every row after a relu: a neuron fires where h_j > 0", "id": "hw4.memorization_index", "name": "counts_nonnegative", "role": "mistake"}
def memorization_index(W1, b1, W2, X, threshold=3):
    H = torch.relu(X @ W1.T + b1)
    contrib = (H * W2).abs().sum(0)
    total = float(contrib.sum())
    if total == 0.0:
        return 0.0
    return float(contrib[(H >= 0).sum(0) <= threshold].sum()) / total


# %% flatlab={"id": "hw4.x1x2_share", "role": "hidden_test"}
def test_x1x2_share_random(student, rng):
    """x1x2_share must return ||W1[:, :2]||_F^2 / ||W1||_F^2 (columns 0 and 1, squared norms over all neurons)."""
    W1 = torch.as_tensor(rng.normal(size=(int(rng.integers(3, 40)), int(rng.integers(3, 40)))))
    W1 = W1 * torch.as_tensor(rng.uniform(0.2, 3.0, size=(W1.shape[0], 1)))
    assert_close(student.x1x2_share(W1), float(W1[:, :2].pow(2).sum() / W1.pow(2).sum()), rtol=1e-10)


def test_x1x2_share_zero(student, rng):
    """x1x2_share must return 0.0 (not NaN) for W1 = 0."""
    got = student.x1x2_share(torch.zeros(int(rng.integers(1, 20)), int(rng.integers(2, 30))))
    assert isinstance(got, (int, float)) and not np.isnan(got) and got == 0.0, f"x1x2_share(0) returned {got!r}; it must be 0.0"


# %% flatlab={"feedback": "the norms are not squared: the share is ||W1[:, :2]||_F^2 / ||W1||_F^2", "id": "hw4.x1x2_share", "name": "no_square", "role": "mistake"}
def x1x2_share(W1):
    total = float(W1.norm())
    return float(W1[:, :2].norm()) / total if total > 0 else 0.0


# %% flatlab={"feedback": "takes the first two rows (neurons) W1[:2] instead of the first two columns W1[:, :2]", "id": "hw4.x1x2_share", "name": "first_two_rows", "role": "mistake"}
def x1x2_share(W1):
    total = float(W1.pow(2).sum())
    return float(W1[:2].pow(2).sum()) / total if total > 0 else 0.0


# %% flatlab={"feedback": "divides by ||W1||_F^2 = 0 when W1 = 0 (NaN): return 0.0 in that case", "id": "hw4.x1x2_share", "name": "zero_division", "role": "mistake"}
def x1x2_share(W1):
    return float(W1[:, :2].pow(2).sum() / W1.pow(2).sum())


# %% flatlab={"feedback": "reads columns 1 and 2 (W1[:, 1:3]): x1 and x2 are the columns 0 and 1", "id": "hw4.x1x2_share", "name": "off_by_one_columns", "role": "mistake"}
def x1x2_share(W1):
    total = float(W1.pow(2).sum())
    return float(W1[:, 1:3].pow(2).sum()) / total if total > 0 else 0.0


# %% flatlab={"feedback": "averages the per-neuron shares instead of taking one ratio of squared Frobenius norms over all of W1", "id": "hw4.x1x2_share", "name": "per_neuron_mean", "role": "mistake"}
def x1x2_share(W1):
    rows = W1.pow(2).sum(1)
    if float(rows.sum()) == 0:
        return 0.0
    live = rows > 0
    return float((W1[live, :2].pow(2).sum(1) / rows[live]).mean())


# %% [markdown]
# ## 5. Experiment: both constructions sit on the bound
#
# d = 30, n = 100. We build both flattest solutions with your functions and measure
# their trace (Lemma 4.1, exact at interpolation), training error and test accuracy.

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
Xtr, ytr = data.X_train, data.y_train
bound = trace_lower_bound(Xtr, ytr)
solutions = {"memorizing": bias_net(memorizing_solution(Xtr, ytr, 0.1)),
             "generalizing": bias_net(generalizing_solution(30, 4))}
table = {}
for name, model in solutions.items():
    with torch.no_grad():
        table[name] = dict(trace=gauss_newton_trace(model, Xtr), train_err=float((model(Xtr) - ytr).abs().max()),
                           test_acc=flatlab.accuracy(model(data.X_test), data.y_test))
    print(f"{name:13s} trace {table[name]['trace']:.4f} (bound {bound:.4f}), max |f - y| on train "
          f"{table[name]['train_err']:.1e}, test accuracy {table[name]['test_acc']:.4f}")

# %% [markdown]
# ## 6. Experiment: GD+wd generalizes, 1-SAM drifts
#
# Width 500 from the same initialization. GD with weight decay (lr 0.05, wd 0.05) and 1-SAM
# (lr 0.01, ρ 0.1, 6,000 epochs = 6·10⁵ SAM steps) through the fast engine
# (`flatlab.train.train`); the history logs the test accuracy and the trace. ~40 s.
# (The paper runs 6·10⁵ *epochs*; the drift continues: `flatlab reproduce scenario2 --paper`
# ends near 0.62 test accuracy.)

# %% flatlab={"role": "experiment"}
histories, trained = {}, {}
METHOD_COLORS = {"GD+wd": COLORS["gd_wd"], "1-SAM": COLORS["one_sam"]}  # flatlab's colour for each method
for name, config in (("GD+wd", TrainConfig("gd", (Phase(3000, 0.05),), weight_decay=0.05, log_every=250)),
                     ("1-SAM", TrainConfig("one_sam", (Phase(6000, 0.01, 0.1),), log_every=250))):
    model = make_model("bias", 30, 500, seed=0)
    t0 = time.perf_counter()
    histories[name] = train(model, data, config)
    trained[name] = model
    h = histories[name]
    print(f"{name}: {time.perf_counter() - t0:.1f} s; peak test acc {max(h.test_acc):.3f} at epoch "
          f"{h.epoch[int(np.argmax(h.test_acc))]}, final {h.test_acc[-1]:.3f}, trace {h.trace[-1]:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name, h in histories.items():
    axes[0].plot(h.epoch, h.trace, "o-", ms=3, color=METHOD_COLORS[name], label=name)
    axes[1].plot(h.epoch, h.test_acc, "o-", ms=3, color=METHOD_COLORS[name], label=name)
for name, model in solutions.items():
    axes[1].axhline(table[name]["test_acc"], ls=":", color="gray")
    axes[1].annotate(f"{name} construction", (3000, table[name]["test_acc"]), fontsize=8, va="bottom")
axes[0].axhline(bound, color="k", ls="--", label="4·sqrt(d+1) (both constructions)")
axes[0].set(xlabel="epoch", ylabel="Tr ∇²L", yscale="log", title="sharpness")
axes[1].set(xlabel="epoch", ylabel="test accuracy", title="generalization", ylim=(-0.03, 1.03))
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. What did each optimizer find?

# %% flatlab={"role": "experiment"}
rows = {**solutions, **trained}
print(f"{'solution':13s} {'trace':>8s} {'test acc':>9s} {'memo index':>11s} {'x1x2 share':>11s} {'median firing':>14s}")
for name, model in rows.items():
    p = {k: v.detach() for k, v in model.named_parameters()}
    with torch.no_grad():
        acc = flatlab.accuracy(model(data.X_test), data.y_test)
    print(f"{name:13s} {gauss_newton_trace(model, Xtr):8.2f} {acc:9.3f} "
          f"{memorization_index(p['W1'], p['b1'], p['W2'], Xtr):11.3f} {x1x2_share(p['W1']):11.3f} "
          f"{flatlab.diagnostics.median_firing(model, Xtr):14.1f}")

# %% [markdown] flatlab={"id": "hw4.q_flat_not_enough", "points": 3, "role": "manual"}
# **Question (3 points, graded by hand).** Summarize the evidence of sections 5-7 in three or four sentences: which
# solutions are flattest, which generalize, and where does 1-SAM's solution sit? Is the
# 1-SAM solution the memorizing construction? What does this say about the claim "SAM
# generalizes because it finds flat minima"?
#
# <!-- BEGIN SOLUTION -->
# Both constructions interpolate with trace exactly 4·sqrt(31) ≈ 22.27, the minimum over
# all interpolators, yet one has test accuracy 0 (it outputs 0 off the training set) and the
# other 1. 1-SAM drives the trace to the same floor (≈ 22) faster than GD+wd lowers its own
# (GD+wd stays at ~75-90), but its test accuracy peaks near 0.70 after a few hundred epochs
# and then *declines* (≈ 0.66 here, lower in longer runs), while GD+wd, the sharper
# solution, reaches ≈ 1.0. The 1-SAM net is not the memorizing construction (memorization
# index ≈ 0, its neurons fire on ~13 training points each), but it is not the XOR solution
# either (x1x2 share ≈ 0.15 vs 1.0): it is a third kind of flattest interpolator. Since
# flattest models range from perfect to useless and the flatter optimizer generalizes
# worse, minimizing sharpness cannot be the explanation of generalization for this
# architecture.
# <!-- END SOLUTION -->
