"""The mistakes registry: ``mistake`` cells (FORMAT.md "Known mistakes") are parsed and
validated, never reach a student or a submission run, are caught by the leak checks, and
are stored in the grading bundle."""
from __future__ import annotations

import copy
import json
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
