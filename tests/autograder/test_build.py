"""Build: the student notebook carries no solution, no hidden test and no marker; the
bundle holds the registry; --check detects drift; malformed sources are rejected."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import nbformat
import pytest
from agfixtures import FIXTURE, REPO

from autograder import build as build_mod
from autograder.build import build_one, find_leaks, main as build_main
from autograder.notebook import notebook_to_percent, parse_source, percent_to_notebook, read_source


def test_student_notebook_has_no_solution_or_hidden_material(built):
    root, nb, _ = built
    text = (root / "assignments" / "hwfix.ipynb").read_text()
    for bad in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN", "def test_", "assert_close", "x ** 2",
                "(diff * diff).mean()", "p.numel() for p", "quadratically"):
        assert bad not in text, bad
    src = read_source(FIXTURE)
    assert find_leaks(text, src, parse_source(src)) == []
    roles = [c.metadata.get("flatlab", {}).get("role") for c in nb.cells]
    assert "hidden_test" not in roles and roles.count("task") == 3
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    task = next(c for c in nb.cells if c.metadata.get("flatlab", {}).get("id") == "hwfix.mse"
                and c.metadata["flatlab"]["role"] == "task")
    assert task.metadata == {"flatlab": {"role": "task", "id": "hwfix.mse"},  # + what nbgrader needs
                             "nbgrader": {"grade": False, "grade_id": "hwfix-mse-code", "locked": False,
                                          "schema_version": 3, "solution": True, "task": False}}
    assert '    # TODO: Task hwfix.mse (3 points)\n    raise NotImplementedError("Task hwfix.mse: mean of the squared' \
        in task.source
    manual = next(c for c in nb.cells if c.metadata.get("flatlab", {}).get("role") == "manual")
    assert "_Your answer here._" in manual.source and "Why does a squared loss" in manual.source
    assert "\n\n*(2 points, graded by hand)*\n\n_Your answer here._" in manual.source
    ns = {}
    exec(compile(task.source, "stub", "exec"), ns)  # the stub is valid Python and fails loudly
    with pytest.raises(NotImplementedError, match="Task hwfix.mse"):
        ns["mse_loss"](1, 2)


def test_bundle_registry(built):
    root, _, bundles = built
    path = bundles / "hwfix" / "bundle.json"
    b = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert [(t["id"], t["function"], t["points"]) for t in b["tasks"]] == [
        ("hwfix.square", "square", 2.0), ("hwfix.mse", "mse_loss", 3.0), ("hwfix.nparams", "num_params", 2.0)]
    assert b["tasks"][2]["forbid"] == ["flatlab.models.flatten_params"]
    pts = {t["name"]: t["points"] for t in b["tests"]}
    assert pts == {"test_square_array": 1, "test_square_tensor": 1, "test_mse_random": 2, "test_mse_zero": 1,
                   "test_nparams_bias": 1, "test_nparams_sim_bn": 1}
    assert b["manual"] == [{"id": "hwfix.reflect", "points": 2.0,
                            "prompt": "**Question.** Why does a squared loss punish large errors more?"}]
    assert b["setup"] == ["import numpy as np\nimport torch\nimport flatlab"]
    assert "rng.normal" in b["hidden"][0]["source"]


def test_build_is_deterministic_and_check_detects_drift(tmp_path):
    (tmp_path / "solutions").mkdir()
    shutil.copy(FIXTURE, tmp_path / "solutions" / "hwfix.py")
    args = ["--solutions", str(tmp_path / "solutions"), "--out", str(tmp_path / "asg"),
            "--bundles", str(tmp_path / "b"), "--notebooks", str(tmp_path / "nb")]
    assert build_main(args + ["--check"]) == 1  # nothing built yet: missing
    assert not (tmp_path / "asg").exists() and not (tmp_path / "b").exists() and not (tmp_path / "nb").exists()
    assert build_main(args) == 0
    first = (tmp_path / "asg" / "hwfix.ipynb").read_bytes()
    bfirst = (tmp_path / "b" / "hwfix" / "bundle.json").read_bytes()
    nfirst = (tmp_path / "nb" / "hwfix.ipynb").read_bytes()
    assert build_main(args) == 0
    assert (tmp_path / "asg" / "hwfix.ipynb").read_bytes() == first
    assert (tmp_path / "b" / "hwfix" / "bundle.json").read_bytes() == bfirst
    assert (tmp_path / "nb" / "hwfix.ipynb").read_bytes() == nfirst
    assert build_main(args + ["--check"]) == 0
    nb = nbformat.read(str(tmp_path / "asg" / "hwfix.ipynb"), as_version=4)
    nb.cells[1].source += "\n# hand edit"
    nbformat.write(nb, str(tmp_path / "asg" / "hwfix.ipynb"))
    assert build_main(args + ["--check"]) == 1
    (tmp_path / "asg" / "hwfix.ipynb").write_bytes(first)
    (tmp_path / "asg" / "hw9.ipynb").write_bytes(first)  # no source: drift
    assert build_main(args + ["--check"]) == 1


def test_cli_runs_as_module(tmp_path):
    (tmp_path / "solutions").mkdir()
    shutil.copy(FIXTURE, tmp_path / "solutions" / "hwfix.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "autograder", "build", "--check"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 1 and "missing" in p.stderr
    p = subprocess.run([sys.executable, "-m", "autograder", "build"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0 and (tmp_path / "assignments" / "hwfix.ipynb").exists()
    assert (tmp_path / "build" / "grading" / "hwfix" / "bundle.json").exists()
    assert (tmp_path / "build" / "solutions" / "hwfix.ipynb").exists()  # the solution notebook, by default
    p = subprocess.run([sys.executable, "-m", "autograder", "frobnicate"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "invalid choice: 'frobnicate'" in p.stderr


def _source():
    return read_source(FIXTURE)


def _cell(nb, role, tid):
    return next(c for c in nb.cells if c.metadata.get("flatlab", {}).get("role") == role
                and c.metadata["flatlab"].get("id") == tid)


@pytest.mark.parametrize("mutate, message", [
    (lambda nb: _cell(nb, "task", "hwfix.square").metadata["flatlab"].update(points=0), "points"),
    (lambda nb: _cell(nb, "task", "hwfix.square").metadata["flatlab"].update(id="hw1.square"), "'id'"),
    (lambda nb: _cell(nb, "task", "hwfix.square").metadata["flatlab"].update(function="cube"), "does not define"),
    (lambda nb: _cell(nb, "task", "hwfix.square").metadata["flatlab"].pop("summary"), "summary"),
    (lambda nb: setattr(_cell(nb, "task", "hwfix.square"), "source",
                        _cell(nb, "task", "hwfix.square").source.replace("    ### END SOLUTION", "")), "no END"),
    (lambda nb: setattr(_cell(nb, "hidden_test", "hwfix.square"), "source",
                        "def test_x(student):\n    'doc'\n"), "(student, rng)"),
    (lambda nb: setattr(_cell(nb, "hidden_test", "hwfix.square"), "source",
                        "def test_x(student, rng):\n    pass\n"), "docstring"),
    (lambda nb: setattr(_cell(nb, "hidden_test", "hwfix.mse"), "source",
                        _cell(nb, "hidden_test", "hwfix.mse").source.replace(".points = 2", ".points = 5")), "sum to"),
    (lambda nb: nb.cells[1].__setitem__("source", "x = 1\n### BEGIN SOLUTION\n### END SOLUTION"), "only allowed"),
    (lambda nb: nb.metadata["flatlab"].update(assignment="HW 0"), "assignment"),
    (lambda nb: _cell(nb, "task", "hwfix.square").metadata["flatlab"].update(forbid="flatlab.mse"), "forbid"),
])
def test_malformed_sources_are_rejected(mutate, message):
    nb = _source()
    mutate(nb)
    with pytest.raises(ValueError, match=message if message.isidentifier() else None) as e:
        parse_source(nb)
    assert message in str(e.value)


def test_leak_detector_catches_what_the_stubs_remove(built):
    root, _, _ = built
    src = _source()
    asg = parse_source(src)
    text = (root / "assignments" / "hwfix.ipynb").read_text()
    nb = nbformat.reads(text, as_version=4)
    nb.cells[1].source += "\n    return int(sum(p.numel() for p in model.parameters()))"
    assert any("solution line" in x for x in find_leaks(nbformat.writes(nb), src, asg))
    nb.cells[1].source += "\n### END SOLUTION\n"
    assert "marker 'END SOLUTION'" in find_leaks(nbformat.writes(nb), src, asg)
    nb.cells[1].source += "\n    model = flatlab.make_model(\"bias\", d, m, seed=int(rng.integers(2**31)))"
    assert any("hidden-test line" in x for x in find_leaks(nbformat.writes(nb), src, asg))


def test_leak_detector_compares_whole_lines_not_substrings(built):
    """A solution line `return x * x` must not be reported inside a longer, different line."""
    root, _, _ = built
    src = _source()
    asg = parse_source(src)
    solution = sorted(build_mod._solution_lines(src))[0]
    nb = nbformat.reads((root / "assignments" / "hwfix.ipynb").read_text(), as_version=4)
    nb.cells[1].source += f"\n    other = 1  # {solution}"
    assert find_leaks(nbformat.writes(nb), src, asg) == []
    nb.cells[1].source += f"\n    {solution}"
    assert any("solution line" in x for x in find_leaks(nbformat.writes(nb), src, asg))


def test_file_name_must_match_the_assignment(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "hwother.py")
    with pytest.raises(ValueError, match="file name must match"):
        build_one(tmp_path / "hwother.py", None, None)


def test_solution_notebook_is_the_source_as_a_notebook(tmp_path):
    """build writes the source as a notebook (hidden tests and solutions kept, cell ids
    hwfix-000...); converting that notebook back gives the source file byte for byte."""
    build_one(FIXTURE, None, None, tmp_path)
    nb = nbformat.read(str(tmp_path / "hwfix.ipynb"), as_version=4)
    nbformat.validate(nb)
    assert [c.id for c in nb.cells] == [f"hwfix-{i:03d}" for i in range(len(nb.cells))]
    assert nb.metadata["flatlab"] == {"assignment": "hwfix", "title": "Autograder fixture"}
    assert "jupytext" not in nb.metadata
    roles = [(c.cell_type, c.metadata.get("flatlab", {}).get("role")) for c in nb.cells]
    assert roles.count(("code", "hidden_test")) == 3 and roles.count(("markdown", "manual")) == 1
    task = next(c for c in nb.cells if c.metadata.get("flatlab", {}).get("id") == "hwfix.nparams"
                and c.metadata["flatlab"]["role"] == "task")
    assert task.metadata == {"flatlab": {"role": "task", "id": "hwfix.nparams", "points": 2,
                                         "function": "num_params", "forbid": ["flatlab.models.flatten_params"],
                                         "summary": task.metadata["flatlab"]["summary"]}}
    assert "### BEGIN SOLUTION" in task.source
    assert notebook_to_percent(nb) == FIXTURE.read_text()


def test_percent_format_keeps_every_cell_exactly():
    """A notebook with awkward metadata and text survives notebook -> source -> notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"flatlab": {"assignment": "hwx", "title": 'Quotes "x": y, #, é'},
                   "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    cells = [
        nbformat.v4.new_markdown_cell("# Title\n\n* a list\n\n```python\n# %% not a cell\n```"),
        nbformat.v4.new_code_cell("import math\n\n\nx = 1  # %% inline"),
        nbformat.v4.new_code_cell('def f(x):\n    """Doc: é ∇ ‖x‖."""\n    ### BEGIN SOLUTION\n    return x\n'
                                  "    ### END SOLUTION"),
        nbformat.v4.new_markdown_cell("**Q.** why?\n\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->"),
        nbformat.v4.new_code_cell("%time y = 2\n!echo hi"),
    ]
    metas = [{}, {"role": "code"},
             {"role": "task", "id": "hwx.f", "points": 1.5, "function": "f", "forbid": ["a.b", "c.d"],
              "summary": 'say "hi" = {k: v}, tab\tand é'},
             {"role": "manual", "id": "hwx.q", "points": 2}, {"role": "experiment"}]
    for i, (c, m) in enumerate(zip(cells, metas)):
        c.id = f"hwx-{i:03d}"
        if m:
            c.metadata["flatlab"] = m
    nb.cells = cells
    text = notebook_to_percent(nb)
    back = percent_to_notebook(text)
    assert back.metadata == nb.metadata
    assert [(c.cell_type, c.source, c.metadata, c.id) for c in back.cells] == \
        [(c.cell_type, c.source, c.metadata, c.id) for c in nb.cells]
    assert notebook_to_percent(back) == text
    assert '\n# %% flatlab={"forbid": ["a.b", "c.d"], "function": "f", "id": "hwx.f", "points": 1.5, ' in text
    assert "\n# %time y = 2\n# !echo hi\n" in text  # magics are commented, and restored on reading


def test_source_must_be_a_percent_file_with_a_flatlab_header(tmp_path):
    nb_path = tmp_path / "hwfix.ipynb"
    nbformat.write(read_source(FIXTURE), str(nb_path))
    with pytest.raises(ValueError, match="hwN.py") as e:
        build_one(nb_path, None, None)
    assert str(nb_path) in str(e.value)
    bare = tmp_path / "hwfix.py"
    bare.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="metadata.flatlab.assignment"):
        build_one(bare, None, None)


@pytest.mark.parametrize("indent, message", [
    ("    ", "Task hw1.trace_exact: return the trace of the autograd Hessian of the MSE loss w.r.t. the "
           "flat parameters"),
    ("        ", "Task hw9.x: " + " ".join(["ünïcode-wörds"] * 30) + ' with "quotes" and a \\ backslash'),
    ("", "Task hw9.short: fits on one line"),
    ("    ", "Task hw9.long: " + "x" * 120),  # one word longer than a line stays whole
])
def test_raise_lines_wrap_at_88_and_keep_the_message(indent, message):
    lines = build_mod.raise_lines(indent, message)
    src = "\n".join(lines)
    long_word = max(len(w) for w in message.split()) > 60
    assert long_word or all(len(ln) <= build_mod.STUB_WIDTH for ln in lines), lines
    assert lines[0].startswith(indent + 'raise NotImplementedError("Task hw')
    assert (len(lines) == 1) == (len(indent + message) + 30 <= build_mod.STUB_WIDTH)
    ns = {}
    with pytest.raises(NotImplementedError) as e:
        exec(compile("def f():\n" + "\n".join("    " + ln for ln in lines) + "\nf()", "stub", "exec"), ns)
    assert str(e.value) == message


def test_course_stubs_show_points_and_fit_88_columns():
    """Every generated stub of the course: the TODO line names the task's points, every generated
    line fits 88 columns, and the stub raises the task's whole summary."""
    for path in sorted((REPO / "solutions").glob("hw*.py")):
        _, text, bundle = build_one(path, None, None)
        tasks = {t["id"]: t for t in bundle["tasks"]}
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("flatlab", {})
            if meta.get("role") != "task":
                continue
            t = tasks[meta["id"]]
            todo = f"# TODO: Task {t['id']} ({t['points']:g} point{'' if t['points'] == 1 else 's'})"
            lines = cell.source.split("\n")
            k = next(i for i, ln in enumerate(lines) if ln.strip() == todo)
            end = next(i for i in range(k + 1, len(lines)) if lines[i].rstrip().endswith(")"))
            assert all(len(ln) <= 88 for ln in lines[k:end + 1]), lines[k:end + 1]
            ns = {}
            exec(compile(cell.source, "stub", "exec"), ns)
            with pytest.raises(NotImplementedError) as e:
                import inspect
                fn = ns[t["function"]]
                fn(*([None] * len(inspect.signature(fn).parameters)))
            assert str(e.value) == f"Task {t['id']}: {t['summary']}"
