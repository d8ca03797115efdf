"""The sandboxed worker: the only process that runs student code.

:func:`zygote` is a fork server started by :mod:`autograder.sandbox` (``python -I -c``):
it imports numpy/torch/flatlab once and forks one worker per request. Before any student
code a worker (forked as root) unshares the mount and network namespaces, hides the
grader's files behind empty tmpfs mounts, sets resource limits and drops to an
unprivileged uid. Then it serves commands on its two pipes:

- ``{"op": "exec", "index": i, "source": src}``: run one notebook cell in the student
  namespace; any exception (including ``SystemExit``) is reported, never fatal;
- ``{"op": "call", "function": f, "args": [...], "kwargs": {...}, "forbid": [...],
  "return_args": bool}``: call a student function on decoded inputs with tripwires on the
  forbidden names, and reply with the encoded result (plain data only).

Everything this process says is untrusted: the grader only reads plain data from it.
"""
from __future__ import annotations

import builtins
import ctypes
import importlib
import json
import linecache
import os
import resource
import signal
import sys
import traceback

from autograder import codec, magics

__all__ = ["zygote"]

_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 36, 38
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18


def _cover(libc, target: str, keep: list[str], mode: str) -> list[str]:
    """Mount an empty tmpfs over ``target`` and bind the ``keep`` paths under it back in
    (through O_PATH fds opened before covering). Returns the paths kept."""
    inside = [k for k in keep if k.startswith(target + "/")]
    fds = [(k, os.open(k, os.O_PATH)) for k in inside]
    kept = []
    try:
        opts = f"size=1m,mode={mode}".encode()
        if libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts) != 0:
            return kept
        for k, fd in fds:
            os.makedirs(k, mode=0o755, exist_ok=True)
            src = f"/proc/self/fd/{fd}".encode()
            if libc.mount(src, os.fsencode(k), None, _MS_BIND | _MS_REC, None) == 0:
                kept.append(k)
    finally:
        for _, fd in fds:
            os.close(fd)
    return kept


def _expose(libc, paths: list[str], workdir: str) -> list[str]:
    """Keep only ``paths`` (interpreter, site-packages, flatlab) and ``workdir`` reachable in
    the shared temp folders and in folders an unprivileged uid cannot enter.

    ``/tmp``, ``/var/tmp`` and ``/dev/shm`` get a private empty tmpfs (no files of the
    grader, of other students or of other users); a folder others cannot enter (e.g.
    ``/root``, 0700, holding ``/root/.pyenv``) is covered too, with the needed paths
    bind-mounted back in.
    """
    paths = sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)})
    paths = [p for p in paths if not any(p.startswith(q + "/") for q in paths)]
    targets = {}
    for p in paths:
        parts = p.split("/")
        for k in range(2, len(parts) + 1):
            a = "/".join(parts[:k])
            if not os.stat(a).st_mode & 0o001:
                targets[a] = "0755"
                break
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(shared):
            targets[os.path.realpath(shared)] = "1777"
    keep = paths + [os.path.realpath(workdir)]
    done = []
    for a in sorted(targets, key=len):  # outer folders first
        done += _cover(libc, a, keep, targets[a])
    return sorted(set(done))


def _isolate(hide: list[str], netns: bool, expose: list[str] = (), workdir: str = "") -> dict:
    """Unshare namespaces, keep the interpreter reachable and hide paths (root only)."""
    done = {"mount_ns": False, "net_ns": False, "hidden": [], "exposed": []}
    if os.geteuid() != 0:
        return done
    libc = ctypes.CDLL(None, use_errno=True)
    flags = _CLONE_NEWNS | (_CLONE_NEWNET if netns else 0)
    if libc.unshare(flags) != 0 and (not netns or libc.unshare(_CLONE_NEWNS) != 0):
        return done
    done["net_ns"] = netns and os.path.exists("/proc/self/ns/net")
    done["mount_ns"] = libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
    if not done["mount_ns"]:
        return done
    if workdir:
        done["exposed"] = _expose(libc, list(expose), workdir)
    for path in hide:
        p = os.fsencode(path)
        if os.path.isdir(path):
            ok = libc.mount(b"tmpfs", p, b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=64k,mode=0555") == 0
        elif os.path.exists(path):
            ok = libc.mount(b"/dev/null", p, None, _MS_BIND, None) == 0
        else:
            ok = False
        if ok:
            done["hidden"].append(path)
    return done


def _limits(cfg: dict) -> dict:
    """Set CPU, address-space, process, file-size and open-file limits."""
    vm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
    out = {"vm_at_start": vm}
    lim = {
        resource.RLIMIT_CPU: cfg["cpu_seconds"],
        resource.RLIMIT_AS: vm + cfg["memory_bytes"],
        resource.RLIMIT_FSIZE: cfg["file_bytes"],
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
    }
    if cfg.get("nproc"):
        lim[resource.RLIMIT_NPROC] = cfg["nproc"]
    for k, v in lim.items():
        resource.setrlimit(k, (int(v), int(v)))
    out.update({"cpu": cfg["cpu_seconds"], "as": vm + cfg["memory_bytes"], "nproc": cfg.get("nproc")})
    return out


def _drop(uid: int | None, gid: int | None) -> bool:
    if uid is None or os.geteuid() != 0:
        return False
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries stay inert
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return os.geteuid() == uid


def _resolve(dotted: str):
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except Exception:
            continue
        try:
            for name in parts[k:]:
                obj = getattr(obj, name)
        except (AttributeError, ImportError):  # e.g. a lazy flatlab submodule that does not exist
            return None
        return obj
    return None


class _Tripwires:
    """Record calls to forbidden objects: a profiler hook (catches aliases) and attribute swaps."""

    def __init__(self, names: list[str]):
        self.names, self.hits, self.codes, self.cfuncs, self.swaps = names, [], {}, {}, []
        for dotted in names:
            obj = _resolve(dotted)
            if obj is None:
                continue
            inner = obj
            while hasattr(inner, "__wrapped__"):
                inner = inner.__wrapped__
            code = getattr(inner, "__code__", None)
            if code is not None:
                self.codes[code] = dotted
            elif callable(obj):
                self.cfuncs[id(obj)] = dotted
            owner = _resolve(dotted.rsplit(".", 1)[0])
            if owner is not None:
                self.swaps.append((owner, dotted.rsplit(".", 1)[1], obj, dotted))

    def _profile(self, frame, event, arg):
        if event == "call":
            d = self.codes.get(frame.f_code)
        elif event == "c_call":
            d = self.cfuncs.get(id(arg))
        else:
            return
        if d is not None and d not in self.hits:
            self.hits.append(d)

    def _wrap(self, orig, dotted):
        def tripwire(*a, **k):
            if dotted not in self.hits:
                self.hits.append(dotted)
            return orig(*a, **k)
        return tripwire

    def __enter__(self):
        for owner, attr, obj, dotted in self.swaps:
            try:
                setattr(owner, attr, self._wrap(obj, dotted))
            except (AttributeError, TypeError):
                pass
        if self.codes or self.cfuncs:
            sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        if (self.codes or self.cfuncs) and sys.getprofile() != self._profile:
            self.hits.append("(the grader's call monitor was removed during the call)")
        sys.setprofile(None)
        for owner, attr, obj, _ in self.swaps:
            try:
                setattr(owner, attr, obj)
            except (AttributeError, TypeError):
                pass
        return False


def _error(kind: str, exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames[-8:])
    return {"ok": False, "kind": kind, "type": type(exc).__name__,
            "message": str(exc)[:2000], "traceback": "".join(lines)[-3000:]}


def _serve(cmd_fd: int, rep_fd: int, ns: dict) -> None:
    decode, encode, send, recv = codec.decode, codec.encode, codec.send, codec.recv
    main_pid = os.getpid()
    while True:
        try:
            msg = recv(cmd_fd)
        except EOFError:
            return
        op = msg.get("op")
        if op == "exit":
            return
        reply: dict
        if op == "exec":
            try:
                fname = f"<cell {msg['index']}>"
                linecache.cache[fname] = (len(msg["source"]), None, msg["source"].splitlines(True), fname)
                code = compile(msg["source"], fname, "exec")
                exec(code, ns)
                reply = {"ok": True}
            except BaseException as e:  # noqa: B036 - SystemExit too: a cell never ends the worker
                reply = _error("exception", e)
        elif op == "call":
            fn = ns.get(msg["function"])
            wires = _Tripwires(msg.get("forbid", []))
            if not callable(fn):
                reply = {"ok": False, "kind": "missing", "type": "NameError",
                         "message": f"function {msg['function']!r} is not defined in the notebook",
                         "traceback": ""}
            else:
                try:
                    args = decode(msg["args"], tensors=True, models=True)
                    kwargs = decode(msg["kwargs"], tensors=True, models=True)
                    with wires:
                        result = fn(*args, **kwargs)
                    try:
                        reply = {"ok": True, "result": encode(result)}
                        if msg.get("return_args"):
                            reply["args"] = encode(list(args), "plain data")
                    except codec.EncodeError as e:
                        reply = {"ok": False, "kind": "bad_return", "type": "TypeError",
                                 "message": str(e), "traceback": ""}
                except BaseException as e:  # noqa: B036
                    reply = _error("exception", e)
            reply["violations"] = list(wires.hits)
        else:
            reply = {"ok": False, "kind": "protocol", "type": "ValueError", "message": f"bad op {op!r}"}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        if os.getpid() != main_pid:  # a child forked by student code must not answer
            os._exit(0)
        reply["seq"] = msg.get("seq")
        send(rep_fd, reply)


def _child(cfg: dict, cmd_fd: int, rep_fd: int) -> None:
    """In a freshly forked child: isolate, limit, drop privileges, then serve."""
    os.environ.update(cfg.get("env", {}))
    prot = _isolate(cfg.get("hide", []), cfg.get("netns", True), cfg.get("expose", []), cfg["workdir"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    prot["limits"] = _limits(cfg["limits"])
    prot["uid"] = _drop(cfg.get("uid"), cfg.get("gid"))
    os.chdir(cfg["workdir"])
    sys.argv = [""]
    ns = magics.install({"__name__": "__main__", "__builtins__": builtins})  # get_ipython() for magics
    codec.send(rep_fd, {"ready": True, "protections": prot})
    _serve(cmd_fd, rep_fd, ns)


def _fork_worker(cfg: dict, fds: list[int]) -> int:
    """Fork a worker with fds (command pipe, reply pipe, stdout log, stderr log)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        os.setsid()
        cmd_fd, rep_fd, out_fd, err_fd = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        keep = sorted({0, 1, 2, cmd_fd, rep_fd})
        lo = 3
        for fd in keep:
            if fd >= lo:
                os.closerange(lo, fd)
                lo = fd + 1
        os.closerange(lo, 65536)
        _child(cfg, cmd_fd, rep_fd)
    except BaseException:  # noqa: B036
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def zygote(sock_fd: int) -> None:
    """A fork server: import numpy/torch/flatlab once, then fork one worker per request.

    Requests on the UNIX socket: ``{"op": "spawn", "cfg": {...}}`` with four fds attached
    (reply ``{"pid": n}``), ``{"op": "status", "pid": n}`` (waits for that worker, reply
    ``{"status": waitpid status}``; the grader kills it first). The zygote stays
    single-threaded so that its children may unshare their mount namespace.
    """
    import socket

    import numpy  # noqa: F401  (trusted imports, shared by every worker through fork)
    import torch
    import flatlab  # noqa: F401
    import flatlab.models  # noqa: F401
    torch.set_num_threads(1)
    # orphans of killed workers are re-parented here and reaped below (PID 1 may not reap)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sock = socket.socket(fileno=sock_fd)  # AF_UNIX SOCK_SEQPACKET: one recv = one request
    statuses: dict[int, int] = {}
    while True:
        data, pending_fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        if not data:
            return
        msg = json.loads(data)
        if msg["op"] == "spawn":
            pid = _fork_worker(msg["cfg"], pending_fds)
            for fd in pending_fds:
                os.close(fd)
            reply = {"pid": pid}
        else:
            pid = int(msg["pid"])
            if pid not in statuses:
                try:
                    statuses[pid] = os.waitpid(pid, 0)[1]
                except ChildProcessError:
                    statuses[pid] = -1
            reply = {"status": statuses.pop(pid)}
        while True:  # reap any other finished workers
            try:
                done, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not done:
                break
            statuses[done] = st
            if len(statuses) > 4096:
                statuses.pop(next(iter(statuses)))
        sock.send(json.dumps(reply).encode())
