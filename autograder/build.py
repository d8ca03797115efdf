"""``python -m autograder build``: assignment sources -> student notebooks + grading bundles.

For every source ``solutions/hwN.py`` (jupytext percent format, see FORMAT.md) it writes

- ``assignments/hwN.ipynb``: solution regions replaced by stubs, hidden-test cells removed,
  outputs cleared, cell metadata reduced to ``{"flatlab": {"role", "id"}}`` so the grader
  can find task cells; no marker text, no solution line, no hidden test.
- ``<bundles>/hwN/bundle.json`` (mode 0600, outside ``assignments/``): the task registry
  (ids, functions, points, forbid lists), the hidden tests with their points and
  docstrings, and the notebook's plain setup cells.
- ``<bundles>/hwN/flatlab_view/flatlab/``: the restricted copy of flatlab that submissions
  run against (forbidden flatlab names and their private cores replaced by stubs that
  raise; see :mod:`autograder.restrict`).
- ``build/solutions/hwN.ipynb`` (not committed): the source as a notebook, solutions and
  hidden tests included, to run or to grade as a submission.

Output is deterministic (sorted-key JSON, no timestamps), so ``--check`` can compare the
committed ``assignments/`` with a fresh build.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

from . import restrict
from .notebook import HIDDEN_ROLES, MARKERS, Assignment, cell_meta, parse_source, read_source, solution_regions, submission_cells

__all__ = ["STUB_WIDTH", "points_text", "raise_lines", "grade_id", "nbgrader_meta", "rules_markdown", "autograder_cell_text", "nbgrader_cells", "student_notebook", "bundle_dict",
           "find_leaks", "mistake_leaks", "solution_notebook", "build_one", "write_atomic", "main"]

BUNDLE_FORMAT = 1
_MD_BEGIN, _MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


STUB_WIDTH = 88  # longest generated stub line (JupyterLab's default ruler)


def points_text(points: float) -> str:
    """``3 points``, ``1 point``, ``2.5 points``."""
    return f"{points:g} point" + ("" if points == 1 else "s")


def raise_lines(indent: str, message: str, width: int = STUB_WIDTH) -> list[str]:
    """``raise NotImplementedError("<message>")``, wrapped over lines of at most ``width``
    characters where it is longer (implicit string concatenation inside the parentheses,
    continuation lines aligned after the opening parenthesis; a single word longer than a
    line stays whole)."""
    lead = indent + "raise NotImplementedError("
    one = lead + json.dumps(message, ensure_ascii=False) + ")"
    if len(one) <= width:
        return [one]
    pieces = re.findall(r"\S+\s*|\s+", message)
    pad = " " * len(lead)
    lines, cur = [], ""
    for k, piece in enumerate(pieces):
        last = k == len(pieces) - 1
        room = width - len(lead if not lines else pad) - (1 if last else 0)
        if cur and len(json.dumps(cur + piece, ensure_ascii=False)) > room:
            lines.append(cur)
            cur = piece
        else:
            cur += piece
    lines.append(cur)
    out = [(lead if i == 0 else pad) + json.dumps(x, ensure_ascii=False) for i, x in enumerate(lines)]
    out[-1] += ")"
    return out


def _stub(source: str, task_id: str, summary: str, experiment: bool, index: int,
          points: float | None = None) -> str:
    lines = source.split("\n")
    for begin, end, indent, keep in reversed(solution_regions(source, index)):
        if keep:
            new = lines[begin + 1:end]
        else:
            todo = f"# TODO: Task {task_id}" + (" (uses your functions above)" if experiment else
                                                 f" ({points_text(points)})" if points is not None else "")
            new = [indent + todo, *raise_lines(indent, f"Task {task_id}: {summary}")]
        lines[begin:end + 1] = new
    return "\n".join(lines)


def _manual_stub(source: str, points: float | None = None) -> str:
    note = f"*({points_text(points)}, graded by hand)*" if points is not None else ""
    if _MD_BEGIN not in source:
        return source.rstrip() + (f"\n\n{note}" if note else "")
    head, rest = source.split(_MD_BEGIN, 1)
    tail = rest.split(_MD_END, 1)[1]
    if note:
        head = head.rstrip() + f"\n\n{note}\n\n"
    return head + "_Your answer here._" + tail


def grade_id(task_id: str, suffix: str = "") -> str:
    """nbgrader's ``grade_id`` of a task: nbgrader allows only ``[a-zA-Z0-9_-]``, so ``hw1.x -> hw1-x``."""
    return task_id.replace(".", "-") + (f"-{suffix}" if suffix else "")


def nbgrader_meta(gid: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    """One cell's ``metadata.nbgrader`` (schema 3)."""
    m = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3,
         "solution": solution, "task": False}
    if points is not None:
        m["points"] = float(points)
    return m


def autograder_cell_text(task) -> str:
    """The visible text of a task's nbgrader autograder-tests cell (its hidden tests are not in it)."""
    return (f"# Autograder tests for {task.id} ({task.points:g} points) run in this cell when the\n"
            "# notebook is graded with nbgrader; leave the cell as it is.")


def nbgrader_cells(nb, asg: Assignment) -> dict[int, dict]:
    """``metadata.nbgrader`` of the source cells that nbgrader tracks, by cell index.

    Shared by the student copy and the nbgrader export, so a notebook made from either one
    grades under ``nbgrader autograde``: task -> solution cell ``<id>-code``; public test ->
    read-only ``<id>-check``; the first hidden-test cell of a task -> the task's autograder
    cell ``<id>`` (its points); manual -> graded answer ``<id>``; an experiment with solution
    regions -> solution cell.
    """
    tasks, manual = {t.id: t for t in asg.tasks}, {q.id: q for q in asg.manual}
    out, used, n_exp = {}, set(), 0
    for i, cell in enumerate(nb.cells):
        meta = cell_meta(cell)
        role, tid = meta.get("role"), meta.get("id")
        m = None
        if cell.cell_type == "markdown" and role == "manual":
            m = nbgrader_meta(grade_id(tid), grade=True, solution=True, points=manual[tid].points)
        elif cell.cell_type != "code":
            pass
        elif role == "task":
            m = nbgrader_meta(grade_id(tid, "code"), solution=True)
        elif role == "public_test":
            k = sum(1 for u in used if u == grade_id(tid, "check") or u.startswith(grade_id(tid, "check") + "_"))
            m = nbgrader_meta(grade_id(tid, "check") + (f"_{k + 1}" if k else ""), locked=True)
        elif role == "hidden_test" and grade_id(tid) not in used:
            m = nbgrader_meta(grade_id(tid), grade=True, locked=True, points=tasks[tid].points)
        elif role == "experiment":
            n_exp += 1
            gid = grade_id(tid) if tid and grade_id(tid) not in used else f"{asg.name}-experiment{n_exp}"
            if "### BEGIN SOLUTION" in cell.source:  # nbgrader would replace a region-less solution cell whole
                m = nbgrader_meta(gid, solution=True)
        if m:
            out[i] = m
            used.add(m["grade_id"])
    return out


def rules_markdown(asg: Assignment, unavailable: dict | None) -> str:
    """The student notebook's generated note on what grading removes and what it flags."""
    lines = []
    if unavailable and unavailable.get("removed"):
        names = sorted({r["name"] for r in unavailable["removed"] if not r["name"].rsplit(".", 1)[1].startswith("_")})
        lines.append(f"**While {asg.name} is graded** these flatlab functions are not available (calling "
                     "one raises `RuntimeError`): the tasks ask you to write them yourself, so they are "
                     "removed from the copy of flatlab your notebook runs against, together with the "
                     "private code that computes the same thing: "
                     + ", ".join(f"`{n}`" for n in names) + ". Use them freely to check your work "
                     "while you develop.")
        if unavailable.get("collateral"):
            lines.append("These call one of them and may raise too while it is graded: "
                         + ", ".join(f"`{n}`" for n in unavailable["collateral"]) + ".")
    flags = [(t.id, [n for n in t.forbid if not restrict.is_flatlab_name(n)]) for t in asg.tasks]
    flags = [(tid, ns) for tid, ns in flags if ns]
    if flags:
        lines.append("Some tasks ask you not to use a general tool; using it costs no points, but it is "
                     "flagged for a person to read: "
                     + "; ".join(f"{tid}: " + ", ".join(f"`{n}`" for n in ns) for tid, ns in flags) + ".")
    return "\n\n".join(lines)


def _rules_cell(asg: Assignment, text: str):
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = f"{asg.name}-rules"
    return cell


def student_notebook(nb, asg: Assignment, unavailable: dict | None = None):
    """The student copy of a parsed source notebook (a new ``nbformat`` node).

    Besides ``metadata.flatlab`` (what the secure grader reads) it carries what nbgrader and
    otter need to grade a copy of it: :func:`nbgrader_cells` metadata, one read-only
    autograder cell per task where its hidden tests were (nbgrader puts them back when
    grading), ``metadata.otter.assignment_name``, and the tag ``otter_ignore`` on experiments.
    """
    out = nbformat.v4.new_notebook()
    out.metadata = {k: copy.deepcopy(v) for k, v in nb.metadata.items()
                    if k in ("kernelspec", "language_info")}
    out.metadata["flatlab"] = {"assignment": asg.name, "title": asg.title}
    out.metadata["otter"] = {"assignment_name": asg.name}
    summaries = {t.id: t.summary for t in asg.tasks}
    nbg = nbgrader_cells(nb, asg)
    rules = rules_markdown(asg, unavailable)
    for i, cell in enumerate(nb.cells):
        if i == 1 and rules:  # after the title cell
            out.cells.append(_rules_cell(asg, rules))
        meta = cell_meta(cell)
        role = meta.get("role")
        if role == "hidden_test" and i in nbg:
            new = nbformat.v4.new_code_cell(autograder_cell_text(asg.task(meta["id"])))
            new.id = f"{cell.get('id') or f'cell-{i}'}-tests"
            new.metadata = {"deletable": False, "editable": False, "nbgrader": nbg[i]}
            out.cells.append(new)
            continue
        if role in HIDDEN_ROLES or cell.cell_type not in ("code", "markdown"):
            continue
        keep_meta = {"role": role} if role else {}
        if meta.get("id") and role in ("task", "public_test", "manual", "experiment"):
            keep_meta["id"] = meta["id"]
        src = cell.source
        if cell.cell_type == "code":
            if role == "task":
                src = _stub(src, meta["id"], summaries[meta["id"]], False, i, asg.task(meta["id"]).points)
            elif role == "experiment":
                eid = meta.get("id") or f"{asg.name}.experiment"
                src = _stub(src, eid, "run this once your functions above work", True, i)
            new = nbformat.v4.new_code_cell(src)
        else:
            manual = {q.id: q.points for q in asg.manual}
            new = nbformat.v4.new_markdown_cell(_manual_stub(src, manual[meta["id"]]) if role == "manual" else src)
        new.id = cell.get("id") or f"cell-{i}"
        new.metadata = {"flatlab": keep_meta} if keep_meta else {}
        if i in nbg:
            new.metadata["nbgrader"] = nbg[i]
        if role == "experiment":
            new.metadata["tags"] = ["otter_ignore"]  # otter run skips it, as our grader does
        out.cells.append(new)
    return out


def bundle_dict(asg: Assignment, source_text: str, unavailable: dict | None = None, source_nb=None) -> dict:
    """The grading bundle: everything the trusted grader needs, nothing the student sees."""
    pts = asg.test_points()
    unavailable = unavailable or {"removed": [], "collateral": []}
    return {
        "flatlab_view": "flatlab_view",  # relative to the bundle's folder: <view>/flatlab/
        "removed": unavailable["removed"],  # [{name, reason}] stubbed in the view
        "collateral": unavailable["collateral"],  # kept public names that call a removed definition
        "format": BUNDLE_FORMAT,
        "assignment": asg.name,
        "title": asg.title,
        "source_sha256": hashlib.sha256(source_text.encode()).hexdigest(),
        "tasks": [
            {"id": t.id, "function": t.function, "points": t.points, "summary": t.summary,
             "forbid": list(t.forbid)} for t in asg.tasks
        ],
        "manual": [{"id": q.id, "points": q.points, "prompt": q.prompt} for q in asg.manual],
        "tests": [
            {"task": t.task, "name": t.name, "doc": t.doc, "points": pts[(t.task, t.name)]}
            for t in asg.tests
        ],
        "hidden": [{"task": tid, "source": src} for tid, src in asg.hidden_sources],
        "setup": list(asg.setup),
        # registered wrong versions of the tasks' functions (FORMAT.md "Known mistakes"), and
        # the reference solution's graded cells they run after when a hidden test is diagnosed
        "mistakes": [{"task": m.task, "name": m.name, "feedback": m.feedback, "source": m.source}
                     for m in asg.mistakes],
        "reference": _reference_cells(source_nb) if asg.mistakes and source_nb is not None else [],
    }


def _reference_cells(source_nb) -> list[str]:
    """The reference solution's graded cells (setup and task cells, solutions in), in order."""
    asg = parse_source(source_nb)
    return [src for _, src in submission_cells(source_nb, asg)[0]]


def solution_notebook(nb):
    """The solution notebook ``build/solutions/hwN.ipynb``: the source without its mistake cells
    (they are never run as part of the solution), every other cell and id as in the source."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if not (c.cell_type == "code" and cell_meta(c).get("role") == "mistake")]
    return out


def _solution_lines(nb) -> set[str]:
    """Stripped lines inside solution regions that appear nowhere in the visible cells."""
    inside, outside = set(), set()
    for i, cell in enumerate(nb.cells):
        role = cell_meta(cell).get("role")
        lines = cell.source.split("\n")
        if cell.cell_type == "code" and role in ("task", "experiment"):
            regions = solution_regions(cell.source, i)
            mask = set()
            for b, e, _, keep in regions:
                if not keep:
                    mask.update(range(b + 1, e))
            for k, ln in enumerate(lines):
                (inside if k in mask else outside).add(ln.strip())
        elif cell.cell_type == "markdown" and role == "manual" and _MD_BEGIN in cell.source:
            head, rest = cell.source.split(_MD_BEGIN, 1)
            ans, tail = rest.split(_MD_END, 1)
            inside.update(x.strip() for x in ans.split("\n"))
            outside.update(x.strip() for x in (head + tail).split("\n"))
        elif role not in HIDDEN_ROLES:
            outside.update(x.strip() for x in lines)
    return {x for x in inside - outside if len(x) >= 8 and not x.startswith("#")}


def _visible_source(nb) -> tuple[set[str], set[str]]:
    """(stripped lines, names defined) of what a student sees of a source: every cell but
    hidden tests and mistakes, solution regions left out."""
    lines, names = set(), set()
    for i, cell in enumerate(nb.cells):
        role = cell_meta(cell).get("role")
        if role in HIDDEN_ROLES:
            continue
        src_lines = cell.source.split("\n")
        if cell.cell_type == "code" and role in ("task", "experiment"):
            mask = set()
            for b, e, _, keep in solution_regions(cell.source, i):
                if not keep:
                    mask.update(range(b, e + 1))
            src_lines = [ln for k, ln in enumerate(src_lines) if k not in mask]
        lines.update(ln.strip() for ln in src_lines)
        names.update(re.findall(r"^\s*def\s+([A-Za-z_]\w*)", "\n".join(src_lines), re.M))
    return lines, names


def mistake_leaks(visible_lines: set[str], student_text: str, source_nb, asg: Assignment) -> list[str]:
    """What of the registered mistakes appears in a student notebook: a mistake cell's
    distinctive lines (>= 8 characters, not comments, appearing nowhere a student sees in the
    source), the helpers it defines under names of its own, and its feedback sentence (unless
    the source shows it to students anyway)."""
    if not asg.mistakes:
        return []
    seen_lines, seen_names = _visible_source(source_nb)
    out = []
    for mk in asg.mistakes:
        tag = f"{mk.task}/{mk.name}"
        for ln in mk.source.split("\n"):
            s = ln.strip()
            if len(s) >= 8 and not s.startswith("#") and s not in seen_lines and s in visible_lines:
                out.append(f"mistake {tag} line {s!r}")
        for fn in re.findall(r"^\s*def\s+([A-Za-z_]\w*)", mk.source, re.M):
            if fn not in seen_names and re.search(rf"\bdef\s+{re.escape(fn)}\s*\(", student_text):
                out.append(f"mistake {tag} helper {fn}")
        shown = any(mk.feedback in c.source for c in source_nb.cells if cell_meta(c).get("role") not in HIDDEN_ROLES)
        if not shown and (mk.feedback in student_text or json.dumps(mk.feedback)[1:-1] in student_text):
            out.append(f"mistake {tag} feedback")
    return out


def find_leaks(student_text: str, source_nb, asg: Assignment) -> list[str]:
    """What of the hidden material appears in a student notebook's text (empty = clean)."""
    # lines are compared whole (stripped): `return lam` must not match inside `return lambda x: x`
    visible = {ln.strip() for c in nbformat.reads(student_text, as_version=4).cells for ln in c.source.split("\n")}
    leaks = [f"marker {m!r}" for m in MARKERS if m in student_text]
    leaks += [f"hidden test {t.name}" for t in asg.tests if t.name in student_text]
    for _, src in asg.hidden_sources:
        for ln in src.split("\n"):
            s = ln.strip()
            if len(s) >= 25 and not s.startswith(("#", '"""', "import ", "from ")) and s in visible:
                leaks.append(f"hidden-test line {s!r}")
    leaks += [f"solution line {ln!r}" for ln in sorted(_solution_lines(source_nb)) if ln in visible]
    cells = nbformat.reads(student_text, as_version=4).cells
    leaks += [f"mistake cell {i}" for i, c in enumerate(cells) if cell_meta(c).get("role") == "mistake"]
    text = "\n".join(c.source for c in cells)
    leaks += mistake_leaks(visible, text, source_nb, asg)
    return leaks


def build_one(source: Path, out_dir: Path | None, bundles: Path | None,
              notebooks: Path | None = None, check_view: bool = False) -> tuple[str, str, dict]:
    """Build one source ``hwN.py``; returns (name, student notebook text, bundle).

    Writes the files when ``out_dir`` / ``bundles`` / ``notebooks`` (the solution notebook)
    are given. Raises ``ValueError`` if the source is malformed, a forbid name cannot be
    removed, the student copy would leak anything, or (``check_view``) the reference solution
    does not keep full marks against the restricted flatlab (naming the task and the name).
    """
    nb = read_source(source)
    source_text = Path(source).read_text(encoding="utf-8")
    asg = parse_source(nb)
    if Path(source).stem != asg.name:
        raise ValueError(f"{source}: file name must match metadata.flatlab.assignment {asg.name!r}")
    try:
        removed = restrict.plan({t.id: list(t.forbid) for t in asg.tasks}, asg.name)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    unavailable = {"removed": [r.as_dict() for r in removed], "collateral": restrict.collateral(removed)}
    student = student_notebook(nb, asg, unavailable)
    nbformat.validate(student)
    text = nbformat.writes(student) + "\n"
    leaks = find_leaks(text, nb, asg)
    if leaks:
        raise ValueError(f"{source}: the student notebook would leak: {'; '.join(leaks[:5])}")
    if notebooks is not None:
        nbformat.validate(nb)
        sol = solution_notebook(nb)
        nbformat.validate(sol)
        write_atomic(Path(notebooks) / f"{asg.name}.ipynb", nbformat.writes(sol) + "\n")
    bundle = bundle_dict(asg, source_text, unavailable, nb)
    if out_dir is not None:
        write_atomic(Path(out_dir) / f"{asg.name}.ipynb", text)
    if bundles is not None:
        bdir = Path(bundles) / asg.name
        bdir.mkdir(parents=True, exist_ok=True)
        os.chmod(bdir, 0o700)
        restrict.write_view(bdir / bundle["flatlab_view"], removed, asg.name)
        write_atomic(bdir / "bundle.json", json.dumps(bundle, indent=1, sort_keys=True) + "\n", mode=0o600)
    if check_view:
        with tempfile.TemporaryDirectory() as d:
            restrict.write_view(Path(d), removed, asg.name)
            cells = [src for _, src in submission_cells(nb, asg)[0]]
            problems = restrict.check_solution(cells, bundle, Path(d))
        if problems:
            raise ValueError(f"{source}: " + "; ".join(problems[:5]))
    return asg.name, text, bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder build", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--solutions", default="solutions", help="folder of the sources hwN.py (jupytext percent)")
    p.add_argument("--out", default="assignments", help="folder for the student notebooks")
    p.add_argument("--bundles", default="build/grading", help="folder for the grading bundles")
    p.add_argument("--notebooks", default="build/solutions",
                   help="folder for the solution notebooks (sources as notebooks, to run or grade)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if --out differs from a fresh build, anything leaks, or a "
                        "reference solution loses points against the restricted flatlab")
    a = p.parse_args(argv)
    sources = sorted(Path(a.solutions).glob("*.py"))
    if not sources:
        print(f"no sources *.py in {a.solutions}", file=sys.stderr)
        return 1
    drift = []
    for src in sources:
        try:
            name, text, _ = build_one(src, *((None, None, None) if a.check else (a.out, a.bundles, a.notebooks)),
                                      check_view=a.check)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if a.check:
            target = Path(a.out) / f"{name}.ipynb"
            if not target.exists():
                drift.append(f"{target}: missing")
            elif target.read_text(encoding="utf-8") != text:
                drift.append(f"{target}: differs from a fresh build of {src}")
        else:
            print(f"built {a.out}/{name}.ipynb, {a.bundles}/{name}/bundle.json and {a.notebooks}/{name}.ipynb")
    if a.check:
        built = {s.stem for s in sources}
        drift += [f"{p}: has no source in {a.solutions}" for p in sorted(Path(a.out).glob("*.ipynb"))
                  if p.stem not in built]
        for d in drift:
            print(f"drift: {d}", file=sys.stderr)
        if drift:
            print("run `python -m autograder build` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(sources)} assignment(s) up to date, no leaks, solutions pass against their restricted flatlab")
    return 0
