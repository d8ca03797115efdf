"""``python -m autograder grade``: grade one submission or a folder of them.

For each submission (``<student>.ipynb``) the student's code runs in a sandboxed worker
(:mod:`autograder.sandbox`); the hidden tests of the grading bundle run *here*, in the
trusted process: they call ``student.<function>(...)`` (a round trip to the worker that
returns plain data) and compare against references computed here, with this process's
own numpy/torch/flatlab, which the student cannot touch.

Scores are deterministic: test ``t`` of task ``k`` gets ``rng = default_rng([seed, h(k.t)])``.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np

from .build import write_atomic
from .notebook import Assignment, HiddenTest, Manual, Task, strip_magics, submission_cells
from .report import feedback_html, feedback_markdown, write_csv
from .sandbox import SandboxConfig, Session, StudentError, prestart

__all__ = ["load_bundle", "assert_close", "static_forbidden", "grade_notebook", "grade_paths", "main"]

GRADER_VERSION = "1"
MAX_NOTEBOOK_BYTES = 64 * 2**20  # larger submissions are invalid (protects the trusted process)


def load_bundle(bundles: str | Path, assignment: str) -> dict:
    """Read ``<bundles>/<assignment>/bundle.json``."""
    path = Path(bundles) / assignment / "bundle.json"
    if not path.exists():
        raise ValueError(f"no grading bundle {path}; run `python -m autograder build` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _as_array(x, name):
    if isinstance(x, (bool, np.bool_)) or x is None or isinstance(x, (str, dict)):
        raise AssertionError(f"{name} is {_summary(x)}; expected a number or an array")
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:
        pass
    a = np.asarray(x)
    if a.dtype.kind not in "biufc":
        raise AssertionError(f"{name} is {_summary(x)}; expected a number or an array")
    return a


def _summary(x, n: int = 4) -> str:
    if isinstance(x, np.ndarray):
        flat = x.reshape(-1)[:n]
        vals = ", ".join(f"{v:.6g}" if np.issubdtype(x.dtype, np.number) else str(v) for v in flat)
        more = ", ..." if x.size > n else ""
        return f"an array of shape {tuple(x.shape)} [{vals}{more}]"
    if isinstance(x, float):
        return f"{x:.10g}"
    s = repr(x)
    return s if len(s) <= 80 else s[:77] + "..."


def _scalar(v) -> str:
    v = complex(v)
    return f"{v.real:.8g}" if v.imag == 0 else f"{v:.8g}"


def assert_close(got, want, rtol: float = 1e-6, atol: float = 1e-8, name: str = "your result") -> None:
    """Assert ``|got - want| <= atol + rtol·|want|`` elementwise with matching shapes.

    ``got`` is what the student returned (plain data); ``want`` the trusted reference.
    The message summarizes both (shapes, worst error), never the test code.
    """
    g, w = _as_array(got, name), _as_array(want, "the reference")
    if g.shape != w.shape:
        if g.size == 1 and w.size == 1:
            g, w = g.reshape(()), w.reshape(())
        else:
            raise AssertionError(f"{name} has shape {tuple(g.shape)}; expected shape {tuple(w.shape)}")
    g64, w64 = g.astype(np.complex128 if g.dtype.kind == "c" else np.float64), w.astype(np.float64)
    if not np.all(np.isfinite(g64)):
        raise AssertionError(f"{name} contains NaN or inf: {_summary(g)}")
    err = np.abs(g64 - w64)
    bad = err > atol + rtol * np.abs(w64)
    if np.any(bad):
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape) if err.ndim else ()
        at = f" at index {tuple(int(k) for k in i)}" if err.ndim else ""
        raise AssertionError(
            f"{name} differs from the expected value{at}: got {_scalar(g64[i])}, "
            f"expected {float(w64[i]):.8g} (max abs error {float(err.max()):.3g}, "
            f"{int(bad.sum())} of {err.size} entries off; rtol={rtol:g}, atol={atol:g})")


def static_forbidden(source: str, names) -> list[str]:
    """Forbidden dotted names whose last part appears in a cell's code (names, attributes,
    imports, string constants). Comments do not count."""
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return []
    last = {n.rsplit(".", 1)[-1]: n for n in names}
    hits = []
    for node in ast.walk(tree):
        cand = None
        if isinstance(node, ast.Attribute):
            cand = node.attr
        elif isinstance(node, ast.Name):
            cand = node.id
        elif isinstance(node, ast.alias):
            cand = node.name.rsplit(".", 1)[-1]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            cand = node.value
        if cand in last and last[cand] not in hits:
            hits.append(last[cand])
    return hits


# Trusted code (hidden tests, references) runs one thread at a time: torch's forward-mode AD
# levels and similar state are process-global, so two hidden tests computing references at
# once in threads (``--jobs N``) can corrupt each other. The lock is released while a test
# waits for the student's worker, so submissions still run in parallel where the time goes.
_TRUSTED = threading.Lock()


class _Student:
    """``student`` in a hidden test: attribute access calls the submission's function."""

    def __init__(self, session: Session, forbid, budget: float):
        self._session, self._forbid, self._deadline = session, tuple(forbid), time.monotonic() + budget

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise StudentError("timeout", "this test's time budget ran out")
        return left

    def call(self, name: str, *args, return_args: bool = False, **kwargs):
        timeout = self._left()
        _TRUSTED.release()  # held by the hidden test calling us; let other submissions' tests run
        try:
            res, after = self._session.call(name, args, kwargs, forbid=self._forbid,
                                            return_args=return_args, timeout=timeout)
        finally:
            _TRUSTED.acquire()
        return (res, after) if return_args else res

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)


def _test_rng(seed: int, task: str, test: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(f"{task}.{test}".encode()).digest()[:8], "big")
    return np.random.default_rng([int(seed), h])


def _hidden_namespace(bundle: dict) -> dict:
    import flatlab
    import torch
    ns = {"np": np, "numpy": np, "torch": torch, "flatlab": flatlab, "assert_close": assert_close,
          "__name__": "hidden_tests"}
    for h in bundle["hidden"]:
        exec(compile(h["source"], f"<hidden tests {h['task']}>", "exec"), ns)
    return ns


def _asg(bundle: dict) -> Assignment:
    return Assignment(bundle["assignment"], bundle.get("title", ""),
                      tasks=[Task(t["id"], t["function"], t["points"], t["summary"], tuple(t["forbid"]))
                             for t in bundle["tasks"]],
                      manual=[Manual(q["id"], q["points"], q["prompt"]) for q in bundle["manual"]],
                      tests=[HiddenTest(t["task"], t["name"], t["doc"], t["points"])
                             for t in bundle["tests"]])


def _invalid(student: str, bundle: dict, why: str, seed: int) -> dict:
    tasks = [{"id": t["id"], "points": t["points"], "score": 0.0, "tests": [
        {"name": x["name"], "doc": x["doc"], "points": x["points"], "score": 0.0, "passed": False,
         "kind": "invalid", "message": why} for x in bundle["tests"] if x["task"] == t["id"]]}
        for t in bundle["tasks"]]
    return _result(student, bundle, "invalid", tasks, {}, {}, seed, why)


def _result(student, bundle, status, tasks, cells, logs, seed, note="", protections=None) -> dict:
    score = round(sum(t["score"] for t in tasks), 6)
    return {
        "student": student, "assignment": bundle["assignment"], "title": bundle.get("title", ""),
        "grader_version": GRADER_VERSION, "seed": seed, "status": status, "note": note,
        "score": score, "max_score": round(sum(t["points"] for t in bundle["tasks"]), 6),
        "tasks": tasks,
        "manual": [{"id": q["id"], "points": q["points"], "status": "manual, ungraded"}
                   for q in bundle["manual"]],
        "cells": [{"index": i, **c} for i, c in sorted(cells.items())],
        "log": logs, "sandbox": protections or {},
    }


def grade_notebook(path: str | Path, bundle: dict, *, seed: int = 0, cfg: SandboxConfig | None = None,
                   slot: int = 0, hide=(), student_budget: float = 1800.0,
                   student: str | None = None) -> dict:
    """Grade one submission; returns the results dict (see ``results/<student>.json``)."""
    cfg = cfg or SandboxConfig()
    path = Path(path)
    student = student or path.stem
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"file larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB")
        nb = nbformat.read(str(path), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as e:  # anything unreadable is an invalid submission, never a grader crash
        return _invalid(student, bundle, f"not a readable notebook: {type(e).__name__}: {str(e)[:200]}", seed)
    asg = _asg(bundle)
    run, task_src = submission_cells(nb, asg)
    run = [(i, strip_magics(src)) for i, src in run]
    ns = _hidden_namespace(bundle)
    session = Session(run, cfg, slot=slot, hide=hide)
    deadline = time.monotonic() + student_budget
    status, tasks = "graded", []
    try:
        session.warm()
        for task in bundle["tasks"]:
            static = static_forbidden(task_src.get(task["id"], ""), task["forbid"])
            tests = []
            for t in (x for x in bundle["tests"] if x["task"] == task["id"]):
                rec = {"name": t["name"], "doc": t["doc"], "points": t["points"], "score": 0.0,
                       "passed": False, "kind": "", "message": ""}
                if time.monotonic() > deadline:
                    status = "timeout"
                    rec.update(kind="timeout", message="the grading time for this submission ran out")
                elif static:
                    rec.update(kind="forbidden", message="your code for this task uses " + ", ".join(static))
                else:
                    student_obj = _Student(session, task["forbid"], cfg.timeout)
                    try:
                        with _TRUSTED:
                            ns[t["name"]](student_obj, _test_rng(seed, task["id"], t["name"]))
                        rec.update(passed=True, score=float(t["points"]), kind="passed")
                    except StudentError as e:
                        rec.update(kind=e.kind, message=e.message, traceback=e.traceback)
                    except AssertionError as e:
                        rec.update(kind="wrong", message=str(e)[:1500])
                    except Exception as e:  # the check itself failed on what the student returned
                        rec.update(kind="error", message=f"{type(e).__name__}: {str(e)[:500]}")
                tests.append(rec)
            tasks.append({"id": task["id"], "points": task["points"],
                          "score": round(sum(x["score"] for x in tests), 6), "tests": tests})
        kinds = [x["kind"] for tk in tasks for x in tk["tests"]]
        if status == "graded" and kinds and all(k == "crashed" for k in kinds):
            status = "crashed"
    finally:
        session.close()
    return _result(student, bundle, status, tasks, session.cell_status, session.logs, seed,
                   protections=session.protections)


def write_outputs(results: list[dict], out: Path) -> None:
    """results/<student>.json, feedback/<student>.md/.html, grades.csv."""
    out = Path(out)
    for d in (out, out / "results", out / "feedback"):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    for r in results:
        write_atomic(out / "results" / f"{r['student']}.json", json.dumps(r, indent=1, sort_keys=True) + "\n")
        write_atomic(out / "feedback" / f"{r['student']}.md", feedback_markdown(r))
        write_atomic(out / "feedback" / f"{r['student']}.html", feedback_html(r))
    write_csv(results, out / "grades.csv")


def grade_paths(paths: list[Path], bundle: dict, *, seed: int = 0, jobs: int = 1,
                cfg: SandboxConfig | None = None, hide=(), progress=None) -> list[dict]:
    """Grade several submissions, ``jobs`` at a time (each job: one worker process)."""
    slots: queue.Queue = queue.Queue()
    for k in range(max(1, jobs)):
        slots.put(k)

    def one(p):
        slot = slots.get()
        try:
            r = grade_notebook(p, bundle, seed=seed, cfg=cfg, slot=slot, hide=hide)
        finally:
            slots.put(slot)
        if progress:
            progress(r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(one, paths))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder grade", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("submission", help="a submission .ipynb or a folder of <student>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment name, e.g. hw0")
    p.add_argument("--bundles", default="build/grading", help="folder of grading bundles")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--seed", type=int, default=0, help="grading seed (fixes every hidden test's inputs)")
    p.add_argument("--out", default=None, help="output folder (default: graded/<assignment>)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds per hidden test and per notebook cell")
    p.add_argument("--memory-gb", type=float, default=3.0,
                   help="address-space headroom of a worker above its size after importing torch")
    a = p.parse_args(argv)
    prestart()  # the fork server imports torch while this process does the same
    if not 1 <= a.jobs <= 64 or a.timeout <= 0 or a.memory_gb <= 0:
        p.error("--jobs must be in 1..64; --timeout and --memory-gb must be positive")
    import torch
    torch.set_num_threads(1)
    try:
        bundle = load_bundle(a.bundles, a.assignment)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = Path(a.submission)
    if src.is_dir():
        paths = sorted(x for x in src.iterdir() if x.is_file() and not x.name.startswith("."))
    elif src.exists():
        paths = [src]
    else:
        print(f"error: {src} does not exist", file=sys.stderr)
        return 2
    out = Path(a.out or Path("graded") / a.assignment)
    cfg = SandboxConfig(timeout=a.timeout, memory_bytes=int(a.memory_gb * 2**30))
    hide = [str(src.resolve() if src.is_dir() else src.resolve().parent), str(Path(a.bundles).resolve()),
            str(out.resolve())]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def progress(r):
        print(f"{r['student']}: {r['status']} {r['score']:g}/{r['max_score']:g}", flush=True)

    results = grade_paths(paths, bundle, seed=a.seed, jobs=a.jobs, cfg=cfg, hide=hide, progress=progress)
    write_outputs(results, out)
    print(f"graded {len(results)} submission(s) in {time.monotonic() - t0:.1f} s -> {out}/grades.csv")
    return 0
