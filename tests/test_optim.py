"""flatlab.train.reference: SAM against a hand-written two-step reference on the flat parameter
vector (torch.func.grad), its state_dict, argument errors, 1-SAM orders, the projection
and GD with weight decay against closed forms."""
import copy
import math

import pytest
import torch
from torch.func import grad

from flatlab.data import make_dataset
from flatlab.losses import mse
from flatlab.models import flatten_params, functional_forward, make_model, set_params, unflatten_params
from flatlab.train.reference import (
    SAM, epoch_orders, first_layer_norm, gd_step, minibatch_epoch, one_sam_epoch, project_first_layer,
)

D, M, N = 5, 7, 6


@pytest.fixture
def setup():
    data = make_dataset("xor", n=N, d=D, n_test=4, seed=3)
    model = make_model("bias", D, M, seed=4)
    return model, data.X_train, data.y_train


def _loss_at(model, X, y):
    return lambda theta: mse(functional_forward(model, theta, X), y)


def _ref_sam_step(model, X, y, theta, lr, rho, adaptive=False):
    """θ̃ = θ + ρ T²g/‖T g‖ (T = |θ| for ASAM, else 1); θ ← θ − lr ∇L(θ̃)."""
    L = _loss_at(model, X, y)
    g = grad(L)(theta)
    scale = theta.abs() if adaptive else torch.ones_like(theta)
    e = rho * scale.pow(2) * g / (scale * g).norm()
    return theta - lr * grad(L)(theta + e)


def _closure(opt, model, X, y):
    def closure():
        opt.zero_grad()
        loss = mse(model(X), y)
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_step_matches_two_step_reference(setup, adaptive):
    model, X, y = setup
    theta = flatten_params(model).detach().clone()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, adaptive=adaptive, lr=0.05)
    for _ in range(3):
        loss = opt.step(_closure(opt, model, X, y))
        theta_ref = _ref_sam_step(model, X, y, theta, 0.05, 0.1, adaptive)
        assert float(loss.detach()) == pytest.approx(float(_loss_at(model, X, y)(theta)), rel=1e-12)
        theta = theta_ref
        assert torch.allclose(flatten_params(model).detach(), theta, atol=1e-13, rtol=0)


def test_first_second_step_equals_step(setup):
    model, X, y = setup
    twin = copy.deepcopy(model)
    a = SAM(model.parameters(), torch.optim.SGD, rho=0.2, lr=0.1)
    b = SAM(twin.parameters(), torch.optim.SGD, rho=0.2, lr=0.1)
    a.step(_closure(a, model, X, y))
    mse(twin(X), y).backward()
    b.first_step(zero_grad=True)
    assert not torch.equal(flatten_params(twin), flatten_params(model))  # at θ̃ now
    mse(twin(X), y).backward()
    b.second_step(zero_grad=True)
    assert torch.equal(flatten_params(twin), flatten_params(model))
    assert all(p.grad is None or not p.grad.any() for p in twin.parameters())


def test_sam_zero_gradient_skips_ascent(setup):
    model, X, _ = setup
    with torch.no_grad():
        model.W2.zero_()  # f ≡ 0 and y = 0: every gradient is exactly 0
    before = flatten_params(model).detach().clone()
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)
    opt.step(_closure(opt, model, X, torch.zeros(N)))
    after = flatten_params(model).detach()
    assert torch.isfinite(after).all() and torch.equal(after, before)


def test_state_dict_round_trip_with_base_state(setup):
    model, X, y = setup
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.05, momentum=0.9)
    for _ in range(3):
        opt.step(_closure(opt, model, X, y))
    sd = copy.deepcopy(opt.state_dict())  # as if saved to disk: state_dict() returns live tensors
    assert len(sd["base_optimizer"]["state"]) == 3  # one momentum buffer per parameter
    twin = copy.deepcopy(model)
    opt2 = SAM(twin.parameters(), torch.optim.SGD, rho=0.5, lr=1.0, momentum=0.9)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["rho"] == 0.05
    for _ in range(2):
        opt.step(_closure(opt, model, X, y))
        opt2.step(_closure(opt2, twin, X, y))
    assert torch.equal(flatten_params(model), flatten_params(twin))
    # the groups stay shared with the base optimizer: an lr change reaches both
    opt2.param_groups[0]["lr"] = 0.123
    assert opt2.base_optimizer.param_groups[0]["lr"] == 0.123


def test_sam_bad_arguments(setup):
    model, X, y = setup
    with pytest.raises(ValueError, match="rho"):
        SAM(model.parameters(), torch.optim.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(ValueError, match="rho"):
        SAM(model.parameters(), torch.optim.SGD, rho=float("nan"), lr=0.1)
    with pytest.raises(ValueError, match="base_optimizer_cls"):
        SAM(model.parameters(), "sgd", rho=0.1, lr=0.1)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.1)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="base_optimizer"):
        opt.load_state_dict({"state": {}, "param_groups": opt.state_dict()["param_groups"]})


def test_epoch_orders_seeded_and_permutations():
    a = epoch_orders(10, 6, torch.Generator().manual_seed(7))
    b = epoch_orders(10, 6, torch.Generator().manual_seed(7))
    c = epoch_orders(10, 6, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(torch.equal(row.sort().values, torch.arange(10)) for row in a)
    g = torch.Generator().manual_seed(7)  # drawing in chunks gives the same orders
    assert torch.equal(torch.cat([epoch_orders(10, 2, g), epoch_orders(10, 4, g)]), a)
    with pytest.raises(ValueError, match="generator"):
        epoch_orders(10, 2, 7)


def test_one_sam_epoch_matches_sam_optimizer_per_example(setup):
    model, X, y = setup
    twin = copy.deepcopy(model)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    one_sam_epoch(model, X, y, 0.05, 0.1, order)
    opt = SAM(twin.parameters(), torch.optim.SGD, rho=0.1, lr=0.05)
    for i in order:
        opt.step(_closure(opt, twin, X[i : i + 1], y[i : i + 1]))
    assert torch.allclose(flatten_params(model), flatten_params(twin), atol=1e-14, rtol=0)


def test_one_sam_epoch_deterministic_and_order_matters(setup):
    model, X, y = setup
    runs = []
    for order in ([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]):
        m = copy.deepcopy(model)
        one_sam_epoch(m, X, y, 0.05, 0.1, order)
        runs.append(flatten_params(m).detach())
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])
    with pytest.raises(ValueError, match="order"):
        one_sam_epoch(model, X, y, 0.05, 0.1, [0, 6])
    with pytest.raises(ValueError, match="lr"):
        one_sam_epoch(model, X, y, -0.05, 0.1, [0])


@pytest.mark.parametrize("arch", ["no_bias", "bias", "sim_ln"])
def test_projection_keeps_first_layer_norm(arch):
    data = make_dataset("xor", n=N, d=D, n_test=4, seed=1)
    model = make_model(arch, D, M, seed=2)
    f0 = model(data.X_train).detach()
    project_first_layer(model, 3.0)
    assert first_layer_norm(model) == pytest.approx(3.0, rel=1e-14)
    if arch == "sim_ln":  # Sim-LN is invariant to rescaling (W1, b1)
        assert torch.allclose(model(data.X_train), f0, atol=1e-13)
    for _ in range(3):
        one_sam_epoch(model, data.X_train, data.y_train, 0.1, 0.1, range(N), project_norm=3.0)
        assert first_layer_norm(model) == pytest.approx(3.0, rel=1e-13)
    with pytest.raises(ValueError, match="norm"):
        project_first_layer(model, 0.0)


def test_gd_weight_decay_closed_form():
    """With W2 = 0 and y = 0 the loss gradient vanishes: θ_k = (1 - lr·wd)^k θ_0 exactly."""
    data = make_dataset("xor", n=N, d=D, n_test=4, seed=1)
    model = make_model("bias", D, M, seed=2)
    with torch.no_grad():
        model.W2.zero_()
    theta0 = flatten_params(model).detach().clone()
    lr, wd, k = 0.1, 0.05, 20
    for _ in range(k):
        gd_step(model, data.X_train, torch.zeros(N), lr, weight_decay=wd)
    assert torch.allclose(flatten_params(model).detach(), (1 - lr * wd) ** k * theta0, rtol=1e-13, atol=0)


def test_gd_step_matches_autograd_gradient_plus_decay(setup):
    model, X, y = setup
    theta = flatten_params(model).detach().clone()
    expected = theta - 0.1 * (grad(_loss_at(model, X, y))(theta) + 0.05 * theta)
    gd_step(model, X, y, 0.1, weight_decay=0.05)
    assert torch.allclose(flatten_params(model).detach(), expected, atol=1e-14, rtol=0)
    # minibatch SGD with one batch of all n examples in order is the same full-batch step
    twin = make_model("bias", D, M, seed=4)
    set_params(twin, unflatten_params(twin, theta))
    minibatch_epoch(twin, X, y, 0.1, 0.0, range(N), batch_size=N, weight_decay=0.05)
    assert torch.allclose(flatten_params(twin), flatten_params(model), atol=1e-15, rtol=0)
    assert math.isfinite(first_layer_norm(model))
