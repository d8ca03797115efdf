"""Benchmark: how long grading one submission takes, against running it plainly.

    python bench/bench_grading.py [--assignment hw0] [--solutions solutions] [--class-size 50] [--jobs 2]

Measured in the same run, on the assignment's reference submission (its solution
notebook; the grader skips hidden-test, public-test and experiment cells):

1. ``nbclient`` executing the notebook plainly, all cells (kernel start included), and
   only the cells the grader executes;
2. ``python -m autograder grade`` on that one notebook, cold (a fresh process: imports,
   fork-server start) and warm (per submission inside a grading run);
3. ``otter run`` and ``nbgrader autograde`` on the same assignment exported by
   ``autograder/export_otter.py`` / ``export_nbgrader.py``, when ``/tmp/venvg`` (or
   ``--graders-venv``) has them;
4. a class of ``--class-size`` submissions (reference and untouched copies alternating)
   graded with ``--jobs``; wall time.

Timings on a shared machine are noisy: read the ratios. Without ``solutions/<hw>.py``
the fixture ``tests/autograder/fixtures/hwfix.py`` is used. The reference submission is
the solution notebook that ``build`` writes.
"""
from __future__ import annotations

import argparse
import copy
import glob
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

import nbformat  # noqa: E402

from autograder.build import build_one  # noqa: E402
from autograder.notebook import cell_meta  # noqa: E402


def _env(extra_path: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    if extra_path:
        env["PATH"] = extra_path + ":" + env["PATH"]
    return env


def _timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, p


def nbclient_time(nb, cwd: Path) -> float:
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    t = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return time.perf_counter() - t


def graded_cells_only(nb):
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if c.cell_type == "code"
                 and cell_meta(c).get("role", "code") in ("code", "task")]
    return out


def _export(kind: str, out: Path, source: Path, hw: str) -> dict | None:
    """``python -m autograder export KIND`` of one assignment; an error dict if it failed."""
    exp = subprocess.run([sys.executable, "-m", "autograder", "export", kind, "--out", str(out),
                          "--solutions", str(source.parent), "--assignments", hw], env=_env(),
                         capture_output=True, text=True)
    return {"error": f"export {kind} failed: " + exp.stderr[-300:]} if exp.returncode else None


def bench_otter(venv: Path, hw: str, source: Path, work: Path, py: str) -> dict:
    out = work / "otter"
    err = _export("otter", out, source, hw)
    if err:
        return err
    master = out / hw / f"{hw}.ipynb"
    dist = out / hw / "dist"
    t, p = _timed([str(venv / "bin" / "otter"), "assign", "--no-run-tests", str(master), str(dist)],
                  env=_env(str(venv / "bin")), cwd=out / hw)
    zips = glob.glob(str(dist / "autograder" / "*.zip"))
    if p.returncode or not zips:
        return {"error": "otter assign failed: " + (p.stderr or p.stdout)[-300:]}
    sub = dist / "autograder" / f"{hw}.ipynb"
    res = work / "otter_results"
    res.mkdir(exist_ok=True)
    t, p = _timed([str(venv / "bin" / "otter"), "run", "-a", zips[0], "-o", str(res), str(sub)],
                  env=_env(str(venv / "bin")), cwd=work)
    if p.returncode:
        return {"error": "otter run failed: " + (p.stderr or p.stdout)[-300:]}
    return {"seconds": t}


def bench_nbgrader(venv: Path, hw: str, source: Path, work: Path) -> dict:
    course = work / "nbgrader"
    err = _export("nbgrader", course, source, hw)
    if err:
        return err
    nbg = str(venv / "bin" / "nbgrader")
    env = _env(str(venv / "bin"))
    p = subprocess.run([nbg, "generate_assignment", hw, "--force", "--create"], cwd=course, env=env,
                       capture_output=True, text=True)
    if p.returncode:
        return {"error": "nbgrader generate_assignment failed: " + (p.stderr or p.stdout)[-300:]}
    sub = course / "submitted" / "ref" / hw
    sub.mkdir(parents=True, exist_ok=True)
    shutil.copy(course / "source" / hw / f"{hw}.ipynb", sub / f"{hw}.ipynb")  # the solution as submission
    t, p = _timed([nbg, "autograde", hw, "--student", "ref", "--create", "--force"], cwd=course, env=env)
    if p.returncode:
        return {"error": "nbgrader autograde failed: " + (p.stderr or p.stdout)[-300:]}
    return {"seconds": t}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--assignment", default="hw0")
    ap.add_argument("--solutions", default=str(REPO / "solutions"))
    ap.add_argument("--class-size", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--graders-venv", default="/tmp/venvg", help="venv with otter / nbgrader (skipped if absent)")
    ap.add_argument("--skip-tools", action="store_true", help="skip otter and nbgrader")
    a = ap.parse_args(argv)
    source = Path(a.solutions) / f"{a.assignment}.py"
    if not source.exists():
        source = REPO / "tests" / "autograder" / "fixtures" / "hwfix.py"
    hw = source.stem
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        (work / "solutions").mkdir()
        shutil.copy(source, work / "solutions" / source.name)
        build_one(work / "solutions" / source.name, work / "assignments", work / "bundles", work / "notebooks")
        nb = nbformat.read(str(work / "notebooks" / f"{hw}.ipynb"), as_version=4)
        student = nbformat.read(str(work / "assignments" / f"{hw}.ipynb"), as_version=4)
        ref = work / "ref.ipynb"
        nbformat.write(nb, str(ref))
        rows = []
        print(f"assignment {hw} ({source}); {os.cpu_count()} cpus; load {os.getloadavg()[0]:.1f}")

        t_all = nbclient_time(nb, work)
        t_graded = nbclient_time(graded_cells_only(nb), work)
        rows += [("nbclient, all cells", t_all), ("nbclient, graded cells only", t_graded)]

        cmd = [sys.executable, "-m", "autograder", "grade", str(ref), "--assignment", hw,
               "--bundles", str(work / "bundles"), "--out", str(work / "out1"), "--timeout", "600"]
        t_cold, p = _timed(cmd, env=_env(), cwd=work)
        if p.returncode:
            print(p.stderr[-2000:])
            return 1
        rows.append(("autograder grade, 1 notebook, cold process", t_cold))

        import torch
        torch.set_num_threads(1)
        from autograder.grade import grade_notebook, load_bundle
        from autograder.sandbox import SandboxConfig
        bundle = load_bundle(work / "bundles", hw)
        cfg = SandboxConfig(timeout=600)
        grade_notebook(ref, bundle, cfg=cfg)  # warm-up: fork server up
        t = time.perf_counter()
        r = grade_notebook(ref, bundle, cfg=cfg)
        t_warm = time.perf_counter() - t
        rows.append((f"autograder, per submission, warm ({r['score']:g}/{r['max_score']:g})", t_warm))

        venv = Path(a.graders_venv)
        if not a.skip_tools:
            for name, fn in (("otter run", lambda: bench_otter(venv, hw, source, work, sys.executable)),
                             ("nbgrader autograde", lambda: bench_nbgrader(venv, hw, source, work))):
                exe = venv / "bin" / name.split()[0]
                if not exe.exists():
                    print(f"{name}: skipped ({exe} missing)")
                    continue
                try:
                    res = fn()
                except Exception as e:  # a tool's failure is reported, not fatal
                    res = {"error": f"{type(e).__name__}: {e}"}
                if "seconds" in res:
                    rows.append((name + ", 1 notebook", res["seconds"]))
                else:
                    print(f"{name}: {res['error']}")

        cls = work / "class"
        cls.mkdir()
        for i in range(a.class_size):
            nbformat.write(nb if i % 2 == 0 else student, str(cls / f"s{i:03d}.ipynb"))
        cmd = [sys.executable, "-m", "autograder", "grade", str(cls), "--assignment", hw, "--bundles",
               str(work / "bundles"), "--out", str(work / "outc"), "--jobs", str(a.jobs), "--timeout", "600"]
        t_class, p = _timed(cmd, env=_env(), cwd=work)
        if p.returncode:
            print(p.stderr[-2000:])
            return 1

        print(f"\n{'what':58s} {'seconds':>8s} {'/ nbclient graded cells':>24s}")
        for name, t in rows:
            print(f"{name:58s} {t:8.2f} {t / t_graded:24.2f}")
        print(f"\nclass of {a.class_size} (half reference, half untouched) with --jobs {a.jobs}: "
              f"{t_class:.1f} s wall, {t_class / a.class_size:.2f} s per submission")
        print(f"target: warm per-submission grading <= 1.5x plain execution of the graded cells: "
              f"{t_warm / t_graded:.2f}x; cold {t_cold / t_graded:.2f}x; vs all cells {t_warm / t_all:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
