"""The restricted copy of flatlab (autograder/restrict.py), review flags and magics.

The view of an assignment must (1) replace each forbidden flatlab definition, and the private
code it reaches, by a stub that raises, with the original body absent from every file;
(2) leave every other file and line byte-identical and import cleanly; (3) be refused at build
time, naming the task and the name, for a forbid entry that does not resolve.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from agfixtures import REPO

import flatlab
from autograder import restrict
from autograder.build import build_one
from autograder.magics import install
from autograder.notebook import parse_source, strip_magics

LIB = Path(flatlab.__file__).resolve().parent
FORBID = {  # re-export, class, numba-jitted function, plain functions
    "hwr.a": ["flatlab.zero_one_error", "flatlab.train.reference.SAM", "flatlab.train.reference.minibatch_epoch"],
    "hwr.b": ["flatlab.train.engine.one_sam", "flatlab.sharpness.hessian_trace", "torch.autograd.grad"],
}


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    removed = restrict.plan(FORBID, "hwr")
    root = restrict.write_view(tmp_path_factory.mktemp("view"), removed, "hwr")
    return removed, root


def _defs(tree):
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def test_plan_resolves_reexports_and_finds_private_cores(view):
    removed, _ = view
    by = {r.name: r.reason for r in removed}
    assert by["flatlab.losses.zero_one_error"] == "forbidden by hwr.a (as flatlab.zero_one_error)"
    assert by["flatlab.train.reference.SAM"] == "forbidden by hwr.a"
    assert by["flatlab.train.engine.one_sam"] == "forbidden by hwr.b"
    assert by["flatlab.sharpness._exact_trace"] == "private core of flatlab.sharpness.hessian_trace"
    assert by["flatlab.train.reference._sam_update"] == "private core of flatlab.train.reference.minibatch_epoch"
    assert by["flatlab.train.engine._one_sam_kernel"] == "private core of flatlab.train.engine.one_sam"
    assert not any(n.startswith("torch") for n in by)  # cannot be removed: a review flag
    assert not any(n.rsplit(".", 1)[1].startswith(("_check", "_validate")) for n in by)  # validators stay
    assert "flatlab.losses.mse" not in by and "flatlab.sharpness.top_eigenvalue" not in by


def test_view_bodies_absent_and_rest_byte_identical(view):
    removed, root = view
    gone = {(r.module, r.qualname) for r in removed}
    changed = {r.module for r in removed}
    view_dumps = set()
    for path in root.rglob("*.py"):
        view_dumps |= {ast.dump(n) for n in ast.walk(ast.parse(path.read_text()))
                       if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB)
        mod = ".".join(["flatlab", *rel.with_suffix("").parts]).removesuffix(".__init__")
        new = (root / rel).read_text()
        old = path.read_text()
        if mod not in changed:
            assert new == old, rel
            continue
        for name, node in _defs(ast.parse(old)).items():
            if (mod, name) in gone:
                assert ast.dump(node) not in view_dumps, f"{mod}.{name} body still in the view"
                body_line = ast.get_source_segment(old, node.body[-1]).split("\n")[-1].strip()
                if len(body_line) > 25:
                    assert body_line not in new, (mod, name, body_line)
            else:  # kept definitions are unchanged, line for line
                assert ast.get_source_segment(old, node) in new, f"{mod}.{name}"
    assert (root / "sharpness.py").read_text().count("is not available while hwr is graded") >= 2


def test_view_imports_and_stubs_raise(view):
    _, root = view
    code = (
        "import sys, pkgutil, importlib; sys.path.insert(0, sys.argv[1]); import flatlab\n"
        "assert flatlab.__file__.startswith(sys.argv[1])\n"
        "for m in pkgutil.iter_modules(flatlab.__path__): importlib.import_module('flatlab.' + m.name)\n"
        "import flatlab.sharpness as s, flatlab.train.reference as o, flatlab.train.engine as e\n"
        "msgs = []\n"
        "for f in (flatlab.zero_one_error, s.hessian_trace, s._exact_trace, o.SAM, e.one_sam, o._sam_update):\n"
        "    try: f(1, 2)\n"
        "    except RuntimeError as err: msgs.append(str(err))\n"
        "X, y = flatlab.xor_parity(6, 3, seed=0); m = flatlab.make_model('bias', 3, 4, seed=0)\n"
        "print(repr(float(flatlab.mse(m(X), y))))\n"
        "print('|'.join(msgs))\n")
    p = subprocess.run([sys.executable, "-c", code, str(root.parent)], capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
    loss, msgs = p.stdout.strip().split("\n")
    X, y = flatlab.xor_parity(6, 3, seed=0)
    assert float(loss) == float(flatlab.mse(flatlab.make_model("bias", 3, 4, seed=0)(X), y))  # kept code intact
    msgs = msgs.split("|")
    assert len(msgs) == 6
    assert msgs[0] == ("flatlab.losses.zero_one_error is not available while hwr is graded: "
                       "a task asks you to write it yourself")
    assert "flatlab.sharpness._exact_trace" in msgs[2] and "flatlab.sharpness.hessian_trace" in msgs[2]


@pytest.mark.parametrize("name, why", [
    ("flatlab.sharpness.no_such_fn", "has no attribute 'no_such_fn'"),
    ("flatlab.nosuchmodule.f", "has no attribute 'nosuchmodule'"),
    ("flatlab.sharpness", "is a module"),
    ("flatlab.sharpness.grad", "defined outside flatlab"),  # torch.func.grad re-exported
    ("flatlab.data.__name__", "not a function or class"),
])
def test_bad_forbid_names_fail_naming_task_and_name(name, why):
    with pytest.raises(ValueError) as e:
        restrict.plan({"hwr.z": [name]}, "hwr")
    assert f"task hwr.z: forbid name {name!r}" in str(e.value) and why in str(e.value)


def test_build_refuses_bad_forbid_name(tmp_path):
    src = (REPO / "solutions" / "hw0.py").read_text()
    bad = src.replace('"flatlab.losses.accuracy"', '"flatlab.losses.acuracy"', 1)
    assert bad != src
    path = tmp_path / "hw0.py"
    path.write_text(bad)
    with pytest.raises(ValueError, match=r"hw0\.py: task hw0\.zero_one: forbid name 'flatlab.losses.acuracy'"):
        build_one(path, None, None)


def test_build_writes_view_and_records_removals(tmp_path):
    _, text, bundle = build_one(REPO / "solutions" / "hw1.py", tmp_path / "a", tmp_path / "b")
    on_disk = json.loads((tmp_path / "b" / "hw1" / "bundle.json").read_text())
    assert on_disk["flatlab_view"] == "flatlab_view"
    assert (tmp_path / "b" / "hw1" / "flatlab_view" / "flatlab" / "__init__.py").is_file()
    reasons = {r["name"]: r["reason"] for r in on_disk["removed"]}
    assert reasons["flatlab.sharpness.hessian_trace"] == "forbidden by hw1.trace_exact"
    assert reasons["flatlab.sharpness._exact_trace"] == "private core of flatlab.sharpness.hessian_trace"
    assert "flatlab.sharpness.average_sharpness" in on_disk["collateral"]
    rules = next(c for c in json.loads(text)["cells"] if c["id"] == "hw1-rules")
    body = "".join(rules["source"])
    assert "`flatlab.sharpness.hessian_trace`" in body and "_exact_trace" not in body
    collateral = body.split("may raise too while it is graded:", 1)[1].split("\n", 1)[0]
    assert "`flatlab.train.penalty.sharpness_penalty_closed_form`" in collateral
    assert "`flatlab.sharpness.average_sharpness`" in collateral
    assert "hw1.top_eig: `torch.linalg.eigvalsh`" in body and "costs no points" in body


def test_solution_check_catches_a_solution_that_needs_a_removed_name(tmp_path):
    """A reference solution that calls a removed name is refused, naming the task and the name."""
    src = (REPO / "solutions" / "hw0.py").read_text()
    asg = parse_source(REPO / "solutions" / "hw0.py")
    task = asg.task("hw0.zero_one")
    cell = src.split("\n# %%")[[i for i, c in enumerate(src.split("\n# %%")) if '"hw0.zero_one"' in c
                                 and '"role": "task"' in c][0]]
    body = cell.split("### BEGIN SOLUTION\n", 1)[1].split("### END SOLUTION", 1)[0]
    cheat = cell.replace(body, "    return float(flatlab.losses.zero_one_error(f, y))\n    ")
    path = tmp_path / "hw0.py"
    path.write_text(src.replace(cell, cheat))
    assert task.function == "zero_one_error"
    with pytest.raises(ValueError) as e:
        build_one(path, None, None, check_view=True)
    msg = str(e.value)
    assert "hw0.zero_one" in msg and "flatlab.losses.zero_one_error is not available while hw0 is graded" in msg


# ------------------------------------------------------------------------ review flags

NAMES = ["torch.autograd.grad", "torch.linalg.eigh", "numpy.linalg.eigh", "scipy.sparse.linalg.eigsh",
         "torch.func.*", "torch.Tensor.backward", "flatlab.sharpness.hvp"]


@pytest.mark.parametrize("src, want", [
    ("import torch\ndef f(x):\n    return torch.autograd.grad(x, x)\n", ["torch.autograd.grad"]),
    ("from torch.autograd import grad as g\ndef f(x):\n    return g(x, x)\n", ["torch.autograd.grad"]),
    ("import numpy as np\nw = np.linalg.eigh(a)\n", ["numpy.linalg.eigh"]),
    ("import torch.linalg as la\nw = la.eigh(a)\n", ["torch.linalg.eigh"]),
    ("from scipy.sparse.linalg import eigsh\n", ["scipy.sparse.linalg.eigsh"]),
    ("from torch.func import vmap, grad\n", ["torch.func.*"]),
    ("import torch\ny = torch.func.jacrev(f)\n", ["torch.func.*"]),
    ("def f(loss):\n    loss.backward()\n", ["torch.Tensor.backward"]),
    # look-alikes: local helpers, strings, comments, flatlab names (those are removed, not flagged)
    ("def hvp(m, v):\n    return v\ndef grad(x):\n    return x\ndef gd(m):\n    pass\n"
     "def per_example_grads(m):\n    return hvp(m, grad(1))\n", []),
    ("import torch\n# torch.autograd.grad is not allowed\ns = 'torch.linalg.eigh'\n", []),
    ("import flatlab\nx = flatlab.sharpness.hvp\n", []),
    ("def f(:\n", []),
    ("%time x = 1\nimport torch\n", []),
])
def test_review_flags(src, want):
    assert restrict.review_flags(src, NAMES) == want


# ------------------------------------------------------------------------ magics

@pytest.mark.parametrize("src", [
    "x = (1\n     != 2)\n",
    "ok = (a\n      != b)",
    "s = '%d items' % 3\nt = \"!not a shell\"\n",
    "y = 7 % 3\n",
    "z = 1 \\\n    != 2\n",
])
def test_strip_magics_leaves_valid_python_alone(src):
    assert strip_magics(src) == src


def test_magics_run_or_are_skipped(capsys):
    ns = install({"__name__": "__main__"})
    src = ("import math\n%time x = math.sqrt(16)\n!pip install numpy\n%matplotlib inline\n"
           "%timeit -n 3 -r 2 y = x + 1\n%unknown_magic foo\n")
    exec(compile(strip_magics(src), "<cell>", "exec"), ns)
    assert (ns["x"], ns["y"]) == (4.0, 5.0)
    exec(compile(strip_magics("%%capture\nz = x * 2\n"), "<cell>", "exec"), ns)
    exec(compile(strip_magics("%%bash\necho hi > /tmp/should-not-exist-flatlab\n"), "<cell>", "exec"), ns)
    assert ns["z"] == 8.0
    out = capsys.readouterr().out
    for skipped in ("!pip install numpy", "%matplotlib inline", "%unknown_magic foo", "%%bash"):
        assert f"skipped {skipped}:" in out
    assert not Path("/tmp/should-not-exist-flatlab").exists()


def test_bundle_copied_without_its_view_gets_it_rebuilt(tmp_path):
    import filecmp
    import shutil

    from autograder.grade import load_bundle
    build_one(REPO / "solutions" / "hw0.py", None, tmp_path / "b")
    (tmp_path / "c" / "hw0").mkdir(parents=True)
    shutil.copy(tmp_path / "b" / "hw0" / "bundle.json", tmp_path / "c" / "hw0" / "bundle.json")
    bundle = load_bundle(tmp_path / "c", "hw0")
    assert bundle["flatlab_view"] == str((tmp_path / "c" / "hw0" / "flatlab_view").resolve())
    cmp = filecmp.dircmp(tmp_path / "b" / "hw0" / "flatlab_view" / "flatlab", Path(bundle["flatlab_view"]) / "flatlab")
    assert (cmp.diff_files, cmp.left_only, cmp.right_only) == ([], [], [])
    assert filecmp.cmp(tmp_path / "b" / "hw0" / "flatlab_view" / "flatlab" / "losses.py",
                       Path(bundle["flatlab_view"]) / "flatlab" / "losses.py", shallow=False)


def test_gradebook_writes_review_flags_csv(tmp_path):
    import csv

    from autograder.gradebook import rebuild

    def result(student, flags):
        return {"student": student, "assignment": "hwx", "status": "graded", "score": 1.0, "max_score": 1.0,
                "manual_max": 0.0, "manual": [], "tasks": [
                    {"id": "hwx.a", "points": 1.0, "score": 1.0, "tests": [], "review_flags": flags},
                    {"id": "hwx.b", "points": 0.0, "score": 0.0, "tests": []}]}  # an older results file
    (tmp_path / "results").mkdir()
    for sid, flags in (("ann", ["torch.autograd.grad", "torch.func.*"]), ("ben", [])):
        (tmp_path / "results" / f"{sid}.json").write_text(json.dumps(result(sid, flags)))
    rebuild(tmp_path)
    rows = list(csv.reader((tmp_path / "review_flags.csv").open()))
    assert rows == [["student", "task", "flag"], ["ann", "hwx.a", "torch.autograd.grad"], ["ann", "hwx.a", "torch.func.*"]]
    grades = {r["student"]: r["score"] for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert grades == {"ann": "1", "ben": "1"}  # flags never subtracted
