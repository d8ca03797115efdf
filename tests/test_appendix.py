"""Appendix figures (flatlab.lab.appendix): configs, direction checks, and a smoke run of each
figure through ``flatlab reproduce`` (results.json schema, figures, checks)."""
import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from flatlab.lab import appendix as A
from flatlab.lab import runner as E
from flatlab.cli import APPENDIX, main


@pytest.mark.parametrize("name", A.FIGURES)
def test_configs_follow_table2_and_are_json(name):
    for preset in E.PRESETS:
        cfg = E.get_config(name, preset)
        assert cfg.name == name and cfg.preset == preset and cfg.notes
        assert json.loads(json.dumps(cfg.to_dict()))["name"] == name
        assert len({m.name for m in cfg.methods}) == len(cfg.methods)
    paper = E.get_config(name, "paper")
    assert paper.model.width == 500
    if name == "fig7":
        assert paper.dataset == "ball" and paper.model.d == 10 and paper.n == 100
        assert {(m.model_config(paper.model).arch, m.phases) for m in paper.methods} == {("no_bias", ((100_000, 0.01, 0.2),)),
                                                               ("bias", ((100_000, 0.01, 0.2),))}
    if name == "fig11":
        assert paper.model.arch == "deep_bias" and paper.model.depth == 3
        sgd, sam = paper.methods
        assert (sgd.optimizer, sgd.batch_size, sgd.weight_decay) == ("sgd", 1, 0.05)
        assert sgd.phases == ((100_000, 0.01, 0.0),)
        assert sam.phases == ((100_000, 0.01, 0.05),)
    if name == "fig8-10":
        assert paper.loss == "logistic"
        covered = {m for _, _, ms in paper.figures for m in ms}
        assert covered == {m.name for m in paper.methods}


def test_bad_names_and_cli_listing():
    with pytest.raises(ValueError, match="appendix figure"):
        A.build_config("fig99", "quick")
    with pytest.raises(ValueError, match="preset"):
        E.get_config("fig7", "slow")
    with pytest.raises(ValueError, match="scenario"):
        E.get_config("fig99")
    assert not set(APPENDIX) & set(A.FIGURES)  # implemented figures are not "not yet available"


def _fake(name, preset, finals):
    runs = [{"method": m, "seed": s, "final": f} for (m, s), f in finals.items()]
    return {"scenario": name, "preset": preset, "runs": runs}


def test_fig7_checks_follow_the_direction():
    good = {("one_sam_no_bias", 0): {"test_acc": 0.95, "test_mse": 0.02},
            ("one_sam_bias", 0): {"test_acc": 0.75, "test_mse": 0.25}}
    assert all(c["passed"] for c in A.check_directions(_fake("fig7", "quick", good)))
    swapped = {("one_sam_no_bias", 0): good[("one_sam_bias", 0)],
               ("one_sam_bias", 0): good[("one_sam_no_bias", 0)]}
    checks = A.check_directions(_fake("fig7", "quick", swapped))
    assert checks and not any(c["passed"] for c in checks)
    close = {("one_sam_no_bias", 0): {"test_acc": 0.95, "test_mse": 0.2},
             ("one_sam_bias", 0): {"test_acc": 0.9, "test_mse": 0.25}}
    assert [c["passed"] for c in A.check_directions(_fake("fig7", "quick", close))] == [False, False, True]
    assert all(c["passed"] for c in A.check_directions(_fake("fig7", "smoke", close)))


def test_fig11_checks_need_a_gap_and_a_flatter_sam():
    ok = {("sgd_wd", 0): {"test_acc": 0.95, "trace": 70.0}, ("one_sam", 0): {"test_acc": 0.65, "trace": 30.0}}
    assert [c["passed"] for c in A.check_directions(_fake("fig11", "quick", ok))] == [True, True, True]
    sharper = {**ok, ("one_sam", 0): {"test_acc": 0.65, "trace": 90.0}}
    assert [c["passed"] for c in A.check_directions(_fake("fig11", "quick", sharper))] == [True, False, True]
    missing = {("sgd_wd", 0): ok[("sgd_wd", 0)]}
    assert not all(c["passed"] for c in A.check_directions(_fake("fig11", "quick", missing)))


def test_fig8_10_checks_encode_all_three_figures_beyond_smoke():
    finals = {("sgd_wd_no_bias", 0): {"test_acc": 0.99}, ("one_sam_no_bias", 0): {"test_acc": 0.99},
              ("sgd_wd_bias", 0): {"test_acc": 0.95}, ("one_sam_bias", 0): {"test_acc": 0.93},
              ("one_sam_sim_bn", 0): {"test_acc": 0.97}, ("one_sam_sim_ln", 0): {"test_acc": 0.96}}
    quick = A.check_directions(_fake("fig8-10", "quick", finals))
    assert len(quick) == 6 and [c["passed"] for c in quick] == [True] * 5 + [False]  # 1-SAM not 0.1 worse
    smoke = A.check_directions(_fake("fig8-10", "smoke", finals))
    assert [c["check"].split(":")[0] for c in smoke] == ["sgd_wd_no_bias", "one_sam_no_bias"]


def _nontrivial_png(path):
    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 800
    rgb = (img[..., :3] * 255).astype(np.int64).reshape(-1, 3)
    assert len(np.unique(rgb[:, 0] * 65536 + rgb[:, 1] * 256 + rgb[:, 2])) > 20


@pytest.mark.slow
@pytest.mark.parametrize("name", A.FIGURES)
def test_smoke_run_through_cli(name, tmp_path, capsys):
    code = main(["reproduce", name, "--smoke", "--seeds", "0", "--workers", "1", "--out", str(tmp_path),
                 "--no-progress"])
    printed = capsys.readouterr().out
    res = json.loads((tmp_path / name / "results.json").read_text())
    assert code == 0 and all(c["passed"] for c in res["checks"]), printed  # smoke bars: directions only
    assert res["scenario"] == name and res["preset"] == "smoke" and not res["interrupted"]
    assert res["checks"] and all({"check", "passed", "value"} <= set(c) for c in res["checks"])
    cfg = E.get_config(name, "smoke")
    assert [r["method"] for r in res["runs"]] == [m.name for m in cfg.methods]
    for run, spec in zip(res["runs"], cfg.methods):
        assert run["arch"] == spec.model_config(cfg.model).arch
        assert set(run["history"]) == {"epoch", "train_loss", "test_acc", "trace", "gn_trace"}
        assert run["history"]["epoch"][-1] == spec.epochs
        assert 0.0 <= run["final"]["test_acc"] <= 1.0 and run["final"]["test_mse"] >= 0.0
    expected = [f"{name}_{s}.png" for s, _, _ in cfg.figures] or [f"{name}_curves.png"]
    assert res["figures"] == expected
    for fig in expected:
        _nontrivial_png(tmp_path / name / fig)
    assert "[PASS]" in printed or "[FAIL]" in printed
