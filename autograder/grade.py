"""``python -m autograder grade``: grade one submission or a folder of them.

For each submission (``<student>.ipynb``) the student's code runs in a sandboxed worker
(:mod:`autograder.sandbox`); the hidden tests of the grading bundle run *here*, in the
trusted process: they call ``student.<function>(...)`` (a round trip to the worker that
returns plain data) and compare against references computed here, with this process's
own numpy/torch/flatlab, which the student cannot touch.

Inputs differ per submission and are reproducible: test ``t`` of task ``k`` gets
``rng = default_rng([s, h(k.t)])`` with ``s = submission_seed(course seed, student id,
sha256 of the graded code cells)``. Every limit is a field of :class:`GradingConfig`,
which is written into each results file. The gradebook is :mod:`autograder.gradebook`.
"""
from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import hashlib
import json
import math
import os
import queue
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np

from .build import write_atomic
from .notebook import Assignment, HiddenTest, Manual, Task, strip_magics, submission_cells
from .restrict import UNAVAILABLE, review_flags
from .report import feedback_html, feedback_markdown
from .sandbox import SandboxConfig, Session, StudentError, prestart

__all__ = ["GradingConfig", "load_bundle", "assert_close", "review_flags", "submission_seed",
           "grade_notebook", "grade_paths", "collect_submissions", "write_outputs", "add_arguments", "run",
           "main"]

GRADER_VERSION = "2"


@dataclass(frozen=True)
class GradingConfig:
    """Everything that fixes a grading run: the course seed and every limit. Validated on
    construction; carried down unchanged to each submission and written into its results."""

    seed: int = 0  # course seed; with the student id and the submission's content it fixes each test's inputs
    cell_timeout: float = 60.0  # wall seconds per notebook cell
    test_timeout: float = 60.0  # seconds per hidden test: student CPU in its calls + trusted checks' CPU
    submission_timeout: float = 1800.0  # seconds per submission (all cells and tests), enforced while running
    wall_factor: float = 3.0  # a call is killed after wall_factor x the test's time left (code that sleeps)
    memory_gb: float = 3.0  # address-space headroom of a worker above its size after importing torch
    max_notebook_mb: float = 64.0  # larger files are invalid (never parsed)
    return_floor: int = 100_000  # numbers any student call may return (arrays, tensors, model parameters)
    return_factor: float = 4.0  # ... or this many times the numbers the call was sent, if more
    jobs: int = 1  # submissions graded in parallel (each: one worker process)
    isolate: bool = True  # as root: the worker's own uid and namespaces (see autograder/sandbox.py)

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"GradingConfig.{name} = {getattr(self, name)!r}: {why}")
        if type(self.seed) is not int or self.seed < 0:
            bad("seed", "must be a non-negative int")
        for name in ("cell_timeout", "test_timeout", "submission_timeout", "memory_gb", "max_notebook_mb"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                bad(name, "must be a positive finite number")
        for name in ("wall_factor", "return_factor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v < math.inf:
                bad(name, "must be a finite number >= 1")
        if type(self.return_floor) is not int or self.return_floor < 1:
            bad("return_floor", "must be a positive int")
        if type(self.jobs) is not int or not 1 <= self.jobs <= 64:
            bad("jobs", "must be an int in 1..64")
        if type(self.isolate) is not bool:
            bad("isolate", "must be a bool")

    def sandbox(self, flatlab_view: str | None = None) -> SandboxConfig:
        """The worker's limits: per-cell timeout, memory, and RLIMIT_CPU = the submission budget;
        ``flatlab_view``: the folder holding the assignment's restricted ``flatlab/``."""
        return SandboxConfig(timeout=float(self.cell_timeout), memory_bytes=int(self.memory_gb * 2**30),
                             cpu_seconds=max(1, math.ceil(self.submission_timeout)), isolate=self.isolate,
                             flatlab_view=None if flatlab_view is None else str(flatlab_view))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_bundle(bundles: str | Path, assignment: str) -> dict:
    """Read ``<bundles>/<assignment>/bundle.json``; its ``flatlab_view`` (stored relative to the
    bundle's folder) comes back absolute. A bundle copied without its view (``flatlab_view/``)
    gets it rebuilt from ``removed`` and the installed flatlab."""
    path = Path(bundles) / assignment / "bundle.json"
    if not path.exists():
        raise ValueError(f"no grading bundle {path}; run `python -m autograder build` first")
    bundle = json.loads(path.read_text(encoding="utf-8"))
    if bundle.get("flatlab_view"):
        view = (path.parent / bundle["flatlab_view"]).resolve()
        if not (view / "flatlab" / "__init__.py").is_file():  # a bundle copied without it: rebuild it
            from .restrict import Removed, write_view
            removed = [Removed.from_dict(r) for r in bundle.get("removed", [])]
            try:
                write_view(view, removed, bundle["assignment"])
            except OSError:  # a read-only bundle folder
                import tempfile
                view = Path(tempfile.mkdtemp(prefix=f"flatlab-view-{bundle['assignment']}-"))
                write_view(view, removed, bundle["assignment"])
        bundle["flatlab_view"] = str(view)
    return bundle


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
    """What the *student* returned, briefly (never used on a reference value)."""
    if isinstance(x, np.ndarray):
        flat = x.reshape(-1)[:n]
        vals = ", ".join(f"{v:.6g}" if np.issubdtype(x.dtype, np.number) else str(v) for v in flat)
        more = ", ..." if x.size > n else ""
        return f"an array of shape {tuple(x.shape)} [{vals}{more}]"
    if isinstance(x, float):
        return f"{x:.6g}"
    s = repr(x)
    return s if len(s) <= 80 else s[:77] + "..."


def _compare(g: complex, w: float) -> str:
    """How a wrong entry relates to the expected one, without the expected value: the
    relative error, the sign, and a rounded ratio when it is far from 1."""
    if w == 0:
        return "the expected value there is exactly 0" if g != 0 else ""
    rel = abs(g - w) / abs(w)
    if isinstance(g, complex) and g.imag != 0:
        return f"relative error {rel:.2g}; yours is complex"
    g = g.real
    if g == 0:
        return "you returned 0 where the expected value is not 0"
    if (g > 0) != (w > 0):
        return f"relative error {rel:.2g}; wrong sign (about {abs(g / w):.2g}x the expected size, negated)"
    ratio = g / w
    if 0.9 <= ratio <= 1.1:
        return f"relative error {rel:.2g}; sign right"
    return f"relative error {rel:.2g}; about {ratio:.2g}x the expected value"


def assert_close(got, want, rtol: float = 1e-6, atol: float = 1e-8, name: str = "your result") -> None:
    """Assert ``|got - want| <= atol + rtol·|want|`` elementwise with matching shapes.

    ``got`` is what the student returned (plain data); ``want`` the trusted reference.
    The message describes the error (shape, index, relative error, sign, a rounded
    ratio such as 0.5x) and the student's own value, never the expected value: a
    resubmission cannot return a printed constant.
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
        worst = np.argmax(np.where(bad, err / (atol + rtol * np.abs(w64)), -1))
        i = np.unravel_index(worst, err.shape) if err.ndim else ()
        at = f" at index {tuple(int(k) for k in i)}" if err.ndim else ""
        gi = complex(g64[i]) if g64.dtype.kind == "c" else float(g64[i])
        mine = f"{gi:.6g}" if isinstance(gi, float) else f"{gi:.6g}"
        how = _compare(gi, float(w64[i]))
        raise AssertionError(
            f"{name} is wrong{at}: you returned {mine}" + (f"; {how}" if how else "")
            + f" ({int(bad.sum())} of {err.size} entries off; rtol={rtol:g}, atol={atol:g})")


# Trusted code (hidden tests, references) runs one thread at a time: torch's forward-mode AD
# levels and similar state are process-global, so two hidden tests computing references at
# once in threads (``--jobs N``) can corrupt each other. The lock is released while a test
# waits for the student's worker, so submissions still run in parallel where the time goes.
# Time spent waiting for the lock is nobody's budget: budgets count CPU time (below).
_TRUSTED = threading.Lock()


def _numbers(x, _depth: int = 0) -> int:
    """How many numbers a value holds (arrays, tensors, model parameters, containers)."""
    if _depth > 30:
        return 1
    if isinstance(x, np.ndarray):
        return int(x.size)
    if hasattr(x, "numel") and callable(x.numel):  # torch tensor
        return int(x.numel())
    if hasattr(x, "parameters") and callable(x.parameters):  # torch module
        return sum(int(p.numel()) for p in x.parameters())
    if isinstance(x, dict):
        return sum(_numbers(v, _depth + 1) for v in x.values()) + len(x)
    if isinstance(x, (list, tuple)):
        return sum(_numbers(v, _depth + 1) for v in x) + 1
    if isinstance(x, str):
        return 1 + len(x) // 8
    return 1


def _shape_of(x):
    """Shapes of an argument as the trusted side sent it (model: its parameter shapes)."""
    if hasattr(x, "named_parameters") and callable(x.named_parameters):
        return {k: tuple(p.shape) for k, p in x.named_parameters()}
    if hasattr(x, "shape") and not isinstance(x, (int, float)):
        return tuple(x.shape)
    return None


def _shape_after(x):
    if isinstance(x, dict) and "params" in x and "config" in x:  # a model, as the codec returns it
        return {k: tuple(np.shape(v)) for k, v in x["params"].items()}
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return None


def _worker_cpu(session) -> tuple[int, float] | None:
    """(template pid, CPU seconds of the worker and all its children), or None if unknown."""
    f = getattr(session, "cpu_seconds", None)
    return f() if callable(f) else None


class _Student:
    """``student`` in a hidden test: attribute access calls the submission's function.

    Keeps the test's budget: the student's CPU time in its calls (wall time where the CPU
    time of the worker is unknown) plus the CPU time of this (trusted) thread outside the
    calls. Every returned value is size-checked before the hidden test sees it."""

    def __init__(self, session: Session, budget: float, config: GradingConfig | None = None,
                 deadline: float | None = None, record: bool = False):
        self._session, self._budget = session, float(budget)
        self._record = record  # keep every call (encoded arguments, decoded result) for a diagnosis
        self.calls: list[dict] = []
        self._config = config or GradingConfig()
        self._deadline = deadline  # monotonic: the submission's budget
        self.student_s = 0.0  # the student's time in calls
        self._in_calls_cpu = 0.0  # this thread's CPU time inside calls (encode/decode), not trusted work
        self._t0 = time.thread_time()

    @property
    def trusted_s(self) -> float:
        return max(0.0, time.thread_time() - self._t0 - self._in_calls_cpu)

    def used(self) -> float:
        return self.student_s + self.trusted_s

    def _left(self) -> float:
        left = self._budget - self.used()
        if left <= 0:
            raise StudentError("timeout", f"this test's time budget ({self._budget:g} s, your code plus the "
                                          f"checks of what it returned) ran out")
        if self._deadline is not None:
            sub = self._deadline - time.monotonic()
            if sub <= 0:
                raise StudentError("timeout", "the grading time for this submission ran out")
            left = min(left, sub)
        return left

    def call(self, name: str, *args, return_args: bool = False, **kwargs):
        timeout = self._left()
        cfg = self._config
        sent = _numbers(args) + _numbers(kwargs)
        cap = max(cfg.return_floor, int(cfg.return_factor * sent))
        before_shapes = [_shape_of(a) for a in args] if return_args else []
        _TRUSTED.release()  # held by the hidden test calling us; let other submissions' tests run
        c0, w0, t0 = _worker_cpu(self._session), time.monotonic(), time.thread_time()
        try:
            rec = self._encode_call(name, args, kwargs, return_args) if self._record else None
            res, after = self._session.call(name, args, kwargs, return_args=return_args,
                                            timeout=timeout * cfg.wall_factor)
            if rec is not None:
                rec.update(result=copy.deepcopy(res), after=copy.deepcopy(after))
                self.calls.append(rec)
        finally:
            wall, c1 = time.monotonic() - w0, _worker_cpu(self._session)
            self._in_calls_cpu += time.thread_time() - t0
            same = c0 is not None and c1 is not None and c0[0] == c1[0]
            self.student_s += (c1[1] - c0[1]) if same else wall
            _TRUSTED.acquire()
        if self.used() > self._budget:
            raise StudentError("timeout", f"used {self.used():.3g} s of this test's {self._budget:g} s "
                                          "budget")
        got = _numbers(res) + (_numbers(after) if return_args else 0)
        if got > cap:
            raise StudentError("bad_return", f"{name} returned {got} numbers; a call that was sent {sent} "
                                             f"numbers may return at most {cap}")
        if return_args:
            for k, (b, a) in enumerate(zip(before_shapes, after)):
                if b is not None and _shape_after(a) != b:
                    raise StudentError("bad_return", f"{name} changed the shape of argument {k + 1} "
                                                     f"(from {b} to {_shape_after(a)})")
        return (res, after) if return_args else res

    @staticmethod
    def _encode_call(name, args, kwargs, return_args) -> dict | None:
        """The call as the diagnosis replays it: the arguments encoded as they were sent."""
        from . import codec
        try:
            return {"function": name, "args": codec.encode(list(args), "plain data"),
                    "kwargs": codec.encode(dict(kwargs), "plain data"), "return_args": bool(return_args)}
        except codec.EncodeError:
            return None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)


def _test_rng(seed: int, task: str, test: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(f"{task}.{test}".encode()).digest()[:8], "big")
    return np.random.default_rng([int(seed), h])


def content_hash(cells: list[tuple[int, str]]) -> str:
    """sha256 of the graded code cells (their sources, in order; indices and outputs ignored)."""
    h = hashlib.sha256()
    for _, src in cells:
        b = src.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "big") + b)
    return h.hexdigest()


def submission_seed(course_seed: int, student: str, digest: str) -> int:
    """The seed of one submission: a 63-bit hash of (course seed, student id, content hash).
    The same file regrades identically; a changed file or another student gets fresh inputs."""
    h = hashlib.sha256(f"flatlab-grading\0{int(course_seed)}\0{student}\0{digest}".encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


_WARM = threading.Lock()
_warmed = False


def _warm_trusted() -> None:
    """Run the reference library's lazily initialised paths (torch.func's Hessian machinery
    costs ~2 s of CPU on first use) once per process, so no student's first test pays for it."""
    global _warmed
    with _WARM:
        if _warmed:
            return
        import flatlab
        from flatlab.sharpness import gauss_newton_trace, hessian_trace
        X, y = flatlab.xor_parity(4, 3, seed=0)
        for arch in ("bias", "sim_ln"):
            net = flatlab.make_model(arch, 3, 2, seed=0)
            hessian_trace(net, X, y, method="exact")
            gauss_newton_trace(net, X)
        _warmed = True


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


def _record(t: dict, **kw) -> dict:
    return {"name": t["name"], "doc": t["doc"], "points": t["points"], "score": 0.0, "passed": False,
            "kind": "", "message": "", "seed": None,
            "time": {"student_s": 0.0, "trusted_s": 0.0, "wall_s": 0.0}, **kw}


def _invalid(student: str, bundle: dict, why: str, config: GradingConfig, source: str = "") -> dict:
    tasks = [{"id": t["id"], "points": t["points"], "score": 0.0, "tests": [
        _record(x, kind="invalid", message=why) for x in bundle["tests"] if x["task"] == t["id"]]}
        for t in bundle["tasks"]]
    return _result(student, bundle, "invalid", tasks, config, note=why, source=source)


def _result(student, bundle, status, tasks, config: GradingConfig, *, cells=None, logs=None, note="",
            protections=None, source="", seed=None, digest="", timing=None) -> dict:
    score = round(sum(t["score"] for t in tasks), 6)
    return {
        "student": student, "source": source, "assignment": bundle["assignment"],
        "title": bundle.get("title", ""),
        "grader_version": GRADER_VERSION, "config": config.as_dict(), "seed": config.seed,
        "submission_seed": seed, "content_sha256": digest, "status": status, "note": note,
        "score": score, "max_score": round(sum(t["points"] for t in bundle["tasks"]), 6),
        "manual_max": round(sum(q["points"] for q in bundle["manual"]), 6),
        "tasks": tasks,
        "manual": [{"id": q["id"], "points": q["points"], "status": "manual, ungraded"}
                   for q in bundle["manual"]],
        "cells": [{"index": i, **c} for i, c in sorted((cells or {}).items())],
        "log": logs or {}, "sandbox": protections or {},
        "timing": timing or {"wall_s": 0.0, "grader_cpu_s": 0.0, "worker_cpu_s": None, "student_s": 0.0,
                             "trusted_s": 0.0},
    }


KNOWN_MISTAKE = "This looks like a known mistake: "


def _diagnose(rec: dict, bundle: dict, task: dict, calls: list[dict], timeout: float) -> None:
    """Name the registered mistake of ``task`` that the wrong answer matches, if any
    (:mod:`autograder.diagnose`): the test's message gains its feedback, ``rec["mistake"]`` its name."""
    from .diagnose import diagnose
    try:
        m = diagnose(bundle, task["id"], task["function"], calls, timeout=timeout)
    except Exception as e:  # a diagnosis never costs or changes points
        print(f"warning: diagnosis of {task['id']} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return
    if m is not None:
        rec["message"] = (rec["message"].rstrip() + "\n" + KNOWN_MISTAKE + m["feedback"]).strip()
        rec["mistake"] = m["name"]


class _Watchdog:
    """Kills the submission's worker once its budget is spent (and keeps killing restarts
    until grading of it ends), so the budget holds while code runs, not only between tests."""

    def __init__(self, session, seconds: float):
        self.session, self.expired, self._stop = session, threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()

    def _run(self, seconds):
        if self._stop.wait(seconds):
            return
        self.expired.set()
        while not self._stop.is_set():
            self.session.kill()
            self._stop.wait(0.2)

    def stop(self):
        self._stop.set()
        self._thread.join()


def grade_notebook(path: str | Path, bundle: dict, config: GradingConfig | None = None, *, slot: int = 0,
                   hide=(), student: str | None = None) -> dict:
    """Grade one submission; returns the results dict (see ``results/<student>.json``)."""
    config = config or GradingConfig()
    path = Path(path)
    student = student or student_id(path)
    w0, c0 = time.monotonic(), time.thread_time()
    try:
        if path.stat().st_size > config.max_notebook_mb * 2**20:
            raise ValueError(f"file larger than {config.max_notebook_mb:g} MiB")
        nb = nbformat.read(str(path), as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except Exception as e:  # anything unreadable is an invalid submission, never a grader crash
        return _invalid(student, bundle, f"not a readable notebook: {type(e).__name__}: {str(e)[:200]}",
                        config, path.name)
    named = (nb.get("metadata") or {}).get("flatlab", {})
    named = named.get("assignment") if isinstance(named, dict) else None
    if isinstance(named, str) and named != bundle["assignment"]:
        return _invalid(student, bundle, f"this notebook is {named}, not {bundle['assignment']} "
                                         f"(metadata.flatlab.assignment)", config, path.name)
    asg = _asg(bundle)
    run, task_src = submission_cells(nb, asg)
    digest = content_hash(run)
    sub_seed = submission_seed(config.seed, student, digest)
    run = [(i, strip_magics(src)) for i, src in run]
    ns = _hidden_namespace(bundle)
    view = bundle.get("flatlab_view")
    if view and not os.path.isabs(view):
        raise ValueError(f"bundle flatlab_view {view!r} is relative: read bundles with load_bundle")
    session = Session(run, config.sandbox(view), slot=slot, hide=hide)
    deadline = time.monotonic() + config.submission_timeout
    dog = _Watchdog(session, config.submission_timeout)
    status, tasks, student_total, trusted_total = "graded", [], 0.0, 0.0
    diagnosable = {m["task"] for m in bundle.get("mistakes") or []}
    try:
        session.warm()
        _warm_trusted()  # (normally done by then: `run` starts it in the background)
        for task in bundle["tasks"]:
            flags = review_flags(task_src.get(task["id"], ""), task["forbid"])  # reported, never subtracted
            tests = []
            for t in (x for x in bundle["tests"] if x["task"] == task["id"]):
                h = int.from_bytes(hashlib.sha256(f"{task['id']}.{t['name']}".encode()).digest()[:8], "big")
                rec = _record(t, seed=[sub_seed, h])
                t_wall, trusted = time.monotonic(), 0.0
                # forbidden flatlab names are not in the worker's flatlab (the view); others are review flags
                student_obj = _Student(session, config.test_timeout, config, deadline,
                                       record=task["id"] in diagnosable)
                if dog.expired.is_set() or time.monotonic() > deadline:
                    status = "timeout"
                    rec.update(kind="timeout", message="the grading time for this submission ran out")
                else:
                    try:
                        with _TRUSTED:
                            student_obj._t0 = time.thread_time()
                            try:
                                with session.test():  # a fresh fork of the template per test
                                    ns[t["name"]](student_obj, _test_rng(sub_seed, task["id"], t["name"]))
                            finally:
                                trusted = student_obj.trusted_s
                        mine = student_obj.student_s
                        if mine + trusted > config.test_timeout:
                            raise StudentError("timeout", f"your code ({mine:.3g} s) plus the checks of what "
                                               f"it returned ({trusted:.3g} s) exceeded this test's "
                                               f"{config.test_timeout:g} s budget")
                        rec.update(passed=True, score=float(t["points"]), kind="passed")
                    except StudentError as e:
                        # a removed flatlab function raised (the message only names the kind: no points either way)
                        kind = "forbidden" if e.kind == "exception" and UNAVAILABLE in e.message else e.kind
                        rec.update(kind=kind, message=e.message, traceback=e.traceback)
                        if dog.expired.is_set():
                            status = "timeout"
                            rec.update(kind="timeout", message="the grading time for this submission ran out")
                    except AssertionError as e:
                        rec.update(kind="wrong", message=str(e)[:1500])
                    except Exception as e:  # the check itself failed on what the student returned
                        rec.update(kind="error", message=f"{type(e).__name__}: {str(e)[:500]}")
                rec["time"] = {"student_s": round(student_obj.student_s, 4),
                               "trusted_s": round(trusted, 4),
                               "wall_s": round(time.monotonic() - t_wall, 4)}
                if rec["kind"] == "wrong" and task["id"] in diagnosable:
                    _diagnose(rec, bundle, task, student_obj.calls, config.test_timeout)
                student_total += rec["time"]["student_s"]
                trusted_total += rec["time"]["trusted_s"]
                tests.append(rec)
            tasks.append({"id": task["id"], "points": task["points"],
                          "score": round(sum(x["score"] for x in tests), 6), "tests": tests,
                          "review_flags": flags,
                          "known_mistakes": sum(m["task"] == task["id"] for m in bundle.get("mistakes") or [])})
        kinds = [x["kind"] for tk in tasks for x in tk["tests"]]
        if status == "graded" and kinds and all(k == "crashed" for k in kinds):
            status = "crashed"
    finally:
        dog.stop()
        worker = _worker_cpu(session)
        session.close()
    timing = {"wall_s": round(time.monotonic() - w0, 4), "grader_cpu_s": round(time.thread_time() - c0, 4),
              "worker_cpu_s": None if worker is None else round(worker[1], 4),
              "student_s": round(student_total, 4), "trusted_s": round(trusted_total, 4)}
    return _result(student, bundle, status, tasks, config, cells=session.cell_status, logs=session.logs,
                   protections=session.protections, source=path.name, seed=sub_seed, digest=digest,
                   timing=timing)


_ID_BAD = re.compile(r"[^a-z0-9._-]+")
NOTEBOOK_SUFFIXES = (".ipynb", ".json")


def student_id(path: Path) -> str:
    """The student id a submission file maps to: its stem, lowercased, other characters -> ``_``."""
    return _ID_BAD.sub("_", Path(path).stem.strip().lower()).strip("._") or "_"


def collect_submissions(src: Path, warn=print) -> list[Path]:
    """The notebooks of a submissions folder (``*.ipynb``, ``*.json``), sorted; other files are
    skipped with a warning. Raises ``ValueError`` naming both files if two map to one student id."""
    src = Path(src)
    if not src.is_dir():
        return [src]
    paths, seen = [], {}
    for p in sorted(x for x in src.iterdir() if not x.name.startswith(".")):
        if not p.is_file():
            continue
        if p.suffix.lower() not in NOTEBOOK_SUFFIXES:
            warn(f"warning: skipping {p.name}: not a notebook (*.ipynb)")
            continue
        sid = student_id(p)
        if sid in seen:
            raise ValueError(f"{seen[sid].name} and {p.name} are both submissions of student {sid!r}; "
                             f"keep one of them")
        seen[sid] = p
        paths.append(p)
    return paths


def grade_paths(paths: list[Path], bundle: dict, config: GradingConfig | None = None, *, hide=(),
                progress=None) -> list[dict]:
    """Grade several submissions, ``config.jobs`` at a time (each job: one worker process)."""
    config = config or GradingConfig()
    slots: queue.Queue = queue.Queue()
    for k in range(config.jobs):
        slots.put(k)

    def one(p):
        slot = slots.get()
        try:
            r = grade_notebook(p, bundle, config, slot=slot, hide=hide)
        finally:
            slots.put(slot)
        if progress:
            progress(r)
        return r

    with ThreadPoolExecutor(max_workers=config.jobs) as ex:
        return list(ex.map(one, paths))


def write_outputs(results: list[dict], out: Path, roster: Path | None = None) -> None:
    """results/<student>.json and feedback/<student>.md/.html for these results, then the
    gradebook (grades.csv, grades_canvas.csv) rebuilt from every results file in ``out``."""
    from .gradebook import rebuild
    out = Path(out)
    for d in (out, out / "results", out / "feedback"):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    for r in results:
        write_atomic(out / "results" / f"{r['student']}.json", json.dumps(r, indent=1, sort_keys=True) + "\n")
        write_atomic(out / "feedback" / f"{r['student']}.md", feedback_markdown(r))
        write_atomic(out / "feedback" / f"{r['student']}.html", feedback_html(r))
    rebuild(out, roster=roster)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = GradingConfig()
    p.add_argument("submission", help="a submission .ipynb or a folder of <student>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment name, e.g. hw0")
    p.add_argument("--bundles", default="build/grading", help="folder of grading bundles")
    p.add_argument("--out", default=None, help="output folder; None: graded/<assignment>")
    p.add_argument("--roster", type=Path, default=None,
                   help="Canvas gradebook export (Student, ID, SIS User ID, Section) for grades_canvas.csv")
    p.add_argument("--jobs", type=int, default=d.jobs, help="submissions graded in parallel (1..64)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="course seed (with the student id and the file's content: each test's inputs)")
    p.add_argument("--timeout", type=float, default=None,
                   help="sets both --cell-timeout and --test-timeout")
    p.add_argument("--cell-timeout", type=float, default=d.cell_timeout,
                   help="wall seconds per notebook cell")
    p.add_argument("--test-timeout", type=float, default=d.test_timeout,
                   help="seconds per hidden test (student CPU time + trusted checks)")
    p.add_argument("--submission-timeout", type=float, default=d.submission_timeout,
                   help="seconds per submission, cells and tests")
    p.add_argument("--memory-gb", type=float, default=d.memory_gb,
                   help="address-space headroom of a worker above its size after importing torch")
    p.add_argument("--max-notebook-mb", type=float, default=d.max_notebook_mb,
                   help="larger files are invalid")
    p.add_argument("--return-floor", type=int, default=d.return_floor,
                   help="numbers any student call may return")
    p.add_argument("--return-factor", type=float, default=d.return_factor,
                   help="... or this many times the numbers it was sent")


def config_from_args(a: argparse.Namespace) -> GradingConfig:
    """``GradingConfig`` from parsed options; raises ``ValueError`` naming the bad field."""
    cell = a.cell_timeout if a.timeout is None else a.timeout
    test = a.test_timeout if a.timeout is None else a.timeout
    return GradingConfig(seed=a.seed, cell_timeout=cell, test_timeout=test,
                         submission_timeout=a.submission_timeout, memory_gb=a.memory_gb,
                         max_notebook_mb=a.max_notebook_mb, return_floor=a.return_floor,
                         return_factor=a.return_factor, jobs=a.jobs)


def run(a: argparse.Namespace) -> int:
    """Exit status: 0 all graded, 1 some submission invalid / crashed / timed out, 2 usage error."""
    try:
        config = config_from_args(a)
    except ValueError as e:
        field = re.match(r"GradingConfig\.(\w+)", str(e))
        flag = "--" + field.group(1).replace("_", "-") if field else "options"
        print(f"error: {flag}: {e}", file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(a.bundles, a.assignment)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    src = Path(a.submission)
    if not src.exists():
        print(f"error: {src} does not exist", file=sys.stderr)
        return 2
    if a.roster is not None and not a.roster.is_file():
        print(f"error: --roster {a.roster} does not exist", file=sys.stderr)
        return 2
    try:
        paths = collect_submissions(src, warn=lambda m: print(m, file=sys.stderr))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    prestart()  # the fork server imports torch while this process does the same
    import torch
    torch.set_num_threads(1)
    threading.Thread(target=_warm_trusted, daemon=True).start()  # while the first worker starts
    out = Path(a.out or Path("graded") / a.assignment)
    hide = [str(src.resolve() if src.is_dir() else src.resolve().parent), str(Path(a.bundles).resolve()),
            str(out.resolve())]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def progress(r):
        print(f"{r['student']}: {r['status']} {r['score']:g}/{r['max_score']:g}", flush=True)

    results = grade_paths(paths, bundle, config, hide=hide, progress=progress)
    try:
        write_outputs(results, out, roster=a.roster)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"graded {len(results)} submission(s) in {time.monotonic() - t0:.1f} s -> {out}/grades.csv")
    bad = [r["student"] for r in results if r["status"] != "graded"]
    if bad:
        print(f"not graded normally: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder grade", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))
