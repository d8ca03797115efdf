"""The course against the grader's command line: ``python -m autograder build | grade``.

- the sources ``solutions/hwN.py`` (jupytext percent) read back to the same text;
- the committed student notebooks ``assignments/hwN.ipynb`` equal a fresh build of
  ``solutions/hwN.py`` and carry no solution, no hidden test and no marker;
- the course has >= 25 autograded tasks, each with hidden tests that draw their inputs
  from ``rng`` (fresh per grading seed), a summary and points;
- for every assignment: the solution earns full marks, the untouched student notebook 0
  (graded, not crashed), and a notebook with one task wrong loses exactly that task's points.

The grading test runs ``python -m autograder grade`` once per assignment on a folder of the
three submissions (``--jobs 2``); it is the slow part (~20-45 s per assignment).
"""
from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.build import solution_notebook
from autograder.notebook import notebook_to_percent, parse_source, read_source

ROOT = Path(__file__).resolve().parents[1]
COURSE = [f"hw{i}" for i in range(6)]  # the core course (the syllabus total row)
ALL = [*COURSE, "hw6"]  # with the optional capstone
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "<!-- BEGIN SOLUTION", "<!-- END SOLUTION")
# One task per assignment that no other task calls, and a wrong (but non-crashing) body for it.
WRONG = {
    "hw0": ("hw0.zero_one", "return 0.5"),
    "hw1": ("hw1.flattest_rescaling", "return 1.0, 0.0"),
    "hw2": ("hw2.one_sam_sharpness", "return 0.0"),
    "hw3": ("hw3.top_neurons", 'return {"index": [], "share": [], "signs": []}'),
    "hw4": ("hw4.x1x2_share", "return 0.5"),
    "hw5": ("hw5.projected_step", "return 0.0"),
    "hw6": ("hw6.memorization", "return 0.25"),
}
_REGION = re.compile(r"^(?P<ind>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*$",
                     re.S | re.M)


def _meta(cell) -> dict:
    return cell.metadata.get("flatlab", {})


def _autograder(*args, cwd=ROOT, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    command = " ".join(map(str, args))
    assert proc.returncode == 0, f"autograder {command} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    """Build hw0-hw6 from solutions/ into a temporary folder: (assignments, bundles, solution notebooks)."""
    base = tmp_path_factory.mktemp("course_build")
    src = base / "solutions"
    src.mkdir()
    for name in ALL:
        shutil.copy(ROOT / "solutions" / f"{name}.py", src / f"{name}.py")
    _autograder("build", "--solutions", src, "--out", base / "assignments", "--bundles", base / "grading",
                "--notebooks", base / "notebooks")
    return base / "assignments", base / "grading", base / "notebooks"


def test_build_check_cli():
    """`python -m autograder build --check`: every committed student notebook is fresh and leak-free."""
    _autograder("build", "--check")


@pytest.mark.parametrize("name", ALL)
def test_committed_assignment_equals_fresh_build(name, fresh_build):
    """assignments/ is generated: it must be byte-identical to a fresh `python -m autograder build`."""
    committed = ROOT / "assignments" / f"{name}.ipynb"
    assert committed.exists(), f"{committed} missing: run `python -m autograder build`"
    assert committed.read_text() == (fresh_build[0] / f"{name}.ipynb").read_text(), (
        f"{committed} differs from a fresh build: run `python -m autograder build` "
        "(never edit assignments/ by hand)")


@pytest.mark.parametrize("name", ALL)
def test_student_notebook_has_no_solution(name):
    """No marker, no hidden-test cell or function, no solution line; every task is a stub naming its id."""
    student = nbformat.read(ROOT / "assignments" / f"{name}.ipynb", as_version=4)
    source = read_source(ROOT / "solutions" / f"{name}.py")
    text = "\n".join(c.source for c in student.cells)
    for marker in MARKERS:
        assert marker not in text, f"marker {marker!r} leaked into assignments/{name}.ipynb"
    assert not [c for c in student.cells if _meta(c).get("role") == "hidden_test"]
    hidden = [c for c in source.cells if _meta(c).get("role") == "hidden_test"]
    for cell in hidden:
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef):
                assert f"def {node.name}(" not in text, f"hidden function {node.name} leaked"
    solution_lines, outside = set(), set()  # lines only ever written inside solution regions
    for cell in source.cells:
        role = _meta(cell).get("role")
        if role == "hidden_test" or cell.cell_type != "code":
            continue
        rest = _REGION.sub("", cell.source)
        outside |= {ln.strip() for ln in rest.splitlines()}
        for m in _REGION.finditer(cell.source):
            solution_lines |= {ln.strip() for ln in m.group(0).splitlines()[1:-1] if len(ln.strip()) > 20}
    visible = {ln.strip() for c in student.cells for ln in c.source.splitlines()}
    leaked = (solution_lines - outside) & visible
    assert not leaked, f"solution lines leaked: {sorted(leaked)[:3]}"
    tasks = [c for c in student.cells if _meta(c).get("role") == "task"]
    assert tasks
    for cell in tasks:
        assert f'raise NotImplementedError("Task {_meta(cell)["id"]}' in cell.source, cell.source[:200]


def test_course_has_enough_well_formed_tasks():
    """>= 25 autograded tasks, each with points, summary, function, public check, rng-driven hidden tests."""
    total = 0
    for name in COURSE:
        nb = read_source(ROOT / "solutions" / f"{name}.py")
        assert nb.metadata["flatlab"]["assignment"] == name
        tasks = [_meta(c) for c in nb.cells if _meta(c).get("role") == "task"]
        publics = {_meta(c)["id"] for c in nb.cells if _meta(c).get("role") == "public_test"}
        hidden = {}
        for c in nb.cells:
            if _meta(c).get("role") == "hidden_test":
                tree = ast.parse(c.source)
                for fn in tree.body:
                    if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
                        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
                        assert "rng" in used, f"{fn.name} does not draw its inputs from rng"
                        assert ast.get_docstring(fn), f"{fn.name} has no docstring (the feedback)"
                        hidden.setdefault(_meta(c)["id"], []).append(fn.name)
        for t in tasks:
            assert t["id"].startswith(name + ".") and t["points"] > 0 and t["summary"] and t["function"]
            assert t["id"] in publics, f"{t['id']} has no public self-check"
            assert hidden.get(t["id"]), f"{t['id']} has no hidden test"
        total += len(tasks)
    assert total >= 25, f"only {total} autograded tasks"


def _with_wrong_task(src: Path, dst: Path, task_id: str, body: str) -> float:
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if _meta(cell).get("role") == "task" and _meta(cell)["id"] == task_id:
            cell.source, k = _REGION.subn(lambda m: f"{m['ind']}{body}", cell.source)
            assert k == 1
            points = float(_meta(cell)["points"])
            break
    else:
        raise AssertionError(f"no task {task_id}")
    nbformat.write(nb, dst)
    return points


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_grading_solution_untouched_and_one_wrong(name, fresh_build, tmp_path):
    """Solution: full marks. Untouched student notebook: 0, graded, no crash.

    One task wrong: exactly that task's points lost, every other task keeps its points.
    """
    assignments, bundles, notebooks = fresh_build
    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(notebooks / f"{name}.ipynb", subs / "solution.ipynb")
    shutil.copy(assignments / f"{name}.ipynb", subs / "untouched.ipynb")
    task_id, body = WRONG[name]
    lost = _with_wrong_task(notebooks / f"{name}.ipynb", subs / "one_wrong.ipynb", task_id, body)
    out = tmp_path / "graded"
    _autograder("grade", "--assignment", name, "--bundles", bundles, "--out", out,
                "--jobs", "2", "--seed", "7", subs)
    with open(out / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    for student, row in rows.items():  # failing tests with their messages, for the assertion output
        res = json.loads((out / "results" / f"{student}.json").read_text())
        row["failed"] = [(t["name"], t.get("kind"), t.get("message", "")[:300])
                         for task in res["tasks"] for t in task["tests"] if not t["passed"]]
    assert set(rows) == {"solution", "untouched", "one_wrong"}
    full = float(rows["solution"]["max_score"])
    manual = {q.id for q in parse_source(read_source(ROOT / "solutions" / f"{name}.py")).manual}
    task_cols = [k for k in rows["solution"] if k.startswith(name + ".") and k not in manual]
    assert task_cols and full > 0
    assert manual and all(row[q] == "" for row in rows.values() for q in manual)  # graded by hand, later
    assert float(rows["solution"]["score"]) == pytest.approx(full), rows["solution"]["failed"]
    assert rows["untouched"]["status"] == "graded", rows["untouched"]
    assert float(rows["untouched"]["score"]) == 0.0, rows["untouched"]
    wrong = rows["one_wrong"]
    assert float(wrong["score"]) == pytest.approx(full - lost), wrong["failed"]
    for col in task_cols:
        expected = 0.0 if col == task_id else float(rows["solution"][col])
        assert float(wrong[col]) == pytest.approx(expected), (col, wrong)


def test_syllabus_points_table_matches_notebooks():
    """course/syllabus.md's points table must state each assignment's tasks and points as in solutions/."""
    text = (ROOT / "course" / "syllabus.md").read_text()
    table = text.split("<!-- points-table", 1)[1].split("<!-- end points-table", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if cells and re.fullmatch(r"hw\d|hw0-hw5", cells[0]):
            rows[cells[0]] = [float(c) for c in cells[1:]]
    totals = [0.0] * 5
    for name in COURSE:
        nb = read_source(ROOT / "solutions" / f"{name}.py")
        tasks = [_meta(c) for c in nb.cells if _meta(c).get("role") == "task"]
        manual = [_meta(c) for c in nb.cells if _meta(c).get("role") == "manual"]
        want = [len(tasks), sum(t["points"] for t in tasks), len(manual), sum(m["points"] for m in manual)]
        want.append(want[1] + want[3])
        assert rows.get(name) == want, f"syllabus row {name}: {rows.get(name)} != notebooks {want}"
        totals = [a + b for a, b in zip(totals, want)]
    assert rows.get("hw0-hw5") == totals, f"syllabus total row {rows.get('hw0-hw5')} != {totals}"


def test_sources_are_the_only_assignment_files_in_solutions():
    """solutions/ holds the sources hwN.py and no notebook (those are built into build/solutions/)."""
    assert sorted(p.stem for p in (ROOT / "solutions").glob("hw*.py")) == ALL
    assert not list((ROOT / "solutions").rglob("*.ipynb"))


@pytest.mark.parametrize("name", ALL)
def test_source_round_trips_through_its_notebook(name, fresh_build):
    """source -> notebook -> source is the identity: jupytext keeps every cell's type, text and
    metadata.flatlab, also through the built, saved build/solutions/hwN.ipynb."""
    path = ROOT / "solutions" / f"{name}.py"
    text = path.read_text()
    nb = read_source(path)
    saved = nbformat.read(fresh_build[2] / f"{name}.ipynb", as_version=4)
    assert notebook_to_percent(saved) == notebook_to_percent(solution_notebook(read_source(path)))  # no mistakes
    assert notebook_to_percent(nb) == text, (
        f"{path} is not in jupytext's layout: rewrite it with "
        "autograder.notebook.notebook_to_percent(read_source(path))")
    again = read_source(path)
    assert [(c.cell_type, c.source, c.metadata, c.id) for c in again.cells] == \
        [(c.cell_type, c.source, c.metadata, c.id) for c in nb.cells]
    roles = [c.metadata.get("flatlab", {}).get("role") for c in nb.cells]
    assert {"task", "public_test", "hidden_test", "manual"} <= set(roles), roles
