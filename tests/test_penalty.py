"""flatlab.train.penalty: the sharpness penalty S against autograd, and the two trainers."""
import dataclasses
import math

import pytest
import torch

from flatlab.data import make_dataset, xor_parity
from flatlab.models import flatten_params, functional_forward, make_model, unflatten_params
from flatlab.train.penalty import (
    LabelNoiseConfig,
    PenaltyConfig,
    penalized_grads,
    penalty_weight,
    per_example_grads,
    sharpness_penalty,
    sharpness_penalty_closed_form,
    sharpness_penalty_generic,
)
from flatlab.sharpness import hessian_trace
from flatlab.train import train

TWO_LAYER = ["no_bias", "bias", "sim_bn", "sim_ln"]


def build(arch, d=5, m=7, n=12, seed=0, **kw):
    X, y = xor_parity(n, d, seed=seed + 100)
    if arch == "sim_bn":
        kw["X_ref"] = X
    return make_model(arch, d, m, seed=seed, **kw), X, y


def reference_S(model, X):
    """(2/n) Σ_i ‖∇θ f(x_i)‖² from one torch.autograd.grad call per example (independent of torch.func)."""
    params = list(model.parameters())
    total = 0.0
    for i in range(X.shape[0]):
        grads = torch.autograd.grad(model(X[i : i + 1]).sum(), params)
        total += sum(float(g.pow(2).sum()) for g in grads)
    return 2.0 * total / X.shape[0]


@pytest.mark.parametrize("activation", ["relu", "softplus"])
@pytest.mark.parametrize("arch", ["no_bias", "bias"])
@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_autograd(arch, activation, seed):
    model, X, _ = build(arch, seed=seed, activation=activation)
    got = float(sharpness_penalty_closed_form(model, X).detach())
    assert got == pytest.approx(reference_S(model, X), rel=1e-12)
    assert float(sharpness_penalty(model, X).detach()) == got  # auto picks the closed form


@pytest.mark.parametrize("arch", TWO_LAYER + ["deep_bias"])
def test_generic_matches_autograd(arch):
    model, X, _ = build(arch, seed=3)
    got = float(sharpness_penalty_generic(model, X).detach())
    assert got == pytest.approx(reference_S(model, X), rel=1e-12)


def test_per_example_grads_shapes_and_values():
    model, X, _ = build("sim_ln", seed=2)
    grads = per_example_grads(model, X)
    assert set(grads) == {"W1", "b1", "W2"}
    assert grads["W1"].shape == (X.shape[0], *model.W1.shape)
    g3 = torch.autograd.grad(model(X[3:4]).sum(), [model.W1, model.b1, model.W2])
    for got, want in zip((grads["W1"][3], grads["b1"][3], grads["W2"][3]), g3):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "softplus"])
@pytest.mark.parametrize("arch", ["no_bias", "bias"])
def test_closed_form_gradient_matches_double_backprop(arch, activation):
    model, X, _ = build(arch, seed=4, activation=activation)
    params = list(model.parameters())
    g_closed = torch.autograd.grad(sharpness_penalty_closed_form(model, X), params)
    g_generic = torch.autograd.grad(sharpness_penalty_generic(model, X), params)
    for a, b in zip(g_closed, g_generic):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert any(float(a.abs().max()) > 1e-3 for a in g_closed)  # the gradient is not trivially zero


@pytest.mark.parametrize("activation", ["relu", "softplus"])
@pytest.mark.parametrize("eps", [1e-6, "median"])
def test_sim_ln_closed_form_value_and_gradient_match_autograd(activation, eps):
    """Sim-LN's closed-form S and its gradient against per-example autograd; with eps at the median
    ‖h‖ half the rows are clamped (f = W2·h/eps there)."""
    model, X, _ = build("sim_ln", seed=8, activation=activation)
    if eps == "median":
        hn = model.hidden(X).norm(dim=1).detach()
        model, X, _ = build("sim_ln", seed=8, activation=activation, eps=float(hn.median()) * (1 + 1e-9))
        assert (hn < model.config.eps).any() and (hn > model.config.eps).any()
    got = sharpness_penalty_closed_form(model, X)
    assert float(got.detach()) == pytest.approx(reference_S(model, X), rel=1e-12)
    assert float(sharpness_penalty(model, X).detach()) == float(got.detach())  # auto picks the closed form
    params = list(model.parameters())
    g_closed = torch.autograd.grad(got, params)
    g_generic = torch.autograd.grad(sharpness_penalty_generic(model, X), params)
    for a, b in zip(g_closed, g_generic):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert any(float(a.abs().max()) > 1e-3 for a in g_closed)


def test_sim_ln_closed_form_gradient_is_finite_when_every_unit_is_dead():
    model, X, _ = build("sim_ln", seed=9)
    with torch.no_grad():
        model.W1.zero_()
        model.b1.copy_(-torch.arange(model.config.width, dtype=torch.float64))  # z = 0 or < 0: h = 0
    S = sharpness_penalty_closed_form(model, X)
    grads = torch.autograd.grad(S, list(model.parameters()))
    assert float(S.detach()) == 0.0 == reference_S(model, X)
    for a, b in zip(grads, torch.autograd.grad(sharpness_penalty_generic(model, X), list(model.parameters()))):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", ["no_bias", "bias"])
def test_penalized_grads_match_autograd(arch):
    model, X, y = build(arch, seed=6)
    lam = 0.37
    obj = (model(X) - y).pow(2).mean() + lam * sharpness_penalty_closed_form(model, X)
    want = torch.autograd.grad(obj, list(model.parameters()))
    got = penalized_grads(model, X, y, lam)
    assert list(got) == [name for name, _ in model.named_parameters()]
    for g, w in zip(got.values(), want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-13)
    sim, _, _ = build("sim_ln")
    with pytest.raises(ValueError, match="model"):
        penalized_grads(sim, X, y, lam)


@pytest.mark.parametrize("arch", ["bias", "sim_ln", "sim_bn"])
def test_gradient_matches_finite_differences(arch):
    model, X, _ = build(arch, seed=5, activation="softplus" if arch == "bias" else "relu")
    theta0 = flatten_params(model).detach().clone()
    grads = torch.autograd.grad(sharpness_penalty(model, X), list(model.parameters()))
    g = torch.cat([t.reshape(-1) for t in grads])
    v = torch.randn(theta0.shape, generator=torch.Generator().manual_seed(7), dtype=theta0.dtype)

    def S_at(theta):
        with torch.no_grad():
            for p, q in zip(model.parameters(), unflatten_params(model, theta).values()):
                p.copy_(q)
        return float(sharpness_penalty(model, X).detach())

    h = 1e-6
    fd = (S_at(theta0 + h * v) - S_at(theta0 - h * v)) / (2 * h)
    S_at(theta0)
    assert fd == pytest.approx(float(g @ v), rel=1e-5)


def test_S_equals_hessian_trace_at_interpolator():
    """At the generalizing construction S = Tr ∇²L (torch.func.hessian) = 4·sqrt(d+1)."""
    d = 4
    X = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=torch.float64)] * d)
    y = X[:, 0] * X[:, 1]
    r = (d + 1) ** 0.25
    model = make_model("bias", d, 4, seed=0)
    with torch.no_grad():
        for k, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):
            model.W1[k] = torch.tensor([s1 * r, s2 * r] + [0.0] * (d - 2))
            model.b1[k] = -r
            model.W2[k] = s1 * s2 / r
    assert float((model(X) - y).abs().max().detach()) < 1e-12
    theta = flatten_params(model).detach()
    H = torch.func.hessian(lambda t: (functional_forward(model, t, X) - y).pow(2).mean())(theta)
    S = float(sharpness_penalty(model, X).detach())
    assert S == pytest.approx(float(H.diagonal().sum()), rel=1e-10)
    assert S == pytest.approx(4 * math.sqrt(d + 1), rel=1e-10)


def test_bad_inputs():
    model, X, y = build("bias")
    with pytest.raises(ValueError, match="X"):
        sharpness_penalty(model, X[:, :3])
    with pytest.raises(ValueError, match="method"):
        sharpness_penalty(model, X, method="nope")
    sim, _, _ = build("sim_bn")  # no closed form (its statistic couples the examples)
    with pytest.raises(ValueError, match="arch"):
        sharpness_penalty_closed_form(sim, X)
    with pytest.raises(ValueError, match="model"):
        sharpness_penalty(torch.nn.Linear(5, 1), X)
    data = make_dataset("xor", n=12, d=5, n_test=50, seed=0)
    for bad in (dict(lam=-1.0), dict(lr=0.0), dict(optimizer="sgd"), dict(anneal_factor=0.0),
                dict(fit_epochs=-1), dict(fit_epochs=0, ramp_epochs=0, hold_epochs=0, anneal_epochs=0),
                dict(loss="hinge"), dict(log_every=0), dict(momentum=1.0)):
        with pytest.raises(ValueError, match="config"):
            train(model, data, dataclasses.replace(PenaltyConfig(), **bad))
    for bad in (dict(sigma=-0.1), dict(batch_size=0), dict(seed=-1), dict(epochs=2, anneal_epochs=3),
                dict(backend="gpu"), dict(lr=float("nan"))):
        with pytest.raises(ValueError, match="config"):
            train(model, data, dataclasses.replace(LabelNoiseConfig(), **bad))
    # the configs are validated on construction (only an empty penalty schedule waits for train)
    for cls, bad in ((PenaltyConfig, dict(lr=0.0)), (PenaltyConfig, dict(optimizer="sgd")),
                     (PenaltyConfig, dict(fit_epochs=1.5)), (LabelNoiseConfig, dict(sigma=-0.1)),
                     (LabelNoiseConfig, dict(backend="gpu"))):
        with pytest.raises(ValueError, match="config." + next(iter(bad))):
            cls(**bad)
    empty = PenaltyConfig(fit_epochs=0, ramp_epochs=0, hold_epochs=0, anneal_epochs=0)
    assert empty.epochs == 0  # a schedule to evaluate, not to train
    with pytest.raises(ValueError, match="config"):
        train(model, data, {"method": "penalty"})
    with pytest.raises(ValueError, match="data"):
        train(model, (X, y), PenaltyConfig())
    wrong_d = make_dataset("xor", n=12, d=6, n_test=50, seed=0)
    with pytest.raises(ValueError, match="X"):
        train(model, wrong_d, LabelNoiseConfig(epochs=1))


def test_method_ids():
    assert PenaltyConfig().method == "penalty" and LabelNoiseConfig().method == "label_noise"


def test_penalty_schedule():
    c = PenaltyConfig(lam=0.2, fit_epochs=3, ramp_epochs=4, hold_epochs=2, anneal_epochs=5,
                      anneal_factor=1e-2)
    lams = [penalty_weight(c, e) for e in range(c.epochs)]
    assert c.epochs == 14
    assert lams[:3] == [0.0] * 3
    assert lams[3:7] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert lams[7:9] == [0.2, 0.2]
    assert all(a > b for a, b in zip(lams[8:], lams[9:]))
    assert lams[-1] == pytest.approx(0.2 * 1e-2)


SMALL = dict(fit_epochs=100, ramp_epochs=100, hold_epochs=200, anneal_epochs=200, log_every=50)


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_penalty_lowers_sharpness_and_interpolates(optimizer):
    data = make_dataset("xor", n=24, d=6, n_test=200, seed=1)
    cfg = PenaltyConfig(optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.02, **SMALL)
    runs = {}
    for lam in (0.0, cfg.lam):
        model = make_model("bias", 6, 40, seed=2)
        runs[lam] = (train(model, data, dataclasses.replace(cfg, lam=lam)), model)
    plain, pen = runs[0.0][0], runs[cfg.lam][0]
    assert pen.epoch == plain.epoch == list(range(0, 601, 50))
    assert pen.train_loss[-1] < 1e-3 and plain.train_loss[-1] < 1e-3  # both fit the data
    assert pen.trace[-1] < 0.8 * plain.trace[-1]  # the penalty ends much flatter
    model = runs[cfg.lam][1]
    assert pen.trace[-1] == pytest.approx(float(sharpness_penalty(model, data.X_train).detach()), rel=1e-12)


def test_penalty_generic_path_and_determinism():
    data = make_dataset("xor", n=16, d=5, n_test=100, seed=3)
    cfg = PenaltyConfig(fit_epochs=20, ramp_epochs=20, hold_epochs=20, anneal_epochs=20, log_every=40)
    out = []
    for method in ("closed_form", "generic", "closed_form", "auto"):
        model = make_model("bias", 5, 10, seed=4)
        h = train(model, data, dataclasses.replace(cfg, penalty_method=method))
        out.append((h.to_dict(), flatten_params(model).detach()))
    assert out[0][0] == out[2][0] and torch.equal(out[0][1], out[2][1])  # bitwise deterministic
    for other in (out[1], out[3]):  # same objective by double backprop and by the hand-written gradient
        torch.testing.assert_close(out[0][1], other[1], rtol=1e-9, atol=1e-10)
    assert out[0][0]["epoch"] == [0, 40, 80]


def test_penalty_keyboard_interrupt_returns_history(monkeypatch):
    import flatlab.train.penalty as fp

    data = make_dataset("xor", n=12, d=4, n_test=50, seed=0)
    model = make_model("bias", 4, 6, seed=0)
    real, count = fp.penalized_grads, [0]

    def flaky(*args):
        count[0] += 1
        if count[0] == 8:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(fp, "penalized_grads", flaky)
    h = train(model, data, PenaltyConfig(fit_epochs=20, ramp_epochs=0, hold_epochs=0, anneal_epochs=0,
                                                 log_every=5))
    assert h.interrupted and h.epoch == [0, 5, 7]  # the state after the 7 finished epochs is the last entry
    assert h.trace[-1] == pytest.approx(float(sharpness_penalty(model, data.X_train).detach()))


def test_penalty_runs_on_sim_ln():
    data = make_dataset("xor", n=16, d=5, n_test=100, seed=5)
    model = make_model("sim_ln", 5, 12, seed=6)
    cfg = PenaltyConfig(fit_epochs=30, ramp_epochs=10, hold_epochs=10, anneal_epochs=10, log_every=30,
                        lr=0.02)
    h = train(model, data, cfg)
    assert h.train_loss[-1] < h.train_loss[0]
    assert all(t >= 2.0 - 1e-9 for t in h.gn_trace)  # Sim-LN: ‖∇f(x)‖² >= 1 at every point bounds the GN term
    assert any(abs(t - g) > 1e-6 for t, g in zip(h.trace, h.gn_trace))  # the true trace is another number


@pytest.mark.slow  # compiles the numba kernel on a fresh checkout (~7 s)
def test_label_noise_engine_matches_torch_and_is_seeded():
    data = make_dataset("xor", n=20, d=6, n_test=100, seed=0)
    results = {}
    for arch in ("bias", "no_bias"):
        for backend in ("auto", "torch"):
            for seed in (0, 0, 1):
                model = make_model(arch, 6, 10, seed=1)
                cfg = LabelNoiseConfig(epochs=6, lr=0.05, sigma=0.5, batch_size=3, weight_decay=0.01,
                                       seed=seed, log_every=3, backend=backend)
                h = train(model, data, cfg)
                out = (h.to_dict(), flatten_params(model).detach())
                results.setdefault((arch, backend, seed), []).append(out)
        for seed in (0, 1):
            (ha, wa), (ht, wt) = results[(arch, "auto", seed)][0], results[(arch, "torch", seed)][0]
            torch.testing.assert_close(wa, wt, rtol=1e-10, atol=1e-12)
            assert ha["epoch"] == ht["epoch"] == [0, 3, 6]
        (h0, w0), (h0b, w0b) = results[(arch, "auto", 0)]
        assert h0 == h0b and torch.equal(w0, w0b)  # same seed: identical
        assert not torch.equal(w0, results[(arch, "auto", 1)][0][1])  # another seed: another run


def test_label_noise_zero_sigma_full_batch_is_gd():
    """σ = 0 and batch n is plain full-batch GD: compare with a hand-written autograd loop."""
    data = make_dataset("xor", n=10, d=4, n_test=50, seed=2)
    model = make_model("bias", 4, 6, seed=3)
    ref = make_model("bias", 4, 6, seed=3)
    # backend torch: the numba epoch is checked against torch in the slow test above
    cfg = LabelNoiseConfig(epochs=5, lr=0.1, sigma=0.0, batch_size=10, log_every=5, backend="torch")
    train(model, data, cfg)
    for _ in range(5):
        grads = torch.autograd.grad((ref(data.X_train) - data.y_train).pow(2).mean(), list(ref.parameters()))
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads):
                p.sub_(0.1 * g)
    torch.testing.assert_close(flatten_params(model), flatten_params(ref), rtol=1e-12, atol=1e-13)


def test_label_noise_anneal_reaches_interpolation():
    data = make_dataset("xor", n=16, d=5, n_test=100, seed=4)
    model = make_model("bias", 5, 30, seed=5)
    h = train(model, data, LabelNoiseConfig(epochs=150, lr=0.05, sigma=0.5, anneal_epochs=60,
                                                        batch_size=4, log_every=50, backend="torch"))
    assert h.train_loss[-1] < 1e-4 < h.train_loss[0]


def test_penalty_at_zero_lambda_is_gd_and_logs_the_gauss_newton_trace():
    """λ = 0 with momentum 0 is plain full-batch GD (against a hand-written autograd loop), and
    the history's trace is the one trace of every method: the Gauss-Newton trace of the loss,
    here equal to the penalty S."""
    data = make_dataset("xor", n=12, d=5, n_test=50, seed=3)
    model, ref = make_model("bias", 5, 8, seed=4), make_model("bias", 5, 8, seed=4)
    cfg = PenaltyConfig(lam=0.0, fit_epochs=6, ramp_epochs=0, hold_epochs=0, anneal_epochs=0,
                        optimizer="momentum", momentum=0.0, lr=0.1, log_every=3)
    h = train(model, data, cfg)
    for _ in range(6):
        grads = torch.autograd.grad((ref(data.X_train) - data.y_train).pow(2).mean(), list(ref.parameters()))
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads):
                p.sub_(0.1 * g)
    torch.testing.assert_close(flatten_params(model), flatten_params(ref), rtol=1e-12, atol=1e-13)
    assert h.epoch == [0, 3, 6]
    X, y = data.X_train, data.y_train
    assert h.trace[-1] == hessian_trace(model, X, y, method="gauss_newton")
    assert h.trace[-1] == pytest.approx(float(sharpness_penalty(model, X).detach()), rel=1e-12)
