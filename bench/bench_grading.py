"""Benchmark: grading one submission, against running the same work plainly in a kernel.

    python bench/bench_grading.py [--assignments hw1 hw4] [--repeats 2] [--tools] [--class-size 0]

For each assignment, on its reference submission (the solution notebook ``build`` writes),
measured in the same run:

- **plain** (the baseline): ``nbclient`` executes the graded cells (those the grader runs:
  not public-test, hidden-test or experiment cells), then one more cell that runs the
  assignment's hidden tests *in the kernel* against the notebook's own functions (same
  seeds, same checks, results passed through the same codec): the cost of grading without
  isolation. Also printed: the graded cells alone.
- **cold**: a fresh process running ``nbclient`` (its imports and the kernel start
  included) vs a fresh ``python -m autograder grade`` process on that one notebook
  (imports, fork server, trusted warm-up included).
- **warm**: the notebook's cells in a kernel that has already imported numpy/torch/flatlab
  (nbclient's per-cell timing) vs ``grade_notebook`` inside a grading process that has
  graded once (fork server up), with the sandbox the machine allows (as root: namespaces,
  new root, one fork per hidden test; printed with the results).

Targets: warm <= 1.2x, cold <= 1.5x. Each time is the minimum over ``--repeats``. The
machine may be shared: the load average is printed with the results. ``--tools`` adds
``otter run`` / ``nbgrader autograde`` on the exported assignment (``--graders-venv``);
``--class-size N`` grades a class of N (reference / untouched alternating) with ``--jobs``.
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")  # the kernels import autograder

import nbformat  # noqa: E402

from autograder.build import build_one  # noqa: E402
from autograder.notebook import cell_meta  # noqa: E402

# The hidden tests, run in the kernel: `student.f(...)` calls the notebook's own f on a
# codec round trip of the arguments (as the sandbox sends them) and returns plain data.
_INKERNEL = r'''
import json as _json, numpy as _np
from autograder import codec as _codec
from autograder.grade import assert_close, _test_rng
_plain = lambda x: _codec.decode(_codec.encode(x))
_sent = lambda x: _codec.decode(_codec.encode(x), tensors=True, models=True)

class _Student:
    def call(self, name, *args, return_args=False, **kwargs):
        args, kwargs = _sent(list(args)), _sent(dict(kwargs))
        res = _plain(_FUNCS[name](*args, **kwargs))
        return (res, _plain(args)) if return_args else res

    def __getattr__(self, name):
        return lambda *a, **k: self.call(name, *a, **k)

_bundle = _json.loads(open(BUNDLE).read())
_FUNCS = {t["function"]: globals()[t["function"]] for t in _bundle["tasks"]}
_ns = {"np": _np, "numpy": _np, "torch": __import__("torch"), "flatlab": __import__("flatlab"),
       "assert_close": assert_close, "__name__": "hidden_tests"}
for _h in _bundle["hidden"]:
    exec(compile(_h["source"], "<hidden>", "exec"), _ns)
_score = 0.0
for _t in _bundle["tests"]:
    try:
        _ns[_t["name"]](_Student(), _test_rng(0, _t["task"], _t["name"]))
        _score += _t["points"]
    except Exception as _e:
        print("FAILED", _t["name"], type(_e).__name__, str(_e)[:200])
print("in-kernel score", round(_score, 6))
'''


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, p


def plain_notebook(nb, bundle_path: Path, with_tests: bool = True):
    """The graded cells of ``nb`` (+ a cell running the hidden tests in the kernel)."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if c.cell_type == "code"
                 and cell_meta(c).get("role", "code") not in ("public_test", "experiment", "hidden_test")]
    if with_tests:
        out.cells.append(nbformat.v4.new_code_cell(f"BUNDLE = {str(bundle_path)!r}\n" + _INKERNEL))
    return out


_HARNESS_IMPORT = "import autograder.grade, autograder.codec  # the in-kernel harness (not timed)"
_WARM_IMPORT = "import numpy, torch, flatlab\ntorch.set_num_threads(1)"


def _seconds(cell) -> float:
    from datetime import datetime
    ex = cell.metadata["execution"]
    t0, t1 = (datetime.fromisoformat(ex[k].replace("Z", "+00:00")) for k in ("iopub.status.busy", "shell.execute_reply"))
    return (t1 - t0).total_seconds()


def nbclient_run(nb, cwd: Path) -> tuple[float, float, str]:
    """Execute ``nb`` in a fresh kernel; returns (total seconds, seconds of the notebook's own
    cells after a first cell that imported numpy, torch and flatlab, text of the last cell).
    Importing the in-kernel harness (``autograder.grade`` for ``assert_close``), which a plain
    run would not need, is in neither time."""
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    nb.cells[:0] = [nbformat.v4.new_code_cell(_HARNESS_IMPORT), nbformat.v4.new_code_cell(_WARM_IMPORT)]
    t = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    total = time.perf_counter() - t - _seconds(nb.cells[0])
    warm = sum(_seconds(c) for c in nb.cells[2:])
    last = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []) if o.get("output_type") == "stream")
    return total, warm, last


def nbclient_cold(nb_path: Path, cwd: Path) -> tuple[float, float, str]:
    """``nbclient_run`` in a fresh process: the process start and its imports (nbclient,
    nbformat) count in the total, as they do for a fresh ``python -m autograder grade``."""
    code = ("import sys, json, time; t = time.perf_counter(); sys.path.insert(0, %r)\n"
            "import nbformat, bench_grading as b\n"
            "pre = time.perf_counter() - t\n"
            "total, warm, last = b.nbclient_run(nbformat.read(%r, as_version=4), b.Path(%r))\n"
            "print(json.dumps([pre + total, warm, last]))" % (str(Path(__file__).parent), str(nb_path), str(cwd)))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), cwd=cwd)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return tuple(json.loads(p.stdout.strip().splitlines()[-1]))


def _export(kind: str, out: Path, source: Path, hw: str, venv: Path) -> str | None:
    exp = subprocess.run([sys.executable, "-m", "autograder", "export", kind, "--out", str(out),
                          "--solutions", str(source.parent), "--assignments", hw], env=_env(),
                         capture_output=True, text=True)
    return f"export {kind} failed: " + exp.stderr[-300:] if exp.returncode else None


def bench_tools(venv: Path, hw: str, source: Path, work: Path) -> list[tuple[str, float | str]]:
    """otter run and nbgrader autograde of the exported assignment (errors reported, not fatal)."""
    rows = []
    env = {**_env(), "PATH": str(venv / "bin") + ":" + os.environ["PATH"]}
    if (venv / "bin" / "otter").exists():
        out = work / "otter"
        err = _export("otter", out, source, hw, venv)
        dist = out / hw / "dist"
        if not err:
            _, p = _timed([str(venv / "bin" / "otter"), "assign", "--no-run-tests", str(out / hw / f"{hw}.ipynb"),
                           str(dist)], env=env, cwd=out / hw)
            zips = glob.glob(str(dist / "autograder" / "*.zip"))
            err = None if zips and not p.returncode else "otter assign failed: " + (p.stderr or p.stdout)[-300:]
        if not err:
            (work / "otter_results").mkdir(exist_ok=True)
            t, p = _timed([str(venv / "bin" / "otter"), "run", "-a", zips[0], "-o", str(work / "otter_results"),
                           str(dist / "autograder" / f"{hw}.ipynb")], env=env, cwd=work)
            err = "otter run failed: " + (p.stderr or p.stdout)[-300:] if p.returncode else None
        rows.append(("otter run, 1 notebook", err or t))
    if (venv / "bin" / "nbgrader").exists():
        course = work / "nbgrader"
        err = _export("nbgrader", course, source, hw, venv)
        nbg = str(venv / "bin" / "nbgrader")
        if not err:
            p = subprocess.run([nbg, "generate_assignment", hw, "--force", "--create"], cwd=course, env=env,
                               capture_output=True, text=True)
            err = "nbgrader generate_assignment failed: " + (p.stderr or p.stdout)[-300:] if p.returncode else None
        if not err:
            sub = course / "submitted" / "ref" / hw
            sub.mkdir(parents=True, exist_ok=True)
            shutil.copy(course / "source" / hw / f"{hw}.ipynb", sub / f"{hw}.ipynb")
            t, p = _timed([nbg, "autograde", hw, "--student", "ref", "--create", "--force"], cwd=course, env=env)
            err = "nbgrader autograde failed: " + (p.stderr or p.stdout)[-300:] if p.returncode else None
        rows.append(("nbgrader autograde, 1 notebook", err or t))
    return rows


def bench_one(hw: str, solutions: Path, work: Path, a) -> dict:
    source = solutions / f"{hw}.py"
    (work / "solutions").mkdir(parents=True)
    shutil.copy(source, work / "solutions" / source.name)
    build_one(work / "solutions" / source.name, work / "assignments", work / "bundles", work / "notebooks")
    nb = nbformat.read(str(work / "notebooks" / f"{hw}.ipynb"), as_version=4)
    ref = work / "ref.ipynb"
    nbformat.write(nb, str(ref))
    bundle_path = work / "bundles" / hw / "bundle.json"
    plain = plain_notebook(nb, bundle_path)
    plain_path = work / "plain.ipynb"
    nbformat.write(plain, str(plain_path))
    cells_only = plain_notebook(nb, bundle_path, with_tests=False)
    best = {}

    def keep(key, t):
        best[key] = min(best.get(key, float("inf")), t)

    import torch
    torch.set_num_threads(1)
    from autograder.grade import GradingConfig, grade_notebook, load_bundle
    bundle = load_bundle(work / "bundles", hw)
    config = GradingConfig(cell_timeout=600, test_timeout=600)
    grade_notebook(ref, bundle, config)  # warm-up: fork server up, trusted paths initialised
    printed = ""
    for _ in range(a.repeats):
        cold, warm, printed = nbclient_cold(plain_path, work)
        keep("plain cold", cold)
        keep("plain warm", warm)
        keep("graded cells only, warm", nbclient_run(cells_only, work)[1])
        cmd = [sys.executable, "-m", "autograder", "grade", str(ref), "--assignment", hw, "--bundles",
               str(work / "bundles"), "--out", str(work / "out1"), "--timeout", "600"]
        t, p = _timed(cmd, env=_env(), cwd=work)
        if p.returncode:
            raise RuntimeError(p.stderr[-2000:])
        keep("grader cold", t)
        t = time.perf_counter()
        r = grade_notebook(ref, bundle, config)
        keep("grader warm", time.perf_counter() - t)
    best["score"] = f"{r['score']:g}/{r['max_score']:g}; {printed.strip().splitlines()[-1] if printed else ''}"
    best["sandbox"] = ", ".join(k for k in ("uid", "mount_ns", "net_ns", "ipc_ns", "pid_ns", "pivot_root", "proc")
                                if r["sandbox"].get(k) is True) or "none (not root)"
    if a.tools:
        for name, v in bench_tools(Path(a.graders_venv), hw, source, work):
            best[name] = v
    if a.class_size:
        cls = work / "class"
        cls.mkdir()
        student = nbformat.read(str(work / "assignments" / f"{hw}.ipynb"), as_version=4)
        for i in range(a.class_size):
            nbformat.write(nb if i % 2 == 0 else student, str(cls / f"s{i:03d}.ipynb"))
        t, p = _timed([sys.executable, "-m", "autograder", "grade", str(cls), "--assignment", hw, "--bundles",
                       str(work / "bundles"), "--out", str(work / "outc"), "--jobs", str(a.jobs), "--timeout", "600"],
                      env=_env(), cwd=work)
        best[f"class of {a.class_size}, --jobs {a.jobs}, per submission"] = t / a.class_size
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--assignments", nargs="+", default=["hw1", "hw4"])
    ap.add_argument("--solutions", type=Path, default=REPO / "solutions")
    ap.add_argument("--repeats", type=int, default=2, help="each time is the minimum over this many runs")
    ap.add_argument("--tools", action="store_true", help="also time otter run / nbgrader autograde")
    ap.add_argument("--graders-venv", default="/tmp/venvg", help="venv with otter / nbgrader")
    ap.add_argument("--class-size", type=int, default=0, help="also grade a class of this size (0: skip)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    a = ap.parse_args(argv)
    if a.repeats < 1:
        ap.error("--repeats must be >= 1")
    for hw in a.assignments:
        if not (a.solutions / f"{hw}.py").exists():
            ap.error(f"--assignments: no source {a.solutions / (hw + '.py')}")
    load0 = os.getloadavg()[0]
    results = {}
    for hw in a.assignments:
        work = Path(tempfile.mkdtemp(prefix=f"bench-grading-{hw}-"))
        try:
            results[hw] = bench_one(hw, a.solutions, work, a)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{os.cpu_count()} cpus; load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
          f"min of {a.repeats} runs")
    for hw, b in results.items():
        print(f"\n{hw} (reference submission: grader {b['score']}; sandbox: {b['sandbox']})")
        for key in ("graded cells only, warm", "plain warm", "grader warm", "plain cold", "grader cold"):
            print(f"  {key:40s} {b[key]:7.2f} s")
        for key, v in b.items():
            if key.startswith(("otter", "nbgrader", "class")):
                print(f"  {key:40s} {v:7.2f} s" if isinstance(v, float) else f"  {key}: {v}")
        b["warm_ratio"], b["cold_ratio"] = b["grader warm"] / b["plain warm"], b["grader cold"] / b["plain cold"]
        print(f"  warm: grader / plain = {b['warm_ratio']:.2f}x (target <= 1.2x); "
              f"cold: {b['cold_ratio']:.2f}x (target <= 1.5x)")
    if a.json:
        a.json.write_text(json.dumps({"load": [load0, os.getloadavg()[0]], "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
