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
from flatlab.sharpness import gauss_newton_trace
from flatlab.train import Phase, TrainConfig, train

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def bias_net(params):
    """A flatlab 'bias' model holding the given {"W1": (m, d), "b1": (m,), "W2": (m,)}."""
    m, d = params["W1"].shape
    return set_params(make_model("bias", d, m, seed=0), params)


# %% [markdown]
# ## 1. The lower bound
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
_X, _y = flatlab.xor_parity(50, 30, seed=0)
assert abs(trace_lower_bound(_X, _y) - 4 * np.sqrt(31)) < 1e-10
print("hw4.lower_bound: OK")


# %% flatlab={"id": "hw4.lower_bound", "role": "hidden_test"}
def test_lower_bound_general_data(student, rng):
    """trace_lower_bound must return (4/n) sum_i sqrt(||x_i||^2 + 1) |y_i| for arbitrary real data and labels."""
    n, d = int(rng.integers(1, 80)), int(rng.integers(1, 40))
    X, y = torch.as_tensor(rng.normal(size=(n, d))), torch.as_tensor(rng.normal(size=n))
    assert_close(student.trace_lower_bound(X, y), flatlab.sharpness.bias_trace_lower_bound_data(X, y), rtol=1e-10)


def test_lower_bound_hypercube(student, rng):
    """On hypercube data with +-1 labels, trace_lower_bound must equal 4*sqrt(d+1)."""
    d = int(rng.integers(2, 60))
    X, y = flatlab.xor_parity(int(rng.integers(1, 100)), d, seed=int(rng.integers(2**31)))
    assert_close(student.trace_lower_bound(X, y), 4 * np.sqrt(d + 1), rtol=1e-10)


# %% [markdown]
# ## 2. The memorizing flattest solution (Theorem 4.1)
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
_mem = bias_net(memorizing_solution(_X, _y, 0.1))
assert (_mem(_X) - _y).abs().max() < 1e-10, "must interpolate"
assert abs(gauss_newton_trace(_mem, _X) - trace_lower_bound(_X, _y)) < 1e-8, "must meet the bound"
_Xnew, _ = flatlab.xor_parity(200, 30, seed=123)
assert _mem(_Xnew).abs().max() == 0, "must output exactly 0 away from the training points"
print("hw4.memorizing: OK")


# %% flatlab={"id": "hw4.memorizing", "role": "hidden_test"}
def _net(params):
    params = {k: torch.as_tensor(np.asarray(v, dtype=float)) for k, v in params.items()}
    width, dim = params["W1"].shape
    return flatlab.models.set_params(flatlab.make_model("bias", dim, width, seed=0), params)


def test_memorizing_matches_theorem(student, rng):
    """memorizing_solution must return exactly Theorem 4.1's weights (w_i = x_i/||x_i||, r_i = sqrt(||x_i||^2+1)) for the given eps."""
    d = int(rng.integers(4, 30))
    X, y = flatlab.xor_parity(int(rng.integers(2, 40)), d, seed=int(rng.integers(2**31)))
    X, keep = np.unique(X.numpy(), axis=0, return_index=True)
    X, y = torch.as_tensor(X), y[torch.as_tensor(keep)]
    eps = float(rng.uniform(0.05, 1.9 / np.sqrt(d)))
    got = student.memorizing_solution(X, y, eps)
    want = flatlab.constructions.memorizing_bias(X, y, eps=eps)
    for k, v in want.named_parameters():
        assert_close(np.asarray(got[k], dtype=float), v.detach(), rtol=1e-9, atol=1e-12)


def test_memorizing_flattest_and_memorizes(student, rng):
    """The memorizing solution must interpolate real-valued labels, reach the trace lower bound, and output 0 at unseen hypercube points."""
    d = int(rng.integers(6, 30))
    X, _ = flatlab.xor_parity(int(rng.integers(2, 40)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = torch.as_tensor(rng.uniform(0.2, 2.0, size=X.shape[0]) * rng.choice([-1.0, 1.0], size=X.shape[0]))
    model = _net(student.memorizing_solution(X, y, 0.5 / np.sqrt(d)))
    with torch.no_grad():
        assert_close(model(X), y, rtol=1e-9, atol=1e-10)
        assert_close(flatlab.sharpness.gauss_newton_trace(model, X), flatlab.sharpness.bias_trace_lower_bound_data(X, y), rtol=1e-8)
        Z, _ = flatlab.xor_parity(100, d, seed=int(rng.integers(2**31)))
        unseen = ~(Z[:, None, :] == X[None]).all(-1).any(1)
        if bool(unseen.any()):
            assert float(model(Z[unseen]).abs().max()) < 1e-12


# %% [markdown]
# ## 3. The generalizing flattest solution (Proposition 4.2)
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
_gen = bias_net(generalizing_solution(30, 10))
assert (_gen(_X) - _y).abs().max() < 1e-12 and (_gen(_Xnew) - _Xnew[:, 0] * _Xnew[:, 1]).abs().max() < 1e-12
assert abs(gauss_newton_trace(_gen, _X) - 4 * np.sqrt(31)) < 1e-8
print("hw4.generalizing: OK")


# %% flatlab={"id": "hw4.generalizing", "role": "hidden_test"}
def test_generalizing_computes_xor(student, rng):
    """generalizing_solution(d, width) must compute f(x) = x[0]*x[1] at every hypercube point, with the requested width."""
    d, width = int(rng.integers(2, 50)), int(rng.integers(4, 20))
    params = student.generalizing_solution(d, width)
    assert np.asarray(params["W1"]).shape == (width, d)
    model = _net(params)
    Z, _ = flatlab.xor_parity(300, d, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        assert_close(model(Z), Z[:, 0] * Z[:, 1], rtol=1e-10, atol=1e-12)


def test_generalizing_meets_bound(student, rng):
    """generalizing_solution must reach the trace lower bound 4*sqrt(d+1) on any XOR training set (optimal radius r = (d+1)^(1/4), dead extra neurons)."""
    d, width = int(rng.integers(2, 50)), int(rng.integers(4, 12))
    model = _net(student.generalizing_solution(d, width))
    X, y = flatlab.xor_parity(int(rng.integers(5, 100)), d, seed=int(rng.integers(2**31)))
    assert_close(flatlab.sharpness.gauss_newton_trace(model, X), 4 * np.sqrt(d + 1), rtol=1e-9)


# %% [markdown]
# ## 4. Telling flat solutions apart
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
_p = memorizing_solution(_X, _y, 0.1)
assert abs(memorization_index(_p["W1"], _p["b1"], _p["W2"], _X) - 1.0) < 1e-12
_q = generalizing_solution(30, 4)
assert memorization_index(_q["W1"], _q["b1"], _q["W2"], _X) == 0.0
print("hw4.memorization_index: OK")

# %% flatlab={"id": "hw4.x1x2_share", "role": "public_test"}
assert abs(x1x2_share(_q["W1"]) - 1.0) < 1e-12
assert abs(x1x2_share(torch.ones(3, 30)) - 2 / 30) < 1e-12
print("hw4.x1x2_share: OK")


# %% flatlab={"id": "hw4.memorization_index", "role": "hidden_test"}
def test_memorization_index_trained_like(student, rng):
    """memorization_index must match the definition on random bias nets whose neurons fire on varied numbers of training points (threshold included: <=)."""
    d, m, n = int(rng.integers(3, 20)), int(rng.integers(5, 60)), int(rng.integers(5, 60))
    model = flatlab.make_model("bias", d, m, seed=int(rng.integers(2**31)))
    with torch.no_grad():
        model.b1.add_(torch.as_tensor(rng.uniform(-3.0, 0.5, size=m)))
    X, _ = flatlab.xor_parity(n, d, seed=int(rng.integers(2**31)))
    thr = int(rng.integers(1, 6))
    p = dict((k, v.detach()) for k, v in model.named_parameters())
    got = student.memorization_index(p["W1"], p["b1"], p["W2"], X, thr)
    assert_close(got, flatlab.diagnostics.memorization_index(model, X, threshold=thr), rtol=1e-9, atol=1e-12)


def test_memorization_index_constructions(student, rng):
    """memorization_index must be 1 for the memorizing construction and 0 for the generalizing one, and 0.0 (not NaN) for a dead net."""
    d = int(rng.integers(10, 30))
    X, y = flatlab.xor_parity(int(rng.integers(60, 100)), d, seed=int(rng.integers(2**31)))
    X = torch.as_tensor(np.unique(X.numpy(), axis=0))
    y = X[:, 0] * X[:, 1]
    mem = flatlab.constructions.memorizing_bias(X, y, eps=0.3 / np.sqrt(d))
    gen = flatlab.constructions.generalizing_bias(d, width=6)
    for model, want in ((mem, 1.0), (gen, 0.0)):
        p = dict((k, v.detach()) for k, v in model.named_parameters())
        assert_close(student.memorization_index(p["W1"], p["b1"], p["W2"], X, 3), want, atol=1e-12)
    p = dict((k, v.detach()) for k, v in gen.named_parameters())
    assert student.memorization_index(p["W1"], -10 * torch.ones_like(p["b1"]), p["W2"], X, 3) == 0.0


# %% flatlab={"id": "hw4.x1x2_share", "role": "hidden_test"}
def test_x1x2_share_random(student, rng):
    """x1x2_share must return ||W1[:, :2]||_F^2 / ||W1||_F^2."""
    W1 = torch.as_tensor(rng.normal(size=(int(rng.integers(1, 40)), int(rng.integers(2, 40)))))
    assert_close(student.x1x2_share(W1), float(W1[:, :2].pow(2).sum() / W1.pow(2).sum()), rtol=1e-10)


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
    axes[0].plot(h.epoch, h.trace, "o-", ms=3, label=name)
    axes[1].plot(h.epoch, h.test_acc, "o-", ms=3, label=name)
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
# **Question.** Summarize the evidence of sections 5-7 in three or four sentences: which
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
