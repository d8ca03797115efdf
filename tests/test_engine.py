"""flatlab.train.engine against the torch reference (flatlab.train.reference) and flatlab.train end to end.

The engine must follow the reference trajectory to 1e-10 (float64) over >= 1,000 1-SAM
steps for every supported architecture, with and without the projection.
"""
import signal
from dataclasses import replace

import numpy as np
import pytest
import torch

from flatlab.train import engine
from flatlab.data import make_dataset
from flatlab.models import make_model
from flatlab.train.reference import epoch_orders, first_layer_norm, gd_step, one_sam_epoch
from flatlab.train import History, Phase, TrainConfig, resolve_backend, train

D, M, N = 6, 12, 10


@pytest.fixture(scope="module")
def data():
    return make_dataset("xor", n=N, d=D, n_test=200, seed=5)


def _model(arch, data, **kw):
    extra = {"X_ref": data.X_train} if arch == "sim_bn" else {}
    return make_model(arch, D, M, seed=11, **extra, **kw)


def _arrays(model):
    return {k: p.detach().numpy().copy() for k, p in model.named_parameters()}


def _max_diff(model, arrays):
    return max(float(np.abs(arrays[k] - p.detach().numpy()).max()) for k, p in model.named_parameters())


@pytest.mark.parametrize("arch", ["no_bias", "bias", "sim_ln", "sim_bn"])
@pytest.mark.parametrize("project_norm", [None, 3.0])
def test_one_sam_engine_matches_torch_reference(data, arch, project_norm):
    model = _model(arch, data)
    arrays = _arrays(model)
    epochs = 100  # 100 epochs x 10 examples = 1,000 steps
    orders = epoch_orders(N, epochs, torch.Generator().manual_seed(0))
    lr, rho = 0.05, 0.1
    for order in orders:
        one_sam_epoch(model, data.X_train, data.y_train, lr, rho, order, project_norm=project_norm)
    engine.one_sam(arrays, arch, data.X_train.numpy(), data.y_train.numpy(), orders.numpy(), lr, rho,
                   project_norm=project_norm, eps=model.config.eps)
    assert _max_diff(model, arrays) < 1e-10
    moved = _max_diff(_model(arch, data), arrays)
    assert moved > 1e-2  # the trajectory went somewhere
    if project_norm is not None:
        assert first_layer_norm(model) == pytest.approx(project_norm, rel=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_one_sam_engine_sim_bn_sum_statistic_matches_torch_reference(data, weight_decay):
    """The Sim-BN kernel with the sum statistic sqrt(Σ_i h_i² + eps²) against the torch reference."""
    model = _model("sim_bn", data, bn_stat="sum")
    arrays = _arrays(model)
    orders = epoch_orders(N, 50, torch.Generator().manual_seed(2))
    for order in orders:
        one_sam_epoch(model, data.X_train, data.y_train, 0.05, 0.3, order, weight_decay=weight_decay)
    engine.one_sam(arrays, "sim_bn", data.X_train.numpy(), data.y_train.numpy(), orders.numpy(), 0.05, 0.3,
                   weight_decay=weight_decay, eps=model.config.eps, bn_stat="sum")
    assert _max_diff(model, arrays) < 1e-10 and _max_diff(_model("sim_bn", data, bn_stat="sum"), arrays) > 1e-3
    mean = _arrays(_model("sim_bn", data))  # the mean statistic is a different trajectory
    engine.one_sam(mean, "sim_bn", data.X_train.numpy(), data.y_train.numpy(), orders.numpy(), 0.05, 0.3,
                   weight_decay=weight_decay, eps=model.config.eps)
    assert _max_diff(model, mean) > 1e-3
    with pytest.raises(ValueError, match="bn_stat"):
        engine.one_sam(mean, "sim_bn", data.X_train.numpy(), data.y_train.numpy(), orders.numpy(), 0.05, 0.3,
                       bn_stat="median")


@pytest.mark.parametrize("arch", ["bias", "sim_bn"])
def test_one_sam_engine_weight_decay(data, arch):
    model = _model(arch, data)
    arrays = _arrays(model)
    orders = epoch_orders(N, 20, torch.Generator().manual_seed(1))
    for order in orders:
        one_sam_epoch(model, data.X_train, data.y_train, 0.05, 0.1, order, weight_decay=0.05)
    engine.one_sam(arrays, arch, data.X_train.numpy(), data.y_train.numpy(), orders.numpy(), 0.05, 0.1,
                   weight_decay=0.05, eps=model.config.eps)
    assert _max_diff(model, arrays) < 1e-10


@pytest.mark.parametrize("arch", ["no_bias", "bias", "sim_ln"])
def test_gd_engine_matches_torch_reference(data, arch):
    model = _model(arch, data)
    arrays = _arrays(model)
    for _ in range(300):
        gd_step(model, data.X_train, data.y_train, 0.05, weight_decay=0.01)
    engine.gd(arrays, arch, data.X_train.numpy(), data.y_train.numpy(), 300, 0.05, weight_decay=0.01,
              eps=model.config.eps)
    assert _max_diff(model, arrays) < 1e-10
    assert _max_diff(_model(arch, data), arrays) > 1e-2


def test_zero_gradient_skips_ascent_like_reference(data):
    """All neurons dead on every example: g = 0, no NaN, no move (engine and reference alike)."""
    model = _model("bias", data)
    with torch.no_grad():
        model.b1.fill_(-100.0)
    arrays = _arrays(model)
    start = _arrays(model)
    one_sam_epoch(model, data.X_train, data.y_train, 0.1, 0.1, range(N))
    engine.one_sam(arrays, "bias", data.X_train.numpy(), data.y_train.numpy(), np.arange(N), 0.1, 0.1)
    assert all(np.isfinite(a).all() for a in arrays.values())
    assert all(np.array_equal(arrays[k], start[k]) for k in start)
    assert _max_diff(model, arrays) == 0.0


def test_engine_deterministic_and_validates(data):
    X, y = data.X_train.numpy(), data.y_train.numpy()
    runs = []
    for _ in range(2):
        arrays = _arrays(_model("sim_ln", data))
        engine.one_sam(arrays, "sim_ln", X, y, np.arange(N).repeat(5), 0.05, 0.1)
        runs.append(arrays)
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    arrays = _arrays(_model("bias", data))
    with pytest.raises(ValueError, match="arch"):
        engine.gd(arrays, "sim_bn", X, y, 1, 0.1)
    with pytest.raises(ValueError, match="order"):
        engine.one_sam(arrays, "bias", X, y, [N], 0.1, 0.1)
    with pytest.raises(ValueError, match="W1"):
        engine.one_sam({**arrays, "W1": arrays["W1"].astype(np.float32)}, "bias", X, y, [0], 0.1, 0.1)
    with pytest.raises(ValueError, match="rho"):
        engine.one_sam(arrays, "bias", X, y, [0], 0.1, -1.0)
    assert engine.supports("bias", "one_sam") and not engine.supports("bias", "one_sam", loss="logistic")


# ----------------------------------------------------------------------------- train()
def test_train_gd_weight_decay_fits(data):
    big = make_dataset("xor", n=20, d=10, n_test=500, seed=0)
    model = make_model("bias", 10, 50, seed=0)
    cfg = TrainConfig("gd", (Phase(3000, 0.1),), weight_decay=1e-4, log_every=1000)
    assert resolve_backend(model, big, cfg) == "engine"
    hist = train(model, big, cfg)
    assert hist.epoch == [0, 1000, 2000, 3000]
    assert hist.train_loss[-1] < 1e-2 < hist.train_loss[0]
    assert not hist.interrupted and len(hist) == 4
    assert set(hist.to_dict()) == {"epoch", "train_loss", "test_acc", "trace", "gn_trace"}


@pytest.mark.parametrize("arch,method,wd", [("bias", "one_sam", 0.0), ("sim_bn", "one_sam", 0.0),
                                            ("sim_ln", "gd", 0.0), ("no_bias", "sgd", 0.01)])
def test_train_engine_equals_torch_backend(data, arch, method, wd):
    cfg = dict(method=method, phases=(Phase(6, 0.05, 0.05), Phase(4, 0.02, 0.1)), log_every=4,
               project_norm=4.0 if arch == "sim_ln" else None, seed=3, weight_decay=wd)
    out = {}
    for backend in ("engine", "torch"):
        model = _model(arch, data)
        out[backend] = (train(model, data, TrainConfig(**cfg, backend=backend)), model)
    (he, me), (ht, mt) = out["engine"], out["torch"]
    assert he.epoch == ht.epoch == [0, 4, 8, 10]
    for key in ("train_loss", "trace"):
        np.testing.assert_allclose(getattr(he, key), getattr(ht, key), rtol=1e-9)
    assert he.test_acc == ht.test_acc
    assert _max_diff(mt, {k: p.detach().numpy() for k, p in me.named_parameters()}) < 1e-10


def test_train_deterministic_and_seed_changes_order(data):
    hists = []
    for seed in (0, 0, 1):
        model = _model("bias", data)
        hists.append((train(model, data, TrainConfig("one_sam", (Phase(20, 0.05, 0.1),), seed=seed,
                                                      log_every=10)), model))
    assert hists[0][0].to_dict() == hists[1][0].to_dict()
    assert torch.equal(hists[0][1].W1, hists[1][1].W1) and not torch.equal(hists[0][1].W1, hists[2][1].W1)


def test_train_torch_only_cases(data):
    model = _model("bias", data)
    for cfg in (TrainConfig("one_sam", (Phase(3, 0.05, 0.1),), loss="logistic", log_every=2),
                TrainConfig("sam", (Phase(3, 0.05, 0.1),), batch_size=5, log_every=2),
                TrainConfig("sgd", (Phase(3, 0.05),), batch_size=3, weight_decay=0.01, log_every=2)):
        assert resolve_backend(model, data, cfg) == "torch"
        hist = train(model, data, cfg)
        assert hist.epoch == [0, 2, 3] and np.isfinite(hist.train_loss).all()
    with pytest.raises(ValueError, match="backend='engine'"):
        train(model, data, TrainConfig("one_sam", (Phase(1, 0.05, 0.1),), loss="logistic", backend="engine"))


def test_train_config_validation(data):
    with pytest.raises(ValueError, match="method"):
        TrainConfig("adam", (Phase(1, 0.1),))
    with pytest.raises(ValueError, match="epochs"):
        Phase(1.5, 0.1)
    with pytest.raises(ValueError, match="lr"):
        Phase(1, 0.0)
    with pytest.raises(ValueError, match="phases"):
        TrainConfig("gd", ())
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig("one_sam", (Phase(1, 0.1),), batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        train(_model("bias", data), data, TrainConfig("gd", (Phase(1, 0.1),), batch_size=3))
    assert Phase(2e5, 0.01, 0.05).epochs == 200000


@pytest.mark.parametrize("how", ["signal", "exception"])
def test_train_keyboard_interrupt_returns_partial_history(data, monkeypatch, how):
    calls = []
    real = engine.one_sam

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            if how == "signal":
                signal.raise_signal(signal.SIGINT)  # handled as a flag: stops after this chunk
            else:
                raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "one_sam", flaky)
    model = _model("bias", data)
    hist = train(model, data, TrainConfig("one_sam", (Phase(50, 0.05, 0.1),), log_every=5))
    assert hist.interrupted
    expected_last = 15 if how == "signal" else 10  # chunks of 5 epochs (= log_every)
    assert hist.epoch == list(range(0, expected_last + 1, 5))
    assert len(hist.trace) == len(hist.epoch) and History().to_dict()["epoch"] == []


def test_log_spaced_grid_and_the_same_trajectory(data):
    """log_per_decade adds round(10^(j/k)) epochs to the log without changing the run itself."""
    from flatlab.train.loop import log_epochs
    assert log_epochs(10, 5) == [0, 5, 10] and log_epochs(7, 5) == [0, 5, 7]
    assert log_epochs(100, 50, 2) == [0, 1, 3, 10, 32, 50, 100]  # 10^(j/2): 1, 3.2, 10, 31.6, 100
    grid = log_epochs(100_000, 5_000, 20)
    assert sum(e < 5_000 for e in grid) == 64 and grid == sorted(set(grid))  # 3.7 decades, small ones merge and grid[-1] == 100_000
    cfg = TrainConfig("one_sam", (Phase(30, 0.05, 0.1), Phase(20, 0.02, 0.1)), log_every=25, seed=3)
    runs = {}
    for k in (0, 10):
        model = _model("bias", data)
        h = train(model, data, replace(cfg, log_per_decade=k))
        runs[k] = (h, _arrays(model))
    (h0, w0), (h1, w1) = runs[0], runs[10]
    assert h0.epoch == [0, 25, 50] and h1.epoch == log_epochs(50, 25, 10)
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)  # logging more often changes nothing
    for e, loss in zip(h0.epoch, h0.train_loss):
        assert h1.train_loss[h1.epoch.index(e)] == loss
    with pytest.raises(ValueError, match="log_per_decade"):
        TrainConfig("gd", (Phase(10, 0.1),), log_per_decade=-1)
