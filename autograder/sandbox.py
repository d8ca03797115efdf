"""The trusted side of the sandbox: start, feed, time and kill worker processes.

A :class:`Session` grades one submission. It starts a worker (``autograder.worker``) in a
new session (process group) with an empty 0700 temp working directory, a scrubbed
environment, stdout/stderr sent to files that are never parsed, and two dedicated pipes.
When run as root (the normal case in a container or on Gradescope) the worker also gets

- its own uid (``2_000_000 + 64 * parent pid + slot``, never shared with another live
  worker), so ``RLIMIT_NPROC`` is enforced and bounds fork bombs, it cannot read the
  grader's 0600/0700 files, and every process it leaves behind is killed by uid;
- its own mount namespace where the grader's files (the repo except ``flatlab/``, the
  bundles, the submissions folder, the output folder) are covered by empty tmpfs mounts;
- its own network namespace (no interface but a down loopback).

Timeouts are enforced here, by the parent: a cell or call that overruns is killed with its
whole process group (and uid); the session restarts a fresh worker, re-executes the cells
(skipping the ones that hung or crashed it before) and goes on.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import codec

__all__ = ["SandboxConfig", "StudentError", "Session", "default_hide", "prestart"]

_UID_BASE = 2_000_000
_KILL = shutil.which("kill", path="/usr/bin:/bin") or "/bin/kill"


def _interpreter_paths() -> list[str]:
    """What a worker must reach: the interpreter, the stdlib, site-packages and the
    folders holding numpy/torch/flatlab. Never the grader's cwd or other sys.path entries."""
    import site

    import flatlab
    import numpy
    import torch
    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.__file__), *site.getsitepackages()]
    paths += [os.path.dirname(os.path.dirname(m.__file__)) for m in (numpy, torch)]
    paths.append(os.path.dirname(flatlab.__file__))
    return [p for p in paths if os.path.isdir(p)]


def _user_tasks(uid: int) -> int:
    """Processes + threads running with this real uid (what RLIMIT_NPROC counts)."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st.split("Uid:")[1].split()[0]) == uid:
                n += int(st.split("Threads:")[1].split()[0])
    return n


def _uid_alive(uid: int) -> bool:
    """Whether any process runs with this real uid."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
                if int(st.split("Uid:")[1].split()[0]) == uid and "\nState:\tZ" not in st:
                    return True  # a live process (zombies are dead, only not yet reaped)
            except (OSError, IndexError, ValueError):
                pass
    return False


@dataclass
class SandboxConfig:
    """Limits and isolation of a worker."""

    timeout: float = 60.0  # wall seconds per hidden test (all its student calls) and per cell
    start_timeout: float = 120.0  # wall seconds for a worker to start (python + torch import)
    cpu_seconds: int = 900  # RLIMIT_CPU over a worker's whole life
    memory_bytes: int = 3 * 2**30  # RLIMIT_AS headroom above the worker's size after `import torch`
    file_bytes: int = 64 * 2**20  # RLIMIT_FSIZE: largest file (and stdout log) it may write
    nproc: int = 64  # RLIMIT_NPROC: processes + threads of the worker's uid (root mode)
    isolate: bool = True  # as root: own uid, mount + network namespaces
    hide: tuple[str, ...] = ()  # extra paths to cover with empty mounts
    log_tail: int = 2000  # characters of stdout/stderr kept for the results file
    python: str = field(default_factory=lambda: sys.executable)  # interpreter for the worker


class StudentError(BaseException):
    """A student call that did not produce a value (BaseException: tests cannot swallow it).

    ``kind``: exception | not_implemented | bad_return | missing | forbidden | timeout | crashed.
    """

    def __init__(self, kind: str, message: str, traceback: str = ""):
        super().__init__(message)
        self.kind, self.message, self.traceback = kind, message, traceback


def default_hide(extra=()) -> list[str]:
    """Paths a worker must not see: the grader package, a source checkout's files except
    ``flatlab/``, and ``extra`` (bundles, submissions, outputs)."""
    import flatlab
    out = {str(Path(__file__).resolve().parent)}
    lib = Path(flatlab.__file__).resolve().parent
    root = lib.parent
    # a source checkout (not a site-packages holding both packages): hide everything but the library
    if (root / "autograder").is_dir() and any((root / f).is_file() for f in ("setup.cfg", "pyproject.toml")):
        out.update(str(p) for p in root.iterdir() if p.name != lib.name and not p.name.endswith(".egg-info"))
    out.update(str(Path(p).resolve()) for p in extra if p and Path(p).exists())
    keep = [str(Path(tempfile.gettempdir()).resolve())]
    keep += [str(Path(p).resolve()) for p in _interpreter_paths()]
    # never cover the interpreter, its site-packages (a venv inside the checkout, as in CI) or tmp
    return sorted(p for p in out if p not in ("/", "/usr")
                  and not any(k == p or k.startswith(p + "/") for k in keep))


def _signal_name(rc: int | None) -> str:
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed: memory or limits)",
                "SIGSEGV": " (segmentation fault)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"exited with code {rc}"


_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1"}


class _Zygote:
    """Client of the fork server (``autograder.worker.zygote``): torch is imported once
    per grading run, and each worker is a ~10 ms fork instead of a ~2 s interpreter start."""

    def __init__(self, python: str):
        self.python, self.lock = python, threading.Lock()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pkg_parent = str(Path(__file__).resolve().parent.parent)
        boot = (f"import sys; sys.path.insert(0, {pkg_parent!r}); from autograder.worker import zygote; "
                f"zygote({theirs.fileno()})")
        self.proc = subprocess.Popen([python, "-I", "-c", boot], pass_fds=(theirs.fileno(),), env=dict(_ENV),
                                     cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        theirs.close()

    def _ask(self, msg: dict, fds=()) -> dict:
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], list(fds))
            data = self.sock.recv(1 << 16)
        if not data:
            raise StudentError("crashed", "the sandbox's fork server died")
        return json.loads(data)

    def spawn(self, cfg: dict, fds: list[int]) -> int:
        return int(self._ask({"op": "spawn", "cfg": cfg}, fds)["pid"])

    def status(self, pid: int) -> int | None:
        """Reap a killed worker; its exit code (negative: killed by that signal)."""
        st = self._ask({"op": "status", "pid": pid})["status"]
        return None if st < 0 else os.waitstatus_to_exitcode(st)

    def close(self) -> None:
        self.sock.close()
        self.proc.kill()
        self.proc.wait()


_ZYGOTES: dict[str, _Zygote] = {}
_ZLOCK = threading.Lock()


def _zygote(python: str) -> _Zygote:
    with _ZLOCK:
        z = _ZYGOTES.get(python)
        if z is None or z.proc.poll() is not None:
            z = _ZYGOTES[python] = _Zygote(python)
        return z


def prestart(python: str = sys.executable) -> None:
    """Start the fork server now (it imports torch while the caller does other work)."""
    _zygote(python)


@atexit.register
def _stop_zygotes() -> None:
    for z in _ZYGOTES.values():
        z.close()


class _Worker:
    def __init__(self, cfg: SandboxConfig, slot: int, hide: list[str]):
        self.cfg = cfg
        self.root = os.geteuid() == 0 and cfg.isolate
        self.seq = 0
        self.uid = _UID_BASE + 64 * os.getpid() + (slot % 64) if self.root else None
        self.dir = tempfile.mkdtemp(prefix="ag-work-")
        os.chmod(self.dir, 0o711)  # the worker may enter (to reach work/) but not list it
        self.workdir = os.path.join(self.dir, "work")
        os.mkdir(self.workdir, 0o700)
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.uid)
        self.logs = {k: os.fdopen(os.open(os.path.join(self.dir, k), os.O_RDWR | os.O_CREAT, 0o600), "w+b")
                     for k in ("stdout", "stderr")}
        cmd_r, self.cmd_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        expose = _interpreter_paths()
        wcfg = {"hide": hide if self.root else [], "expose": expose, "netns": self.root,
                "workdir": self.workdir, "uid": self.uid, "gid": self.uid,
                "env": {"HOME": self.workdir, "TMPDIR": self.workdir},
                "limits": {"cpu_seconds": cfg.cpu_seconds, "memory_bytes": cfg.memory_bytes,
                           "file_bytes": cfg.file_bytes,
                           # root: per-uid count of this worker alone; otherwise the user's count grows
                           "nproc": cfg.nproc if self.root else _user_tasks(os.getuid()) + cfg.nproc}}
        self.returncode = None
        try:
            fds = [cmd_r, rep_w] + [f.fileno() for f in self.logs.values()]
            self.pid = _zygote(cfg.python).spawn(wcfg, fds)
        finally:
            os.close(cmd_r)
            os.close(rep_w)
        try:
            ready = self.request(None, cfg.start_timeout)
        except StudentError as e:
            err = self.tail()["stderr"][-500:]
            self.close()
            raise StudentError("crashed", f"the sandbox failed to start ({e.message}): {err}") from None
        if not ready.get("ready"):
            self.close()
            raise StudentError("crashed", "the sandbox failed to start")
        self.protections = ready.get("protections", {})

    def request(self, msg: dict | None, timeout: float) -> dict:
        """Send ``msg`` (if any) and wait for the reply; kills the worker on timeout/death."""
        deadline = time.monotonic() + timeout

        def wait():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rep_r], [], [], left)[0]:
                raise TimeoutError

        try:
            if msg is None:
                return codec.recv(self.rep_r, wait)
            self.seq += 1
            codec.send(self.cmd_w, {**msg, "seq": self.seq})
            while True:  # drop stale replies (e.g. from a process the student forked)
                reply = codec.recv(self.rep_r, wait)
                if reply.get("seq") == self.seq:
                    return reply
        except TimeoutError:
            self.kill()
            raise StudentError("timeout", f"did not finish within {timeout:g} s") from None
        except (EOFError, BrokenPipeError, OSError):
            self.kill()
            why = _signal_name(self.returncode)
            raise StudentError("crashed", f"the notebook's process died ({why})") from None
        except codec.ProtocolError as e:
            self.kill()
            raise StudentError("crashed", f"the notebook's process sent a malformed reply ({e})") from None

    def kill(self) -> None:
        if self.returncode is not None:
            return
        for how in (os.kill, os.killpg):
            try:
                how(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.uid is not None:
            for _ in range(100):  # `kill -9 -1` as the uid signals every process of that uid
                subprocess.run([_KILL, "-9", "-1"], user=self.uid, group=self.uid, extra_groups=[], env={},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.005)  # SIGKILL is delivered asynchronously
                if not _uid_alive(self.uid):
                    break
        self.returncode = _zygote(self.cfg.python).status(self.pid)

    def tail(self) -> dict:
        out = {}
        for k, f in self.logs.items():
            f.flush()
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - self.cfg.log_tail))
            out[k] = f.read().decode("utf-8", "replace")
        return out

    def close(self) -> None:
        self.kill()  # nothing to save in the worker: SIGKILL is instant, a clean exit is not
        for fd in (self.cmd_w, self.rep_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for f in self.logs.values():
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Session:
    """One submission: its cells, a (re)startable worker, and the calls the tests make."""

    def __init__(self, cells: list[tuple[int, str]], cfg: SandboxConfig, slot: int = 0, hide=()):
        self.cells, self.cfg, self.slot = cells, cfg, slot
        self.hide = default_hide(tuple(hide) + tuple(cfg.hide))
        self.skip: set[int] = set()
        self.cell_status: dict[int, dict] = {}
        self.worker: _Worker | None = None
        self.starts = 0
        self.logs = {"stdout": "", "stderr": ""}
        self.protections: dict = {}

    def _start(self) -> _Worker:
        """A worker with every (non-skipped) cell executed."""
        while self.worker is None:
            self.starts += 1
            if self.starts > len(self.cells) + 3:
                raise StudentError("crashed", "the notebook's process could not be restarted")
            w = _Worker(self.cfg, self.slot, self.hide)
            self.protections = w.protections
            try:
                for index, src in self.cells:
                    if index in self.skip:
                        continue
                    try:
                        r = w.request({"op": "exec", "index": index, "source": src}, self.cfg.timeout)
                    except StudentError as e:
                        self.skip.add(index)
                        self.cell_status[index] = {"status": e.kind, "message": e.message}
                        raise
                    self.cell_status.setdefault(index, {"status": "ok"} if r.get("ok") else {
                        "status": "error", "message": f"{r.get('type')}: {r.get('message')}"})
                self.worker = w
            except StudentError:
                self._collect(w)
                w.close()
        return self.worker

    def _collect(self, w: _Worker) -> None:
        for k, v in w.tail().items():
            self.logs[k] = (self.logs[k] + v)[-self.cfg.log_tail:]

    def call(self, function: str, args: tuple, kwargs: dict, *, forbid=(), return_args=False, timeout=None):
        """Call a student function; returns (result, args_after) or raises StudentError."""
        try:
            msg = {"op": "call", "function": function, "args": codec.encode(list(args), "plain data"),
                   "kwargs": codec.encode(dict(kwargs), "plain data"), "forbid": list(forbid),
                   "return_args": bool(return_args)}
        except codec.EncodeError as e:
            raise ValueError(f"hidden test passed an argument that cannot be sent: {e}") from None
        w = self._start()
        try:
            r = w.request(msg, self.cfg.timeout if timeout is None else timeout)
        except StudentError:
            self._collect(w)
            w.close()
            self.worker = None
            raise
        if r.get("violations"):
            raise StudentError("forbidden", "called " + ", ".join(map(str, r["violations"])))
        if not r.get("ok"):
            kind = r.get("kind", "exception")
            if r.get("type") == "NotImplementedError":
                kind = "not_implemented"
            if kind not in ("exception", "bad_return", "missing", "not_implemented"):
                kind = "exception"
            msg = str(r.get("message", ""))[:2000]
            text = f"{r.get('type')}: {msg}" if kind in ("exception", "not_implemented") else msg
            raise StudentError(kind, text, str(r.get("traceback", ""))[:3000])
        try:
            result = codec.decode(r.get("result"))
            after = codec.decode(r.get("args")) if return_args else None
        except codec.ProtocolError as e:
            raise StudentError("bad_return", f"returned data the grader cannot read ({e})") from None
        return result, after

    def warm(self) -> None:
        """Start the worker and run the cells now (so cell results exist before any test)."""
        try:
            self._start()
        except StudentError:
            pass

    def close(self) -> None:
        if self.worker is not None:
            self._collect(self.worker)
            self.worker.close()
            self.worker = None
