# ---
# jupyter:
#   flatlab:
#     assignment: hw3
#     title: 'Scenario I: when flatness does explain generalization'
#   jupytext:
#     notebook_metadata_filter: flatlab,kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # hw3 · Scenario I: when flatness does explain generalization
#
# For the **no-bias** network f(x) = W2·relu(W1 x) and for **Sim-BN**, the paper proves
# that every flattest interpolator generalizes (Theorems 3.1, 3.2), and 1-SAM finds them
# (Figs. 1, 2). The argument runs through a norm:
#
# * **Lemma 3.1.** At an interpolator of hypercube data, a small trace forces a small
#   *path norm* Σ_j ‖W1,j‖₂·|W2,j|, and that class of functions has Rademacher complexity
#   Õ(sqrt(d/n)), so the test error is small once n = Ω̃(d).
#
# You will compute the trace of a no-bias net in closed form, the AM-GM floor behind
# Lemma 3.1, the per-neuron rescaling that makes a net as flat as its function allows, and
# the neuron report that shows *what* the flat Sim-BN network computes. Then you will
# watch 1-SAM shrink the trace and the path norm, measure test error against n, and read
# off the ±x1±x2 neurons. Estimated time: 3 hours.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import flatlab
from flatlab.lab.plotting import COLORS
from flatlab.models import get_params, model_from_config
from flatlab.train import Phase, TrainConfig, train

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


# %% [markdown]
# ## 1. The path norm (1 point)
#
# Write `path_norm(W1, W2)` = Σ_j ‖W1[j]‖₂·|W2[j]| for W1 (m, d), W2 (m,). It is invariant
# under the rescaling W1[j] → c·W1[j], W2[j] → W2[j]/c that leaves f unchanged (hw1).

# %% flatlab={"function": "path_norm", "id": "hw3.path_norm", "points": 1, "role": "task", "summary": "return sum_j ||W1[j]||_2 * |W2[j]| as a float"}
def path_norm(W1, W2):
    """Σ_j ‖W1[j]‖₂·|W2[j]|. W1 (m, d), W2 (m,). Returns a float."""
    ### BEGIN SOLUTION
    return float((W1.norm(dim=1) * W2.abs()).sum())
    ### END SOLUTION


# %% flatlab={"id": "hw3.path_norm", "role": "public_test"}
_p = path_norm(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor([2.0, -1.0]))
assert isinstance(_p, float), f"return a Python float, got {type(_p).__name__}"
assert abs(_p - 11.0) < 1e-12, (f"path_norm([[3, 4], [0, 1]], [2, -1]) must be 5·2 + 1·1 = 11, got {_p:.6g}: use the Euclidean "
                                "norm of each row of W1 (not squared) times |W2[j]| (absolute value), summed over neurons")
_g = torch.Generator().manual_seed(0)
_W1, _W2 = torch.randn(7, 4, generator=_g), torch.randn(7, generator=_g)
_c = torch.rand(7, generator=_g) * 3 + 0.2
_ratio = path_norm(_W1 * _c[:, None], _W2 / _c) / path_norm(_W1, _W2)
assert abs(_ratio - 1) < 1e-12, f"path_norm must not change under W1[j] → c·W1[j], W2[j] → W2[j]/c; it changed by {_ratio:.4g}x"
print("hw3.path_norm: OK")


# %% flatlab={"id": "hw3.path_norm", "role": "hidden_test"}
def test_path_norm_random(student, rng):
    """path_norm must return the sum over neurons of the row norm of W1 times |W2|."""
    m, d = int(rng.integers(1, 50)), int(rng.integers(1, 40))
    W1, W2 = torch.as_tensor(rng.normal(size=(m, d))), torch.as_tensor(rng.normal(size=m))
    assert_close(student.path_norm(W1, W2), float((W1.norm(dim=1) * W2.abs()).sum()), rtol=1e-10)


# %% flatlab={"feedback": "each row norm of W1 is squared: the path norm uses \u2016W1[j]\u2016\u2082 itself", "id": "hw3.path_norm", "name": "squared_row_norm", "role": "mistake"}
def path_norm(W1, W2):
    return float((W1.pow(2).sum(1) * W2.abs()).sum())


# %% flatlab={"feedback": "W2[j] enters with its sign: the path norm uses |W2[j]|", "id": "hw3.path_norm", "name": "signed_w2", "role": "mistake"}
def path_norm(W1, W2):
    return float((W1.norm(dim=1) * W2).sum())


# %% flatlab={"feedback": "this is \u2016W1\u2016_F\u00b7\u2016W2\u2016, a product of whole-layer norms; the path norm sums \u2016W1[j]\u2016\u00b7|W2[j]| neuron by neuron", "id": "hw3.path_norm", "name": "product_of_norms", "role": "mistake"}
def path_norm(W1, W2):
    return float(W1.norm() * W2.norm())


# %% flatlab={"feedback": "the rows of W1 are measured with the \u21131 norm; the path norm uses the Euclidean norm \u2016W1[j]\u2016\u2082", "id": "hw3.path_norm", "name": "l1_rows", "role": "mistake"}
def path_norm(W1, W2):
    return float((W1.abs().sum(1) * W2.abs()).sum())


# %% [markdown]
# ## 2. The trace of a no-bias net in closed form (3 points)
#
# By Lemma 4.1 (exact everywhere for ReLU nets without normalization, hw1),
# Tr ∇²L = (2/n) Σ_i ‖∇_θ f(x_i)‖². For f(x) = Σ_j W2_j relu(w_j·x):
# ∂f/∂W2_j = relu(w_j·x) and ∂f/∂w_j = W2_j·1[w_j·x > 0]·x. Write
# `no_bias_trace(W1, W2, X)` from these formulas: no autograd, one pass over the
# activations (O(n·m·d)). This is how the training engine logs the trace at width 500.
# X is any input matrix, not only hypercube points.

# %% flatlab={"forbid": ["flatlab.sharpness.hessian_trace", "flatlab.sharpness.gauss_newton_trace", "flatlab.sharpness.per_example_grad_sq_norms", "torch.autograd.grad", "torch.func.grad", "torch.func.vmap", "flatlab._closed_form.grad_sq_norms", "flatlab._closed_form.gauss_newton_trace_closed"], "function": "no_bias_trace", "id": "hw3.no_bias_trace", "points": 3, "role": "task", "summary": "return (2/n) sum_i [ ||relu(W1 x_i)||^2 + ||x_i||^2 sum_j W2_j^2 1[w_j.x_i > 0] ] without autograd"}
def no_bias_trace(W1, W2, X):
    """Tr ∇²L of the no-bias net W2·relu(W1 x) on X (n, d), in closed form. Returns a float."""
    ### BEGIN SOLUTION
    Z = X @ W1.T
    H = torch.relu(Z)
    per_example = H.pow(2).sum(1) + X.pow(2).sum(1) * ((Z > 0).double() @ W2.pow(2))
    return float(2.0 * per_example.mean())
    ### END SOLUTION


# %% flatlab={"id": "hw3.no_bias_trace", "role": "public_test"}
_X, _y = flatlab.xor_parity(20, 6, seed=0)
_m = flatlab.make_model("no_bias", 6, 8, seed=1)
_t = no_bias_trace(_m.W1.detach(), _m.W2.detach(), _X)
assert isinstance(_t, float), f"return a Python float, got {type(_t).__name__}"
_want = flatlab.sharpness.hessian_trace(_m, _X, _y, method="exact")
assert abs(_t - _want) < 1e-9 * _want, (f"on hypercube inputs no_bias_trace is {_t / _want:.4g}x the Hessian trace: check the "
                                        "factor 2/n, the mean over examples and both parts (W2-part ‖relu(W1 x)‖², W1-part)")
_Xg = torch.randn(15, 6, generator=torch.Generator().manual_seed(2)) * 1.7
_tg, _wg = no_bias_trace(_m.W1.detach(), _m.W2.detach(), _Xg), flatlab.sharpness.gauss_newton_trace(_m, _Xg)
assert abs(_tg - _wg) < 1e-9 * _wg, (f"on Gaussian inputs no_bias_trace is {_tg / _wg:.4g}x the trace (it was right on the "
                                     "hypercube): use each input's own ‖x_i‖², not d")
print("hw3.no_bias_trace: OK")


# %% flatlab={"id": "hw3.no_bias_trace", "role": "hidden_test"}
def _exact_trace(model, X, y):
    """Reference Tr of the autograd Hessian, reverse-over-reverse (no forward-mode AD: thread-safe)."""
    theta = flatlab.models.flatten_params(model).detach().clone()
    loss = lambda t: flatlab.mse(flatlab.models.functional_forward(model, t, X), y)
    return float(torch.diagonal(torch.autograd.functional.hessian(loss, theta)).sum())


def _no_bias_case(rng, n=None, m=None, d=None):
    n = int(rng.integers(2, 60)) if n is None else n
    d = int(rng.integers(2, 30)) if d is None else d
    m = int(rng.integers(1, 60)) if m is None else m
    model = flatlab.make_model("no_bias", d, m, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        model.W1.mul_(float(np.exp(rng.uniform(-1, 1))))
    X, y = flatlab.xor_parity(n, d, seed=int(rng.integers(2**31)))
    return model, X, y


def _gaussian_inputs(rng, n, d):
    """General (non-hypercube) inputs: Gaussian rows of varying norms."""
    return torch.as_tensor(rng.normal(size=(n, d)) * rng.uniform(0.3, 3.0, size=(n, 1)))


def test_no_bias_trace_hypercube(student, rng):
    """no_bias_trace must equal the Hessian trace (2/n) sum_i ||grad f(x_i)||^2 of a random no-bias net on hypercube data."""
    model, X, y = _no_bias_case(rng)
    got = student.no_bias_trace(model.W1.detach(), model.W2.detach(), X)
    assert_close(got, flatlab.sharpness.hessian_trace(model, X, y, method="gauss_newton"), rtol=1e-9)


def test_no_bias_trace_general_inputs(student, rng):
    """no_bias_trace must use ||x_i||^2 of each input (not d): checked on Gaussian inputs, against the exact autograd trace."""
    model, _, _ = _no_bias_case(rng, n=int(rng.integers(2, 12)), m=int(rng.integers(1, 8)), d=int(rng.integers(2, 6)))
    X = torch.as_tensor(rng.normal(size=(int(rng.integers(2, 12)), model.config.d)) * rng.uniform(0.5, 3))
    y = torch.as_tensor(rng.normal(size=X.shape[0]))
    got = student.no_bias_trace(model.W1.detach(), model.W2.detach(), X)
    assert_close(got, _exact_trace(model, X, y), rtol=1e-8)


# %% flatlab={"feedback": "\u2016x_i\u2016\u00b2 is replaced by d, which holds only on the hypercube: use each input's own squared norm", "id": "hw3.no_bias_trace", "name": "hypercube_norm", "role": "mistake"}
def no_bias_trace(W1, W2, X):
    Z = X @ W1.T
    per_example = torch.relu(Z).pow(2).sum(1) + X.shape[1] * ((Z > 0).double() @ W2.pow(2))
    return float(2.0 * per_example.mean())


# %% flatlab={"feedback": "the factor 2 of Lemma 4.1 is missing: Tr \u2207\u00b2L = (2/n) \u03a3_i \u2016\u2207f(x_i)\u2016\u00b2", "id": "hw3.no_bias_trace", "name": "missing_factor_2", "role": "mistake"}
def no_bias_trace(W1, W2, X):
    Z = X @ W1.T
    per_example = torch.relu(Z).pow(2).sum(1) + X.pow(2).sum(1) * ((Z > 0).double() @ W2.pow(2))
    return float(per_example.mean())


# %% flatlab={"feedback": "the W2-block \u2202f/\u2202W2_j = relu(w_j\u00b7x) of the gradient is missing: add \u03a3_i \u2016relu(W1 x_i)\u2016\u00b2", "id": "hw3.no_bias_trace", "name": "no_w2_block", "role": "mistake"}
def no_bias_trace(W1, W2, X):
    Z = X @ W1.T
    per_example = X.pow(2).sum(1) * ((Z > 0).double() @ W2.pow(2))
    return float(2.0 * per_example.mean())


# %% flatlab={"feedback": "the per-example terms are summed, not averaged: the trace of the mean-squared loss has 2/n in front", "id": "hw3.no_bias_trace", "name": "sum_over_examples", "role": "mistake"}
def no_bias_trace(W1, W2, X):
    Z = X @ W1.T
    per_example = torch.relu(Z).pow(2).sum(1) + X.pow(2).sum(1) * ((Z > 0).double() @ W2.pow(2))
    return float(2.0 * per_example.sum())


# %% [markdown]
# ## 3. The AM-GM floor behind Lemma 3.1 (2 points)
#
# For each example i and neuron j, a² + b² ≥ 2ab with a = relu(w_j·x_i), b = ‖x_i‖·|W2_j|
# (and b counts only where the neuron is active) gives
#
# Tr ∇²L ≥ F(θ) := (4/n) Σ_i ‖x_i‖ Σ_j |W2_j|·relu(w_j·x_i).
#
# At an interpolator, Σ_j |W2_j| relu(w_j·x_i) ≥ |f(x_i)| = 1, so on the hypercube
# Tr ∇²L ≥ 4·sqrt(d) for every no-bias interpolator; and since relu(w_j·x_i) ≤ ‖w_j‖·‖x_i‖,
# F ≤ 4d·Σ_j ‖w_j‖|W2_j|·(share of inputs on which neuron j fires): flat and fitting go
# together with weight concentrated on few, well-used paths. Write
# `trace_floor(W1, W2, X)` returning F(θ) for any inputs X (not only hypercube points).

# %% flatlab={"function": "trace_floor", "id": "hw3.trace_floor", "points": 2, "role": "task", "summary": "return (4/n) sum_i ||x_i|| sum_j |W2_j| relu(w_j . x_i)"}
def trace_floor(W1, W2, X):
    """The AM-GM lower bound (4/n) Σ_i ‖x_i‖ Σ_j |W2_j| relu(w_j·x_i) on the trace. Returns a float."""
    ### BEGIN SOLUTION
    return float(4.0 * (X.norm(dim=1) * (torch.relu(X @ W1.T) @ W2.abs())).mean())
    ### END SOLUTION


# %% flatlab={"id": "hw3.trace_floor", "role": "public_test"}
def _nb_net(W1, W2):
    return flatlab.models.set_params(flatlab.make_model("no_bias", W1.shape[1], W1.shape[0], seed=0), {"W1": W1, "W2": W2})


_g = torch.Generator().manual_seed(3)
_W1, _W2 = torch.randn(9, 5, generator=_g), torch.randn(9, generator=_g)
_Xg = torch.randn(14, 5, generator=_g) * (0.5 + 2 * torch.rand(14, 1, generator=_g))  # general inputs
_F = trace_floor(_W1, _W2, _Xg)
assert isinstance(_F, float), f"return a Python float, got {type(_F).__name__}"
_T = flatlab.sharpness.gauss_newton_trace(_nb_net(_W1, _W2), _Xg)
assert 0 < _F <= _T * (1 + 1e-12), f"the floor must be positive and at most the trace; got {_F / _T:.4g}x the trace"
_Fneg = trace_floor(_W1, -_W2, _Xg)
assert abs(_Fneg - _F) < 1e-12 * _F, "flipping the sign of W2 changed the floor: it uses |W2_j|"
_s = trace_floor(_W1, _W2, 2.0 * _Xg) / _F
assert abs(_s - 4) < 1e-9, (f"doubling every input must multiply F by 4 (‖x_i‖ and relu(w_j·x_i) both double), it "
                            f"multiplied it by {_s:.4g}: use each input's own norm ‖x_i‖ (not sqrt(d), not ‖x_i‖²)")
# equality case of AM-GM: one input x, every neuron w_j = |W2_j|·x/‖x‖, so relu(w_j·x) = ‖x‖·|W2_j|
_x = _Xg[:1]
_We = _W2.abs()[:, None] * _x / _x.norm()
_r = trace_floor(_We, _W2, _x) / flatlab.sharpness.gauss_newton_trace(_nb_net(_We, _W2), _x)
assert abs(_r - 1) < 1e-9, f"where AM-GM is tight (a = b for every active pair) the floor must equal the trace; got {_r:.4g}x"
print("hw3.trace_floor: OK")


# %% flatlab={"id": "hw3.trace_floor", "role": "hidden_test"}
def _floor_ref(W1, W2, X):
    return float(4.0 * (X.norm(dim=1) * (torch.relu(X @ W1.T) @ W2.abs())).mean())


def test_trace_floor_value(student, rng):
    """trace_floor must return (4/n) sum_i ||x_i|| sum_j |W2_j| relu(w_j . x_i) (hypercube points with rescaled rows)."""
    model, X, y = _no_bias_case(rng)
    X = X * torch.as_tensor(rng.uniform(0.5, 2.0, size=(X.shape[0], 1)))
    W1 = model.W1.detach()
    W2 = model.W2.detach()
    got = student.trace_floor(W1, W2, X)
    assert_close(got, _floor_ref(W1, W2, X), rtol=1e-9)
    assert got <= flatlab.sharpness.gauss_newton_trace(model, X) * (1 + 1e-12)


def test_trace_floor_gaussian_inputs(student, rng):
    """trace_floor must use each input's own norm ||x_i|| (not sqrt(d)): checked on Gaussian inputs."""
    model, _, _ = _no_bias_case(rng)
    X = _gaussian_inputs(rng, int(rng.integers(2, 40)), model.config.d)
    assert_close(student.trace_floor(model.W1.detach(), model.W2.detach(), X), _floor_ref(model.W1.detach(), model.W2.detach(), X),
                 rtol=1e-9)


# %% flatlab={"feedback": "\u2016x_i\u2016 is replaced by sqrt(d), which holds only on the hypercube: use each input's own norm", "id": "hw3.trace_floor", "name": "hypercube_norm", "role": "mistake"}
def trace_floor(W1, W2, X):
    return float(4.0 * (X.shape[1] ** 0.5 * (torch.relu(X @ W1.T) @ W2.abs())).mean())


# %% flatlab={"feedback": "the inputs enter with \u2016x_i\u2016\u00b2 instead of \u2016x_i\u2016 (b = \u2016x_i\u2016\u00b7|W2_j| in the AM-GM step)", "id": "hw3.trace_floor", "name": "squared_input_norm", "role": "mistake"}
def trace_floor(W1, W2, X):
    return float(4.0 * (X.pow(2).sum(1) * (torch.relu(X @ W1.T) @ W2.abs())).mean())


# %% flatlab={"feedback": "W2_j enters with its sign; the floor uses |W2_j|", "id": "hw3.trace_floor", "name": "signed_w2", "role": "mistake"}
def trace_floor(W1, W2, X):
    return float(4.0 * (X.norm(dim=1) * (torch.relu(X @ W1.T) @ W2)).mean())


# %% flatlab={"feedback": "the constant is 2/n instead of 4/n: a\u00b2 + b\u00b2 \u2265 2ab, times the 2/n of the trace", "id": "hw3.trace_floor", "name": "factor_2", "role": "mistake"}
def trace_floor(W1, W2, X):
    return float(2.0 * (X.norm(dim=1) * (torch.relu(X @ W1.T) @ W2.abs())).mean())


# %% [markdown]
# ## 4. As flat as the function allows: per-neuron balancing (3 points)
#
# Neuron j can be rescaled on its own: w_j → c_j·w_j, W2_j → W2_j/c_j keeps f. Its share of
# the trace is c_j²·a_j + b_j/c_j² with a_j = (2/n)Σ_i relu(w_j·x_i)² and
# b_j = (2/n)Σ_i ‖x_i‖²·W2_j²·1[w_j·x_i > 0], minimized at c_j = (b_j/a_j)^(1/4) where it
# equals 2·sqrt(a_j b_j). Write `balance_neurons(W1, W2, X)` returning the balanced
# `(W1_new, W2_new)` for any inputs X; leave a neuron that never fires on X (a_j = 0) unchanged.

# %% flatlab={"function": "balance_neurons", "id": "hw3.balance", "points": 3, "role": "task", "summary": "rescale each neuron w_j -> c_j w_j, W2_j -> W2_j / c_j with c_j = (b_j/a_j)^(1/4) (a_j, b_j its W2- and W1-parts of the trace); leave neurons with a_j = 0 unchanged; return (W1_new, W2_new)"}
def balance_neurons(W1, W2, X):
    """Per-neuron rescaling of a no-bias net that minimizes the trace on X without changing f. Returns (W1_new, W2_new)."""
    ### BEGIN SOLUTION
    Z = X @ W1.T
    n = X.shape[0]
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * (X.pow(2).sum(1) @ (Z > 0).double()) * W2.pow(2)
    alive = (a > 0) & (b > 0)
    c = torch.ones_like(W2)
    c[alive] = (b[alive] / a[alive]) ** 0.25
    return W1 * c[:, None], W2 / c
    ### END SOLUTION


# %% flatlab={"id": "hw3.balance", "role": "public_test"}
def _nb_net(W1, W2):
    return flatlab.models.set_params(flatlab.make_model("no_bias", W1.shape[1], W1.shape[0], seed=0), {"W1": W1, "W2": W2})


_g = torch.Generator().manual_seed(4)
_W1, _W2 = torch.randn(8, 5, generator=_g), torch.randn(8, generator=_g)
_W1[3] = 0.0  # a neuron that never fires
_Xg = torch.randn(16, 5, generator=_g) * (0.5 + 2 * torch.rand(16, 1, generator=_g))  # general inputs
_out = balance_neurons(_W1.clone(), _W2.clone(), _Xg)
assert isinstance(_out, tuple) and len(_out) == 2, "return the pair (W1_new, W2_new)"
_W1b, _W2b = _out
assert _W1b.shape == _W1.shape and _W2b.shape == _W2.shape, "W1_new, W2_new must have the shapes of W1, W2"
assert bool(torch.isfinite(_W1b).all() and torch.isfinite(_W2b).all()), \
    "NaN/inf in the result: leave a neuron that never fires (a_j = 0) unchanged instead of dividing by 0"
assert torch.equal(_W1b[3], _W1[3]) and torch.equal(_W2b[3], _W2[3]), "a neuron that never fires on X must stay unchanged"
_Xt = torch.randn(30, 5, generator=_g)
assert torch.allclose(_nb_net(_W1b, _W2b)(_Xt), _nb_net(_W1, _W2)(_Xt), rtol=1e-9, atol=1e-12), \
    "the balanced net computes a different function: scale w_j by c_j and divide W2_j by the same c_j"
_gn = flatlab.sharpness.gauss_newton_trace
_t0, _t1 = _gn(_nb_net(_W1, _W2), _Xg), _gn(_nb_net(_W1b, _W2b), _Xg)
assert _t1 <= _t0 * (1 + 1e-12), f"balancing raised the trace ({_t1 / _t0:.4g}x): c_j = (b_j/a_j)^(1/4), not its inverse"
for _j in range(8):
    for _c in (0.95, 1.05):
        _p = {"W1": _W1b.clone(), "W2": _W2b.clone()}
        _p["W1"][_j] *= _c
        _p["W2"][_j] /= _c
        assert _gn(_nb_net(_p["W1"], _p["W2"]), _Xg) >= _t1 * (1 - 1e-10), \
            (f"rescaling neuron {_j} once more by {_c} lowers the trace: the neurons are not balanced on these (Gaussian) "
             "inputs; check c_j = (b_j/a_j)^(1/4) with b_j using each input's own ‖x_i‖²")
print("hw3.balance: OK")


# %% flatlab={"id": "hw3.balance", "role": "hidden_test"}
def _nb_model(W1, W2):
    W1, W2 = torch.as_tensor(np.asarray(W1, dtype=float)), torch.as_tensor(np.asarray(W2, dtype=float))
    model = flatlab.make_model("no_bias", W1.shape[1], W1.shape[0], seed=0)
    return flatlab.models.set_params(model, {"W1": W1, "W2": W2})


def _balanced_pair(student, model, X):
    out = student.balance_neurons(model.W1.detach(), model.W2.detach(), X)
    m, d = model.config.width, model.config.d
    assert isinstance(out, (tuple, list)) and len(out) == 2, "balance_neurons must return the pair (W1_new, W2_new)"
    W1n, W2n = np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)
    assert W1n.shape == (m, d) and W2n.shape == (m,), f"W1_new, W2_new must have shapes {(m, d)} and {(m,)}"
    assert np.all(np.isfinite(W1n)) and np.all(np.isfinite(W2n)), "the result contains NaN or inf"
    return W1n, W2n


def _assert_optimal(new, X, rng, where):
    gn = flatlab.sharpness.gauss_newton_trace
    base = gn(new, X)
    W1n, W2n = new.W1.detach(), new.W2.detach()
    for j in rng.choice(new.config.width, size=min(5, new.config.width), replace=False):
        for c in (0.9, 1.1):
            p = flatlab.models.get_params(new)
            p["W1"][j] *= c
            p["W2"][j] /= c
            if base > gn(flatlab.models.set_params(_nb_model(W1n, W2n), p), X) * (1 + 1e-10):
                raise AssertionError(f"{where}: rescaling a neuron once more by {c} lowers the trace, so it was not balanced")


def test_balance_same_function_lower_trace(student, rng):
    """balance_neurons must return a net computing the same function (on any input) with a trace no larger than before."""
    model, X, y = _no_bias_case(rng)
    W1n, W2n = _balanced_pair(student, model, X)
    new = _nb_model(W1n, W2n)
    Xt = torch.as_tensor(rng.normal(size=(50, model.config.d)))
    assert_close(new(Xt).detach(), model(Xt).detach(), rtol=1e-9, atol=1e-12, name="the balanced net's output")
    gn = flatlab.sharpness.gauss_newton_trace
    assert gn(new, X) <= gn(model, X) * (1 + 1e-12), "the balanced net has a larger trace than the original"


def test_balance_is_optimal(student, rng):
    """balance_neurons must reach the per-neuron minimum: no further rescaling of a single neuron may lower the trace."""
    model, X, y = _no_bias_case(rng, m=int(rng.integers(2, 20)))
    _assert_optimal(_nb_model(*_balanced_pair(student, model, X)), X, rng, "on hypercube inputs")


def test_balance_general_inputs(student, rng):
    """balance_neurons must balance with each input's own ||x_i||^2 (not d): same function and per-neuron optimal on Gaussian inputs."""
    model, _, _ = _no_bias_case(rng, m=int(rng.integers(2, 20)))
    X = _gaussian_inputs(rng, int(rng.integers(3, 40)), model.config.d)
    new = _nb_model(*_balanced_pair(student, model, X))
    Xt = torch.as_tensor(rng.normal(size=(30, model.config.d)))
    assert_close(new(Xt).detach(), model(Xt).detach(), rtol=1e-9, atol=1e-12, name="the balanced net's output")
    _assert_optimal(new, X, rng, "on Gaussian inputs")


def test_balance_dead_neuron(student, rng):
    """balance_neurons must leave a neuron that never fires on X (a_j = 0) unchanged, with no NaN or inf."""
    model, X, _ = _no_bias_case(rng, m=int(rng.integers(2, 20)))
    j = int(rng.integers(model.config.width))
    with torch.no_grad():
        model.W1[j] = 0.0
    W1n, W2n = _balanced_pair(student, model, X)
    if not (np.array_equal(W1n[j], model.W1[j].detach().numpy()) and W2n[j] == float(model.W2[j].detach())):
        raise AssertionError("a neuron that never fires on X was changed")


# %% flatlab={"feedback": "b_j uses d in place of \u2016x_i\u2016\u00b2, which holds only on the hypercube: use each input's own squared norm", "id": "hw3.balance", "name": "hypercube_norm", "role": "mistake"}
def balance_neurons(W1, W2, X):
    Z = X @ W1.T
    n, d = X.shape
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * d * (Z > 0).double().sum(0) * W2.pow(2)
    alive = (a > 0) & (b > 0)
    c = torch.ones_like(W2)
    c[alive] = (b[alive] / a[alive]) ** 0.25
    return W1 * c[:, None], W2 / c


# %% flatlab={"feedback": "the scale is inverted: the minimum of c\u00b2a + b/c\u00b2 is at c = (b/a)^(1/4), not (a/b)^(1/4)", "id": "hw3.balance", "name": "inverse_scale", "role": "mistake"}
def balance_neurons(W1, W2, X):
    Z = X @ W1.T
    n = X.shape[0]
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * (X.pow(2).sum(1) @ (Z > 0).double()) * W2.pow(2)
    alive = (a > 0) & (b > 0)
    c = torch.ones_like(W2)
    c[alive] = (a[alive] / b[alive]) ** 0.25
    return W1 * c[:, None], W2 / c


# %% flatlab={"feedback": "c_j = sqrt(b_j/a_j) overshoots: c\u00b2a + b/c\u00b2 is minimized at the fourth root, c_j = (b_j/a_j)^(1/4)", "id": "hw3.balance", "name": "square_root", "role": "mistake"}
def balance_neurons(W1, W2, X):
    Z = X @ W1.T
    n = X.shape[0]
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * (X.pow(2).sum(1) @ (Z > 0).double()) * W2.pow(2)
    alive = (a > 0) & (b > 0)
    c = torch.ones_like(W2)
    c[alive] = (b[alive] / a[alive]) ** 0.5
    return W1 * c[:, None], W2 / c


# %% flatlab={"feedback": "W2_j is multiplied by c_j as well: to keep f unchanged it must be divided by c_j", "id": "hw3.balance", "name": "w2_times_c", "role": "mistake"}
def balance_neurons(W1, W2, X):
    Z = X @ W1.T
    n = X.shape[0]
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * (X.pow(2).sum(1) @ (Z > 0).double()) * W2.pow(2)
    alive = (a > 0) & (b > 0)
    c = torch.ones_like(W2)
    c[alive] = (b[alive] / a[alive]) ** 0.25
    return W1 * c[:, None], W2 * c


# %% flatlab={"feedback": "a neuron that never fires has a_j = b_j = 0, so (b_j/a_j)^(1/4) is NaN: leave such neurons unchanged", "id": "hw3.balance", "name": "dead_neuron_nan", "role": "mistake"}
def balance_neurons(W1, W2, X):
    Z = X @ W1.T
    n = X.shape[0]
    a = 2.0 / n * torch.relu(Z).pow(2).sum(0)
    b = 2.0 / n * (X.pow(2).sum(1) @ (Z > 0).double()) * W2.pow(2)
    c = (b / a) ** 0.25
    return W1 * c[:, None], W2 / c


# %% [markdown]
# ## 5. Reading the neurons (3 points)
#
# Write `top_neurons(W1, W2, k, gamma=None)`: rank neurons by the score
# ‖W1[j]‖·|W2[j]| (times |gamma[j]| if gamma is given: Sim-BN), keep the k largest (largest
# first), and return a dict with lists
# `"index"` (the neuron indices), `"share"` (‖W1[j, :2]‖²/‖W1[j]‖², the share of the
# neuron's first-layer weight on x[0], x[1]) and `"signs"` ([sign W1[j,0], sign W1[j,1]]
# as ±1.0 floats).

# %% flatlab={"forbid": ["flatlab.diagnostics.neuron_table", "flatlab.diagnostics.diagnose"], "function": "top_neurons", "id": "hw3.top_neurons", "points": 3, "role": "task", "summary": "rank neurons by ||W1[j]||*|W2[j]|(*|gamma[j]|), return {'index', 'share', 'signs'} for the top k"}
def top_neurons(W1, W2, k, gamma=None):
    """The k highest-scoring neurons: dict(index=[...], share=[...], signs=[[s1, s2], ...])."""
    ### BEGIN SOLUTION
    score = W1.norm(dim=1) * W2.abs()
    if gamma is not None:
        score = score * gamma.abs()
    idx = torch.argsort(score, descending=True, stable=True)[:k]
    share = W1[idx, :2].pow(2).sum(1) / W1[idx].pow(2).sum(1)
    signs = torch.sign(W1[idx, :2])
    return {"index": idx.tolist(), "share": share.tolist(), "signs": signs.tolist()}
    ### END SOLUTION


# %% flatlab={"id": "hw3.top_neurons", "role": "public_test"}
_W1 = torch.tensor([[1.0, -1.0, 0.1], [0.0, 0.1, 5.0], [-2.0, 2.0, 0.0]])
_r = top_neurons(_W1, torch.tensor([1.0, 1.0, 1.0]), 2)
assert isinstance(_r, dict) and {"index", "share", "signs"} <= set(_r), "return a dict with keys 'index', 'share', 'signs'"
assert list(_r["index"]) == [1, 2], f"with W2 = 1 the two largest ‖W1[j]‖ are neurons [1, 2], largest first; got {_r['index']}"
assert abs(_r["share"][1] - 1.0) < 1e-12 and abs(_r["share"][0] - 0.01 / 25.01) < 1e-12, \
    f"share must be ‖W1[j, :2]‖²/‖W1[j]‖² (squared norms), got {_r['share']}"
assert [list(s) for s in _r["signs"]] == [[0.0, 1.0], [-1.0, 1.0]], f"signs must be [sign W1[j,0], sign W1[j,1]], got {_r['signs']}"
_r = top_neurons(_W1, torch.tensor([1.0, -1.0, 1.0]), 1)
assert list(_r["index"]) == [1], "the score uses |W2[j]|: a negative output weight counts by its size"
_r = top_neurons(_W1, torch.tensor([1.0, 1.0, 1.0]), 1, gamma=torch.tensor([1.0, 0.1, 1.0]))
assert list(_r["index"]) == [2], "with gamma given the score is ‖W1[j]‖·|W2[j]|·|gamma[j]|"
_g = torch.Generator().manual_seed(5)
_bn = flatlab.make_model("sim_bn", 6, 12, seed=5, X_ref=flatlab.xor_parity(10, 6, seed=5)[0])
with torch.no_grad():
    _bn.gamma.mul_(torch.rand(12, generator=_g) * 2)
_r = top_neurons(_bn.W1.detach(), _bn.W2.detach(), 5, _bn.gamma.detach())
_want = flatlab.diagnostics.neuron_table(_bn, 5)
assert [int(i) for i in _r["index"]] == [w["neuron"] for w in _want], "wrong neurons or wrong order on a random Sim-BN net"
assert np.allclose(_r["share"], [w["x1x2_share"] for w in _want], rtol=1e-9, atol=0), "wrong shares on a random Sim-BN net"
print("hw3.top_neurons: OK")


# %% flatlab={"id": "hw3.top_neurons", "role": "hidden_test"}
def _check_top(student, rng, arch):
    d, m = int(rng.integers(3, 30)), int(rng.integers(4, 60))
    X, _ = flatlab.xor_parity(10, d, seed=int(rng.integers(2**31)))
    kw = {"X_ref": X} if arch == "sim_bn" else {}
    model = flatlab.make_model(arch, d, m, seed=int(rng.integers(2**31)), **kw)
    if arch == "sim_bn":
        with torch.no_grad():
            model.gamma.mul_(torch.as_tensor(rng.uniform(0.1, 2.0, size=m)))
    k = int(rng.integers(1, m + 1))
    gamma = model.gamma.detach() if arch == "sim_bn" else None
    got = student.top_neurons(model.W1.detach(), model.W2.detach(), k, gamma)
    want = flatlab.diagnostics.neuron_table(model, k)
    assert isinstance(got, dict) and {"index", "share", "signs"} <= set(got), "return a dict with keys 'index', 'share', 'signs'"
    assert [int(i) for i in got["index"]] == [r["neuron"] for r in want], "wrong neurons or wrong order"
    assert_close(np.asarray(got["share"], dtype=float), np.array([r["x1x2_share"] for r in want]), rtol=1e-9, name="share")
    assert_close(np.asarray(got["signs"], dtype=float), np.sign([[r["w_x1"], r["w_x2"]] for r in want]), rtol=0, name="signs")


def test_top_neurons_no_bias(student, rng):
    """top_neurons must rank by ||W1[j]||*|W2[j]| and report each top neuron's x1/x2 weight share and signs."""
    _check_top(student, rng, "no_bias")


def test_top_neurons_sim_bn(student, rng):
    """top_neurons with gamma must multiply the score by |gamma[j]| (Sim-BN)."""
    _check_top(student, rng, "sim_bn")


# %% flatlab={"feedback": "the neurons are sorted in ascending order: keep the k largest scores, largest first", "id": "hw3.top_neurons", "name": "smallest_first", "role": "mistake"}
def top_neurons(W1, W2, k, gamma=None):
    score = W1.norm(dim=1) * W2.abs()
    if gamma is not None:
        score = score * gamma.abs()
    idx = torch.argsort(score)[:k]
    share = W1[idx, :2].pow(2).sum(1) / W1[idx].pow(2).sum(1)
    return {"index": idx.tolist(), "share": share.tolist(), "signs": torch.sign(W1[idx, :2]).tolist()}


# %% flatlab={"feedback": "gamma is ignored: for Sim-BN the score is \u2016W1[j]\u2016\u00b7|W2[j]|\u00b7|gamma[j]|", "id": "hw3.top_neurons", "name": "ignores_gamma", "role": "mistake"}
def top_neurons(W1, W2, k, gamma=None):
    score = W1.norm(dim=1) * W2.abs()
    idx = torch.argsort(score, descending=True, stable=True)[:k]
    share = W1[idx, :2].pow(2).sum(1) / W1[idx].pow(2).sum(1)
    return {"index": idx.tolist(), "share": share.tolist(), "signs": torch.sign(W1[idx, :2]).tolist()}


# %% flatlab={"feedback": "the share is a ratio of norms \u2016W1[j, :2]\u2016/\u2016W1[j]\u2016; it is defined with squared norms", "id": "hw3.top_neurons", "name": "share_of_norm", "role": "mistake"}
def top_neurons(W1, W2, k, gamma=None):
    score = W1.norm(dim=1) * W2.abs()
    if gamma is not None:
        score = score * gamma.abs()
    idx = torch.argsort(score, descending=True, stable=True)[:k]
    share = W1[idx, :2].norm(dim=1) / W1[idx].norm(dim=1)
    return {"index": idx.tolist(), "share": share.tolist(), "signs": torch.sign(W1[idx, :2]).tolist()}


# %% flatlab={"feedback": "the score uses W2[j] with its sign, so neurons with negative output weights rank last: use |W2[j]|", "id": "hw3.top_neurons", "name": "signed_score", "role": "mistake"}
def top_neurons(W1, W2, k, gamma=None):
    score = W1.norm(dim=1) * W2
    if gamma is not None:
        score = score * gamma.abs()
    idx = torch.argsort(score, descending=True, stable=True)[:k]
    share = W1[idx, :2].pow(2).sum(1) / W1[idx].pow(2).sum(1)
    return {"index": idx.tolist(), "share": share.tolist(), "signs": torch.sign(W1[idx, :2]).tolist()}


# %% [markdown]
# ## 6. Experiment: 1-SAM and GD+wd on the no-bias net (ungraded)
#
# d = 30, n = 100, width 500, the paper's Fig. 1 settings except a shorter run (1-SAM:
# lr 0.01, ρ 0.05; GD: lr 0.05, wd 0.05). The training itself is not what you are graded
# on here, so we use the fast engine through `flatlab.train.train`, in chunks, measuring
# the trace, the path norm and the floor with your functions after each chunk. ~30 s.

# %% flatlab={"role": "experiment"}
data = flatlab.make_dataset("xor", n=100, d=30, seed=0)
Xtr, ytr = data.X_train, data.y_train


def measure(model):
    W1, W2 = model.W1.detach(), model.W2.detach()
    with torch.no_grad():
        acc = 1 - flatlab.zero_one_error(model(data.X_test), data.y_test)
    return no_bias_trace(W1, W2, Xtr), path_norm(W1, W2), trace_floor(W1, W2, Xtr), acc


runs = {}
for name, method, phase, wd in (("1-SAM", "one_sam", Phase(300, 0.01, 0.05), 0.0),
                                ("GD+wd", "gd", Phase(400, 0.05), 0.05)):
    model = flatlab.make_model("no_bias", 30, 500, seed=0)
    rows, t0 = [measure(model)], time.perf_counter()
    for chunk in range(10):
        train(model, data, TrainConfig(method, (phase,), weight_decay=wd, seed=chunk, log_every=10**6))
        rows.append(measure(model))
    runs[name] = (phase.epochs * np.arange(11), np.array(rows), model)
    print(f"{name}: {time.perf_counter() - t0:.1f} s; trace {rows[-1][0]:.2f}, path norm {rows[-1][1]:.2f}, "
          f"floor {rows[-1][2]:.2f}, test acc {rows[-1][3]:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
method_color = {"1-SAM": COLORS["one_sam"], "GD+wd": COLORS["gd_wd"]}  # the course's method colours
for name, (ep, r, _) in runs.items():
    color = method_color[name]
    axes[0].plot(ep, r[:, 0], "o-", color=color, label=f"{name} trace")
    axes[0].plot(ep, r[:, 2], "x:", color=color, label=f"{name} AM-GM floor")
    axes[1].plot(ep, r[:, 1], "o-", color=color, label=name)
    axes[2].plot(ep, r[:, 3], "o-", color=color, label=name)
axes[0].axhline(4 * np.sqrt(30), color="k", ls="--", lw=0.8, label="4·sqrt(d)")
axes[0].set(xlabel="epoch", ylabel="Tr ∇²L", yscale="log", title="trace and its floor")
axes[1].set(xlabel="epoch", ylabel="Σ‖W1,j‖·|W2,j|", title="path norm")
axes[2].set(xlabel="epoch", ylabel="test accuracy", ylim=(0.4, 1.02), title="test accuracy")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Balancing the trained nets neuron by neuron shows how close each already is to the
# flattest parametrization of its own function.

# %% flatlab={"role": "experiment"}
for name, (_, r, model) in runs.items():
    W1b, W2b = balance_neurons(model.W1.detach(), model.W2.detach(), Xtr)
    print(f"{name}: trace {r[-1, 0]:.2f} -> balanced {no_bias_trace(W1b, W2b, Xtr):.2f} "
          f"(floor {trace_floor(W1b, W2b, Xtr):.2f}, 4·sqrt(d) = {4 * np.sqrt(30):.2f})")

# %% [markdown]
# ## 7. Experiment: test error against the number of samples (ungraded)
#
# Theorem 3.1 needs n = Ω̃(d). We train 1-SAM (2·10⁵ single-example steps, width 100) for
# several n at d = 30 and plot the zero-one test error. ~15 s.

# %% flatlab={"role": "experiment"}
ns, errs = [20, 40, 60, 80, 100, 150], []
t0 = time.perf_counter()
for n in ns:
    data_n = flatlab.make_dataset("xor", n=n, d=30, n_test=4000, seed=1)
    model = flatlab.make_model("no_bias", 30, 100, seed=1)
    train(model, data_n, TrainConfig("one_sam", (Phase(int(2e5 / n), 0.01, 0.05),), log_every=10**6))
    with torch.no_grad():
        errs.append(flatlab.zero_one_error(model(data_n.X_test), data_n.y_test))
print(f"{time.perf_counter() - t0:.1f} s;", dict(zip(ns, np.round(errs, 3))))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(ns, errs, "o-", color=COLORS["one_sam"], label="1-SAM")
ax.axvline(30, color="gray", ls=":", label="n = d")
ax.set(xlabel="training points n", ylabel="zero-one test error", title="1-SAM, no-bias, d = 30", ylim=(-0.02, 0.55))
ax.legend()
plt.show()

# %% [markdown]
# ## 8. Experiment: Sim-BN neurons read ±x1 ± x2 (ungraded)
#
# Sim-BN with the training statistic, width 50, 1-SAM with a warm-up on ρ (0.1 → 0.3 → 0.5,
# lr 0.005; the paper's ρ = 1 collapses this parametrization to f ≡ 0). ~30 s.
# Your `top_neurons` then tells us what the four strongest neurons look at.

# %% flatlab={"role": "experiment"}
t0 = time.perf_counter()
bn = flatlab.make_model("sim_bn", 30, 50, seed=0, X_ref=Xtr)
hist = train(bn, data, TrainConfig("one_sam", (Phase(200, 0.005, 0.1), Phase(600, 0.005, 0.3), Phase(400, 0.005, 0.5)),
                                   log_every=100))
print(f"Sim-BN 1-SAM: {time.perf_counter() - t0:.1f} s, final test accuracy {hist.test_acc[-1]:.4f}, trace {hist.trace[-1]:.2f}")
report = top_neurons(bn.W1.detach(), bn.W2.detach(), 4, bn.gamma.detach())
for j, share, signs in zip(report["index"], report["share"], report["signs"]):
    print(f"neuron {j:3d}: share of ‖W1_j‖² on x1,x2 = {share:.3f}, signs {signs}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(hist.epoch, hist.test_acc, "o-", color=COLORS["one_sam"])
axes[0].set(xlabel="epoch", ylabel="test accuracy", title="Sim-BN, 1-SAM", ylim=(0.4, 1.02))
W = bn.W1.detach()[report["index"]]
im = axes[1].imshow(W[:, :10] / W.norm(dim=1, keepdim=True), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
axes[1].set(xlabel="input coordinate (first 10 of 30)", ylabel="top-4 neuron", yticks=range(4),
            title="normalized first-layer weights")
fig.colorbar(im, ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown] flatlab={"id": "hw3.q_lemma31", "points": 3, "role": "manual"}
# **Question.** Using the plots of section 6, explain in your own words the chain
# "small trace ⇒ small path norm ⇒ generalization" for the no-bias net. Which of the two
# optimizers makes the trace small, and does GD+wd also reduce the path norm? Why is the
# path norm, and not the raw weight norm, the right quantity (hint: section 4)?
#
# <!-- BEGIN SOLUTION -->
# The trace is a sum of per-neuron terms a_j c_j² + b_j/c_j² ≥ 2 sqrt(a_j b_j), and by AM-GM
# it is at least F = (4/n)Σ_i ‖x_i‖ Σ_j |W2_j| relu(w_j·x_i), i.e. it controls how much
# "weight × activation" every training point carries; with the interpolation constraint this
# bounds Σ_j ‖w_j‖|W2_j| (Lemma 3.1). Functions with a bounded path norm form a class of
# Rademacher complexity ~ sqrt(d/n), so with n ≳ d they generalize (section 7: the error
# drops from ~0.45 to 0 between n ≈ 60 and n ≈ 100 at d = 30). In the runs both optimizers
# cut the path norm (6.4 → 3.3 for 1-SAM, → 2.5 for GD+wd) and reach test accuracy ≈ 1.
# 1-SAM also drives the trace down to ≈ 27, close to the floor 4·sqrt(d) ≈ 21.9; GD+wd's
# trace stays at ≈ 69, but balancing its neurons (section 4) brings it to ≈ 27: its
# *function* is as flat as 1-SAM's, only its parametrization is not (weight decay balances
# the Frobenius norms of the two layers, not the trace's two parts). The raw weight norm is
# not invariant to the rescaling w_j → c w_j, W2_j → W2_j/c; the path norm is: it is a property
# of the function (of each neuron's contribution), and balancing (section 4) turns the
# trace bound into a path-norm bound.
# <!-- END SOLUTION -->

# %% [markdown] flatlab={"id": "hw3.q_simbn", "points": 2, "role": "manual"}
# **Question.** Describe the four strongest Sim-BN neurons (section 8). Write down the
# function a network made of exactly those four neurons would compute on the hypercube,
# and say why this is an *interpretable* flattest solution (Theorem 3.2).
#
# <!-- BEGIN SOLUTION -->
# Each of the four has essentially all of its first-layer weight on x1 and x2 (share ≈ 0.98-1)
# with the four sign patterns (±1, ±1): neuron (s1, s2) computes relu(c(s1 x1 + s2 x2) + b),
# which (with a bias that cuts at the middle) fires only when (x1, x2) = (s1, s2). With output
# weight of sign s1·s2 the sum of the four is proportional to x1·x2 = y on every point of the
# hypercube, independent of the other 28 coordinates. Theorem 3.2 says the flattest Sim-BN
# interpolators are of this form, so flatness pins down a human-readable XOR detector and the
# test accuracy is 1.
# <!-- END SOLUTION -->
