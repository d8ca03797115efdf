"""flatlab.lab.beyond: the smoke comparison end to end, the Sim-LN rescaling, the checks, bad input."""
import dataclasses
import json
import math

import pytest
import torch

from flatlab.lab.beyond import (
    BEYOND_METHODS,
    beyond_checks,
    get_beyond_config,
    rescaling_demo,
    run_beyond,
    run_beyond_job,
)
from flatlab.data import xor_parity
from flatlab.models import make_model
from flatlab.train.penalty import sharpness_penalty

from cases import QUIET

FLOOR = 4 * math.sqrt(31)


def _strip_clock(record):
    out = {k: v for k, v in record.items() if k not in ("seconds", "cpu_seconds")}
    out["history"] = {k: v for k, v in record["history"].items() if k != "time"}
    return out


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("beyond")
    res = run_beyond("smoke", seeds=[0], out_dir=out, workers=1, **{**QUIET, "figures": True})
    return out, res


@pytest.mark.slow
def test_smoke_schema_and_files(smoke):
    out, res = smoke
    path = out / "beyond" / "results.json"
    on_disk = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert on_disk["runs"] == json.loads(json.dumps(res["runs"]))
    assert on_disk["scenario"] == "beyond" and on_disk["preset"] == "smoke" and on_disk["seeds"] == [0]
    assert on_disk["config"] == json.loads(json.dumps(get_beyond_config("smoke").to_dict()))
    assert not on_disk["interrupted"] and on_disk["missing"] == []
    assert sorted(r["method"] for r in on_disk["runs"]) == sorted(BEYOND_METHODS)
    for r in on_disk["runs"]:
        h = r["history"]
        assert r["arch"] == "bias" and r["seed"] == 0
        assert set(h) == {"epoch", "train_loss", "test_acc", "trace", "gn_trace", "time"}
        assert len({len(v) for v in h.values()}) == 1 and h["epoch"][0] == 0
        assert h["epoch"] == sorted(h["epoch"]) and h["time"] == sorted(h["time"])
        assert r["final"] == {"epoch": h["epoch"][-1], "train_loss": h["train_loss"][-1],
                              "test_acc": h["test_acc"][-1], "trace": h["trace"][-1], "gn_trace": h["gn_trace"][-1]}
        assert h["trace"] == pytest.approx(h["gn_trace"], rel=1e-9)  # a relu net without normalization
        assert set(r["diagnostics"]) >= {"memorization_index", "median_firing", "x1x2_share", "n_active"}
        assert len(r["neurons"]) == 4
    assert on_disk["summary"]["trace_floor"] == pytest.approx(FLOOR)
    assert on_disk["rescaling"]["arch"] == "sim_ln" and len(on_disk["rescaling"]["runs"]) == 1
    assert on_disk["figures"] == ["beyond_curves.png", "beyond_rescaling.png"]
    for name in on_disk["figures"]:
        assert (out / "beyond" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_smoke_directions(smoke):
    _, res = smoke
    by = {r["method"]: r for r in res["runs"]}
    pen, sam, gd = by["penalty"]["final"], by["one_sam"]["final"], by["gd_wd"]["final"]
    assert pen["train_loss"] < 1e-4 and pen["test_acc"] >= 0.9
    assert abs(pen["trace"] - FLOOR) <= 0.1 * FLOOR  # the penalty reaches the floor...
    assert sam["trace"] < 0.5 * gd["trace"]  # ...1-SAM gets close to it, far below GD+wd's
    assert sam["test_acc"] <= pen["test_acc"] - 0.05  # same flatness, worse generalization
    assert by["penalty"]["diagnostics"]["memorization_index"] < 0.01  # and no memorizing neurons
    assert all(c["passed"] for c in res["checks"]), res["checks"]


@pytest.mark.slow
def test_smoke_rescaling_block(smoke):
    _, res = smoke
    r = res["rescaling"]["runs"][0]
    assert r["train_loss"] < 1e-3 and r["gn_trace"] > 2.5  # a plain-GD interpolator, not flat
    assert max(r["after"]["max_change_train"], r["after"]["max_change_test"]) <= 1e-12
    assert abs(r["after"]["gn_trace"] - 2.0) <= 1e-3
    assert r["after"]["test_acc"] == r["test_acc"]
    curve = [p["gn_trace"] for p in r["curve"]]
    assert curve == sorted(curve, reverse=True) and curve[0] == pytest.approx(r["gn_trace"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["penalty", "label_noise"])
def test_job_deterministic_and_worker_independent(smoke, method):
    """A fresh single job reproduces the record of the full run exactly (except the wall clock)."""
    _, res = smoke
    again = run_beyond_job(get_beyond_config("smoke"), method, 0)
    (before,) = [r for r in res["runs"] if r["method"] == method]
    assert _strip_clock(again) == json.loads(json.dumps(_strip_clock(before)))


def test_rescaling_law_on_random_sim_ln():
    """S(c) - 2 = (S(1) - 2)/c² exactly for Sim-LN, and f does not move (independent of the demo)."""
    X, _ = xor_parity(20, 6, seed=3)
    model = make_model("sim_ln", 6, 15, seed=4)
    base = float(sharpness_penalty(model, X).detach())
    f0 = model(X).detach()
    for c in (10.0, 1000.0):
        m = make_model("sim_ln", 6, 15, seed=4)
        with torch.no_grad():
            m.W1.mul_(c)
            m.b1.mul_(c)
        assert float((m(X).detach() - f0).abs().max()) <= 1e-13
        assert float(sharpness_penalty(m, X).detach()) - 2.0 == pytest.approx((base - 2.0) / c**2, rel=1e-8)


def test_rescaling_demo_small():
    cfg = dataclasses.replace(get_beyond_config("smoke"), n=40, d=8, n_test=500, rescale_width=30,
                              rescale_epochs=300, rescale_curve=(1.0, 100.0))
    r = rescaling_demo(cfg, 2)
    assert r["curve"][0]["gn_trace"] == pytest.approx(r["gn_trace"]) and r["curve"][0]["max_change_train"] == 0.0
    assert r["after"]["gn_trace"] < r["curve"][1]["gn_trace"] < r["gn_trace"]
    assert r["after"]["test_acc"] == r["test_acc"]
    assert r["after"]["train_loss"] == pytest.approx(r["train_loss"])


def _fake(pen_acc, sam_acc, pen_trace, sam_trace, preset="quick"):
    run = lambda m, acc, tr: {"method": m, "seed": 0, "final": {"test_acc": acc, "trace": tr}}  # noqa: E731
    resc = {"after": {"max_change_train": 1e-16, "max_change_test": 2e-16, "gn_trace": 2.0004, "test_acc": 0.6},
            "test_acc": 0.6}
    return {"preset": preset, "summary": {"trace_floor": FLOOR},
            "runs": [run("penalty", pen_acc, pen_trace), run("one_sam", sam_acc, sam_trace)],
            "rescaling": {"runs": [resc]}}


def test_checks_pass_and_fail():
    ok = beyond_checks(_fake(1.0, 0.7, 22.5, 22.0))
    assert [c["passed"] for c in ok] == [True] * 7
    bad = {c["check"]: c["passed"] for c in beyond_checks(_fake(0.97, 0.85, 24.0, 24.0))}
    assert not bad["penalty: final test acc >= 0.98"]
    assert not any(v for k, v in bad.items() if k.startswith("one_sam"))
    assert bad["penalty: final trace within 10% of the floor 22.27"]  # 24.0 is within 10%, not within 5%
    assert len(beyond_checks(_fake(1.0, 0.97, 22.5, 22.0, preset="smoke"))) == 4


def test_interrupted_run_stops_and_writes(tmp_path, monkeypatch):
    """A run that returns early (Ctrl-C) stops the sequential loop; the file lists what is missing."""
    import flatlab.lab.beyond as fb

    calls = []

    def fake_job(config, method, seed, progress=False):
        calls.append(method)
        h = {"epoch": [0, 5], "train_loss": [1.0, 0.5], "test_acc": [0.5, 0.6], "trace": [100.0, 90.0],
             "time": [0.0, 1.0]}
        return {"arch": "bias", "method": method, "label": fb.LABELS[method], "seed": seed,
                "interrupted": True, "seconds": 1.0, "cpu_seconds": 1.0,
                "final": {"epoch": 5, "train_loss": 0.5, "test_acc": 0.6, "trace": 90.0},
                "peak": {"test_acc": 0.6, "epoch": 5},
                "diagnostics": {"memorization_index": 0.0, "median_firing": 9.0}, "neurons": [], "history": h}

    monkeypatch.setattr(fb, "run_beyond_job", fake_job)
    res = run_beyond("smoke", seeds=[0], out_dir=tmp_path, workers=1, **QUIET)
    assert len(calls) == 1 and res["interrupted"]
    on_disk = json.loads((tmp_path / "beyond" / "results.json").read_text())
    assert on_disk["interrupted"] and len(on_disk["runs"]) == 1
    assert len(on_disk["missing"]) == len(BEYOND_METHODS)  # 3 other methods + the rescaling


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        get_beyond_config("fast")
    with pytest.raises(ValueError, match="seeds"):
        run_beyond("smoke", seeds=[], out_dir=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        run_beyond("smoke", seeds=[-1], out_dir=tmp_path)
    with pytest.raises(ValueError, match="workers"):
        run_beyond("smoke", seeds=[0], out_dir=tmp_path, workers=0)
    with pytest.raises(ValueError, match="method"):
        run_beyond_job(get_beyond_config("smoke"), "adam", 0)
    assert not (tmp_path / "beyond").exists()
