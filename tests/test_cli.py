"""`flatlab reproduce` end to end on the smoke preset: files, schema, figures, checks,
argument errors."""
import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from flatlab.lab import runner as E
from flatlab.cli import main
from flatlab.lab.plotting import curves_figure

RUN_KEYS = {"arch", "method", "label", "seed", "interrupted", "final", "peak", "neurons", "history"}
HISTORY_KEYS = {"epoch", "train_loss", "test_acc", "trace", "gn_trace"}


@pytest.mark.slow
def test_reproduce_all_smoke(tmp_path, capsys):
    """One end-to-end run (kept in one test so that pytest-xdist never repeats it)."""
    code = main(["reproduce", "all", "--smoke", "--seeds", "0", "--out", str(tmp_path), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed  # every smoke check passed
    assert "[FAIL]" not in printed and printed.count("[PASS]") >= 8
    check_results_files(tmp_path)
    check_figure_axes(tmp_path)


def check_results_files(out):
    for name in E.SCENARIOS:
        res = json.loads((out / name / "results.json").read_text())
        assert res["scenario"] == name and res["preset"] == "smoke" and res["seeds"] == [0]
        assert res["config"]["name"] == name and not res["interrupted"]
        assert all(c["passed"] for c in res["checks"]) and res["checks"]
        methods = [m["name"] for m in res["config"]["methods"]]
        assert [r["method"] for r in res["runs"]] == methods
        for run in res["runs"]:
            assert RUN_KEYS <= set(run) and set(run["history"]) == HISTORY_KEYS
            assert {"train_loss", "test_acc", "trace", "gn_trace"} <= set(run["final"])
            assert run["arch"] == res["config"]["model"]["arch"] and run["seed"] == 0
            assert 0.0 <= run["final"]["test_acc"] <= 1.0 and run["final"]["trace"] > 0
        if name == "scenario2":
            assert res["summary"]["trace_floor"] == pytest.approx(4 * 31**0.5)
        if name == "scenario1-bn":
            assert len(res["runs"][0]["neurons"]) == 4
        for fig in res["figures"]:
            img = mpimg.imread(out / name / fig)
            assert img.shape[0] > 200 and img.shape[1] > 800
            rgb = (img[..., :3] * 255).astype(np.int64).reshape(-1, 3)
            colours = np.unique(rgb[:, 0] * 65536 + rgb[:, 1] * 256 + rgb[:, 2])
            assert len(colours) > 20  # lines, bands and text, not a blank canvas
    assert (out / "scenario2" / "scenario2_curves.png").exists()
    assert (out / "scenario1-bn" / "scenario1-bn_neurons.png").exists()


def check_figure_axes(out):
    res = json.loads((out / "scenario2" / "results.json").read_text())
    fig = curves_figure(res)
    acc_ax, loss_ax, trace_ax = fig.axes[:3]
    for run in res["runs"]:  # one seed: the plotted line is the run itself (epoch 0 dropped, log x)
        line = next(ln for ln in acc_ax.get_lines() if ln.get_label().startswith(run["label"] + " ("))
        h = run["history"]
        np.testing.assert_allclose(line.get_xdata(), h["epoch"][1:])
        np.testing.assert_allclose(line.get_ydata(), h["test_acc"][1:])
        tline = next(ln for ln in trace_ax.get_lines() if ln.get_label().startswith(run["label"] + " ("))
        np.testing.assert_allclose(tline.get_ydata(), h["trace"][1:])
    floor = [ln for ln in trace_ax.get_lines() if ln.get_label().startswith("interpolators' 4·sqrt(d+1)")]
    assert len(floor) == 1 and floor[0].get_ydata()[0] == pytest.approx(22.2711, abs=1e-4)
    assert trace_ax.get_xscale() == "log" and loss_ax.get_yscale() == "log"


def test_bad_arguments(capsys, tmp_path):
    cases = [
        (["reproduce", "scenario9"], "invalid choice"),
        (["reproduce", "scenario1", "--quick", "--paper"], "not allowed with"),
        (["reproduce", "scenario1", "--seeds", "-1"], "non-negative"),
        (["reproduce", "scenario1", "--seeds", "x"], "non-negative"),
        (["reproduce", "scenario1", "--workers", "0"], ">= 1"),
        (["reproduce", "fig5", "--out", str(tmp_path)], "not yet available"),
        ([], "COMMAND"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not any(tmp_path.iterdir())


def test_help_shows_defaults_and_appendix(capsys):
    assert main(["reproduce", "--help"]) == 0
    text = capsys.readouterr().out
    assert "default: [0, 1, 2]" in text and "default: results" in text and "--no-progress" in text
    assert "fig5" in text and "not yet available" in text


def test_construct_command(capsys):
    assert main(["construct", "generalizing-bias"]) == 0
    out = capsys.readouterr().out
    assert "trace = 22.271" in out and "test acc = 1.0000" in out
    assert main(["construct", "memorizing-bias", "--eps", "0.5"]) == 2
    assert "eps" in capsys.readouterr().err


def test_reproduce_beyond_dispatches_and_summarizes(tmp_path, capsys, monkeypatch):
    """`flatlab reproduce beyond` calls flatlab.lab.beyond.run_beyond and prints its summary and checks."""
    import flatlab.cli as B

    calls = {}

    def fake_run_beyond(preset, seeds, out, **kw):
        calls.update(preset=preset, seeds=seeds, out=str(out), **kw)
        stats = {"mean": 0.5, "min": 0.4, "max": 0.6}
        return {"preset": preset, "interrupted": False, "figures": ["beyond_curves.png"],
                "summary": {"methods": {"penalty": {"label": "sharpness penalty", "final_test_acc": stats,
                                                    "final_trace": stats, "peak_test_acc": stats}},
                            "trace_floor": 22.27},
                "checks": [{"check": "a check that failed", "passed": False, "value": 1}]}

    monkeypatch.setattr(B, "run_beyond", fake_run_beyond)
    code = main(["reproduce", "beyond", "--smoke", "--seeds", "4", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert calls["preset"] == "smoke" and calls["seeds"] == [4] and calls["progress"] is False
    assert "sharpness penalty" in out and "[FAIL] a check that failed" in out
    assert code == 1  # a failed check is a non-zero exit
