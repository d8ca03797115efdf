"""The trusted side of the sandbox: start, feed, time and kill worker processes.

A :class:`Session` grades one submission. It starts a worker (``autograder.worker``, forked
from a fork server that never imports flatlab) in a new session with a scrubbed
environment, stdout/stderr sent to files that are never parsed, a control socket and a
reply pipe. The worker runs the notebook's cells once and becomes a *template*; each
hidden test (``with session.test(): ...``) gets a fresh fork of it on its own pipes, and
when the test ends that child and everything it started are killed, so a test's
mutations, crash or hang never reach another test. Only a dead template is restarted
(re-running the cells, skipping the ones that hung or crashed it).

As root (a container, Gradescope) the worker also gets its own uid (``2_000_000 + 64 *
parent pid + slot``, so ``RLIMIT_NPROC`` bounds fork bombs), new mount, network, IPC and
PID namespaces (the template is PID 1: killing it kills every student process), a fresh
``/proc``, and a new root holding only read-only bind mounts of what the interpreter needs,
the restricted flatlab (``flatlab_view``) mounted over the real package folder, and a
size-capped tmpfs (``disk_bytes``) behind ``/tmp``, ``/var/tmp``, ``/run``, ``/dev/shm`` and
the working folder. Without root only resource limits, timeouts and the fork per test
apply, and the view is merely first on ``sys.path`` (a warning is printed once).

What the worker replies is untrusted: its claimed ok/kind only chooses the error message;
a score can only come from a decoded value that the trusted test checked.
"""
from __future__ import annotations

import atexit
import contextlib
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
    """What a worker must reach (read-only): the interpreter, the stdlib, site-packages,
    the folders holding numpy/torch, shared libraries and the loader cache. Never the
    grader's cwd, the checkout, flatlab's own folder (the view goes there) or other
    sys.path entries."""
    import site

    import numpy
    import torch
    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.__file__), *site.getsitepackages()]
    paths += [os.path.dirname(os.path.dirname(m.__file__)) for m in (numpy, torch)]
    paths += ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/ld.so.cache"]
    return [p for p in paths if os.path.exists(p)]


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
    isolate: bool = True  # as root: own uid; mount, network, IPC, PID namespaces; new root
    disk_bytes: int = 256 * 2**20  # as root: one tmpfs behind /tmp, /var/tmp, /run, /dev/shm and cwd
    flatlab_view: str | None = None  # folder holding the restricted package <view>/flatlab/; None: full
    hide: tuple[str, ...] = ()  # extra paths to cover with empty mounts
    log_tail: int = 2000  # characters of stdout/stderr kept for the results file
    python: str = field(default_factory=lambda: sys.executable)  # interpreter for the worker


class StudentError(BaseException):
    """A student call that did not produce a value (BaseException: tests cannot swallow it).

    ``kind``: exception | not_implemented | bad_return | missing | timeout | crashed.
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

    def spawn(self, cfg: dict, fds: list[int]) -> tuple[int, int]:
        """(worker pid, template pid) of a new worker."""
        r = self._ask({"op": "spawn", "cfg": cfg}, fds)
        return int(r["pid"]), int(r["template"])

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


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, state, CPU seconds incl. reaped children) of every process."""
    out, tck = {}, os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(name)] = (int(fields[1]), fields[0], sum(int(v) for v in fields[11:15]) / tck)
            except (OSError, IndexError, ValueError):
                pass
    return out


def _descendants(table: dict, root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


class _Worker:
    """One worker: a template that ran the cells and forks one child per hidden test."""

    def __init__(self, cfg: SandboxConfig, slot: int, hide: list[str]):
        self.cfg = cfg
        self.root = os.geteuid() == 0 and cfg.isolate
        self.seq = 0
        self.uid = _UID_BASE + 64 * os.getpid() + (slot % 64) if self.root else None
        self.dir = tempfile.mkdtemp(prefix="ag-work-")
        os.chmod(self.dir, 0o711)  # the worker may enter (to reach work/) but not list it
        self.workdir = os.path.join(self.dir, "work")
        os.mkdir(self.workdir, 0o700)
        os.mkdir(os.path.join(self.dir, "root"), 0o700)  # mount point of the new root
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.uid)
        self.logs = {k: os.fdopen(os.open(os.path.join(self.dir, k), os.O_RDWR | os.O_CREAT, 0o600), "w+b")
                     for k in ("stdout", "stderr")}
        self.ctl, ctl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.rep_r, rep_w = os.pipe()
        import flatlab  # the trusted side's own resolution: editable checkout or wheel
        view = cfg.flatlab_view
        if view is not None and not os.path.isfile(os.path.join(view, "flatlab", "__init__.py")):
            raise ValueError(f"SandboxConfig.flatlab_view = {view!r}: no flatlab/__init__.py in it")
        wcfg = {"isolate": self.root, "hide": hide, "allow": _interpreter_paths(),
                "newroot": os.path.join(self.dir, "root"),
                "view": None if view is None else os.path.realpath(view),
                "flatlab_dir": os.path.dirname(os.path.realpath(flatlab.__file__)),
                "disk_bytes": cfg.disk_bytes, "workdir": self.workdir, "uid": self.uid, "gid": self.uid,
                "env": {"HOME": self.workdir, "TMPDIR": self.workdir,  # numba: the view is read-only
                        "NUMBA_CACHE_DIR": os.path.join(self.workdir, ".numba")},
                "limits": {"cpu_seconds": cfg.cpu_seconds, "memory_bytes": cfg.memory_bytes,
                           "file_bytes": cfg.file_bytes,
                           # root: per-uid count of this worker alone; otherwise the user's count grows
                           "nproc": cfg.nproc if self.root else _user_tasks(os.getuid()) + cfg.nproc}}
        self.returncode = None
        self.pid = self.template = None
        try:
            fds = [ctl_theirs.fileno(), rep_w] + [f.fileno() for f in self.logs.values()]
            self.pid, self.template = _zygote(cfg.python).spawn(wcfg, fds)
        finally:
            ctl_theirs.close()
            os.close(rep_w)
        try:
            ready = self._request(self.ctl.fileno(), self.rep_r, None, cfg.start_timeout)
        except StudentError as e:
            err = self.tail()["stderr"][-500:]
            self.close()
            raise StudentError("crashed", f"the sandbox failed to start ({e.message}): {err}") from None
        if not ready.get("ready"):
            self.close()
            raise StudentError("crashed", "the sandbox failed to start")
        self.protections = ready.get("protections", {})
        self.test: tuple[int, int] | None = None  # (command fd, reply fd) of the open test's child

    def _request(self, cmd_fd: int, rep_fd: int, msg: dict | None, timeout: float) -> dict:
        """Send ``msg`` (if any) and wait for its reply; StudentError on timeout/death (the
        caller decides what to kill)."""
        deadline = time.monotonic() + timeout

        def wait():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rep_fd], [], [], left)[0]:
                raise TimeoutError

        try:
            if msg is None:
                return codec.recv(rep_fd, wait)
            self.seq += 1
            codec.send(cmd_fd, {**msg, "seq": self.seq})
            while True:  # drop stale replies (e.g. from a process the student forked)
                reply = codec.recv(rep_fd, wait)
                if reply.get("seq") == self.seq:
                    return reply
        except TimeoutError:
            raise StudentError("timeout", f"did not finish within {timeout:g} s") from None
        except (EOFError, BrokenPipeError, OSError):
            raise StudentError("crashed", "the notebook's process died") from None
        except codec.ProtocolError as e:
            raise StudentError("crashed", f"the notebook's process sent a malformed reply ({e})") from None

    def request(self, msg: dict, timeout: float) -> dict:
        """A template request (a cell); kills the worker on timeout/death."""
        try:
            return self._request(self.ctl.fileno(), self.rep_r, msg, timeout)
        except StudentError as e:
            self.kill()
            if e.kind == "crashed" and "died" in e.message:
                e.message = f"the notebook's process died ({_signal_name(self.returncode)})"
            raise

    def fork(self) -> None:
        """A fresh child of the template for one hidden test, on its own pipes."""
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            self.seq += 1
            codec.send(self.ctl.fileno(), {"op": "fork", "seq": self.seq})
            socket.send_fds(self.ctl, [b"\0"], [cmd_r, rep_w])
        except OSError:
            for fd in (cmd_r, cmd_w, rep_r, rep_w):
                os.close(fd)
            self.kill()
            raise StudentError("crashed", "the notebook's process died") from None
        os.close(cmd_r)
        os.close(rep_w)
        try:
            r = self._request(self.ctl.fileno(), self.rep_r, None, self.cfg.start_timeout)
            while r.get("seq") != self.seq:
                r = self._request(self.ctl.fileno(), self.rep_r, None, self.cfg.start_timeout)
        except StudentError:
            os.close(cmd_w)
            os.close(rep_r)
            self.kill()
            raise
        self.test = (cmd_w, rep_r)

    def call(self, msg: dict, timeout: float) -> dict:
        """A call in the open test's child; the child (only) is killed on timeout/death."""
        if self.test is None:
            raise StudentError("crashed", "the process of this test died earlier")
        try:
            return self._request(*self.test, msg, timeout)
        except StudentError:
            self.end_test()
            raise

    def end_test(self) -> None:
        """Kill every process but the template: the test child and all it started (with a PID
        namespace every orphan is re-parented to the template, PID 1; without one the template
        is a child subreaper), found as the template's descendants in the host's /proc."""
        if self.test is not None:
            for fd in self.test:
                os.close(fd)
            self.test = None
        self.kill_children()

    def kill_children(self) -> None:
        for _ in range(1000):
            table = _proc_table()
            live = [p for p in _descendants(table, self.template) if table[p][1] != "Z"]
            if not live:
                return
            for p in live:
                try:
                    os.kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.001)  # SIGKILL is delivered asynchronously

    def cpu(self) -> float:
        """CPU seconds of the template, its reaped children and every live descendant."""
        table = _proc_table()
        pids = [self.template, *_descendants(table, self.template)] if self.template in table else []
        return sum(table[p][2] for p in pids)

    def signal(self) -> None:
        """SIGKILL the whole worker now (any thread may call this)."""
        table = _proc_table()
        for p in (self.template, self.pid, *(_descendants(table, self.template) if self.template else ())):
            if p is not None and p in table:
                try:
                    os.kill(p, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill(self) -> None:
        if self.returncode is not None or self.pid is None:
            return
        self.signal()
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.uid is not None and not getattr(self, "protections", {}).get("pid_ns"):  # no PID 1 to kill
            for _ in range(100):  # `kill -9 -1` as the uid signals every process of that uid
                subprocess.run([_KILL, "-9", "-1"], user=self.uid, group=self.uid, extra_groups=[], env={},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.005)
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
        if self.test is not None:
            for fd in self.test:
                os.close(fd)
            self.test = None
        self.ctl.close()
        try:
            os.close(self.rep_r)
        except OSError:
            pass
        for f in self.logs.values():
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_WARNED = []


def _warn_once(protections: dict, root: bool) -> None:
    """One line on stderr, once per process, when the worker runs with less isolation."""
    if _WARNED:
        return
    if not root:
        why = ("not running as root (or isolate is off): no namespaces, no own uid, no filesystem "
               "allowlist; the student's code can read what this user can (autograder/FORMAT.md, The sandbox)")
    else:
        missing = [k for k in ("mount_ns", "net_ns", "ipc_ns", "pid_ns", "pivot_root", "proc", "uid")
                   if not protections.get(k)]
        if not missing:
            return
        why = "sandbox steps failed: " + ", ".join(missing) + (
            f" ({protections['pivot_error']})" if protections.get("pivot_error") else "")
    _WARNED.append(why)
    print(f"warning: {why}", file=sys.stderr)


class Session:
    """One submission: its cells, a (re)startable template worker, and one forked child per
    hidden test (``with session.test(): ...``) running the calls that test makes."""

    def __init__(self, cells: list[tuple[int, str]], cfg: SandboxConfig, slot: int = 0, hide=()):
        self.cells, self.cfg, self.slot = cells, cfg, slot
        self.hide = default_hide(tuple(hide) + tuple(cfg.hide))
        self.skip: set[int] = set()
        self.cell_status: dict[int, dict] = {}
        self.worker: _Worker | None = None
        self.starts = 0
        self.logs = {"stdout": "", "stderr": ""}
        self.protections: dict = {}
        self._in_test = self._forked = False
        self._booting: _Worker | None = None
        self._lock = threading.Lock()

    def _start(self) -> _Worker:
        """A worker with every (non-skipped) cell executed."""
        while self.worker is None:
            self.starts += 1
            if self.starts > len(self.cells) + 3:
                raise StudentError("crashed", "the notebook's process could not be restarted")
            w = _Worker(self.cfg, self.slot, self.hide)
            with self._lock:
                self._booting = w  # what kill() signals while the cells run
            self.protections = w.protections
            _warn_once(w.protections, w.root)
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
                    self.cell_status.setdefault(index, {"status": "ok"} if r.get("ok") is True else {
                        "status": "error", "message": f"{r.get('type')}: {r.get('message')}"[:2000]})
                with self._lock:
                    self.worker, self._booting = w, None
            except StudentError:
                self._collect(w)
                w.close()
        return self.worker

    def _collect(self, w: _Worker) -> None:
        for k, v in w.tail().items():
            self.logs[k] = (self.logs[k] + v)[-self.cfg.log_tail:]

    def _drop_worker(self, w: _Worker) -> None:
        self._collect(w)
        w.close()
        with self._lock:
            self.worker = None

    @contextlib.contextmanager
    def test(self):
        """The calls made inside run in one fresh fork of the template (made at the first
        call); on exit that child and everything it started are killed."""
        if self._in_test:
            raise RuntimeError("Session.test() does not nest")
        self._in_test, self._forked = True, False
        try:
            yield self
        finally:
            self._in_test = False
            if self._forked and self.worker is not None:
                self.worker.end_test()

    def call(self, function: str, args: tuple, kwargs: dict, *, return_args=False, timeout=None):
        """Call a student function; returns (result, args_after) or raises StudentError.
        Outside ``test()`` each call gets its own fork."""
        if not self._in_test:
            with self.test():
                return self.call(function, args, kwargs, return_args=return_args, timeout=timeout)
        try:
            msg = {"op": "call", "function": function, "args": codec.encode(list(args), "plain data"),
                   "kwargs": codec.encode(dict(kwargs), "plain data"), "return_args": bool(return_args)}
        except codec.EncodeError as e:
            raise ValueError(f"hidden test passed an argument that cannot be sent: {e}") from None
        if not self._forked:
            for attempt in (0, 1):  # a template found dead is restarted (cells re-run) once
                w = self._start()
                try:
                    w.fork()
                    break
                except StudentError:
                    self._drop_worker(w)
                    if attempt:
                        raise
            self._forked = True
        w = self.worker
        if w is None:
            raise StudentError("crashed", "the notebook's process died")
        r = w.call(msg, self.cfg.timeout if timeout is None else timeout)
        # what the worker claims decides only the message: a score needs a decoded value
        if r.get("ok") is True and "result" not in r:
            raise StudentError("bad_return", "the notebook's process replied without a value")
        if r.get("ok") is not True:
            kind = r.get("kind") if r.get("kind") in ("exception", "bad_return", "missing") else "exception"
            if r.get("type") == "NotImplementedError":
                kind = "not_implemented"
            msg = str(r.get("message", ""))[:2000]
            text = f"{r.get('type')}: {msg}" if kind in ("exception", "not_implemented") else msg
            raise StudentError(kind, text, str(r.get("traceback", ""))[:3000])
        try:
            result = codec.decode(r.get("result"))
            after = codec.decode(r.get("args")) if return_args else None
        except codec.ProtocolError as e:
            raise StudentError("bad_return", f"returned data the grader cannot read ({e})") from None
        return result, after

    def cpu_seconds(self) -> tuple[int, float] | None:
        """(template pid, CPU seconds of the worker and all its children), or None."""
        w = self.worker
        if w is None or w.template is None:
            return None
        return w.template, w.cpu()

    def kill(self) -> None:
        """SIGKILL the running worker (safe from another thread: the budget watchdog)."""
        with self._lock:
            w = self.worker or self._booting
        if w is not None:
            w.signal()

    def warm(self) -> None:
        """Start the worker and run the cells now (so cell results exist before any test)."""
        try:
            self._start()
        except StudentError:
            pass

    def close(self) -> None:
        if self.worker is not None:
            self._drop_worker(self.worker)
