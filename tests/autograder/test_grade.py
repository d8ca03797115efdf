"""The grader's trusted pieces (assert_close, per-test rngs) and
end-to-end properties: determinism, return_args, the non-isolated fallback."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from agfixtures import SOLUTIONS, make_submission

from autograder.grade import (GradingConfig, _test_rng, assert_close, collect_submissions, content_hash, grade_notebook,
                              grade_paths, load_bundle, student_id, submission_seed)
from autograder.sandbox import SandboxConfig, Session, StudentError


def test_assert_close_accepts_within_tolerance_and_explains_failures_without_the_expected_value():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), rtol=1e-6)
    assert_close(3, 3.0)
    assert_close(np.array([[2.0]]), 2.0)  # one-element results compare as scalars
    with pytest.raises(AssertionError) as e:
        assert_close(np.array([1.0, 2.5]), np.array([1.0, 2.0]))
    msg = str(e.value)
    assert "at index (1,): you returned 2.5; relative error 0.25; about 1.2x the expected value" in msg
    assert "1 of 2 entries off" in msg
    hidden = 2.718281828
    for got, phrase in [(-hidden, "wrong sign"), (0.5 * hidden, "about 0.5x"), (2 * hidden, "about 2x"),
                        (hidden * (1 + 1e-3), "relative error 0.001; sign right"), (0.0, "you returned 0")]:
        with pytest.raises(AssertionError) as e:
            assert_close(got, hidden, rtol=1e-9)
        assert phrase in str(e.value)
        rest = re.sub(r"you returned [^;(]+", "", str(e.value))  # the student's own value may be shown
        for fmt in (".8g", ".6g", ".4g", ".3g"):  # the hidden value in no precision
            assert format(hidden, fmt) not in rest, (got, str(e.value))
    with pytest.raises(AssertionError, match="exactly 0"):
        assert_close(1e-3, 0.0, atol=1e-12)
    with pytest.raises(AssertionError, match=r"shape \(3,\); expected shape \(2,\)"):
        assert_close(np.zeros(3), np.zeros(2))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(np.array([np.nan]), np.array([1.0]))
    for bad in (None, "1.0", True, {"a": 1}, [object()]):
        with pytest.raises(AssertionError, match="expected a number or an array"):
            assert_close(bad, 1.0)


def test_test_rng_depends_on_seed_and_name_only():
    a = _test_rng(3, "hw0.t", "test_a").integers(1 << 30, size=4)
    assert np.array_equal(a, _test_rng(3, "hw0.t", "test_a").integers(1 << 30, size=4))
    assert not np.array_equal(a, _test_rng(4, "hw0.t", "test_a").integers(1 << 30, size=4))
    assert not np.array_equal(a, _test_rng(3, "hw0.t", "test_b").integers(1 << 30, size=4))


def _strip(r):
    """A results dict without what may differ between identical gradings (timing, jobs)."""
    r = {k: v for k, v in r.items() if k not in ("sandbox", "timing", "config")}
    r["tasks"] = [{**t, "tests": [{k: v for k, v in x.items() if k != "time"} for x in t["tests"]]} for t in r["tasks"]]
    return r


@pytest.mark.slow
def test_regrading_is_deterministic(built, tmp_path):
    root, nb, bundles = built
    bundle = load_bundle(bundles, "hwfix")
    partial = {"hwfix.square": SOLUTIONS["hwfix.square"],
               "hwfix.mse": "def mse_loss(f, y):\n    return (f - y).abs().mean()\n"}
    make_submission(nb, partial, [], tmp_path / "p.ipynb")
    make_submission(nb, SOLUTIONS, [], tmp_path / "r.ipynb")
    paths = [tmp_path / "p.ipynb", tmp_path / "r.ipynb"]
    cfg = GradingConfig(seed=11, cell_timeout=20, test_timeout=20, jobs=2)
    a = grade_paths(paths, bundle, cfg)
    b = grade_paths(paths, bundle, dataclasses.replace(cfg, jobs=1))
    assert json.dumps([_strip(r) for r in a], sort_keys=True) == json.dumps([_strip(r) for r in b], sort_keys=True)
    c = grade_paths(paths, bundle, dataclasses.replace(cfg, seed=12))
    assert [r["score"] for r in a] == [r["score"] for r in c] == [3.0, 7.0]
    # a different seed feeds different inputs: the wrong-value message changes
    msg = [t["message"] for r in (a[0], c[0]) for t in r["tasks"][1]["tests"] if t["kind"] == "wrong"]
    assert len(msg) == 2 and msg[0] != msg[1]


@pytest.mark.slow
def test_session_return_args_view_and_fallback(tmp_path):
    """return_args round-trips a model; with a flatlab view whose flatten_params raises, a
    submission calling it fails where one counting parameters itself passes (root: the view is
    mounted over the real package; otherwise first on sys.path)."""
    import flatlab.models

    lib = Path(flatlab.models.__file__).parent
    shutil.copytree(lib, tmp_path / "flatlab", ignore=shutil.ignore_patterns("__pycache__"))
    src = (tmp_path / "flatlab" / "models.py").read_text()
    src = src.replace('    src = dict(model.named_parameters()) if params is None else params\n',
                      '    raise RuntimeError("flatten_params is not available here")\n', 1)
    (tmp_path / "flatlab" / "models.py").write_text(src)
    cells = [(0, "import torch, flatlab\n"
                 "def bump(model, k):\n    with torch.no_grad():\n        model.W2.add_(k)\n    return float(k)\n"
                 "def cheat(model):\n    return flatlab.flatten_params(model).numel()\n"
                 "def honest(model):\n    return sum(p.numel() for p in model.parameters())\n")]
    model = flatlab.make_model("bias", 3, 4, seed=0)
    for isolate in (True, False):
        s = Session(cells, SandboxConfig(timeout=20, isolate=isolate, flatlab_view=str(tmp_path)))
        try:
            res, after = s.call("bump", (model, 2.0), {}, return_args=True)
            assert res == 2.0 and after[1] == 2.0
            assert np.allclose(after[0]["params"]["W2"], model.W2.detach().numpy() + 2)
            assert s.call("honest", (model,), {})[0] == 20
            with pytest.raises(StudentError) as e:
                s.call("cheat", (model,), {})
            assert e.value.kind == "exception" and "not available here" in e.value.message
            assert s.protections["uid"] is (isolate and os.geteuid() == 0)
        finally:
            s.close()
    s = Session(cells, SandboxConfig(timeout=20))  # no view: the full library
    try:
        assert s.call("cheat", (model,), {})[0] == 20
    finally:
        s.close()
    assert torch.equal(model.W2, flatlab.make_model("bias", 3, 4, seed=0).W2)  # parent untouched
    with pytest.raises(ValueError, match="flatlab_view"):
        Session(cells, SandboxConfig(flatlab_view=str(tmp_path / "nowhere"))).call("honest", (model,), {})


def test_missing_file_is_invalid(built, tmp_path):
    _, _, bundles = built
    r = grade_notebook(tmp_path / "nothing.ipynb", load_bundle(bundles, "hwfix"))
    assert r["status"] == "invalid" and r["score"] == 0 and r["max_score"] == 7
    with pytest.raises(ValueError, match="no grading bundle"):
        load_bundle(bundles, "hw42")


def test_submission_cells_find_tasks_without_metadata(built):
    from autograder.grade import _asg
    from autograder.notebook import strip_magics, submission_cells
    _, nb, bundles = built
    asg = _asg(load_bundle(bundles, "hwfix"))
    sub = make_submission(nb, {"hwfix.square": "%time 1\ndef square(x):\n    return x * x\n"})
    for c in sub.cells:  # a student copied the task cells into fresh cells: metadata lost
        if c.metadata.get("flatlab", {}).get("role") == "task":
            c.metadata = {}
    sub.cells.append(nbformat.v4.new_code_cell("def num_params(model):\n    return 0\n"))  # redefined later
    run, task_src = submission_cells(sub, asg)
    roles = {c.metadata.get("flatlab", {}).get("role") for i, c in enumerate(sub.cells) if i in dict(run)}
    assert roles <= {None}  # public tests, experiments are not run
    assert "x * x" in task_src["hwfix.square"] and task_src["hwfix.nparams"].endswith("return 0\n")
    assert strip_magics("%time 1\n!ls\nx = 1") == "get_ipython().run_line_magic('time', '1')\nget_ipython().system('ls')\nx = 1\n"


def test_trusted_lock_is_held_by_hidden_tests_and_released_while_the_student_runs():
    """Hidden tests (trusted torch code) run one at a time across --jobs threads, but the lock is
    released while a test waits for the student's worker, so submissions still grade in parallel."""
    from autograder import grade as G

    seen = []

    class FakeSession:
        def call(self, name, args, kwargs, **kw):
            seen.append(("in student call", G._TRUSTED.locked()))
            return 42, None

    student = G._Student(FakeSession(), budget=10.0)
    with G._TRUSTED:
        seen.append(("in hidden test", G._TRUSTED.locked()))
        assert student.square(3) == 42
        seen.append(("after student call", G._TRUSTED.locked()))
    assert seen == [("in hidden test", True), ("in student call", False), ("after student call", True)]
    assert not G._TRUSTED.locked()


def test_grading_config_validates_every_field_by_name():
    c = GradingConfig()
    assert c.as_dict()["test_timeout"] == 60.0 and c.sandbox().cpu_seconds == 1800
    assert GradingConfig(submission_timeout=2.5).sandbox().cpu_seconds == 3
    for field, bad in [("seed", -1), ("seed", 1.5), ("seed", True), ("cell_timeout", 0), ("test_timeout", float("inf")),
                       ("submission_timeout", -3), ("memory_gb", "3"), ("max_notebook_mb", 0), ("wall_factor", 0.5),
                       ("return_floor", 0), ("return_factor", float("nan")), ("jobs", 0), ("jobs", 65),
                       ("isolate", 1)]:
        with pytest.raises(ValueError, match=rf"GradingConfig\.{field} = "):
            GradingConfig(**{field: bad})
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 3


def test_submission_seed_depends_on_course_seed_student_and_content():
    cells = [(1, "import numpy as np"), (3, "def f(x):\n    return x\n")]
    h = content_hash(cells)
    assert h == content_hash([(7, "import numpy as np"), (9, "def f(x):\n    return x\n")])  # indices don't matter
    assert h != content_hash([(1, "import numpy as np"), (3, "def f(x):\n    return x + 0\n")])
    assert h != content_hash([(1, "import numpy as np\ndef f(x):\n    return x\n")])  # cell boundaries count
    s = submission_seed(0, "alice", h)
    assert s == submission_seed(0, "alice", h) and 0 <= s < 2**63
    assert len({s, submission_seed(1, "alice", h), submission_seed(0, "bob", h),
                submission_seed(0, "alice", content_hash(cells[:1]))}) == 4


def test_student_ids_and_submission_folders(tmp_path, capsys):
    assert student_id(tmp_path / "Carol Smith.ipynb") == "carol_smith"
    assert student_id(tmp_path / "bob.ipynb") == student_id(tmp_path / "BOB.json") == "bob"
    for n in ("bob.ipynb", "notes.txt", "alice.ipynb", ".hidden.ipynb"):
        (tmp_path / n).write_text("{}")
    (tmp_path / "folder.ipynb").mkdir()
    warnings = []
    assert [p.name for p in collect_submissions(tmp_path, warn=warnings.append)] == ["alice.ipynb", "bob.ipynb"]
    assert warnings == ["warning: skipping notes.txt: not a notebook (*.ipynb)"]
    (tmp_path / "BOB.json").write_text("{}")
    with pytest.raises(ValueError, match=r"BOB.json and bob.ipynb are both submissions of student 'bob'"):
        collect_submissions(tmp_path, warn=warnings.append)
    assert collect_submissions(tmp_path / "bob.ipynb") == [tmp_path / "bob.ipynb"]


def _fake_result(student, assignment="hwfix", score=1.0, status="graded"):
    return {"student": student, "assignment": assignment, "status": status, "score": score, "max_score": 7.0,
            "manual_max": 2.0, "tasks": [{"id": "hwfix.square", "score": score, "points": 2.0, "tests": []}],
            "manual": [{"id": "hwfix.reflect", "points": 2.0, "status": "manual, ungraded"}]}


def test_gradebook_is_rebuilt_from_all_results_with_manual_points_and_canvas(tmp_path):
    from autograder.gradebook import rebuild
    res = tmp_path / "results"
    res.mkdir()
    for r in (_fake_result("bob", score=2.0), _fake_result("alice", score=1.5), _fake_result("eve", "hw4")):
        (res / f"{r['student']}.json").write_text(json.dumps(r))
    (res / "broken.json").write_text("{not json")
    (res / "mallory.json").write_text(json.dumps(_fake_result("bob", score=7.0)))  # claims to be bob
    (tmp_path / "manual.csv").write_text("student,hwfix.reflect\nalice,1.5\nbob,\n")
    warnings = []
    rebuild(tmp_path, warn=warnings.append)
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [list(r.values()) for r in rows] == [
        ["alice", "graded", "1.5", "7", "1.5", "2", "3", "1.5", "1.5"],
        ["bob", "graded", "2", "7", "", "2", "2", "2", ""]]
    assert list(rows[0]) == ["student", "status", "score", "max_score", "manual", "manual_max", "total",
                             "hwfix.square", "hwfix.reflect"]
    assert len(warnings) == 3 and any("broken.json" in w for w in warnings)
    assert any("mallory.json: it is the results of 'bob'" in w for w in warnings)
    assert any("eve.json: it is hw4, this folder is hwfix" in w for w in warnings)
    assert (tmp_path / "grades_canvas.csv").read_text() == (
        "Student,ID,SIS User ID,Section,hwfix (autograded)\nalice,,alice,,1.5\nbob,,bob,,2\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n    Points Possible,,,,\n"
                      "\"Smith, Alice\",101,Alice,asmith,S1\n\"Jones, Carl\",102,carl,cjones,S2\n")
    warnings.clear()
    rebuild(tmp_path, roster=roster, warn=warnings.append)
    assert (tmp_path / "grades_canvas.csv").read_text() == (
        "Student,ID,SIS User ID,Section,hwfix (autograded)\n\"Smith, Alice\",101,Alice,S1,1.5\n"
        "\"Jones, Carl\",102,carl,S2,\n")
    assert any("bob has results but is not in the roster" in w for w in warnings)
    roster.write_text("Name,ID\nx,1\n")
    with pytest.raises(ValueError, match="missing column"):
        rebuild(tmp_path, roster=roster, warn=warnings.append)


def test_gradebook_command_rebuilds_after_manual_points(tmp_path, capsys):
    from autograder.__main__ import main
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bob.json").write_text(json.dumps(_fake_result("bob", score=2.0)))
    assert main(["gradebook", str(tmp_path)]) == 0
    assert "bob,graded,2,7,,2,2,2," in (tmp_path / "grades.csv").read_text()
    (tmp_path / "manual.csv").write_text("student,hwfix.reflect\nbob,2\n")
    assert main(["gradebook", str(tmp_path)]) == 0
    assert "bob,graded,2,7,2,2,4,2,2" in (tmp_path / "grades.csv").read_text()
    assert main(["gradebook", str(tmp_path / "missing")]) == 2
    assert "has no results/ folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["gradebook"])
    assert e.value.code == 2
