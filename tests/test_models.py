import pytest
import torch

from flatlab.data import xor_parity
from flatlab.models import (
    build_model,
    flatten_params,
    functional_forward,
    get_params,
    make_model,
    model_from_config,
    set_params,
    unflatten_params,
)

ARCHS = ["no_bias", "bias", "sim_bn", "sim_ln", "deep_bias"]


def build(arch, d=5, m=7, seed=0, **kw):
    X, y = xor_parity(12, d, seed=seed + 100)
    if arch == "sim_bn":
        kw["X_ref"] = X
    return make_model(arch, d, m, seed=seed, **kw), X, y


def reference_forward(model, X):
    """The paper's formulas written out independently of the module."""
    p = get_params(model)
    arch = model.config.arch
    pre = X @ p["W1"].T + (p["b1"] if "b1" in p else 0)
    h = torch.relu(pre)
    if arch == "sim_bn":
        href = torch.relu(model.reference @ p["W1"].T + p["b1"])
        s = torch.sqrt((href**2).sum(0) / href.shape[0] + model.config.eps**2)
        h = p["gamma"] * h / s
    if arch == "sim_ln":
        h = h / torch.clamp(torch.linalg.norm(h, dim=1, keepdim=True), min=model.config.eps)
    if arch == "deep_bias":
        h = torch.relu(h @ p["W2"].T)
        return h @ p["W3"]
    return h @ p["W2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_matches_formula(arch):
    model, X, _ = build(arch)
    assert torch.allclose(model(X), reference_forward(model, X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_init_reproducible(arch):
    a, _, _ = build(arch, seed=3)
    b, _, _ = build(arch, seed=3)
    c, _, _ = build(arch, seed=4)
    assert torch.equal(flatten_params(a), flatten_params(b))
    assert not torch.equal(flatten_params(a), flatten_params(c))


@pytest.mark.parametrize("arch", ARCHS)
def test_flatten_unflatten_roundtrip_and_functional_forward(arch):
    model, X, _ = build(arch)
    theta = flatten_params(model).detach()
    back = unflatten_params(model, theta)
    assert all(torch.equal(back[k], v) for k, v in get_params(model).items())
    assert torch.allclose(functional_forward(model, theta, X), model(X))
    rebuilt = model_from_config(model.config, get_params(model), X_ref=model.reference)
    assert torch.equal(rebuilt(X), model(X))


def test_sim_bn_uses_training_statistic_for_test_points():
    model, X, _ = build("sim_bn")
    Xt, _ = xor_parity(3, 5, seed=999)
    # predictions on test points do not depend on which other test points are in the batch
    assert torch.allclose(model(Xt)[:1], model(Xt[:1]))
    # but change when the reference (training) set changes
    other = make_model("sim_bn", 5, 7, seed=0, X_ref=xor_parity(12, 5, seed=7)[0])
    assert not torch.allclose(model(Xt), other(Xt))


def test_sim_bn_statistics_mean_and_sum():
    X, _ = xor_parity(12, 5, seed=3)
    mean = make_model("sim_bn", 5, 7, seed=0, X_ref=X)
    total = make_model("sim_bn", 5, 7, seed=0, X_ref=X, bn_stat="sum")
    h = mean.hidden(X)
    eps2 = mean.config.eps ** 2
    assert torch.allclose(mean.bn_statistic(), (h.pow(2).sum(0) / 12 + eps2).sqrt(), rtol=1e-14)
    assert torch.allclose(total.bn_statistic(), (h.pow(2).sum(0) + eps2).sqrt(), rtol=1e-14)
    assert torch.allclose(total(X) * 12 ** 0.5, mean(X), rtol=1e-9)  # same weights: f differs by sqrt(n)
    assert build_model(total.config, seed=0, X_ref=X).config.bn_stat == "sum"


def test_sim_ln_is_invariant_to_first_layer_scale():
    model, X, _ = build("sim_ln")
    before = model(X).detach()
    with torch.no_grad():
        model.W1.mul_(1000.0)
        model.b1.mul_(1000.0)
    assert torch.allclose(model(X), before, rtol=1e-12)


def test_init_scale_scales_first_layer_only():
    a, _, _ = build("bias", seed=1)
    b, _, _ = build("bias", seed=1, init_scale=0.01)
    assert torch.allclose(b.W1, a.W1 * 0.01) and torch.allclose(b.b1, a.b1 * 0.01)
    assert torch.equal(a.W2, b.W2)


def test_softplus_variant():
    model, X, _ = build("bias", activation="softplus")
    p = get_params(model)
    want = torch.nn.functional.softplus(X @ p["W1"].T + p["b1"]) @ p["W2"]
    assert torch.allclose(model(X), want)


def test_deep_bias_depth():
    model = make_model("deep_bias", 4, 6, seed=0, depth=4)
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "W2", "W3", "W4"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(arch="resnet"), "arch must be one of"),
        (dict(width=0), "width must be"),
        (dict(d=2.5), "d must be"),
        (dict(activation="tanh"), "activation must be"),
        (dict(init_scale=0.0), "init_scale must be"),
        (dict(arch="sim_bn"), "X_ref must be given"),
        (dict(depth=3), "depth must be 2"),
        (dict(bn_stat="max"), "bn_stat must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(arch="bias", d=3, width=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_model(args.pop("arch"), args.pop("d"), args.pop("width"), seed=0, **args)


def test_set_params_checks_shapes():
    model, _, _ = build("bias")
    bad = get_params(model)
    bad["W1"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="W1"):
        set_params(model, bad)
    with pytest.raises(ValueError, match="theta must be"):
        unflatten_params(model, torch.zeros(3))
