"""Scenario configs, the runner (determinism, atomic and interrupted writes), the
acceptance checks and the neuron table."""
import json
import math

import pytest
import torch

from flatlab import constructions as C
from flatlab.diagnostics import neuron_table
from flatlab.models import make_model
from flatlab.sharpness import bias_trace_lower_bound
from flatlab.lab import results as R
from flatlab.lab import runner as E

from cases import QUIET, SMOKE_SCENARIO


def test_every_config_is_typed_and_serializable():
    for name in E.SCENARIOS:
        for preset in E.PRESETS:
            cfg = E.get_config(name, preset)
            assert cfg.name == name and cfg.preset == preset and cfg.methods
            assert json.loads(json.dumps(cfg.to_dict()))["methods"][0]["name"] == cfg.methods[0].name
            for m in cfg.methods:
                assert m.optimizer in ("gd", "one_sam") and m.epochs > 0 and m.log_every > 0
                assert all(e > 0 and lr > 0 and rho >= 0 for e, lr, rho in m.phases)


def test_paper_presets_follow_table_2():
    s1 = {m.name: m for m in E.get_config("scenario1", "paper").methods}
    assert s1["gd_wd"].phases == ((100_000, 0.01, 0.0),) and s1["gd_wd"].weight_decay == 0.05
    assert s1["one_sam"].phases == ((100_000, 0.01, 0.05),) and s1["one_sam"].weight_decay == 0.0
    s2 = {m.name: m for m in E.get_config("scenario2", "paper").methods}
    assert s2["one_sam"].phases == ((200_000, 0.01, 0.05), (400_000, 0.01, 0.1))
    s3 = {m.name: m for m in E.get_config("scenario3", "paper").methods}
    assert s3["one_sam"].phases == ((100_000, 0.1, 0.1),) and s3["one_sam"].model == {"init_scale": 0.01}
    assert s3["one_sam_projected"].phases == ((500, 0.01, 0.1), (500, 0.01, 0.5), (500, 0.01, 1.0))
    assert s3["one_sam_projected"].project_norm == 10.0
    for name in E.SCENARIOS:
        assert E.get_config(name, "paper").model.width == 500
        assert {m.log_per_decade for m in E.get_config(name, "paper").methods} == {20}  # the learning phase shows
        assert {m.log_per_decade for m in E.get_config(name, "quick").methods} == {0}
    bn = E.get_config("scenario1-bn", "paper")
    (sam,) = bn.methods
    assert sam.phases == ((100_000, 0.005, 0.1), (100_000, 0.003, 1.0)) and sam.weight_decay == 0.0
    mc = sam.model_config(bn.model)
    assert mc.bn_stat == "sum" and mc.gamma_init == 1.0 and "Table 2 exactly" in bn.notes and "'sum'" in bn.notes
    quick = E.get_config("scenario1-bn", "quick")
    assert quick.methods[0].model_config(quick.model).bn_stat == "mean" and "mean" in quick.notes


def test_bad_names():
    with pytest.raises(ValueError, match="scenario"):
        E.get_config("scenario9")
    with pytest.raises(ValueError, match="preset"):
        E.get_config("scenario1", "slow")
    with pytest.raises(ValueError, match="seeds"):
        E.run_scenario("scenario3", "smoke", seeds=[-1], out_dir="/nonexistent")
    with pytest.raises(ValueError, match="workers"):
        E.run_scenario("scenario3", "smoke", seeds=[0], out_dir="/nonexistent", workers=0)


def test_run_record_neurons_on_constructions():
    """The runner's neuron rows (largest ‖W1_j‖ first, with the whole row W1_j) on known solutions."""
    gen = C.generalizing_bias(30, width=10)
    rows = neuron_table(gen, k=4, by="norm", weights=True)
    assert len(rows) == 4 and sorted(r["neuron"] for r in rows) == [0, 1, 2, 3]
    for r in rows:
        assert r["x1x2_share"] == pytest.approx(1.0) and r["rest_norm"] == 0.0
        assert abs(r["w_x1"]) == pytest.approx(31**0.25) and r["w"] == gen.W1.detach()[r["neuron"]].tolist()
    X = torch.eye(30, dtype=torch.float64)[:5] * 2 - 1
    mem = C.memorizing_bias(X, torch.ones(5), eps=0.1)
    rows = neuron_table(mem, k=4, by="norm")  # rows x_i/‖x_i‖ scaled: share (1+1)/30 of the squared norm on x1, x2
    assert all(r["x1x2_share"] == pytest.approx(2 / 30) and "w" not in r for r in rows)
    norms = [r["w1_norm"] for r in rows]
    assert norms == sorted(norms, reverse=True)
    deep = make_model("deep_bias", 6, 5, seed=0, depth=3)  # Fig. 11's net: its first layer, by norm
    rows = neuron_table(deep, k=5, by="norm", weights=True)
    assert [r["w1_norm"] for r in rows] == sorted(deep.W1.detach().norm(dim=1).tolist(), reverse=True)
    assert all(r["w2"] is None and len(r["w"]) == 6 for r in rows)
    with pytest.raises(ValueError, match="two-layer"):
        neuron_table(deep, by="product")


def _fake_results(scenario, finals, preset="quick", floor=None, residual=1e-2):
    runs = []
    for method, seed, acc, trace, peak in finals:
        runs.append({"method": method, "seed": seed,
                     "final": {"test_acc": acc, "trace": trace, "train_loss": 1e-3, "train_max_residual": residual},
                     "peak": {"test_acc": peak, "epoch": 10}, "neurons": [{"x1x2_share": 0.95}] * 4})
    return {"scenario": scenario, "preset": preset, "runs": runs,
            "summary": {"trace_floor": bias_trace_lower_bound(30) if floor is None else floor}}


def test_check_directions_pass_and_fail():
    good = _fake_results("scenario2", [("gd_wd", 0, 0.999, 70.0, 0.999), ("one_sam", 0, 0.66, 22.5, 0.70)])
    assert all(c["passed"] for c in E.check_directions(good))
    bad = _fake_results("scenario2", [("gd_wd", 0, 0.999, 70.0, 0.999), ("one_sam", 0, 0.90, 25.0, 0.90)])
    failed = [c["check"] for c in E.check_directions(bad) if not c["passed"]]
    assert any("trace within" in f for f in failed) and any("0.2 below" in f for f in failed)
    assert any("declines" in f for f in failed)
    s3 = _fake_results("scenario3", [("one_sam", 0, 0.95, 2.1, 0.95),
                                     ("one_sam_projected", 0, 0.92, 2.5, 0.93)], floor=2.0)
    assert [c["passed"] for c in E.check_directions(s3)] == [True, True, False, True]
    diverged = _fake_results("scenario1", [("gd_wd", 0, 1.0, 70.0, 1.0), ("one_sam", 11, 1.0, None, 1.0)])
    diverged["runs"][1]["final"]["train_loss"] = None  # overflowed: written as null; test acc can still be 1.0
    first = E.check_directions(diverged)[0]
    assert "diverging" in first["check"] and not first["passed"]
    # below the interpolators' floor: allowed for a run that does not interpolate, a contradiction for one that does
    low = [("one_sam", 0, 0.95, 1.4, 0.95), ("one_sam_projected", 0, 0.95, 1.1, 0.95)]
    assert E.check_directions(_fake_results("scenario3", low, floor=2.0, residual=0.05))[-1]["passed"]
    floor_check = E.check_directions(_fake_results("scenario3", low, floor=2.0, residual=0.0))[-1]
    assert "does not interpolate" in floor_check["check"] and not floor_check["passed"]


def test_write_json_atomic_survives_interruption(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    R.write_json_atomic(path, {"old": 1})

    def broken_fsync(fd):  # the new text is in the temp file, not yet on disk: Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(R.os, "fsync", broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        R.write_json_atomic(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind
    monkeypatch.undo()
    with pytest.raises(ValueError):
        R.write_json_atomic(path, {"x": math.nan})  # strict JSON
    assert json.loads(path.read_text()) == {"old": 1}


def _runs(res):
    return json.dumps(res["runs"], sort_keys=True)


@pytest.mark.slow
def test_runner_is_deterministic_across_workers(tmp_path):
    a = E.run_scenario(*SMOKE_SCENARIO, seeds=[0, 1], out_dir=tmp_path / "a", workers=1, **QUIET)
    b = E.run_scenario(*SMOKE_SCENARIO, seeds=[0, 1], out_dir=tmp_path / "b", workers=2, **QUIET)
    assert _runs(a) == _runs(b)
    on_disk = json.loads((tmp_path / "a" / "scenario3" / "results.json").read_text())
    assert _runs(on_disk) == _runs(a)
    assert not on_disk["interrupted"] and on_disk["missing"] == []
    assert [(r["method"], r["seed"]) for r in on_disk["runs"]] == [
        ("one_sam", 0), ("one_sam", 1), ("one_sam_projected", 0), ("one_sam_projected", 1)]
    for r in on_disk["runs"]:
        h = r["history"]
        assert len(h["epoch"]) == len(h["train_loss"]) == len(h["test_acc"]) == len(h["trace"]) >= 2
        assert h["epoch"][0] == 0 and h["epoch"][-1] == r["final"]["epoch"]
        assert r["final"]["test_acc"] == h["test_acc"][-1] and r["final"]["trace"] == h["trace"][-1]
        assert r["peak"]["test_acc"] == max(h["test_acc"])


def test_ctrl_c_writes_complete_file(tmp_path, monkeypatch):
    """Ctrl-C during the second run: the file holds the first run and is marked interrupted."""
    real_train, calls = E.train, []

    def train(model, data, config, progress=False):
        calls.append(config.seed)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(model, data, config, progress=progress)

    monkeypatch.setattr(E, "train", train)
    res = E.run_scenario(*SMOKE_SCENARIO, seeds=[0, 1], out_dir=tmp_path, workers=1, **QUIET)
    on_disk = json.loads((tmp_path / "scenario3" / "results.json").read_text())
    assert on_disk["interrupted"] is True and res["interrupted"] is True
    assert len(on_disk["runs"]) == 1 and len(on_disk["missing"]) == 3
    assert on_disk["runs"][0]["history"]["epoch"][-1] == on_disk["runs"][0]["final"]["epoch"]


def test_figures_of_a_diverged_run_are_drawn_not_crashed(tmp_path):
    """A run whose weights overflowed is written with nulls (strict JSON); its figures still draw."""
    from flatlab.lab.plotting import curves_figure, plot_neurons
    cfg = E.get_config("scenario1", "smoke")
    good = {"w": [0.5, -0.5, 0.1], "neuron": 0, "w_x1": 0.5, "w_x2": -0.5, "rest_norm": 0.1, "x1x2_share": 0.96}
    bad = {"w": [None, None, 1e155], "neuron": 3, "w_x1": None, "w_x2": None, "rest_norm": None, "x1x2_share": None}
    hist = {"epoch": [0, 5, 10], "train_loss": [1.0, None, None], "test_acc": [0.5, 1.0, 1.0],
            "trace": [50.0, None, None], "gn_trace": [50.0, None, None]}
    runs = [{"method": m.name, "label": m.label, "seed": 0, "history": hist, "neurons": [good, bad],
             "final": {"test_acc": 1.0, "train_loss": None, "trace": None}} for m in cfg.methods]
    res = {"config": {**cfg.to_dict(), "model": {**cfg.model.to_dict(), "d": 3}}, "runs": runs, "summary": {}}
    path = plot_neurons(res, tmp_path / "n.png", method="one_sam")
    assert path.stat().st_size > 1000
    curves_figure(res)
