"""The flattest constructions: interpolation, minimal trace against independent
references (the exact Hessian from torch.func.hessian, per-example Jacobians from
torch.func.jacrev, closed forms), test accuracy on fresh data, bad input."""
import math

import pytest
import torch
from torch.func import hessian, jacrev

from flatlab import constructions as C
from flatlab.sharpness import bias_trace_lower_bound
from flatlab.data import make_dataset, xor_parity
from flatlab.losses import accuracy, mse
from flatlab.models import flatten_params, functional_forward

SEEDS = (0, 1, 2)


def distinct_cube(n, d, seed):
    """n distinct hypercube points (sampled without replacement) with XOR labels."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randperm(2**d, generator=g)[:n]
    bits = (codes[:, None] >> torch.arange(d)) & 1
    X = bits.to(torch.float64) * 2 - 1
    return X, X[:, 0] * X[:, 1]


def exact_trace(model, X, y):
    """Tr ∇²L(θ) with L = mse, from the full autograd Hessian (small models only)."""
    theta = flatten_params(model).detach()
    H = hessian(lambda t: mse(functional_forward(model, t, X), y))(theta)
    return float(torch.diagonal(H).sum())


def gn_trace(model, X):
    """(2/n) Σ_i ‖∇_θ f(x_i)‖² from the per-example Jacobian (n, p)."""
    theta = flatten_params(model).detach()
    J = jacrev(lambda t: functional_forward(model, t, X))(theta)
    return float(2 * J.pow(2).sum() / X.shape[0])


def max_residual(model, X, y):
    with torch.no_grad():
        return float((model(X) - y).abs().max())


@pytest.mark.parametrize("seed", SEEDS)
def test_bias_constructions_small_exact_hessian(seed):
    d, n = 6, 12
    X, y = distinct_cube(n, d, seed)
    floor = 4 * math.sqrt(d + 1)
    assert bias_trace_lower_bound(d) == pytest.approx(floor, rel=1e-15)
    for model in (C.memorizing_bias(X, y), C.generalizing_bias(d)):
        assert max_residual(model, X, y) < 1e-12
        assert exact_trace(model, X, y) == pytest.approx(floor, rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_ln_constructions_small_exact_hessian(seed):
    d, n = 6, 12
    X, y = distinct_cube(n, d, seed)
    for model in (C.memorizing_sim_ln(X, y), C.generalizing_sim_ln(d), C.generalizing_sim_ln(d, scale=7.0)):
        assert model.config.arch == "sim_ln"
        assert max_residual(model, X, y) < 1e-12
        assert exact_trace(model, X, y) == pytest.approx(C.sim_ln_trace_floor(), rel=1e-9)


def bias_closed_form_trace(model, X):
    """Closed form for the bias net: (2/n)[‖relu(X W1ᵀ + b1)‖² + Σ_i (‖x_i‖²+1) Σ_j W2_j² 1[h_ij > 0]]."""
    with torch.no_grad():
        pre = X @ model.W1.T + model.b1
        h = pre.clamp_min(0)
        act = (pre > 0).to(X.dtype)
        xs = X.pow(2).sum(1) + 1
        return float(2 / X.shape[0] * (h.pow(2).sum() + (xs[:, None] * act * model.W2.pow(2)).sum()))


@pytest.mark.parametrize("seed", SEEDS)
def test_bias_constructions_paper_size(seed):
    data = make_dataset("xor", n=100, d=30, n_test=10_000, seed=seed)
    X, y = data.X_train, data.y_train
    floor = bias_trace_lower_bound(30)
    assert floor == pytest.approx(22.2711, abs=1e-4)
    mem, gen = C.memorizing_bias(X, y), C.generalizing_bias(30)
    for model in (mem, gen):
        assert max_residual(model, X, y) < 1e-12
        assert bias_closed_form_trace(model, X) == pytest.approx(floor, rel=1e-9)
        assert gn_trace(model, X) == pytest.approx(floor, rel=1e-9)
    with torch.no_grad():
        assert accuracy(mem(data.X_test), data.y_test) == 0.0
        assert float(mem(data.X_test).abs().max()) == 0.0  # predicts 0 off the training set
        assert accuracy(gen(data.X_test), data.y_test) == 1.0
        assert float((gen(data.X_test) - data.y_test).abs().max()) < 1e-12


@pytest.mark.parametrize("seed", SEEDS)
def test_sim_ln_constructions_paper_size(seed):
    data = make_dataset("xor", n=100, d=30, n_test=10_000, seed=seed)
    X, y = data.X_train, data.y_train
    mem, gen = C.memorizing_sim_ln(X, y), C.generalizing_sim_ln(30)
    for model in (mem, gen):
        assert max_residual(model, X, y) < 1e-12
        assert gn_trace(model, X) == pytest.approx(2.0, rel=1e-9)
    with torch.no_grad():
        assert accuracy(mem(data.X_test), data.y_test) == 0.0
        assert accuracy(gen(data.X_test), data.y_test) == 1.0


def test_padding_keeps_function_and_trace():
    d, n = 6, 12
    X, y = distinct_cube(n, d, 5)
    pairs = [
        (C.memorizing_bias(X, y), C.memorizing_bias(X, y, width=20)),
        (C.generalizing_bias(d), C.generalizing_bias(d, width=9)),
        (C.memorizing_sim_ln(X, y), C.memorizing_sim_ln(X, y, width=15)),
        (C.generalizing_sim_ln(d), C.generalizing_sim_ln(d, width=4 + 3)),
    ]
    Xt, _ = xor_parity(200, d, seed=9)
    for small, big in pairs:
        assert big.config.width > small.config.width
        with torch.no_grad():
            assert torch.equal(small(Xt), big(Xt))
        assert exact_trace(big, X, y) == pytest.approx(exact_trace(small, X, y), rel=1e-12)


def test_other_radius_is_not_flattest():
    """Only r = (d+1)^(1/4) reaches the floor; the transcription (d²+1)^(1/4) gives 62.1 at d=30."""
    X, y = xor_parity(100, 30, seed=0)
    r_wrong = (30**2 + 1) ** 0.25
    wrong = C.generalizing_bias(30, r=r_wrong)
    assert max_residual(wrong, X, y) < 1e-12
    expected = 2 * ((31) / r_wrong**2 + r_wrong**2)
    assert gn_trace(wrong, X) == pytest.approx(expected, rel=1e-9)
    assert gn_trace(wrong, X) == pytest.approx(62.1, abs=0.05)
    assert C.optimal_radius(30) == pytest.approx(31**0.25)


def test_memorizer_with_general_labels_meets_data_bound():
    X, _ = distinct_cube(10, 5, 3)
    y = torch.linspace(-2.0, 3.0, 10)
    y[y == 0] = 0.5
    model = C.memorizing_bias(X, y, eps=0.2)
    assert max_residual(model, X, y) < 1e-12
    bound = float(2 / 10 * (2 * (X.pow(2).sum(1) + 1).sqrt() * y.abs()).sum())
    assert exact_trace(model, X, y) == pytest.approx(bound, rel=1e-9)


def test_bad_input():
    X, y = xor_parity(100, 30, seed=0)
    for builder in (C.memorizing_bias, C.memorizing_sim_ln):
        with pytest.raises(ValueError, match="eps"):
            builder(X, y, eps=0.5)  # 0.5 > 2/sqrt(30) = 0.365
        with pytest.raises(ValueError, match="eps"):
            builder(X, y, eps=0.0)
        with pytest.raises(ValueError, match="duplicate"):
            builder(torch.cat([X, X[:1]]), torch.cat([y, y[:1]]))
        y0 = y.clone()
        y0[3] = 0.0
        with pytest.raises(ValueError, match="y"):
            builder(X, y0)
        with pytest.raises(ValueError, match="y"):
            builder(X, y[:-1])
        with pytest.raises(ValueError, match="width"):
            builder(X, y, width=50)
    with pytest.raises(ValueError, match="y"):
        C.memorizing_bias(X, torch.full_like(y, float("nan")))
    for builder in (C.generalizing_bias, C.generalizing_sim_ln):
        with pytest.raises(ValueError, match="d"):
            builder(1)
        with pytest.raises(ValueError, match="width"):
            builder(30, width=3)
    with pytest.raises(ValueError, match="r"):
        C.generalizing_bias(30, r=-1.0)
    with pytest.raises(ValueError, match="scale"):
        C.generalizing_sim_ln(30, scale=1e-9)


def test_library_sharpness_agrees_on_constructions():
    """flatlab.sharpness (exact and Gauss-Newton) sees the same floors as the references above."""
    from flatlab.sharpness import hessian_trace

    X, y = distinct_cube(12, 6, 7)
    bias_floor = bias_trace_lower_bound(6)
    cases = ((C.memorizing_bias(X, y), bias_floor), (C.generalizing_bias(6), bias_floor),
             (C.memorizing_sim_ln(X, y), 2.0), (C.generalizing_sim_ln(6), 2.0))
    for model, floor in cases:
        for method in ("exact", "gauss_newton"):
            assert hessian_trace(model, X, y, method=method) == pytest.approx(floor, rel=1e-9)
