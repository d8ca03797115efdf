"""The sandboxed worker: the only process that runs student code.

:func:`zygote` is a fork server started by :mod:`autograder.sandbox` (``python -I -c``):
it imports numpy, torch (with ``torch.func`` warmed), matplotlib and scipy once, but never
flatlab, and forks one worker per submission. As root the worker unshares the mount,
network, IPC and PID namespaces and forks the *template*, PID 1 of the new PID namespace.
The template builds a new root (:func:`_pivot`): an empty tmpfs holding read-only bind
mounts of only what the interpreter needs, the restricted flatlab (``flatlab_view``)
mounted over the real package folder, a minimal ``/dev``, a fresh ``/proc`` and one
size-capped tmpfs (the disk quota) behind ``/tmp``, ``/var/tmp``, ``/run``, ``/dev/shm``
and the working folder; then it sets resource limits, drops to an unprivileged uid and
serves its control socket:

- ``{"op": "exec", "index": i, "source": src}``: run one notebook cell in the student
  namespace; any exception (including ``SystemExit``) is reported, never fatal;
- ``{"op": "fork"}`` followed by two fds (SCM_RIGHTS): fork a *test child* that serves
  that one hidden test on those fresh pipes, so what a test does never reaches the template
  or another test. The child serves ``{"op": "call", "function": f, "args": [...],
  "kwargs": {...}, "return_args": bool}`` and replies with the encoded result.

Without root there are no namespaces: the view is put first on ``sys.path`` instead.
Everything this process says is untrusted: the grader only reads plain data from it.
"""
from __future__ import annotations

import builtins
import ctypes
import json
import linecache
import os
import platform
import resource
import signal
import socket
import sys
import traceback

from autograder import codec, magics

__all__ = ["zygote"]

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
_PR_SET_CHILD_SUBREAPER, _PR_SET_NO_NEW_PRIVS = 36, 38
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
_DEVICES = ("null", "zero", "urandom", "random")


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(libc, src, dst, fstype=None, flags=0, opts=None) -> bool:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    return libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(opts)) == 0


def _bind(libc, src: str, dst: str, ro: bool = True) -> bool:
    """Bind ``src`` (folder or file) at ``dst`` (created), read-only unless ``ro`` is false."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
    if not _mount(libc, src, dst, None, _MS_BIND | _MS_REC):
        return False
    ro_flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    return not ro or _mount(libc, None, dst, None, ro_flags)


def _pivot(libc, cfg: dict, uid: int | None) -> dict:
    """Switch to a new root holding only ``cfg["allow"]`` (read-only), the flatlab view,
    /dev/{null,zero,urandom,random}, a fresh /proc and the quota tmpfs. Raises OSError."""
    new = cfg["newroot"]
    if not _mount(libc, "tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=8m,mode=0755"):
        raise OSError(ctypes.get_errno(), "tmpfs for the new root")
    # the quota first: an allowed path under /tmp (a venv there) is bound on top of it
    rw = new + "/.quota"
    os.makedirs(rw)
    size = f"size={int(cfg['disk_bytes'])},mode=0755"
    if not _mount(libc, "tmpfs", rw, "tmpfs", _MS_NOSUID | _MS_NODEV, size):
        raise OSError(ctypes.get_errno(), "quota tmpfs")
    work = cfg["workdir"]
    for name, where in (("tmp", "/tmp"), ("vartmp", "/var/tmp"), ("run", "/run"), ("shm", "/dev/shm"),
                        ("work", None)):
        os.mkdir(f"{rw}/{name}", 0o700 if name == "work" else 0o1777)
        os.chmod(f"{rw}/{name}", 0o700 if name == "work" else 0o1777)
        if name == "work" and uid is not None:
            os.chown(f"{rw}/{name}", uid, uid)
        if where and not _bind(libc, f"{rw}/{name}", new + where, ro=False):
            raise OSError(ctypes.get_errno(), f"bind {where}")
    allow = sorted({os.path.realpath(p) for p in cfg["allow"] if os.path.exists(p)})
    for p in [p for p in allow if not any(p.startswith(q + "/") for q in allow)]:
        if not _bind(libc, p, new + p):
            raise OSError(ctypes.get_errno(), f"bind {p}")
    for p in cfg["allow"]:  # keep links such as /lib -> usr/lib (paths in the loader cache)
        if os.path.islink(p) and not os.path.lexists(new + p):
            os.makedirs(os.path.dirname(new + p), exist_ok=True)
            os.symlink(os.readlink(p), new + p)
    lib = cfg.get("flatlab_dir")
    if lib:  # the view, or (no view given) the real library, where the interpreter looks for it
        src = os.path.join(cfg["view"], "flatlab") if cfg.get("view") else lib
        if not _bind(libc, src, new + lib):
            raise OSError(ctypes.get_errno(), f"bind {src} over {lib}")
    for d in _DEVICES:
        if os.path.exists(f"/dev/{d}") and not _bind(libc, f"/dev/{d}", f"{new}/dev/{d}", ro=False):
            raise OSError(ctypes.get_errno(), f"bind /dev/{d}")
    if not _bind(libc, f"{rw}/work", new + work, ro=False):
        raise OSError(ctypes.get_errno(), "bind the working folder")
    libc.umount2(os.fsencode(rw), _MNT_DETACH)
    os.rmdir(rw)
    os.makedirs(new + "/proc")
    proc = _mount(libc, "proc", new + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    os.chdir(new)
    if _SYS_PIVOT_ROOT is None or libc.syscall(_SYS_PIVOT_ROOT, b".", b".") != 0:
        raise OSError(ctypes.get_errno(), "pivot_root")
    libc.umount2(b".", _MNT_DETACH)  # the old root, stacked on top of the new one
    os.chdir("/")
    ro = _mount(libc, None, "/", None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    return {"pivot_root": True, "proc": proc, "root_read_only": ro, "disk_bytes": int(cfg["disk_bytes"]),
            "allowed": allow}


def _cover(libc, target: str, keep: list[str], mode: str) -> list[str]:
    """Mount an empty tmpfs over ``target`` and bind the ``keep`` paths under it back in
    (through O_PATH fds opened before covering). Returns the paths kept."""
    inside = [k for k in keep if k.startswith(target + "/")]
    fds = [(k, os.open(k, os.O_PATH)) for k in inside]
    kept = []
    try:
        if not _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size=1m,mode={mode}"):
            return kept
        for k, fd in fds:
            os.makedirs(k, mode=0o755, exist_ok=True)
            if _mount(libc, f"/proc/self/fd/{fd}", k, None, _MS_BIND | _MS_REC):
                kept.append(k)
    finally:
        for _, fd in fds:
            os.close(fd)
    return kept


def _cover_fallback(libc, cfg: dict) -> dict:
    """Where pivot_root failed: cover the grader's paths and the shared temp folders with
    empty tmpfs mounts, keep the interpreter reachable, mount the view and a fresh /proc."""
    paths = sorted({os.path.realpath(p) for p in cfg["allow"] if os.path.isdir(p)})
    paths = [p for p in paths if not any(p.startswith(q + "/") for q in paths)]
    targets = {}
    for p in paths:
        parts = p.split("/")
        for k in range(2, len(parts) + 1):
            a = "/".join(parts[:k])
            if not os.stat(a).st_mode & 0o001:  # a folder others cannot enter, e.g. /root
                targets[a] = "0755"
                break
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(shared):
            targets[os.path.realpath(shared)] = "1777"
    keep = paths + [os.path.realpath(cfg["workdir"])]
    if cfg.get("flatlab_dir"):
        keep.append(cfg["flatlab_dir"])
    for a in sorted(targets, key=len):  # outer folders first
        _cover(libc, a, keep, targets[a])
    hidden = []
    for path in cfg.get("hide", []):
        if os.path.isdir(path):
            ok = _mount(libc, "tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=64k,mode=0555")
        else:
            ok = os.path.exists(path) and _mount(libc, "/dev/null", path, None, _MS_BIND)
        if ok:
            hidden.append(path)
    if cfg.get("view") and cfg.get("flatlab_dir"):
        _bind(libc, os.path.join(cfg["view"], "flatlab"), cfg["flatlab_dir"])
    proc = _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    return {"pivot_root": False, "proc": proc, "hidden": hidden, "disk_bytes": None}


def _isolate(cfg: dict, ns: dict) -> dict:
    """In the template (root, after unshare): the new root, or the covering fallback."""
    done = dict(ns)
    libc = _libc()
    if not ns.get("mount_ns") or not _mount(libc, "none", "/", None, _MS_REC | _MS_PRIVATE):
        done["mount_ns"] = False
        return done
    try:
        done.update(_pivot(libc, cfg, cfg.get("uid")))
    except OSError as e:
        os.chdir("/")
        libc.umount2(os.fsencode(cfg["newroot"]), _MNT_DETACH)  # the half-built root, and all under it
        done.update(_cover_fallback(libc, cfg), pivot_error=f"{e.strerror or e}")
    done["flatlab_view"] = "mounted" if cfg.get("view") else "full library"
    return done


def _limits(cfg: dict) -> dict:
    """Set CPU, address-space, process, file-size and open-file limits."""
    vm = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                vm = int(line.split()[1]) * 1024
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
    return {"vm_at_start": vm, "cpu": cfg["cpu_seconds"], "as": vm + cfg["memory_bytes"],
            "nproc": cfg.get("nproc")}


def _drop(uid: int | None, gid: int | None) -> bool:
    if uid is None or os.geteuid() != 0:
        return False
    _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries stay inert
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return os.geteuid() == uid


def _error(kind: str, exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames[-8:])
    return {"ok": False, "kind": kind, "type": type(exc).__name__,
            "message": str(exc)[:2000], "traceback": "".join(lines)[-3000:]}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _call(msg: dict, ns: dict) -> dict:
    fn = ns.get(msg.get("function"))
    if not callable(fn):
        return {"ok": False, "kind": "missing", "type": "NameError",
                "message": f"function {msg.get('function')!r} is not defined in the notebook",
                "traceback": ""}
    try:
        args = codec.decode(msg["args"], tensors=True, models=True)  # imports flatlab (the view) lazily
        kwargs = codec.decode(msg["kwargs"], tensors=True, models=True)
        result = fn(*args, **kwargs)
        try:
            reply = {"ok": True, "result": codec.encode(result)}
            if msg.get("return_args"):
                reply["args"] = codec.encode(list(args), "plain data")
            return reply
        except codec.EncodeError as e:
            return {"ok": False, "kind": "bad_return", "type": "TypeError", "message": str(e),
                    "traceback": ""}
    except BaseException as e:  # noqa: B036
        return _error("exception", e)


def _serve_test(cmd_fd: int, rep_fd: int, ns: dict) -> None:
    """A test child: answer calls on this test's own pipes until they close."""
    me = os.getpid()
    while True:
        try:
            msg = codec.recv(cmd_fd)
        except (EOFError, codec.ProtocolError):
            os._exit(0)
        reply = _call(msg, ns) if msg.get("op") == "call" else {"ok": False, "kind": "protocol",
                                                               "message": "bad op"}
        _flush()
        if os.getpid() != me:  # a child forked by student code must not answer
            os._exit(0)
        reply["seq"] = msg.get("seq")
        codec.send(rep_fd, reply)


def _serve(ctl: socket.socket, rep_fd: int, ns: dict) -> None:
    """The template: run cells, then fork one child per hidden test."""
    me = os.getpid()
    while True:
        try:
            msg = codec.recv(ctl.fileno())
        except (EOFError, codec.ProtocolError):
            return
        while True:  # reap finished test children (and, as PID 1, any orphan)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        op = msg.get("op")
        if op == "exec":
            try:
                fname = f"<cell {msg['index']}>"
                linecache.cache[fname] = (len(msg["source"]), None, msg["source"].splitlines(True), fname)
                exec(compile(msg["source"], fname, "exec"), ns)
                reply = {"ok": True}
            except BaseException as e:  # noqa: B036 - SystemExit too: a cell never ends the worker
                reply = _error("exception", e)
        elif op == "fork":
            _, fds, _, _ = socket.recv_fds(ctl, 1, 2)
            if len(fds) != 2:
                return
            pid = os.fork()
            if pid == 0:
                ctl.close()
                os.close(rep_fd)
                os.setpgid(0, 0)
                _serve_test(fds[0], fds[1], ns)
            for fd in fds:
                os.close(fd)
            reply = {"ok": True, "pid": pid}
        else:
            reply = {"ok": False, "kind": "protocol", "type": "ValueError", "message": f"bad op {op!r}"}
        _flush()
        if os.getpid() != me:
            os._exit(0)
        reply["seq"] = msg.get("seq")
        codec.send(rep_fd, reply)


def _template(cfg: dict, ctl_fd: int, rep_fd: int, ns_done: dict) -> None:
    """The template process: isolate, limit, drop privileges, then serve."""
    os.environ.update(cfg.get("env", {}))
    root = ns_done.get("mount_ns", False)
    prot = _isolate(cfg, ns_done) if root else dict(ns_done)
    if not root and cfg.get("view"):
        sys.path.insert(0, cfg["view"])  # weaker: the real library stays readable on disk
        prot["flatlab_view"] = "sys.path"
    if not ns_done.get("pid_ns"):
        _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of tests stay our descendants
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    prot["limits"] = _limits(cfg["limits"])
    prot["uid"] = _drop(cfg.get("uid"), cfg.get("gid"))
    os.chdir(cfg["workdir"])
    sys.argv = [""]
    ns = magics.install({"__name__": "__main__", "__builtins__": builtins})  # get_ipython() for magics
    codec.send(rep_fd, {"ready": True, "protections": prot})
    _serve(socket.socket(fileno=ctl_fd), rep_fd, ns)


def _unshare(cfg: dict) -> dict:
    """As root: new mount, network, IPC and PID namespaces (as many as the kernel allows)."""
    done = {"mount_ns": False, "net_ns": False, "ipc_ns": False, "pid_ns": False}
    if os.geteuid() != 0 or not cfg.get("isolate"):
        return done
    libc = _libc()
    for flags in (_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWPID,
                  _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC, _CLONE_NEWNS):
        if libc.unshare(flags) == 0:
            done.update(mount_ns=True, net_ns=bool(flags & _CLONE_NEWNET), ipc_ns=bool(flags & _CLONE_NEWIPC),
                        pid_ns=bool(flags & _CLONE_NEWPID))
            break
    return done


def _fork_worker(cfg: dict, fds: list[int]) -> tuple[int, int]:
    """Fork a worker with fds (control socket, reply pipe, stdout log, stderr log).
    Returns (worker pid, template pid): with a PID namespace the template is the worker's
    child (PID 1 there), otherwise the worker itself."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            got = f.read()
        return pid, int(got) if got.strip().isdigit() else pid
    code = 0
    try:
        os.setsid()
        ctl_fd, rep_fd, out_fd, err_fd = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        lo = 3
        for fd in sorted({0, 1, 2, ctl_fd, rep_fd, w}):
            if fd >= lo:
                os.closerange(lo, fd)
                lo = fd + 1
        os.closerange(lo, 65536)
        ns_done = _unshare(cfg)
        if ns_done["pid_ns"]:
            t = os.fork()
            if t:  # stay outside, root, holding nothing but the wait for the template
                os.write(w, str(t).encode())
                for fd in (w, ctl_fd, rep_fd):
                    os.close(fd)
                os._exit(os.waitstatus_to_exitcode(os.waitpid(t, 0)[1]) & 0xFF)
        else:
            os.write(w, str(os.getpid()).encode())
        os.close(w)
        _template(cfg, ctl_fd, rep_fd, ns_done)
    except BaseException:  # noqa: B036
        traceback.print_exc()
        code = 1
    finally:
        try:
            _flush()
        finally:
            os._exit(code)


def _warm() -> None:
    """Trusted imports shared by every worker through fork, and torch.func's lazily built
    transforms run once (the first Hessian costs ~2 s of CPU otherwise, in every worker)."""
    import numpy  # noqa: F401
    import torch
    import torch.func
    torch.set_num_threads(1)
    x = torch.linspace(0.1, 1.0, 4, dtype=torch.float64)
    f = lambda v: (v.sin() * v).sum()  # noqa: E731
    torch.func.hessian(f)(x)
    torch.func.vmap(torch.func.grad(f))(x.reshape(2, 2))
    torch.func.jvp(f, (x,), (x,))
    torch.autograd.functional.hvp(f, x, x)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    try:
        import scipy.linalg  # noqa: F401
        import scipy.sparse.linalg  # noqa: F401
    except ImportError:
        pass


def zygote(sock_fd: int) -> None:
    """A fork server: the trusted imports once, then fork one worker per request.

    Requests on the UNIX socket: ``{"op": "spawn", "cfg": {...}}`` with four fds attached
    (reply ``{"pid": n, "template": m}``), ``{"op": "status", "pid": n}`` (waits for that
    worker, reply ``{"status": waitpid status}``; the grader kills it first). The zygote
    stays single-threaded so that its children may unshare their namespaces, and never
    imports flatlab: no code object of the full library exists in a worker's memory.
    """
    _warm()
    assert "flatlab" not in sys.modules
    # orphans of killed workers are re-parented here and reaped below
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sock = socket.socket(fileno=sock_fd)  # AF_UNIX SOCK_SEQPACKET: one recv = one request
    statuses: dict[int, int] = {}
    while True:
        data, pending_fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        if not data:
            return
        msg = json.loads(data)
        if msg["op"] == "spawn":
            pid, template = _fork_worker(msg["cfg"], pending_fds)
            for fd in pending_fds:
                os.close(fd)
            reply = {"pid": pid, "template": template}
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
