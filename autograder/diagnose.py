"""Diagnosis: name the known mistake a wrong answer looks like (FORMAT.md "Diagnosis").

When a hidden test of task T fails with a wrong value and the bundle registers mistakes of T,
:func:`diagnose` re-runs each of them, in order, on the arguments the test passed to the
student's function (recorded by ``_Student.call``) and compares the results with what the
student returned: same structure and shapes, ``np.allclose(rtol=1e-6, atol=1e-9)``; for a
call with ``return_args`` the arguments after the call too. The first mistake that matches
every recorded call is the diagnosis.

The mistakes run in a trusted server process (:mod:`autograder._diagnose`) that holds the full
flatlab and the bundle's reference solution: never in the grader's own interpreter (setup
cells change torch defaults) and never in the student's sandbox. It starts lazily, on the
first failing test of a task that has mistakes, one per grading process and bundle, and
forks per mistake from the state after the reference cells.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import codec

__all__ = ["RTOL", "ATOL", "same_value", "Diagnoser", "diagnoser", "diagnose", "close_all"]

RTOL, ATOL = 1e-6, 1e-9
START_TIMEOUT = 300.0  # seconds to import flatlab and run the reference cells


def same_value(a, b) -> bool:
    """Whether two decoded plain-data values match: same structure, numbers and arrays of the
    same shape within ``np.allclose(rtol=1e-6, atol=1e-9)`` (NaN where the other has NaN: a mistake that
    returns NaN, e.g. a missing zero guard, is recognised), anything else equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
        return type(a) is type(b) and a == b
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.dtype.kind not in "biufc" or y.dtype.kind not in "biufc" or x.shape != y.shape:
            return False
        return bool(np.allclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True))
    except (TypeError, ValueError):
        return False


class Diagnoser:
    """One diagnosis server for one bundle (started on first use; thread-safe)."""

    def __init__(self, bundle: dict):
        self.reference = list(bundle.get("reference") or [])
        self.mistakes = list(bundle.get("mistakes") or [])
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._buf = b""
        self._cwd: tempfile.TemporaryDirectory | None = None
        self.broken = ""  # why the server cannot be used (the reference failed in it, it died)

    def of_task(self, task: str) -> list[dict]:
        return [m for m in self.mistakes if m["task"] == task]

    def _readline(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the diagnosis server did not answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError("the diagnosis server exited")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _send(self, msg: dict) -> None:
        self._proc.stdin.write((json.dumps(msg) + "\n").encode())
        self._proc.stdin.flush()

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
        self._cwd = tempfile.TemporaryDirectory(prefix="flatlab-diagnose-")
        self._proc = subprocess.Popen([sys.executable, "-m", "autograder._diagnose"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self._cwd.name,
                                      env=env)
        self._send({"reference": self.reference})
        rep = self._readline(START_TIMEOUT)
        if not rep.get("ok"):
            self.broken = "the reference solution failed in the diagnosis process: " + "; ".join(rep["errors"])

    def warm(self) -> None:
        """Start the server now (e.g. in a thread while the grader starts its workers)."""
        with self._lock:
            if self._proc is None and not self.broken:
                try:
                    self._start()
                except (OSError, EOFError, TimeoutError, ValueError) as e:
                    self.broken = f"diagnosis server: {e}"
                    self.close()

    def run(self, source: str, function: str, calls: list[dict], timeout: float) -> dict:
        """The mistake's replies to ``calls`` (``{"ok", "results" | "error"}``)."""
        with self._lock:
            if self.broken:
                return {"ok": False, "error": self.broken}
            try:
                if self._proc is None:
                    self._start()
                    if self.broken:
                        return {"ok": False, "error": self.broken}
                self._send({"source": source, "function": function, "calls": calls, "timeout": timeout})
                return self._readline(timeout + 30.0)
            except (OSError, EOFError, TimeoutError, ValueError) as e:
                self.broken = f"diagnosis server: {e}"
                self.close()
                return {"ok": False, "error": self.broken}

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._proc = None
        if self._cwd is not None:
            self._cwd.cleanup()
            self._cwd = None


_SERVERS: dict[tuple, Diagnoser] = {}
_SERVERS_LOCK = threading.Lock()


def diagnoser(bundle: dict) -> Diagnoser:
    """The diagnosis server of a bundle (one per grading process)."""
    key = (bundle.get("assignment"), bundle.get("source_sha256"), id(bundle))
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = Diagnoser(bundle)
        return _SERVERS[key]


@atexit.register
def close_all() -> None:
    with _SERVERS_LOCK:
        for d in _SERVERS.values():
            d.close()
        _SERVERS.clear()


def diagnose(bundle: dict, task: str, function: str, calls: list[dict], timeout: float = 60.0) -> dict | None:
    """The first registered mistake of ``task`` that returns what the student returned on every
    recorded call of ``function`` (``calls``: ``[{"function", "args", "kwargs", "return_args",
    "result", "after"}]``: arguments codec-encoded, result and arguments after the call decoded,
    as the hidden test saw them), or None. Starts no process when the task has no
    mistakes or the test made no such call."""
    mine = [c for c in calls if c.get("function") == function]
    mistakes = [m for m in (bundle.get("mistakes") or []) if m["task"] == task]
    if not mine or not mistakes:
        return None
    d = diagnoser(bundle)
    wire = [{"args": c["args"], "kwargs": c["kwargs"], "return_args": c.get("return_args", False)} for c in mine]
    for m in mistakes:
        rep = d.run(m["source"], function, wire, timeout)
        if not rep.get("ok"):
            if d.broken:
                return None
            continue
        ok = len(rep["results"]) == len(mine)
        for c, r in zip(mine, rep["results"]):
            if not ok or "error" in r:
                ok = False
                break
            if not same_value(codec.decode(r["result"]), c["result"]):
                ok = False
            elif c.get("return_args") and not same_value(codec.decode(r.get("args")), c["after"]):
                ok = False
        if ok:
            return m
    return None
