"""Export the source notebooks as otter-grader master notebooks.

``python -m autograder export otter --out DIR [--assignments hw0 hw1] [--seed N]`` writes
``DIR/<hw>/<hw>.ipynb``, an otter-assign master notebook. Then, without Docker::

    otter assign DIR/hw0/hw0.ipynb DIR/hw0/dist          # runs the solution against all tests
    otter run -a DIR/hw0/dist/autograder/hw0-autograder_*.zip submission.ipynb

Layout of a master notebook:

- a ``# ASSIGNMENT CONFIG`` raw cell: exception-based tests kept in the notebook metadata,
  no export/PDF cell, and a grading seed (otter's ``seed.variable`` sets
  ``FLATLAB_GRADING_SEED`` in every graded cell; the hidden tests read it);
- one question per task, named by the task id, with its points: the task cell in a
  solution block (``### BEGIN SOLUTION`` becomes ``# BEGIN SOLUTION NO PROMPT`` followed by
  a ``# BEGIN PROMPT`` block holding the FORMAT stub), then its tests: the public self-check
  as a 0-point public test case and every hidden ``test_*`` as a hidden test case worth its
  share of the points (its docstring, never its code, is the failure message);
- one manual question per ``manual`` cell;
- experiment cells tagged ``otter_ignore`` (not run while grading), their regions stubbed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import nbformat

from autograder._export_common import (
    REPO, SEED_VARIABLE, build_wheel, clean_copy, empty_like, load_source, source_notebooks, string_literal, stub_lines,
    requirements, write_notebook_atomic,
)
from autograder.notebook import cell_meta

__all__ = ["otter_notebook", "export", "main"]

_MD_BEGIN, _MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"


def _raw(text: str):
    return nbformat.v4.new_raw_cell(text)


def _yaml(obj) -> str:
    """YAML for the config cells: JSON is valid YAML, one key per line keeps it readable."""
    return "\n".join(f"{k}: {json.dumps(v)}" for k, v in obj.items())


def _otter_regions(source: str, stub: list[str]) -> str:
    """``### BEGIN/END SOLUTION`` -> otter markers, the student stub in a prompt block."""
    out = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        ind = line[: len(line) - len(stripped)]
        if stripped.startswith("### BEGIN SOLUTION"):
            out.append(ind + "# BEGIN SOLUTION NO PROMPT")
        elif stripped.startswith("### END SOLUTION"):
            out += [ind + "# END SOLUTION", ind + '""" # BEGIN PROMPT']
            out += [ind + s for s in stub]
            out.append(ind + '""" # END PROMPT')
        else:
            out.append(line)
    return "\n".join(out)


def _test_config(points, hidden: bool) -> str:
    cfg = {"hidden": hidden}
    if points is not None:
        cfg["points"] = points
    return '""" # BEGIN TEST CONFIG\n' + _yaml(cfg) + '\n""" # END TEST CONFIG\n'


def _public_case(task_id: str, source: str, before: list[str]) -> str:
    """The self-check as a test case. It runs in a copy of the notebook's globals after the
    self-checks above it (their failures ignored): in the notebook a self-check may use what an
    earlier one defined (hw1's ``_X``), and otter runs the checks in its own order."""
    return _test_config(0, False) + "\n".join([
        "def test_self_check(env):",
        f'    """The notebook\'s self-check for {task_id}."""',
        "    import contextlib, io",
        "    ns = dict(env)",
        "    earlier = [",
        *[f"        {string_literal(b)}," for b in before],
        "    ]",
        "    for code in earlier:",
        "        try:",
        "            with contextlib.redirect_stdout(io.StringIO()):",
        '                exec(compile(code, "<earlier self-check>", "exec"), ns)',
        "        except Exception:  # noqa: BLE001 - only its definitions matter here",
        "            pass",
        f"    source = {string_literal(source)}",
        f'    exec(compile(source, "<self-check {task_id}>", "exec"), ns)',
    ])


def _hidden_case(task, test: str, doc: str, points, source: str, seed: int) -> str:
    return _test_config(points, True) + "\n".join([
        f"def {test}(env):",
        f"    {string_literal(doc)}",
        f"    source = {string_literal(source)}",
        "    from autograder._export_common import run_one_test",
        f"    run_one_test(env, task={task.id!r}, test={test!r}, seed={seed!r},",
        f"                 forbid={list(task.forbid)!r}, source=source)",
    ])


def otter_notebook(path: str | Path, *, seed: int = 0, wheel: str | None = None, requires=()):
    """The otter master notebook for one FORMAT source notebook. Returns (name, notebook).

    ``wheel``: file name of a flatlab wheel next to the master notebook; the autograder zip
    then carries it and its environment installs it with ``requires`` (torch and the rest).
    """
    src, asg, tasks, manual, hidden = load_source(path)
    shares = asg.test_points()
    public, order = {}, []  # self-checks by task, and all of them in notebook order
    for cell in src.cells:
        m = cell_meta(cell)
        if cell.cell_type == "code" and m.get("role") == "public_test":
            public.setdefault(m["id"], []).append((len(order), cell.source))
            order.append(cell.source)
    config = {"name": asg.name, "init_cell": True, "check_all_cell": False, "export_cell": False,
              "generate": {"pdf": False}, "tests": {"files": False, "ok_format": False},
              "seed": {"variable": SEED_VARIABLE, "autograder_value": seed, "student_value": seed},
              "strip_solutions_from_all_cells": True}
    if wheel:  # Gradescope unpacks the zip to /autograder/source, its autograder_files to files/
        config["autograder_files"] = [wheel]
        config["requirements"] = [*requires, f"/autograder/source/files/{wheel}"]
    nb = empty_like(src)
    cells = [_raw("# ASSIGNMENT CONFIG\n" + _yaml(config))]
    for cell in src.cells:
        meta = cell_meta(cell)
        role, tid = meta.get("role"), meta.get("id")
        new = clean_copy(cell)
        if cell.cell_type == "markdown" and role == "manual":
            q = manual[tid]
            before, _, rest = cell.source.partition(_MD_BEGIN)
            answer, _, after = rest.partition(_MD_END)
            head = _yaml({"name": tid, "manual": True, "points": q.points})
            cells.append(_raw("# BEGIN QUESTION\n" + head))
            cells.append(nbformat.v4.new_markdown_cell(before.strip()))
            answer_cell = nbformat.v4.new_markdown_cell(answer.strip() or "_(no model answer)_")
            cells += [_raw("# BEGIN SOLUTION"), answer_cell,
                      _raw("# END SOLUTION"), _raw("# END QUESTION")]
            if after.strip():
                cells.append(nbformat.v4.new_markdown_cell(after.strip()))
            continue
        if cell.cell_type == "code" and role == "mistake":
            continue  # registered wrong versions stay in the secure grader's bundle
        if cell.cell_type != "code" or role in (None, "code"):
            cells.append(new)
        elif role == "task":
            t = tasks[tid]
            new.source = _otter_regions(cell.source, stub_lines(tid, t.summary))
            names = [x for x in asg.tests if x.task == tid]
            cells += [_raw("# BEGIN QUESTION\n" + _yaml({"name": tid, "points": t.points})),
                      _raw("# BEGIN SOLUTION"), new, _raw("# END SOLUTION"), _raw("# BEGIN TESTS")]
            for k, (pos, code) in enumerate(public.get(tid, [])):
                cells.append(nbformat.v4.new_code_cell(_public_case(tid, code, order[:pos]).replace(
                    "def test_self_check(", f"def test_self_check{k + 1 if k else ''}(")))
            for j, x in enumerate(names):
                # the last test takes the remainder, so float shares always sum to the total
                pts = shares[(tid, x.name)] if j < len(names) - 1 else None
                cells.append(nbformat.v4.new_code_cell(_hidden_case(t, x.name, x.doc, pts, hidden, seed)))
            cells += [_raw("# END TESTS"), _raw("# END QUESTION")]
        elif role == "experiment":
            todo = f"Task {tid} (uses your functions above)" if tid else "(uses your functions above)"
            new.source = _otter_regions(cell.source, [f"# TODO: {todo}",
                                                      f"raise NotImplementedError({todo!r})"])
            new.metadata.setdefault("tags", [])
            if "otter_ignore" not in new.metadata["tags"]:
                new.metadata["tags"].append("otter_ignore")
            cells.append(new)
        # public_test and hidden_test cells were placed in their task's question
    nb.cells = cells
    return asg.name, nb


def export(out: str | Path, *, solutions: str | Path = REPO / "solutions",
           assignments: list[str] | None = None, seed: int = 0) -> list[Path]:
    """Write ``out/<hw>/<hw>.ipynb`` and the flatlab wheel next to it for each source; return the
    written files."""
    out, written = Path(out), []
    paths = source_notebooks(solutions, assignments)
    with tempfile.TemporaryDirectory(prefix="flatlab-otter-") as tmp:
        wheel = build_wheel(Path(tmp))
        torch, reqs = requirements(wheel)
        for path in paths:
            name, nb = otter_notebook(path, seed=seed, wheel=wheel.name, requires=[torch, *reqs])
            target = out / name / f"{name}.ipynb"
            write_notebook_atomic(target, nb)
            shutil.copyfile(wheel, target.parent / wheel.name)
            written += [target, target.parent / wheel.name]
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder export otter",
                                description="Write otter-assign master notebooks from solutions/.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder for <hw>/<hw>.ipynb")
    p.add_argument("--solutions", type=Path, default=REPO / "solutions", help="folder of the sources hwN.py")
    p.add_argument("--assignments", nargs="+", default=None, help="names of solutions/<name>.py, e.g. hw0 hw1 (None: all)")
    p.add_argument("--seed", type=int, default=0, help="grading seed of the hidden tests")
    a = p.parse_args(argv)
    for f in export(a.out, solutions=a.solutions, assignments=a.assignments, seed=a.seed):
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
