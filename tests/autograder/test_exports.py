"""The nbgrader and otter exports, checked end to end with the real tools, without Docker.

All submissions are made from the files students get: the student notebook
``assignments/hw1.ipynb`` (``python -m autograder build``), and for each tool also its own
student notebook (nbgrader's ``release/``, otter's ``dist/student/``). Three submissions per
tool: the solution (full marks), the blank notebook (0) and the solution with one task left
blank (loses exactly that task's points). nbgrader autograde, otter run and the secure grader
(``python -m autograder grade``) must each give exactly the per-task points the source implies
(``_plan``), so all three agree task by task on the same files. hw1 only: one notebook per tool
run keeps this module to a few minutes.

nbgrader and otter come from the ``grading`` extra; they are imported at the top so a
missing install fails this module instead of skipping it.
"""
from __future__ import annotations

import copy
import csv
import filecmp
import html as html_lib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import nbgrader  # noqa: F401  (grading extra: must be installed, never skipped)
import numpy as np
import otter  # noqa: F401
import pytest

from autograder import export_nbgrader, export_otter
from autograder._export_common import run_one_test, run_task_tests
from autograder._export_common import test_rng as export_rng
from autograder.notebook import cell_meta, parse_source, read_source

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "export_fix.py"
HW = "hw1"
HIDDEN_MARKS = ("run_task_tests", "run_one_test", "BEGIN HIDDEN TESTS", "def test_")


# ----------------------------------------------------------------------------- helpers
def _run(cmd, cwd, timings=None, ok=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    t0 = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    if timings is not None:
        key = " ".join(str(c) for c in cmd[2:4])
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    if ok:
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _plan(path):
    """Expected points per task for the three submissions, and the task left blank."""
    nb = read_source(path)
    asg = parse_source(nb)

    def used_elsewhere(t):
        for c in nb.cells:
            m = cell_meta(c)
            own = m.get("id") == t.id or m.get("role") == "experiment"
            if c.cell_type == "code" and not own and t.function in c.source:
                return True
        return False

    # a task no other graded cell mentions, so blanking it cannot cost another task points
    alone = [t for t in asg.tasks if not used_elsewhere(t)]
    assert alone, f"{path}: every task is used by another one; pick the wrong task by hand"
    wrong = max(alone, key=lambda t: t.points)
    full = {t.id: t.points for t in asg.tasks}
    return asg, wrong.id, {"sol": full, "blank": {k: 0.0 for k in full},
                           "wrong": {k: (0.0 if k == wrong.id else v) for k, v in full.items()}}


def _splice(nb, donor, ids):
    """Copy of ``nb`` whose task cells with these ids take their source from ``donor``."""
    src = {cell_meta(c)["id"]: c.source for c in donor.cells
           if c.cell_type == "code" and cell_meta(c).get("role") == "task"}
    out = copy.deepcopy(nb)
    for c in out.cells:
        m = cell_meta(c)
        if c.cell_type == "code" and m.get("role") == "task" and m.get("id") in ids:
            c.source = src[m["id"]]
    return out


def _submissions(student_nb, solution_nb, asg, wrong):
    ids = {t.id for t in asg.tasks}
    return {"sol": _splice(student_nb, solution_nb, ids), "blank": student_nb,
            "wrong": _splice(student_nb, solution_nb, ids - {wrong})}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """hw1's source, its solution notebook, and the student notebook students get from build."""
    d = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "solutions" / f"{HW}.py", d / f"{HW}.py")
    _run([sys.executable, "-m", "autograder", "build", "--solutions", d, "--out", d / "assignments",
          "--bundles", d / "bundles"], d)
    asg, wrong, expected = _plan(d / f"{HW}.py")
    return {"dir": d, "source": d / f"{HW}.py", "student": nbformat.read(d / "assignments" / f"{HW}.ipynb", 4),
            "solution": read_source(d / f"{HW}.py"), "asg": asg, "wrong": wrong, "expected": expected}


# ----------------------------------------------------------------------------- fast checks
def test_exports_regenerate_deterministically(tmp_path):
    """One command per tool regenerates every assignment of solutions/; reruns are byte-identical."""
    names = sorted(p.stem for p in (REPO / "solutions").glob("*.py"))
    for k in (1, 2):
        export_nbgrader.main(["--out", str(tmp_path / f"nbg{k}")])
        export_otter.main(["--out", str(tmp_path / f"ot{k}")])
    assert sorted(p.name for p in (tmp_path / "nbg1" / "source").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "ot1").iterdir()) == names
    for a, b in (("nbg1", "nbg2"), ("ot1", "ot2")):
        files = sorted(p.relative_to(tmp_path / a) for p in (tmp_path / a).rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(tmp_path / b) for p in (tmp_path / b).rglob("*") if p.is_file())
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / a, tmp_path / b, files, shallow=False)
        assert not mismatch and not errors


def test_nbgrader_source_metadata(tmp_path):
    """Cell metadata passes nbgrader's validator; grade cells carry the task points."""
    from nbgrader.nbgraderformat import MetadataValidator

    name, nb = export_nbgrader.nbgrader_notebook(FIXTURE)
    MetadataValidator().validate_nb(nb)
    asg = parse_source(FIXTURE)
    grades = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade")}
    want = {export_nbgrader.grade_id(t.id): t.points for t in asg.tasks + asg.manual}
    assert {k: c.metadata["nbgrader"]["points"] for k, c in grades.items()} == want
    for t in asg.tasks:
        src = grades[export_nbgrader.grade_id(t.id)].source
        assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src
    exp = [c for c in nb.cells if cell_meta(c).get("role") == "experiment"][0]
    assert exp.source.startswith(export_nbgrader.EXPERIMENT_GUARD)
    assert 'a multi-line string kept as is:"""' in exp.source  # string continuation not indented
    compile(exp.source, "experiment", "exec")


def test_nbgrader_config_keeps_warned_cells(tmp_path):
    """The generated config loads; its IgnorePattern drops torch/numpy warnings from stderr,
    without which nbgrader gives 0 to a passing test cell."""
    from nbgrader.preprocessors import IgnorePattern
    from nbgrader.utils import determine_grade
    from traitlets.config import Config

    export_nbgrader.export(tmp_path, solutions=FIXTURE.parent, assignments=[FIXTURE.stem])
    cfg = Config()
    exec((tmp_path / "nbgrader_config.py").read_text(), {"get_config": lambda: cfg})
    assert cfg.Execute.timeout == 600 and cfg.IgnorePattern.enabled

    def graded_cell(stderr):
        cell = nbformat.v4.new_code_cell("x")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 2.0, "grade_id": "a"}
        cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=stderr),
                        nbformat.v4.new_output("execute_result", data={"text/plain": "1.5"})]
        return cell

    warned = graded_cell("/x/torch/nn/modules.py:12: UserWarning: something\n  warnings.warn(\n")
    assert determine_grade(warned)[0] == 0  # nbgrader's default: any stderr zeroes the cell
    pre = IgnorePattern(config=cfg)
    assert determine_grade(pre.preprocess_cell(warned, {}, 0)[0])[0] == 1.5
    crashed = graded_cell("Traceback (most recent call last): boom\n")
    assert determine_grade(pre.preprocess_cell(crashed, {}, 0)[0])[0] == 0


def test_otter_master_structure():
    """One question per task named by its id with its points; hidden cases split the points."""
    name, nb = export_otter.otter_notebook(FIXTURE, seed=7)
    raw = [c.source for c in nb.cells if c.cell_type == "raw"]
    assert raw[0].startswith("# ASSIGNMENT CONFIG") and '"autograder_value": 7' in raw[0]
    asg = parse_source(FIXTURE)
    for t in asg.tasks:
        assert f'# BEGIN QUESTION\nname: "{t.id}"\npoints: {t.points}' in raw
    for q in asg.manual:
        assert f'# BEGIN QUESTION\nname: "{q.id}"\nmanual: true\npoints: {q.points}' in raw
    cases = [c.source for c in nb.cells if c.cell_type == "code" and "hidden: true" in c.source]
    assert len(cases) == len(asg.tests)
    assert "points: 1.5" in cases[0] and "points" not in cases[1].split("END TEST CONFIG")[0]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="assignments"):
        export_nbgrader.export(tmp_path, assignments=["no_such_hw"])
    with pytest.raises(ValueError, match="timeout"):
        export_nbgrader.export(tmp_path, timeout=0)
    with pytest.raises(ValueError, match="solutions"):
        export_otter.export(tmp_path, solutions=tmp_path / "missing")


def _fixture_env(wrong_body=None):
    """Run the fixture's setup and task cells in a fresh namespace, as a kernel would."""
    env = {"__name__": "__main__"}
    for c in read_source(FIXTURE).cells:
        role = cell_meta(c).get("role", "code")
        if c.cell_type == "code" and role in ("code", "task"):
            src = c.source
            if wrong_body and "def my_mse" in src:
                src = src.replace("return ((f - y) ** 2).mean()", wrong_body)
            exec(compile(src, "cell", "exec"), env)
    return env


def test_inkernel_runtime_scores_like_the_source():
    """The in-kernel shim: partial credit by test shares, the forbid list, the grader's rng."""
    asg = parse_source(FIXTURE)
    src = "\n\n".join(code for _, code in asg.hidden_sources)
    shares = asg.test_points()
    mse_shares = {n: p for (t, n), p in shares.items() if t == "export_fix.mse"}
    kw = dict(task="export_fix.mse", source=src, points=2.0, seed=0,
              shares=mse_shares, forbid=["flatlab.losses.mse"])
    assert run_task_tests(_fixture_env(), **kw) == 2.0
    # sum instead of mean: wrong on random inputs, still zero when f == y
    assert run_task_tests(_fixture_env("return ((f - y) ** 2).sum()"), **kw) == mse_shares["test_mse_zero"]
    # calling the forbidden reference fails every test of the task
    assert run_task_tests(_fixture_env("return mse(f, y)"), **kw) == 0.0
    run_one_test(_fixture_env(), task="export_fix.hidden", test="test_hidden_random",
                 source=src, seed=3)
    with pytest.raises(AssertionError, match="must equal flatlab.losses.mse"):
        run_one_test(_fixture_env("return 0"), task="export_fix.mse", test="test_mse_random",
                     source=src, seed=3)
    from autograder.grade import _test_rng
    assert np.array_equal(export_rng(5, "hw0.a", "test_b").integers(1 << 30, size=4),
                          _test_rng(5, "hw0.a", "test_b").integers(1 << 30, size=4))


def test_inkernel_grading_can_be_tampered_with():
    """The documented weakness of in-kernel graders (course/exports.md): a submission that
    patches the comparison helper in its own kernel gets full marks with a wrong answer."""
    asg = parse_source(FIXTURE)
    src = "\n\n".join(code for _, code in asg.hidden_sources)
    shares = {n: p for (t, n), p in asg.test_points().items() if t == "export_fix.mse"}
    env = _fixture_env("return f.sum() * 0 + 42.0")
    kw = dict(task="export_fix.mse", source=src, points=2.0, seed=0, shares=shares)
    assert run_task_tests(env, **kw) == 0.0
    import autograder.grade

    real = autograder.grade.assert_close
    try:
        exec("import autograder.grade\nautograder.grade.assert_close = lambda *a, **k: None", env)
        assert run_task_tests(env, **kw) == 2.0
    finally:
        autograder.grade.assert_close = real


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_nbgrader_end_to_end(course, tmp_path):
    """generate_assignment, autograde, generate_feedback, export on copies of assignments/hw1.ipynb
    and of nbgrader's release copy: scores as the source implies, feedback without hidden-test code;
    a notebook without nbgrader's cells fails autograde loudly instead of scoring 0."""
    root, timings = tmp_path / "course", {}
    asg, wrong, expected = course["asg"], course["wrong"], course["expected"]
    _run([sys.executable, "-m", "autograder", "export", "nbgrader", "--out", root,
          "--solutions", course["dir"], "--assignments", HW], tmp_path, timings)
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", HW, "--force"], root, timings)
    release = nbformat.read(root / "release" / HW / f"{HW}.ipynb", as_version=4)
    assert not any(m in c.source for c in release.cells for m in HIDDEN_MARKS + ("BEGIN SOLUTION",))
    subs = _submissions(course["student"], course["solution"], asg, wrong)
    subs["release_wrong"] = _splice(release, course["solution"], {t.id for t in asg.tasks} - {wrong})
    expected = {**expected, "release_wrong": expected["wrong"]}
    old = copy.deepcopy(course["student"])  # a copy without nbgrader's metadata (an old build)
    for c in old.cells:
        c.metadata.pop("nbgrader", None)
    subs["no_metadata"] = old
    for sid, nb in subs.items():
        target = root / "submitted" / sid / HW / f"{HW}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
    r = _run([sys.executable, "-m", "nbgrader", "autograde", HW], root, timings, ok=False)
    log = r.stdout + r.stderr
    assert r.returncode != 0 and "lacks the nbgrader cells" in log and "assignments/hw1.ipynb" in log
    _run([sys.executable, "-m", "nbgrader", "generate_feedback", HW], root, timings, ok=False)
    _run([sys.executable, "-m", "nbgrader", "export"], root, timings)
    print("nbgrader timings (s):", {k: round(v, 1) for k, v in timings.items()})
    rows = {r["student_id"]: r for r in csv.DictReader(open(root / "grades.csv"))}
    from nbgrader.api import Gradebook

    manual = sum(q.points for q in asg.manual)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid, per_task in expected.items():
            got = {t.id: gb.find_grade(export_nbgrader.grade_id(t.id), HW, HW, sid).score for t in asg.tasks}
            assert got == pytest.approx(per_task, abs=1e-9), sid
            assert float(rows[sid]["score"]) == pytest.approx(sum(per_task.values()))
            assert float(rows[sid]["max_score"]) == pytest.approx(sum(t.points for t in asg.tasks) + manual)
    assert not (root / "autograded" / "no_metadata").exists()
    html = (root / "feedback" / "wrong" / HW / f"{HW}.html").read_text()
    assert not any(m in html for m in HIDDEN_MARKS)
    first_doc = next(t.doc for t in asg.tests if t.task == wrong).splitlines()[0]
    assert first_doc[:60] in html_lib.unescape(html)


@pytest.mark.slow
def test_otter_end_to_end(course, tmp_path):
    """otter assign (runs the solution against all tests), then otter run on copies of
    assignments/hw1.ipynb and of otter's student notebook; the self-checks pass on the solution."""
    out, timings = tmp_path / "otter", {}
    asg, wrong, expected = course["asg"], course["wrong"], course["expected"]
    _run([sys.executable, "-m", "autograder", "export", "otter", "--out", out,
          "--solutions", course["dir"], "--assignments", HW], tmp_path, timings)
    _run([sys.executable, "-m", "otter", "assign", f"{HW}/{HW}.ipynb", f"{HW}/dist"], out, timings)
    dist = out / HW / "dist"
    zips = list((dist / "autograder").glob("*.zip"))
    assert len(zips) == 1
    with zipfile.ZipFile(zips[0]) as z:  # the zip's environment installs flatlab (its wheel) and torch
        env_yml = z.read("environment.yml").decode()
        wheels = [n for n in z.namelist() if n.startswith("files/") and n.endswith(".whl")]
    assert len(wheels) == 1 and f"/autograder/source/{wheels[0]}" in env_yml and "torch>=" in env_yml
    text = (dist / "student" / f"{HW}.ipynb").read_text()
    assert not any(m in text for m in ("run_one_test", "BEGIN SOLUTION", "BEGIN PROMPT"))
    assert not any(t.name in text for t in asg.tests)
    otter_student = nbformat.read(dist / "student" / f"{HW}.ipynb", as_version=4)
    subs = _submissions(course["student"], course["solution"], asg, wrong)
    subs["otter_full"] = _splice(otter_student, course["solution"], {t.id for t in asg.tasks})
    expected = {**expected, "otter_full": expected["sol"]}
    for sid, nb in subs.items():
        sub = out / "subs" / sid / f"{HW}.ipynb"
        sub.parent.mkdir(parents=True)
        nbformat.write(nb, sub)
        _run([sys.executable, "-m", "otter", "run", "-a", zips[0], "-o", sub.parent, sub], out, timings)
        tests = json.loads((sub.parent / "results.json").read_text())["tests"]
        got = {t["name"]: t["score"] for t in tests if t["name"] in expected[sid]}
        assert got == pytest.approx(expected[sid], abs=1e-9), sid
        if sid in ("sol", "otter_full"):  # every case passed, the public self-checks included
            for t in tests:  # "Public Tests" sums up the self-checks of every question
                if t["name"] in expected[sid] or t["name"] == "Public Tests":
                    assert "failed" not in t.get("output", "").lower() and "Error" not in t.get("output", ""), t
    print("otter timings (s):", {k: round(v, 1) for k, v in timings.items()})


@pytest.mark.slow
def test_secure_grader_agrees(course, tmp_path):
    """The secure grader gives the same per-task points on the same three student copies."""
    asg, wrong, expected = course["asg"], course["wrong"], course["expected"]
    subs = tmp_path / "subs"
    subs.mkdir()
    for sid, nb in _submissions(course["student"], course["solution"], asg, wrong).items():
        nbformat.write(nb, subs / f"{sid}.ipynb")
    _run([sys.executable, "-m", "autograder", "grade", "--assignment", HW, "--bundles", course["dir"] / "bundles",
          "--out", tmp_path / "graded", subs], tmp_path)
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "graded" / "grades.csv"))}
    for sid, per_task in expected.items():
        got = {k: float(rows[sid][k]) for k in per_task}
        assert got == pytest.approx(per_task, abs=1e-9), sid
