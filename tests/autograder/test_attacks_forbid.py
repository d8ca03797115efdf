"""Forbidden library calls are unreachable, and honest look-alikes keep full marks, end to end.

Fixture ``fixtures/hwforbid.py``: trace (2 points; forbids flatlab.sharpness.hessian_trace, so
its private core _exact_trace goes too), zero_one (1; forbids the re-export
flatlab.zero_one_error), share (1; forbids flatlab.diagnostics.x1x2_share and the equivalent
public path diagnose), grad_sq (1; forbids torch.autograd.grad and torch.func.*: a review flag,
never points). One grading run through the CLI; every submission asserts exact per-task scores
(trace, zero_one, share, grad_sq) and its review flags.

The submissions run against the bundle's restricted flatlab (``flatlab_view``): the removed
definitions are not in the worker at all, so no alias, thread, source copy, reload or walk
finds them. Reading the original file by its path is stopped by the root sandbox, which
covers the real package; without root the worker can read any file its user can.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from agfixtures import REPO, build_fixture, make_submission
from filelock import FileLock


pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "hwforbid.py"
ORIGINAL = str(REPO / "flatlab" / "sharpness.py")
TRACE = ("def trace(model, X, y):\n"
         "    params = list(model.parameters())\n"
         "    grads = torch.autograd.grad(flatlab.mse(model(X), y), params, create_graph=True)\n"
         "    total = 0.0\n"
         "    for p, g in zip(params, grads):\n"
         "        flat = g.reshape(-1)\n"
         "        for i in range(flat.numel()):\n"
         "            total += float(torch.autograd.grad(flat[i], p, retain_graph=True)[0].reshape(-1)[i])\n"
         "    return total\n")
ZERO_ONE = "def zero_one(f, y):\n    return float((y * f <= 0).double().mean())\n"
SHARE = "def share(model):\n    W1 = model.W1.detach()\n    return float(W1[:, :2].pow(2).sum() / W1.pow(2).sum())\n"
GRAD_SQ = ("def grad_sq(model, X, y):\n"
           "    h = torch.relu(X @ model.W1.detach().T + model.b1.detach())\n"
           "    r = h @ model.W2.detach() - y\n"
           "    return float((2 * (r[:, None] * h).mean(0)).pow(2).sum())\n")
HONEST = {"hwforbid.trace": TRACE, "hwforbid.zero_one": ZERO_ONE, "hwforbid.share": SHARE,
          "hwforbid.grad_sq": GRAD_SQ}
FULL = (2, 1, 1, 1)


def trace_with(body):
    return {**HONEST, "hwforbid.trace": "def trace(model, X, y):\n" + "".join(f"    {ln}\n" for ln in body.split("\n"))}


# name -> (task cells, extra cells after the imports, expected scores, expected review flags of grad_sq)
CLASS = {
    "honest": (HONEST, [], FULL, []),
    # --- the forbidden definition, reached every way we know: all fail the trace task only
    "alias_setup": (trace_with("return float(_ht(model, X, y))"),
                    ["from flatlab.sharpness import hessian_trace as _ht\n"], (0, 1, 1, 1), []),
    "via_map": (trace_with("return float(list(map(lambda f: f(model, X, y), "
                           "[flatlab.sharpness.hessian_trace]))[0])"), [], (0, 1, 1, 1), []),
    "via_thread": (trace_with("import threading\nout = []\n"
                              "t = threading.Thread(target=lambda: out.append(flatlab.sharpness.hessian_trace(model, X, y)))\n"
                              "t.start(); t.join()\nreturn float(out[0]) if out else 0.0"), [], (0, 1, 1, 1), []),
    "getsource_exec": (trace_with("import inspect\nns = dict(vars(flatlab.sharpness))\n"
                                  "exec(inspect.getsource(flatlab.sharpness.hessian_trace), ns)\n"
                                  "return float(ns['hessian_trace'](model, X, y))"), [], (0, 1, 1, 1), []),
    "code_copy": (trace_with("import types\nf = flatlab.sharpness.hessian_trace\n"
                             "g = types.FunctionType(f.__code__, f.__globals__, 'g', f.__defaults__, f.__closure__)\n"
                             "return float(g(model, X, y))"), [], (0, 1, 1, 1), []),
    "reload": (trace_with("import importlib\nm = importlib.reload(flatlab.sharpness)\n"
                          "return float(m.hessian_trace(model, X, y))"), [], (0, 1, 1, 1), []),
    "private_core": (trace_with("s = flatlab.sharpness\nobj = s._Objective(model, X, y, 'mse')\n"
                                "return float(s._exact_trace(obj, 256))"), [], (0, 1, 1, 1), []),
    "dict_walk": (trace_with("import sys\n"
                             "for mod in list(sys.modules.values()):\n"
                             "    for k, v in list(vars(mod).items()) if hasattr(mod, '__dict__') else []:\n"
                             "        if k in ('hessian_trace', '_exact_trace') and callable(v):\n"
                             "            try:\n"
                             "                return float(v(model, X, y))\n"
                             "            except Exception:\n"
                             "                pass\n"
                             "return 0.0"), [], (0, 1, 1, 1), []),
    "gc_walk": (trace_with("import gc, types\n"
                           "for o in gc.get_objects():\n"
                           "    if isinstance(o, types.FunctionType) and o.__name__ == 'hessian_trace':\n"
                           "        try:\n"
                           "            return float(o(model, X, y))\n"
                           "        except Exception:\n"
                           "            pass\n"
                           "return 0.0"), [], (0, 1, 1, 1), []),
    "dynamic_name": (trace_with("return float(getattr(flatlab.sharpness, 'hessian' + '_trace')(model, X, y))"),
                     [], (0, 1, 1, 1), []),
    "lazy_float": (trace_with("class Lazy:\n    def __float__(self):\n"
                              "        return float(flatlab.sharpness.hessian_trace(model, X, y))\n"
                              "return Lazy()"), [], (0, 1, 1, 1), []),
    "reexport_alias": ({**HONEST, "hwforbid.zero_one": "def zero_one(f, y):\n    return float(_z(f, y))\n"},
                       ["from flatlab import zero_one_error as _z\n"], (2, 0, 1, 1), []),
    "public_path": ({**HONEST, "hwforbid.share": "def share(model):\n"
                     "    X = torch.zeros(1, model.W1.shape[1], dtype=model.W1.dtype)\n"
                     "    return float(flatlab.diagnostics.diagnose(model, X)['x1x2_share'])\n"},
                    [], (2, 1, 0, 1), []),
    # --- honest look-alikes: full marks, no flags
    "lookalike_helpers": ({**HONEST, "hwforbid.grad_sq": (
        "def grad(h, r):\n    return 2 * (r[:, None] * h).mean(0)\n"
        "def hvp(v):\n    return v\n"
        "def gd(x):\n    return x\n"
        "def per_example_grads(h, r):\n    return 2 * r[:, None] * h\n"
        "def grad_sq(model, X, y):\n"
        "    h = torch.relu(X @ model.W1.detach().T + model.b1.detach())\n"
        "    r = h @ model.W2.detach() - y\n"
        "    assert torch.allclose(per_example_grads(h, r).mean(0), grad(h, r))\n"
        "    return float(gd(hvp(grad(h, r))).pow(2).sum())\n")}, [], FULL, []),
    "neq_continuation": ({**HONEST, "hwforbid.zero_one": (
        "def zero_one(f, y):\n    wrong = ((y * f > 0)\n             != True)\n"
        "    return float(wrong.double().mean())\n")}, [], FULL, []),
    "magics": ({**HONEST, "hwforbid.zero_one": "%time _warm = 1 + 1\n" + ZERO_ONE},
               ["!pip install numpy\n%matplotlib inline\n%timeit -n 2 -r 1 sum(range(10))\n"], FULL, []),
    "capture_cell": (HONEST, ["%%capture\nSETUP_VALUE = 3\n"], FULL, []),
    "heavy_setup": (HONEST, ["import time\n_t = time.thread_time()\nwhile time.thread_time() - _t < 1.5:\n"
                             "    pass\nBIG = np.ones((1000, 1000)) @ np.ones((1000, 20))\n"], FULL, []),
    # --- a review flag: flagged for a reader, never subtracted
    "autograd_user": ({**HONEST, "hwforbid.grad_sq": (
        "from torch.autograd import grad as g\n"
        "def grad_sq(model, X, y):\n"
        "    (w2,) = g(flatlab.mse(model(X), y), [model.W2])\n"
        "    return float(w2.pow(2).sum())\n")}, [], FULL, ["torch.autograd.grad"]),
    "func_user": ({**HONEST, "hwforbid.grad_sq": (
        "import torch.func\n"
        "def grad_sq(model, X, y):\n"
        "    (w2,) = torch.autograd.grad(flatlab.mse(model(X), y), [model.W2])\n"
        "    return float(w2.pow(2).sum())\n")}, [], FULL, ["torch.autograd.grad", "torch.func.*"]),
}
if os.geteuid() == 0:  # the root sandbox covers the real package: the file is not there to read
    CLASS["original_file"] = (trace_with(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('flatlab._orig_sharpness', {ORIGINAL!r})\n"
        "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n"
        "return float(m.hessian_trace(model, X, y))"), [], (0, 1, 1, 1), [])
OPTS = ["--jobs", "2", "--seed", "3", "--cell-timeout", "20", "--test-timeout", "20"]


def _grade_all(root):
    nb, bundles = build_fixture(FIXTURE, root)
    subs = root / "subs"
    subs.mkdir()
    for name, (tasks, before, _, _) in CLASS.items():
        make_submission(nb, tasks, before, subs / f"{name}.ipynb")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--assignment", "hwforbid",
                        "--bundles", str(bundles), "--out", str(root / "out"), *OPTS],
                       cwd=root, env=env, capture_output=True, text=True, timeout=900)
    (root / "done.json").write_text(json.dumps({"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "ag-attacks-forbid"
    with FileLock(str(shared / "ag-attacks-forbid.lock")):
        if not (root / "done.json").exists():
            _grade_all(root)
    run = json.loads((root / "done.json").read_text())
    results = {p.stem: json.loads(p.read_text()) for p in (root / "out" / "results").glob("*.json")}
    return {"root": root, "run": run, "results": results}


def test_every_submission_graded(graded):
    assert graded["run"]["rc"] == 0, graded["run"]["stderr"][-3000:]
    assert set(graded["results"]) == set(CLASS)


@pytest.mark.parametrize("name", sorted(CLASS))
def test_exact_scores_and_flags(graded, name):
    r = graded["results"][name]
    _, _, want, flags = CLASS[name]
    assert r["status"] == "graded", r["note"]
    got = tuple(t["score"] for t in r["tasks"])
    detail = {t["id"]: [(x["kind"], x["message"][:200]) for x in t["tests"]] for t in r["tasks"]}
    assert got == want, detail
    by_task = {t["id"]: t["review_flags"] for t in r["tasks"]}
    assert by_task == {"hwforbid.trace": [], "hwforbid.zero_one": [], "hwforbid.share": [],
                       "hwforbid.grad_sq": flags}


def test_removed_calls_explain_themselves(graded):
    """A student who calls a removed function is told which one, in the test's message; the
    private core can only be the view's stub speaking."""
    for name in ("alias_setup", "via_map", "reload", "code_copy", "getsource_exec", "dynamic_name"):
        msgs = " ".join(x["message"] for x in graded["results"][name]["tasks"][0]["tests"])
        assert "flatlab.sharpness.hessian_trace" in msgs, (name, msgs)
    msgs = " ".join(x["message"] for x in graded["results"]["private_core"]["tasks"][0]["tests"])
    assert "flatlab.sharpness._Objective is not available while hwforbid is graded" in msgs, msgs


def test_review_flags_csv(graded):
    rows = list(csv.DictReader((graded["root"] / "out" / "review_flags.csv").open()))
    assert sorted((r["student"], r["task"], r["flag"]) for r in rows) == [
        ("autograd_user", "hwforbid.grad_sq", "torch.autograd.grad"),
        ("func_user", "hwforbid.grad_sq", "torch.autograd.grad"),
        ("func_user", "hwforbid.grad_sq", "torch.func.*")]
    grades = {r["student"]: r for r in csv.DictReader((graded["root"] / "out" / "grades.csv").open())}
    assert grades["autograd_user"]["score"] == grades["honest"]["score"] == "5"


def test_magic_notes_in_the_log(graded):
    out = graded["results"]["magics"]["log"]["stdout"]
    assert "skipped !pip install numpy" in out and "skipped %matplotlib inline" in out
