"""The mistakes registry: ``mistake`` cells (FORMAT.md "Known mistakes") are parsed and
validated, never reach a student or a submission run, are caught by the leak checks, and
are stored in the grading bundle."""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from agfixtures import REPO, build_fixture

from autograder import export_nbgrader, export_otter
from autograder.build import build_one, find_leaks
from autograder.notebook import Mistake, cell_meta, parse_source, read_source, submission_cells
from autograder.release import release, scan_release

MISFIX = Path(__file__).parent / "fixtures" / "hwmis.py"
# what only the mistake cells of hwmis contain
MISTAKE_TEXT = ("x ** 3", "_magnitude_of_entries", "2 * x", "((f - y) ** 2).sum()", "(f - y).abs().mean()",
                "(f - y).mean()", "the exponent is 2, not 3", "sum_not_mean")


@pytest.fixture(scope="module")
def mis_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hwmis")
    nb, bundles = build_fixture(MISFIX, root)
    return root, nb, bundles


def _roles(nb):
    return [cell_meta(c).get("role") for c in nb.cells]


def test_mistake_cells_are_parsed_in_order():
    asg = parse_source(MISFIX)
    assert [(m.task, m.name) for m in asg.mistakes] == [
        ("hwmis.square", "cubed"), ("hwmis.square", "absolute"), ("hwmis.square", "doubled"),
        ("hwmis.mse", "sum_not_mean"), ("hwmis.mse", "absolute_error"), ("hwmis.mse", "not_squared")]
    m = asg.mistakes[0]
    assert isinstance(m, Mistake) and m.feedback == "square returns x cubed: the exponent is 2, not 3"
    assert m.source == "def square(x):\n    return x ** 3" and m.cell > 0
    with pytest.raises(Exception):  # frozen
        m.name = "other"


def _with_mistake_meta(**changes):
    nb = read_source(MISFIX)
    cell = next(c for c in nb.cells if cell_meta(c).get("role") == "mistake")
    meta = dict(cell.metadata["flatlab"])
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    cell.metadata["flatlab"] = meta
    return nb, cell


@pytest.mark.parametrize("changes, message", [
    ({"id": "hwmis.nothere"}, "unknown task 'hwmis.nothere'"),
    ({"id": "hw9.square"}, "'id' must look like 'hwmis.name'"),
    ({"name": "Cubed"}, "'name' must match [a-z0-9_]+"),
    ({"name": None}, "'name' must match [a-z0-9_]+"),
    ({"name": "absolute"}, "mistake name 'absolute' is used twice for task hwmis.square"),
    ({"feedback": ""}, "'feedback' must be one non-empty line"),
    ({"feedback": "two\nlines"}, "'feedback' must be one non-empty line"),
    ({"feedback": None}, "'feedback' must be one non-empty line"),
])
def test_malformed_mistake_metadata_is_rejected(changes, message):
    nb, _ = _with_mistake_meta(**changes)
    with pytest.raises(ValueError) as e:
        parse_source(nb)
    assert message in str(e.value) and "cell " in str(e.value)


@pytest.mark.parametrize("source, message", [
    ("def cube(x):\n    return x ** 3", "must define the task's function 'square'"),
    ("def square(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION", "solution"),
    ("def square(x):\n    return x ** 3  # BEGIN HIDDEN", "solution markers"),
    ("def square(x:\n    return x", "not valid Python"),
])
def test_malformed_mistake_source_is_rejected(source, message):
    nb, cell = _with_mistake_meta()
    cell.source = source
    with pytest.raises(ValueError) as e:
        parse_source(nb)
    assert message in str(e.value)


def test_student_copy_and_bundle(mis_built):
    root, nb, bundles = mis_built
    text = (root / "assignments" / "hwmis.ipynb").read_text()
    assert "mistake" not in _roles(nb)
    for bad in MISTAKE_TEXT:
        assert bad not in text, bad
    b = json.loads((bundles / "hwmis" / "bundle.json").read_text())
    assert [(m["task"], m["name"]) for m in b["mistakes"]][:2] == [("hwmis.square", "cubed"),
                                                                   ("hwmis.square", "absolute")]
    assert set(b["mistakes"][0]) == {"task", "name", "feedback", "source"}
    assert "_magnitude_of_entries(x)" in b["mistakes"][1]["source"]
    # the reference solution's graded cells, which a diagnosis runs the mistakes after
    assert b["reference"][0].startswith("import numpy as np") and "(diff * diff).mean()" in b["reference"][2]
    assert not any("x ** 3" in s for s in b["reference"])


def test_solution_notebook_drops_mistake_cells(tmp_path):
    shutil.copy(MISFIX, tmp_path / "hwmis.py")
    build_one(tmp_path / "hwmis.py", None, None, notebooks=tmp_path / "nb")
    sol = nbformat.read(str(tmp_path / "nb" / "hwmis.ipynb"), as_version=4)
    assert "mistake" not in _roles(sol) and _roles(sol).count("task") == 2
    assert "hidden_test" in _roles(sol)  # everything else is kept, ids as in the source
    src = read_source(MISFIX)
    keep = [c.id for c in src.cells if cell_meta(c).get("role") != "mistake"]
    assert [c.id for c in sol.cells] == keep


def test_a_submission_never_runs_a_mistake_cell():
    src = read_source(MISFIX)
    asg = parse_source(src)
    run, task_src = submission_cells(src, asg)
    assert all("x ** 3" not in s and "(f - y).mean()" not in s for _, s in run)
    assert "x ** 2" in task_src["hwmis.square"]
    # a submission that carries a mistake cell (its metadata kept) does not run it either, and
    # the task cell is still the student's own
    sub = copy.deepcopy(src)
    sub.cells = [c for c in sub.cells if cell_meta(c).get("role") != "hidden_test"]
    run, task_src = submission_cells(sub, asg)
    assert all("x ** 3" not in s for _, s in run) and "x ** 2" in task_src["hwmis.square"]


def test_leak_check_catches_a_mistake_in_a_student_copy(mis_built):
    root, _, _ = mis_built
    src = read_source(MISFIX)
    asg = parse_source(src)
    text = (root / "assignments" / "hwmis.ipynb").read_text()
    assert find_leaks(text, src, asg) == []
    nb = nbformat.reads(text, as_version=4)
    task = next(c for c in nb.cells if cell_meta(c) == {"role": "task", "id": "hwmis.mse"})
    clean = task.source

    def leaks_with(extra, cell_meta_=None):
        n = copy.deepcopy(nb)
        t = next(c for c in n.cells if cell_meta(c) == {"role": "task", "id": "hwmis.mse"})
        t.source = clean + extra
        if cell_meta_ is not None:
            n.cells.append(nbformat.v4.new_code_cell("pass", metadata={"flatlab": cell_meta_}))
        return find_leaks(nbformat.writes(n), src, asg)

    assert any("mistake hwmis.mse/sum_not_mean line" in x for x in leaks_with("\n    return ((f - y) ** 2).sum()"))
    assert any("mistake hwmis.square/absolute helper _magnitude_of_entries" in x
               for x in leaks_with("\n\ndef _magnitude_of_entries(v):\n    return v"))
    assert any("feedback" in x for x in leaks_with("\n# square returns x cubed: the exponent is 2, not 3"))
    assert any("mistake cell" in x for x in leaks_with("", {"role": "mistake", "id": "hwmis.mse"}))
    # lines a student sees anyway (the signature, `import torch`) are not leaks
    assert leaks_with("\n\ndef mse_loss(f, y):\n    pass\nimport torch") == []


def test_what_the_source_shows_students_is_not_a_mistake_leak(tmp_path):
    """A line, name or sentence that a visible cell of the source holds too is not distinctive."""
    extra = ('\n_magnitude_of_entries = None\n'
             'print("square returns x cubed: the exponent is 2, not 3")\nsquare_ = lambda x: x ** 3')
    text = MISFIX.read_text().replace('print("hwmis.mse: OK")', 'print("hwmis.mse: OK")' + extra)
    (tmp_path / "hwmis.py").write_text(text)
    _, student, _ = build_one(tmp_path / "hwmis.py", None, None)  # raises if it saw a leak
    assert "the exponent is 2, not 3" in student and "_magnitude_of_entries = None" in student
    src = read_source(tmp_path / "hwmis.py")
    assert find_leaks(student, src, parse_source(src)) == []


def test_exports_drop_mistake_cells():
    _, nbg = export_nbgrader.nbgrader_notebook(MISFIX)
    _, ott = export_otter.otter_notebook(MISFIX)
    for nb in (nbg, ott):
        text = nbformat.writes(nb)
        assert "x ** 3" not in text and "_magnitude_of_entries" not in text and "sum_not_mean" not in text
        assert "(f - y).abs().mean()" not in text and "the exponent is 2, not 3" not in text
        assert "(diff * diff).mean()" in text  # the solution itself is in both masters


def test_release_carries_no_mistake_and_its_scan_catches_one(tmp_path):
    (tmp_path / "solutions").mkdir()
    shutil.copy(MISFIX, tmp_path / "solutions" / "hwmis.py")
    out = tmp_path / "student"
    assert release(out, tmp_path / "solutions", REPO) == ["hwmis"]
    text = (out / "assignments" / "hwmis.ipynb").read_text()
    assert all(bad not in text for bad in MISTAKE_TEXT)
    sources = [tmp_path / "solutions" / "hwmis.py"]
    assert scan_release(out, sources) == []
    nb = nbformat.reads(text, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("def mse_loss(f, y):\n    return (f - y).abs().mean()"))
    (out / "assignments" / "hwmis.ipynb").write_text(nbformat.writes(nb))
    assert any("mistake hwmis.mse/absolute_error line" in p for p in scan_release(out, sources))


# ------------------------------------------------------------------ the mistakes command
from autograder import mistakes as mistakes_mod  # noqa: E402
from autograder.mistakes import informative  # noqa: E402


@pytest.mark.parametrize("exc_type, message, expected", [
    ("AssertionError", "", False),  # a bare assert
    ("AssertionError", "   \n", False),
    (None, "", False),  # did not fail
    ("AssertionError", "Tensor-likes are not close!\n\nMismatched elements: 1 / 3 (33.3%)\n"
     "Greatest absolute difference: 1.0 at index (0,) (up to 1e-05 allowed)\n"
     "Greatest relative difference: 0.5 at index (0,) (up to 1.3e-06 allowed)", False),
    ("AssertionError", "Scalars are not close!\n\nExpected 1.0 but got 2.0.\n"
     "Absolute difference: 1.0 (up to 1e-07 allowed)\nRelative difference: 1.0 (up to 1e-07 allowed)", False),
    ("AssertionError", "\nNot equal to tolerance rtol=1e-07, atol=0\n\nMismatched elements: 1 / 2 (50%)\n"
     "Max absolute difference among violations: 1.\n x: array([1., 2.])\n y: array([1., 3.])", False),
    ("AssertionError", "\nArrays are not equal\n\n(shapes (3,), (2,) mismatch)\n x: array([1, 2, 3])\n"
     " y: array([1, 2])", False),
    # the author's own words, alone or in numpy's err_msg slot
    ("AssertionError", "\nNot equal to tolerance rtol=1e-07, atol=0\nsquare([1, -2]) is off: did you "
     "square?\nMismatched elements: 1 / 2 (50%)\n x: array([1., 2.])\n y: array([1., 4.])", True),
    ("AssertionError", "mse_loss([0, 0, 3], [1, 1, 1]) returned 6.0; expected 2", True),
    ("RuntimeError", "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x5)", True),
    ("ValueError", "Tensor-likes are not close! because you forgot the square", True),
])
def test_informative(exc_type, message, expected):
    assert informative(exc_type, message) is expected


def _mistakes_run(tmp_path, text: str, *extra):
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "hwmis.py").write_text(text)
    build_one(root / "solutions" / "hwmis.py", None, root / "bundles")
    out = root / "report.json"
    rc = mistakes_mod.main(["hwmis", "--solutions", str(root / "solutions"), "--bundles", str(root / "bundles"),
                            "--json", str(out), "--jobs", "2", *extra])
    return rc, json.loads(out.read_text())


def test_command_reports_correct_mistakes(tmp_path, capsys):
    rc, rep = _mistakes_run(tmp_path, MISFIX.read_text())
    out = capsys.readouterr().out
    assert rc == 0, out
    assert rep["ok"] and rep["reasons"] == [] and rep["full_course"] is False
    (a,) = rep["assignments"]
    assert a["reference"]["score"] == a["reference"]["max_score"] == 5
    rows = {(x["task"], x["name"]): x for x in a["mistakes"]}
    assert len(rows) == 6
    cubed = rows[("hwmis.square", "cubed")]
    assert cubed["lost_task"] == 2 and cubed["lost_elsewhere"] == 0 and cubed["caught"] and cubed["informative"]
    assert "square([1, -2, 3]) returned" in cubed["check"]
    (check,) = cubed["self_checks"]  # each public_test cell of the task: its outcome
    assert not check["passed"] and check["type"] == "AssertionError" and "returned [ 1. -8. 27.]" in check["message"]
    assert rows[("hwmis.mse", "not_squared")]["lost_task"] == 3
    assert all(x["caught"] and x["informative"] and x["lost_task"] == x["points"] for x in rows.values())
    assert a["tasks"]["hwmis.square"] == {"mistakes": 3, "caught": 3, "informative": 3, "loses_on_task": 3,
                                          "clean_elsewhere": 3, "diagnosed": a["tasks"]["hwmis.square"]["diagnosed"]}
    assert a["summary"]["informative_share"] == 1.0 and rep["totals"]["mistakes"] == 6
    assert "hwmis.square  cubed" in out and "took" in out and "OK: every criterion holds" in out


ADVERSARIAL = '''

# %% flatlab={"feedback": "this one is the solution itself", "id": "hwmis.square", "name": "same_as_solution", "role": "mistake"}
def square(x):
    return x ** 2


# %% flatlab={"feedback": "mse_loss sums; and square is broken too", "id": "hwmis.mse", "name": "breaks_square", "role": "mistake"}
def mse_loss(f, y):
    return ((f - y) ** 2).sum()


def square(x):
    return x


# %% flatlab={"feedback": "square is wrong on Python floats only", "id": "hwmis.square", "name": "float_only", "role": "mistake"}
def square(x):
    return x * x + 1.0 if isinstance(x, float) else x ** 2
'''


def test_command_fails_on_an_adversarial_corpus(tmp_path, capsys):
    text = MISFIX.read_text().replace("\n\n# %% [markdown] flatlab={\"id\": \"hwmis.reflect\"",
                                      ADVERSARIAL + "\n\n# %% [markdown] flatlab={\"id\": \"hwmis.reflect\"")
    assert "same_as_solution" in text
    rc, rep = _mistakes_run(tmp_path, text)
    out = capsys.readouterr().out
    assert rc == 1 and not rep["ok"]
    rows = {x["name"]: x for x in rep["assignments"][0]["mistakes"]}
    same, breaks, bare = rows["same_as_solution"], rows["breaks_square"], rows["float_only"]
    assert same["lost_task"] == 0 and not same["caught"] and not same["informative"]
    assert breaks["lost_task"] == 3 and breaks["lost_elsewhere"] == 2 and breaks["lost_where"] == ["hwmis.square"]
    assert bare["caught"] and not bare["informative"] and bare["type"] == "AssertionError" and bare["lost_task"] > 0
    assert rows["cubed"]["informative"] and rows["cubed"]["lost_elsewhere"] == 0
    reasons = "\n".join(rep["reasons"])
    assert "hwmis.square/same_as_solution: loses no points on hwmis.square" in reasons
    assert "hwmis.mse/breaks_square: changes the score of other tasks by -2 (hwmis.square)" in reasons
    assert "hwmis: 7/9 mistakes caught informatively" in reasons  # 78% < 80%
    assert "float_only" not in reasons  # a mistake is allowed to be caught uninformatively
    assert "FAILED (3)" in out
    # --no-thresholds: the same table, exit 0
    rc, _ = _mistakes_run(tmp_path / "again", text, "--no-thresholds")
    assert rc == 0


def test_command_usage_errors(tmp_path, capsys):
    assert mistakes_mod.main(["hw99", "--solutions", str(REPO / "solutions")]) == 2
    assert "no source" in capsys.readouterr().err
    assert mistakes_mod.main(["--solutions", str(tmp_path / "nope")]) == 2
    assert "--solutions" in capsys.readouterr().err
    (tmp_path / "s").mkdir()
    shutil.copy(MISFIX, tmp_path / "s" / "hwmis.py")
    build_one(tmp_path / "s" / "hwmis.py", None, tmp_path / "b")
    (tmp_path / "s" / "hwmis.py").write_text(MISFIX.read_text() + "\n")
    assert mistakes_mod.main(["hwmis", "--solutions", str(tmp_path / "s"), "--bundles", str(tmp_path / "b")]) == 2
    assert "run `python -m autograder build` first" in capsys.readouterr().err


# ------------------------------------------------------------------ diagnosis in `grade`
from agfixtures import make_submission  # noqa: E402

from autograder import diagnose as diagnose_mod  # noqa: E402
from autograder.class_report import analyze  # noqa: E402
from autograder.grade import GradingConfig, grade_paths, load_bundle  # noqa: E402


@pytest.fixture(scope="module")
def diagnosed(mis_built, tmp_path_factory):
    root, nb, bundles = mis_built
    subs = tmp_path_factory.mktemp("mis_subs")
    good = {"hwmis.square": "def square(x):\n    return x * x\n",
            "hwmis.mse": "def mse_loss(f, y):\n    return ((f - y) ** 2).mean()\n"}
    make_submission(nb, good, path=subs / "ada.ipynb")
    # the registered 'cubed' and 'not_squared', written the student's own way
    make_submission(nb, {"hwmis.square": "def square(x):\n    return x * x * x\n",
                         "hwmis.mse": "def mse_loss(f, y):\n    d = f - y\n    return d.sum() / len(d)\n"},
                    path=subs / "bob.ipynb")
    # wrong, but like no registered mistake
    make_submission(nb, {**good, "hwmis.square": "def square(x):\n    return x ** 4\n"}, path=subs / "cyd.ipynb")
    bundle = load_bundle(bundles, "hwmis")
    results = {r["student"]: r for r in grade_paths(sorted(subs.iterdir()), bundle, GradingConfig(jobs=2))}
    return bundle, results


def _tests(result, task):
    return next(t for t in result["tasks"] if t["id"] == task)["tests"]


def test_diagnosis_names_the_matching_mistake(diagnosed):
    _, res = diagnosed
    square = _tests(res["bob"], "hwmis.square")
    assert [x["kind"] for x in square] == ["wrong", "wrong"]
    assert all(x["mistake"] == "cubed" for x in square)
    assert all(x["message"].endswith("\nThis looks like a known mistake: square returns x cubed: the exponent "
                                     "is 2, not 3") for x in square)
    assert "your result is wrong" in square[0]["message"]  # the usual message stays first
    (mse,) = _tests(res["bob"], "hwmis.mse")
    assert mse["mistake"] == "not_squared" and "positive and negative errors cancel" in mse["message"]
    assert next(t for t in res["bob"]["tasks"] if t["id"] == "hwmis.mse")["known_mistakes"] == 3
    assert res["bob"]["score"] == 0


def test_diagnosis_does_not_name_a_mistake_that_does_not_match(diagnosed):
    _, res = diagnosed
    square = _tests(res["cyd"], "hwmis.square")
    assert [x["kind"] for x in square] == ["wrong", "wrong"]
    assert all("mistake" not in x and "known mistake" not in x["message"] for x in square)
    assert all(x["passed"] and "mistake" not in x for t in res["ada"]["tasks"] for x in t["tests"])
    assert res["ada"]["score"] == 5


def test_diagnosis_is_lazy_and_runs_outside_the_grader(mis_built, tmp_path):
    root, nb, bundles = mis_built
    bundle = load_bundle(bundles, "hwmis")
    make_submission(nb, {"hwmis.square": "def square(x):\n    return x * x\n",
                         "hwmis.mse": "def mse_loss(f, y):\n    return ((f - y) ** 2).mean()\n"},
                    path=tmp_path / "ada.ipynb")
    grade_paths([tmp_path / "ada.ipynb"], bundle, GradingConfig())
    assert not any(k[2] == id(bundle) for k in diagnose_mod._SERVERS)  # nothing failed: no process
    # a mistake runs in its own process on the recorded arguments: what it does stays there
    import numpy as np
    calls = [{"function": "square", "args": diagnose_mod.codec.encode([np.array([1.0, 2.0])]),
              "kwargs": diagnose_mod.codec.encode({}, "plain data"), "return_args": False, "result": np.array([1.0, 8.0])}]
    evil = {**bundle, "mistakes": [{"task": "hwmis.square", "name": "global_state", "feedback": "f",
                                    "source": "import os\nos.environ['FLATLAB_DIAG_PROBE'] = '1'\n"
                                              "def square(x):\n    return x ** 3"}]}
    assert diagnose_mod.diagnose(evil, "hwmis.square", "square", calls)["name"] == "global_state"
    assert "FLATLAB_DIAG_PROBE" not in os.environ
    calls[0]["result"] = np.array([1.0, 8.0 + 1e-3])  # beyond rtol 1e-6: no match
    assert diagnose_mod.diagnose(evil, "hwmis.square", "square", calls) is None
    assert diagnose_mod.diagnose(evil, "hwmis.square", "other_function", calls) is None


def test_same_value():
    import numpy as np
    same = diagnose_mod.same_value
    assert same(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]))
    assert not same(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-4]))
    assert not same(np.array([1.0, 2.0]), np.array([[1.0, 2.0]]))  # same values, other shape
    assert same((1, {"a": [2.0]}), [1, {"a": [2.0]}]) and not same({"a": 1}, {"b": 1})
    assert same(None, None) and not same(None, 0.0) and not same("x", "y") and same(3, 3.0)
    nan = float("nan")  # a mistake that returns NaN (no zero guard) matches NaN in the same places only
    assert same(np.array([nan, 1.0]), np.array([nan, 1.0])) and same(nan, nan)
    assert not same(np.array([nan, 1.0]), np.array([1.0, nan])) and not same(nan, 0.0)


def test_class_report_counts_diagnosed_mistakes_per_task(diagnosed):
    _, res = diagnosed
    a = analyze(list(res.values()))
    per_task = {k["task"]: k for k in a["known_mistakes"]}
    assert per_task["hwmis.square"] == {"task": "hwmis.square", "registered": 3, "students": 1, "tests": 2,
                                        "by_mistake": {"cubed": 1}}
    assert per_task["hwmis.mse"]["by_mistake"] == {"not_squared": 1}
    m = {(x["task"], x["mistake"]): x for x in a["mistakes"]}
    assert m[("hwmis.square", "cubed")]["text"] == "square returns x cubed: the exponent is 2, not 3"
    assert m[("hwmis.square", "cubed")]["count"] == 2 and m[("hwmis.square", "cubed")]["students"] == 1


def test_gradescope_zip_carries_the_mistakes_and_its_grader_diagnoses(mis_built, tmp_path):
    import zipfile

    from autograder import gradescope
    root, nb, bundles = mis_built
    z = gradescope.make_zip("hwmis", bundles, tmp_path / "zip")
    with zipfile.ZipFile(z) as f:
        b = json.loads(f.read("bundle/hwmis/bundle.json"))
        wheel = next(n for n in f.namelist() if n.endswith(".whl"))
        f.extract(wheel, tmp_path)
    assert [m["name"] for m in b["mistakes"]][:1] == ["cubed"] and b["reference"]
    with zipfile.ZipFile(tmp_path / wheel) as w:  # the diagnosis server ships with the grader
        assert {"autograder/diagnose.py", "autograder/_diagnose.py"} <= set(w.namelist())
    # run_autograder's grading step on a fake /autograder tree, with the zip's bundle
    gs = tmp_path / "autograder"
    (gs / "source" / "bundle" / "hwmis").mkdir(parents=True)
    (gs / "source" / "bundle" / "hwmis" / "bundle.json").write_text(json.dumps(b))
    (gs / "submission").mkdir()
    make_submission(nb, {"hwmis.square": "def square(x):\n    return abs(x)\n"}, path=gs / "submission" / "hwmis.ipynb")
    res = gradescope.run(gs, "hwmis")
    square = [t for t in res["tests"] if "square" in t["name"]]
    assert square and all(t["status"] == "failed" for t in square)
    assert all("This looks like a known mistake: square returns |x|" in t["output"] for t in square), square


@pytest.mark.slow
def test_course_mistakes(tmp_path):
    """CI: `python -m autograder mistakes` on the real course hw0..hw6, with its thresholds: every
    task has >= 3 registered mistakes, each loses points on its own task only, >= 80% of each
    assignment's are caught informatively by its self-checks, >= 100 in all."""
    import subprocess
    import sys
    sources = sorted((REPO / "solutions").glob("hw*.py"))
    assert [p.stem for p in sources] == [f"hw{i}" for i in range(7)]
    (tmp_path / "solutions").mkdir()
    for p in sources:
        shutil.copy(p, tmp_path / "solutions" / p.name)
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    run = lambda *args: subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, env=env,
                                       capture_output=True, text=True, timeout=1800)
    b = run("build", "--solutions", tmp_path / "solutions", "--out", tmp_path / "a", "--bundles", tmp_path / "b",
            "--notebooks", tmp_path / "nb")
    assert b.returncode == 0, b.stderr
    r = run("mistakes", "--solutions", tmp_path / "solutions", "--bundles", tmp_path / "b", "--jobs", "2",
            "--json", tmp_path / "mistakes.json")
    assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    rep = json.loads((tmp_path / "mistakes.json").read_text())
    assert rep["ok"] and rep["full_course"] and rep["totals"]["mistakes"] >= 100
    assert {a["assignment"] for a in rep["assignments"]} == {p.stem for p in sources}
