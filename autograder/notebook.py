"""Read an assignment source (``solutions/hwN.py``, a jupytext percent file, see FORMAT.md)
into a notebook, tasks, cells and hidden tests, and locate the graded cells of a student
submission.

Everything here is plain parsing: nothing executes notebook code. Hidden-test functions
and their ``test_x.points = k`` assignments are found with :mod:`ast`.
"""
from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "ROLES", "MARKERS", "HIDDEN_ROLES", "Task", "Manual", "HiddenTest", "Mistake", "Assignment",
    "cell_meta", "read_source", "percent_to_notebook", "notebook_to_percent", "parse_source", "strip_magics", "solution_regions", "submission_cells",
]

ROLES = ("code", "task", "public_test", "hidden_test", "experiment", "manual", "mistake")
# roles whose cells never reach a student and are never executed as part of a submission
HIDDEN_ROLES = ("hidden_test", "mistake")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
# every marker string that must never reach a student notebook
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "END HIDDEN")
_ID_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
_BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?P<keep> \(keep\))?[ \t]*$")
_END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
_MD_BEGIN = "<!-- BEGIN SOLUTION -->"
_MD_END = "<!-- END SOLUTION -->"


@dataclass(frozen=True)
class Task:
    """An autograded task: the function a student writes in one task cell."""

    id: str  # hwN.name
    function: str  # name the grader calls
    points: float  # the task's total
    summary: str  # one line; the stub's NotImplementedError message
    forbid: tuple[str, ...] = ()  # dotted names the function must not call while graded
    cell: int = 0  # index of the task cell in the source notebook


@dataclass(frozen=True)
class Manual:
    """A free-response question graded by hand."""

    id: str
    points: float
    prompt: str  # the question, without the model answer
    cell: int = 0


@dataclass(frozen=True)
class HiddenTest:
    """One trusted ``test_*(student, rng)`` function of a hidden-test cell."""

    task: str  # task id
    name: str  # function name
    doc: str  # docstring = feedback shown when it fails
    points: float | None  # explicit ``test_x.points = k`` or None (equal split)
    cell: int = 0


@dataclass(frozen=True)
class Mistake:
    """A registered wrong version of a task's function (a ``mistake`` cell, see FORMAT.md)."""

    task: str  # task id
    name: str  # [a-z0-9_]+, unique within the task
    feedback: str  # one sentence shown when the grader recognises it
    source: str  # the cell: defines the task's function (and maybe helpers)
    cell: int = 0


@dataclass
class Assignment:
    """A parsed source notebook."""

    name: str  # hwN
    title: str
    tasks: list[Task] = field(default_factory=list)
    manual: list[Manual] = field(default_factory=list)
    tests: list[HiddenTest] = field(default_factory=list)
    hidden_sources: list[tuple[str, str]] = field(default_factory=list)  # (task id, code)
    setup: list[str] = field(default_factory=list)  # plain code cells, in order
    mistakes: list[Mistake] = field(default_factory=list)  # registered wrong versions, in order

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def test_points(self) -> dict[tuple[str, str], float]:
        """Points of every hidden test: explicit ones, the rest of the task split equally."""
        out = {}
        for task in self.tasks:
            tests = [t for t in self.tests if t.task == task.id]
            fixed = sum(t.points for t in tests if t.points is not None)
            free = [t for t in tests if t.points is None]
            share = (task.points - fixed) / len(free) if free else 0.0
            for t in tests:
                out[(task.id, t.name)] = float(t.points if t.points is not None else share)
        return out


def cell_meta(cell) -> dict:
    """The ``metadata.flatlab`` dict of a cell (empty if none)."""
    meta = cell.get("metadata", {}).get("flatlab", {})
    return meta if isinstance(meta, dict) else {}


def _fail(index: int, what: str):
    raise ValueError(f"cell {index}: {what}")


def solution_regions(source: str, index: int = 0) -> list[tuple[int, int, str, bool]]:
    """(begin line, end line, indent, keep) of each ``### BEGIN/END SOLUTION`` region."""
    out, start = [], None
    for i, line in enumerate(source.split("\n")):
        m = _BEGIN.match(line)
        if m:
            if start is not None:
                _fail(index, f"nested BEGIN SOLUTION at line {i + 1}")
            start = (i, m.group("indent"), bool(m.group("keep")))
        elif _END.match(line):
            if start is None:
                _fail(index, f"END SOLUTION without BEGIN at line {i + 1}")
            out.append((start[0], i, start[1], start[2]))
            start = None
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            _fail(index, f"malformed solution marker at line {i + 1}: {line.strip()!r}")
    if start is not None:
        _fail(index, f"BEGIN SOLUTION at line {start[0] + 1} has no END SOLUTION")
    return out


def _points(meta: dict, index: int) -> float:
    p = meta.get("points")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        _fail(index, f"'points' must be a positive number, got {p!r}")
    return float(p)


def _check_id(meta: dict, index: int, assignment: str) -> str:
    tid = meta.get("id")
    if not isinstance(tid, str) or not _ID_RE.match(tid) or tid.split(".")[0] != assignment:
        _fail(index, f"'id' must look like '{assignment}.name' ([a-z0-9_]), got {tid!r}")
    return tid


def _hidden_tests(source: str, task_id: str, index: int) -> list[HiddenTest]:
    tree = ast.parse(source)
    tests, points = [], {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            args = [a.arg for a in node.args.args]
            if args != ["student", "rng"]:
                _fail(index, f"hidden test {node.name} must take (student, rng), got ({', '.join(args)})")
            doc = ast.get_docstring(node) or ""
            if not doc.strip():
                _fail(index, f"hidden test {node.name} needs a docstring (it is the feedback)")
            tests.append(node.name)
            points.setdefault(node.name, None)
            docs = points.setdefault("__doc__", {})
            docs[node.name] = doc.strip()
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            tgt = node.targets[0]
            if (isinstance(tgt, ast.Attribute) and tgt.attr == "points" and isinstance(tgt.value, ast.Name)
                    and isinstance(node.value, ast.Constant)):
                v = node.value.value
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    _fail(index, f"{tgt.value.id}.points must be a number >= 0, got {v!r}")
                points[tgt.value.id] = float(v)
    if not tests:
        _fail(index, "a hidden_test cell must define at least one test_* function")
    docs = points.pop("__doc__")
    return [HiddenTest(task_id, n, docs[n], points.get(n), index) for n in tests]


# the source's jupytext header keeps these notebook metadata and nothing version-dependent
_JUPYTEXT = {"notebook_metadata_filter": "flatlab,kernelspec,-jupytext.text_representation"}


def percent_to_notebook(text: str) -> nbformat.NotebookNode:
    """The notebook of a source's text (jupytext percent format), cell ids ``hwN-000``...

    Lossless: ``notebook_to_percent(percent_to_notebook(text)) == text`` for a source in
    jupytext's own layout (what ``notebook_to_percent`` writes).
    """
    import jupytext  # building needs it, grading does not

    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    nb.metadata.setdefault("language_info", {"name": "python"})
    prefix = nb.metadata.get("flatlab", {}).get("assignment", "cell")
    for i, cell in enumerate(nb.cells):
        cell.id = f"{prefix}-{i:03d}"
    return nb


def notebook_to_percent(nb) -> str:
    """A notebook as the text of a source file: the inverse of :func:`percent_to_notebook`.

    Each cell's ``metadata.flatlab`` is written with sorted keys, as ``nbformat`` stores it, so
    a trip through a saved ``.ipynb`` gives the same text too.
    """
    import jupytext

    nb = copy.deepcopy(nb)
    nb.metadata["jupytext"] = dict(_JUPYTEXT)
    for cell in nb.cells:
        if isinstance(cell.metadata.get("flatlab"), dict):
            cell.metadata["flatlab"] = dict(sorted(cell.metadata["flatlab"].items()))
    return jupytext.writes(nb, fmt="py:percent")


def read_source(path) -> nbformat.NotebookNode:
    """The notebook of a source file ``hwN.py`` (see :func:`percent_to_notebook`)."""
    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"source: expected a jupytext percent file hwN.py, got {str(path)!r}")
    return percent_to_notebook(path.read_text(encoding="utf-8"))


def parse_source(nb) -> Assignment:
    """Parse and validate a source notebook (an ``nbformat`` node or the path of a source ``hwN.py``)."""
    if isinstance(nb, (str, bytes)) or hasattr(nb, "__fspath__"):
        nb = read_source(nb)
    meta = nb.get("metadata", {}).get("flatlab", {})
    name = meta.get("assignment")
    if not isinstance(name, str) or not re.match(r"^[a-z0-9_]+$", name):
        raise ValueError(f"notebook metadata.flatlab.assignment must be like 'hw0', got {name!r}")
    asg = Assignment(name=name, title=str(meta.get("title", name)))
    for i, cell in enumerate(nb.cells):
        m = cell_meta(cell)
        role = m.get("role", "code") if cell.cell_type == "code" else m.get("role")
        src = cell.source
        if role is not None and role not in ROLES:
            _fail(i, f"unknown role {role!r}; expected one of {ROLES}")
        if cell.cell_type == "markdown":
            if role not in (None, "manual"):
                _fail(i, f"markdown cells may only have role 'manual', got {role!r}")
            if role == "manual":
                if src.count(_MD_BEGIN) > 1 or src.count(_MD_BEGIN) != src.count(_MD_END):
                    _fail(i, "a manual cell needs at most one <!-- BEGIN/END SOLUTION --> pair")
                prompt = src.split(_MD_BEGIN)[0].strip()
                asg.manual.append(Manual(_check_id(m, i, name), _points(m, i), prompt, i))
            elif any(k in src for k in MARKERS):
                _fail(i, "solution markers in a markdown cell without role 'manual'")
            continue
        if cell.cell_type != "code":
            continue
        if role == "manual":
            _fail(i, "role 'manual' is for markdown cells")
        regions = solution_regions(src, i)
        if regions and role not in ("task", "experiment"):
            _fail(i, f"solution regions are only allowed in task and experiment cells, not {role!r}")
        if role == "hidden_test":
            if "BEGIN SOLUTION" in src:
                _fail(i, "hidden tests cannot contain solution markers")
            tid = _check_id(m, i, name)
            asg.tests.extend(_hidden_tests(src, tid, i))
            asg.hidden_sources.append((tid, src))
        elif role == "task":
            tid = _check_id(m, i, name)
            fn = m.get("function")
            if not isinstance(fn, str) or not fn.isidentifier():
                _fail(i, f"task 'function' must be an identifier, got {fn!r}")
            defs = {n.name for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)}
            if fn not in defs:
                _fail(i, f"task {tid} names function {fn!r} but the cell does not define it")
            if not regions:
                _fail(i, f"task {tid} has no ### BEGIN SOLUTION region")
            summary = m.get("summary")
            if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
                _fail(i, f"task {tid} needs a one-line 'summary'")
            forbid = m.get("forbid", [])
            if not isinstance(forbid, list) or not all(isinstance(f, str) and "." in f for f in forbid):
                _fail(i, f"task {tid} 'forbid' must be a list of dotted names, got {forbid!r}")
            asg.tasks.append(Task(tid, fn, _points(m, i), summary.strip(), tuple(forbid), i))
        elif role == "mistake":
            asg.mistakes.append(_mistake(m, src, i, name))
        elif role == "code":
            asg.setup.append(src)
        elif role == "public_test":
            _check_id(m, i, name)
    ids = [t.id for t in asg.tasks] + [q.id for q in asg.manual]
    dup = {x for x in ids if ids.count(x) > 1}
    if dup:
        raise ValueError(f"duplicate task ids: {sorted(dup)}")
    for t in asg.tests:
        if t.task not in {x.id for x in asg.tasks}:
            raise ValueError(f"hidden test {t.name} belongs to unknown task {t.task!r}")
    names = [(t.task, t.name) for t in asg.tests]
    if len(set(n for _, n in names)) != len(names):
        raise ValueError("hidden test function names must be unique across the notebook")
    tasks = {t.id: t for t in asg.tasks}
    seen = set()
    for mk in asg.mistakes:
        if mk.task not in tasks:
            _fail(mk.cell, f"mistake {mk.name!r} belongs to unknown task {mk.task!r}")
        fn = tasks[mk.task].function
        if fn not in _defined_functions(mk.source):
            _fail(mk.cell, f"mistake {mk.task}/{mk.name} must define the task's function {fn!r}")
        if (mk.task, mk.name) in seen:
            _fail(mk.cell, f"mistake name {mk.name!r} is used twice for task {mk.task}")
        seen.add((mk.task, mk.name))
    for task in asg.tasks:
        tests = [t for t in asg.tests if t.task == task.id]
        if not tests:
            raise ValueError(f"task {task.id} has no hidden test")
        fixed = sum(t.points for t in tests if t.points is not None)
        all_fixed = all(t.points is not None for t in tests)
        if fixed > task.points + 1e-9 or (fixed < task.points - 1e-9 and all_fixed):
            raise ValueError(f"task {task.id}: explicit test points sum to {fixed}, task has {task.points}")
    return asg


def _defined_functions(src: str) -> set[str]:
    return {n.name for n in ast.parse(src).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _mistake(meta: dict, src: str, index: int, assignment: str) -> Mistake:
    """Validate one ``mistake`` cell (the task's existence is checked once all cells are read)."""
    tid = _check_id(meta, index, assignment)
    mname = meta.get("name")
    if not isinstance(mname, str) or not _NAME_RE.match(mname):
        _fail(index, f"mistake of {tid}: 'name' must match [a-z0-9_]+, got {mname!r}")
    fb = meta.get("feedback")
    if not isinstance(fb, str) or not fb.strip() or "\n" in fb.strip():
        _fail(index, f"mistake {tid}/{mname}: 'feedback' must be one non-empty line, got {fb!r}")
    if any(k in src for k in MARKERS):
        _fail(index, f"mistake {tid}/{mname}: a mistake cell cannot contain solution markers")
    try:
        ast.parse(src)
    except SyntaxError as e:
        _fail(index, f"mistake {tid}/{mname} is not valid Python: {e.msg} (line {e.lineno})")
    return Mistake(tid, mname, fb.strip(), src, index)


def submission_cells(nb, asg: Assignment) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """The cells a grader executes and the source of each task's cell.

    Returns ``([(cell index, source)], {task id: task cell source})``: every code cell
    except ``public_test``, ``experiment``, ``hidden_test`` and ``mistake`` ones (a
    submission that carries a mistake cell never runs it). A task cell is found
    by its ``metadata.flatlab.id``; if a student lost the metadata, by the cell that
    defines the task's function (the last one wins, as when running top to bottom).
    """
    run, task_src = [], {}
    fn_to_task = {t.function: t.id for t in asg.tasks}
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        m = cell_meta(cell)
        role = m.get("role", "code")
        if role in ("public_test", "experiment", *HIDDEN_ROLES):
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        run.append((i, src))
        if role == "task" and m.get("id") in {t.id for t in asg.tasks}:
            task_src[m["id"]] = src
    found_by_meta = set(task_src)
    for i, src in run:
        try:
            tree = ast.parse(strip_magics(src))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in fn_to_task:
                if fn_to_task[node.name] not in found_by_meta:
                    task_src[fn_to_task[node.name]] = src
    return run, task_src


def strip_magics(src: str) -> str:
    """A cell as plain Python: IPython's own input transformer turns magics and shell escapes
    (``%time f(x)``, ``!pip install x``, ``%%capture``) into ``get_ipython()`` calls (answered in
    the worker by :mod:`autograder.magics`). Code that already parses is returned unchanged,
    so valid Python (a continuation line starting with ``!=``, a string with ``%``) is never
    altered."""
    try:
        ast.parse(src)
        return src
    except SyntaxError:
        pass
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        return TransformerManager().transform_cell(src)
    except Exception:  # IPython could not read it either: the cell fails as it would in Jupyter
        return src
