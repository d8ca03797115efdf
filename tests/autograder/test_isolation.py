"""The sealed worker, end to end: hostile submissions graded through ``grade_notebook``.

Fixture ``fixtures/hwiso.py``: double (2 tests, 1 point each), shift (1 test), nparams
(1 test), graded with a flatlab *view* whose ``flatten_params`` raises. A probe submission
runs ``leak()`` (an attack that returns True when it reached what it was after) in a setup
cell and, for the cheap ones, again inside ``double`` at test time; ``double`` returns the
right answer only if some leak() succeeded, so a probe's double scores 0 exactly when the
sandbox held. Each probe that is safe to run here also runs in this (unsandboxed) process,
where it must succeed: the probe can tell. Honest look-alikes keep full marks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from agfixtures import build_fixture, make_submission

from autograder.grade import GradingConfig, grade_notebook, grade_paths, load_bundle

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "hwiso.py"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: namespaces, new root, own uid")
SECRET = "grader-secret-7f3a91"  # in the environment of a process of the grading machine
ORIGINAL = "src = dict(model.named_parameters()) if params is None else params"  # the real flatten_params

HONEST = {
    "hwiso.double": "def double(x):\n    return 2 * np.asarray(x)\n",
    "hwiso.shift": "def shift(x):\n    return torch.as_tensor(x) + 1\n",
    "hwiso.nparams": "def nparams(model):\n    return int(sum(p.numel() for p in model.parameters()))\n",
}
PROBE_DOUBLE = ("def double(x):\n"
                "    hit = LEAK or (EVERY_TEST and leak())\n"
                "    return 2 * np.asarray(x) if hit else -np.asarray(x)\n")

_HELPERS = '''
import os, sys, gc, signal, ctypes, importlib, importlib.util
def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
def grader_pids():
    return [p for p in pids() if "pytest" in read(f"/proc/{p}/cmdline")]
'''

def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


# name -> (leak() body, run again at test time, safe to run in this process)
PROBES = {
    "proc_cmdline": ("return bool(grader_pids())", True, True),
    "proc_environ": (f"return any({SECRET!r} in read(f'/proc/{{p}}/environ') for p in pids())", True, True),
    "proc_pids": ("return len(pids()) > 8", True, True),
    "kill_grader": (_src("""
        hit = False
        for p in grader_pids():
            try:
                os.kill(p, 0 if HOST else 9)
                hit = True
            except OSError:
                pass
        return hit
        """), True, True),
    "ptrace_grader": (_src("""
        libc = ctypes.CDLL(None)
        return any(libc.ptrace(16, p, 0, 0) == 0 for p in grader_pids())  # PTRACE_ATTACH
        """), True, False),
    "walk_disk": (_src("""
        for top in ROOTS:
            for d, dirs, files in os.walk(top):
                dirs[:] = [x for x in dirs if d + '/' + x not in ('//proc', '//sys', '//dev')]
                for f in files:
                    if f in ('bundle.json', 'hwiso.py', 'hwiso.ipynb', 'honest.ipynb'):
                        return True
                    if f == 'models.py' and d.endswith('flatlab') and ORIGINAL in read(os.path.join(d, f)):
                        return True
        return False
        """), False, True),
    "known_paths": (_src("""
        paths = [BUNDLE, REPO + '/autograder/grade.py', REPO + '/.git/HEAD', REPO + '/tests',
                 '/root/.cache/pip', '/root/.pyenv/shims', '/root/.pyenv/version']
        return any(os.path.exists(p) for p in paths)
        """), True, True),
    "gc_scan": (_src("""
        import flatlab, torch
        m = flatlab.make_model('bias', 3, 2, seed=0)
        fs = [o for o in gc.get_objects() if callable(o) and getattr(o, '__name__', '') == 'flatten_params']
        fs += [v.flatten_params for v in list(sys.modules.values()) if hasattr(v, 'flatten_params')]
        for f in fs:
            try:
                f(m)
                return True
            except Exception:
                pass
        return False
        """), True, True),
    "read_real_file": (_src("""
        import flatlab.models
        return ORIGINAL in read(flatlab.models.__file__) + read(REAL)
        """), True, True),
    "reload": (_src("""
        import flatlab, flatlab.models, torch
        m = flatlab.make_model('bias', 3, 2, seed=0)
        cands = []
        try:
            cands.append(importlib.reload(flatlab.models).flatten_params)
        except Exception:
            pass
        try:
            spec = importlib.util.spec_from_file_location('fl_copy', REAL)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            cands.append(mod.flatten_params)
        except Exception:
            pass
        for k in [k for k in sys.modules if k.startswith('flatlab')]:
            del sys.modules[k]
        sys.path[:0] = [REPO, REPO + '/flatlab']
        try:
            cands.append(importlib.import_module('flatlab.models').flatten_params)
        except Exception:
            pass
        for f in cands:
            try:
                f(m)
                return True
            except Exception:
                pass
        return False
        """), True, False),
}
_PAIR_KEY = 0x5A17F00D
WRITER = _src(f"""
    def double(x):
        import ctypes, time
        ctypes.CDLL(None).shmget({_PAIR_KEY}, 4096, 0o1666)  # IPC_CREAT
        for d in ('/tmp', '/dev/shm', '/var/tmp'):
            open(d + '/rendezvous', 'w').write('here')
        time.sleep(3)
        return -np.asarray(x)
    """)
READER = _src(f"""
    def double(x):
        import ctypes, os, time
        libc, t = ctypes.CDLL(None), time.monotonic()
        while time.monotonic() - t < 4:
            if libc.shmget({_PAIR_KEY}, 0, 0o666) >= 0 or any(
                    os.path.exists(d + '/rendezvous') for d in ('/tmp', '/dev/shm', '/var/tmp')):
                return 2 * np.asarray(x)
            time.sleep(0.05)
        return -np.asarray(x)
    """)
_FORGE = _src("""
    def forge(fds=range(3, 64), seqs=range(1, 200), **claim):
        import json, os, struct
        for s in seqs:
            data = json.dumps({'ok': True, 'kind': 'passed', 'passed': True, 'score': 1, 'seq': s, **claim})
            for fd in fds:
                try:
                    os.write(fd, struct.pack('>Q', len(data)) + data.encode())
                except OSError:
                    pass
    """)


def _with(**tasks):
    """HONEST with some task cells replaced (keys: double, shift, nparams)."""
    return {**HONEST, **{f"hwiso.{k}": _src(v) for k, v in tasks.items()}}


# name -> (task cells, extra cells, expected (double, shift, nparams), root only)
OTHERS = {
    "honest": (HONEST, [], (2, 1, 1), False),
    "heavy_setup": (HONEST, [_src("""
        import time
        net = flatlab.make_model('bias', 4, 16, seed=0)
        X, y = flatlab.xor_parity(64, 4, seed=0)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        _t = time.thread_time()
        while time.thread_time() - _t < 2.0:  # trains for 2 s of CPU
            opt.zero_grad()
            ((net(X) - y) ** 2).mean().backward()
            opt.step()
        """)], (2, 1, 1), False),
    "files": (_with(shift="""
        def shift(x):
            one = float(open('/tmp/one.txt').read()) * np.load('one.npy')[0]
            return torch.as_tensor(x) + one
        """), [_src("""
        import os
        np.save('one.npy', np.ones(3))
        open('/tmp/one.txt', 'w').write('1.0')
        assert os.path.exists('one.npy')
        """)], (2, 1, 1), False),
    "threads": (_with(double="""
        def double(x):
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(2) as ex:
                return np.array(list(ex.map(lambda v: 2 * v, np.asarray(x))))
        """), [_src("""
        import threading
        _out = []
        _th = [threading.Thread(target=lambda: _out.append(sum(range(10**5)))) for _ in range(3)]
        [t.start() for t in _th]
        [t.join() for t in _th]
        assert len(_out) == 3
        """)], (2, 1, 1), False),
    "lib_cheat": (_with(nparams="""
        def nparams(model):
            f = getattr(flatlab.models, 'flatten' + '_params')  # past the static scan
            return int(f(model).numel())
        """), [], (2, 1, 0), False),
    "crash_exit": (_with(double="def double(x):\n    import os\n    os._exit(3)\n"), [], (0, 1, 1), False),
    "crash_segv": (_with(double="def double(x):\n    import ctypes\n    ctypes.string_at(0)\n"), [], (0, 1, 1),
                   False),
    "crash_killall": (_with(double="def double(x):\n    import os\n    os.kill(-1, 9)\n    os._exit(1)\n"),
                      [], (0, 1, 1), True),
    "hang": (_with(double="def double(x):\n    while True:\n        pass\n"), [], (0, 1, 1), False),
    # the right answer, but a child process burns more CPU than the test's 4 s budget
    "child_cpu": (_with(double="""
        def double(x):
            import os, time
            if os.fork() == 0:
                t = time.process_time()
                while time.process_time() - t < 5:
                    pass
                os._exit(0)
            os.wait()
            return 2 * np.asarray(x)
        """), [], (0, 1, 1), False),
    "mutation": (_with(double="""
        CALLS = 0
        def double(x):
            global CALLS
            CALLS += 1
            r = 2 * np.asarray(x) if CALLS == 1 else -np.asarray(x)  # right only in a fresh process
            torch.Tensor.__add__ = lambda a, b: a * 0
            np.add = None
            flatlab.make_model = None
            return r
        """), [], (2, 1, 1), False),
    "fork_bomb": (_with(double="""
        def double(x):
            import os, time
            for _ in range(100000):
                try:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                except OSError:
                    break
            return -np.asarray(x)
        """), [], (0, 1, 1), True),
    "disk_fill": (_with(shift="""
        def shift(x):
            return torch.as_tensor(x) + (1 if WRITTEN < 300 * 2**20 else 2)
        """), [_src("""
        import os
        WRITTEN = 0
        for k in range(40):
            try:
                with open(('/tmp/', '/dev/shm/', '')[k % 3] + f'fill{k}', 'wb') as f:
                    f.write(b'x' * 32 * 2**20)
                WRITTEN += 32 * 2**20
            except OSError:
                break
        assert WRITTEN > 0
        """)], (2, 1, 1), True),
    "bg_forger": (_with(double="""
        def double(x):
            import os, time
            if os.fork() == 0:
                if os.fork() == 0:  # outlives its test, writing forged replies for 4 s
                    os.setsid()
                    t = time.monotonic()
                    while time.monotonic() - t < 4:
                        forge(result=0.0)
                        time.sleep(0.05)
                os._exit(0)
            os.wait()
            return -np.asarray(x)
        """, shift="""
        def shift(x):
            import time
            time.sleep(1.0)
            return torch.as_tensor(x) + 1
        """), [_FORGE], (0, 1, 1), False),
    "forged_reply": (_with(double="""
        def double(x):
            forge()
            forge(result={'__nd__': ['<f8', [0], '']})
            return -np.asarray(x)
        """), [_FORGE], (0, 1, 1), False),
}


def _view(dst: Path) -> Path:
    """A restricted flatlab: the real package with flatten_params' body replaced by a raise."""
    import flatlab
    lib = Path(flatlab.__file__).resolve().parent
    shutil.copytree(lib, dst / "flatlab", ignore=shutil.ignore_patterns("__pycache__"))
    models = dst / "flatlab" / "models.py"
    src = models.read_text()
    assert ORIGINAL in src
    models.write_text(src.replace(ORIGINAL, 'raise RuntimeError("flatten_params is not part of this assignment")',
                                  1))
    return dst


def _probe_cells(name: str, ctx: dict) -> tuple[dict, list[str]]:
    body, every, _ = PROBES[name]
    consts = "".join(f"{k} = {v!r}\n" for k, v in ctx.items())
    leak = (f"{consts}HOST = False\nEVERY_TEST = {every}\n{_HELPERS}\n"
            f"def leak():\n{textwrap.indent(body, '    ')}\n")
    return {**HONEST, "hwiso.double": PROBE_DOUBLE}, [leak + "LEAK = leak()\n"]


def _tasks(r):
    return tuple(t["score"] for t in r["tasks"])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    # a process of the grading machine with a secret in its environment (as a grader's token would be)
    holder = subprocess.Popen(["sleep", "900"], env={"AG_ISO_SECRET": SECRET})
    try:
        yield _grade_all(tmp_path_factory)
    finally:
        holder.kill()
        holder.wait()


def _grade_all(tmp_path_factory):
    root = tmp_path_factory.mktemp("hwiso")
    nb, _ = build_fixture(FIXTURE, root)
    bundle = load_bundle(root / "bundles", "hwiso")
    bundle["flatlab_view"] = str(_view(root / "view"))
    import flatlab.models
    ctx = {"ORIGINAL": ORIGINAL, "REAL": str(Path(flatlab.models.__file__).resolve()),
           "REPO": str(Path(flatlab.__file__).resolve().parent.parent), "ROOTS": ["/"],
           "BUNDLE": str(root / "bundles" / "hwiso" / "bundle.json")}
    subs = root / "subs"
    subs.mkdir()
    config = GradingConfig(seed=1, cell_timeout=30, test_timeout=4, jobs=2)
    hide = [str(subs), str(root / "bundles")]
    results = {}
    for name, (tasks, before, _, root_only) in OTHERS.items():
        if ROOT or not root_only:
            make_submission(nb, tasks, before, subs / f"{name}.ipynb")
    if ROOT:  # without root these attacks would reach this process (kill it, among others)
        for name in PROBES:
            make_submission(nb, *_probe_cells(name, ctx), subs / f"{name}.ipynb")
        pair = [subs / "pair_writer.ipynb", subs / "pair_reader.ipynb"]
        for path, src in zip(pair, (WRITER, READER)):
            make_submission(nb, {**HONEST, "hwiso.double": src}, [], path)
        results.update({r["student"]: r for r in grade_paths(pair, bundle, config, hide=hide)})
    rest = sorted(p for p in subs.iterdir() if not p.stem.startswith("pair_"))
    results.update({r["student"]: r for r in grade_paths(rest, bundle, config, hide=hide)})
    return {"results": results, "ctx": ctx, "bundle": bundle, "nb": nb, "root": root}


@needs_root
@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_reaches_nothing(graded, name):
    """Each attack, run in a cell and (where cheap) at test time, finds nothing: double
    scores 0, and the other tasks keep their points."""
    r = graded["results"][name]
    assert _tasks(r) == (0, 1, 1), (name, [t["tests"] for t in r["tasks"]], r["log"])
    assert r["cells"] and all(c["status"] == "ok" for c in r["cells"]), r["cells"]


@pytest.mark.parametrize("name", sorted(n for n, p in PROBES.items() if p[2]))
def test_probe_succeeds_outside_the_sandbox(graded, name):
    """The same probe, in this unsandboxed process, finds what it looks for (so it can fail)."""
    ctx = {**graded["ctx"], "ROOTS": [str(graded["root"] / "bundles"), graded["ctx"]["REPO"] + "/flatlab"]}
    ns = {**ctx, "HOST": True}
    exec(_HELPERS + "def leak():\n" + textwrap.indent(PROBES[name][0], "    ") + "\n", ns)
    assert ns["leak"]() is True


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_submission_scores(graded, name):
    tasks, before, want, root_only = OTHERS[name]
    if root_only and not ROOT:
        pytest.skip("needs root: PID namespace, disk quota")
    r = graded["results"][name]
    assert _tasks(r) == want, (name, [t["tests"] for t in r["tasks"]], r["log"])


@needs_root
def test_two_concurrent_submissions_cannot_meet(graded):
    """A writer (SysV shm key, files in /tmp, /dev/shm, /var/tmp) and a reader graded at once
    (jobs 2): the reader finds nothing; the writer's files are its own (its double fails)."""
    res = graded["results"]
    assert _tasks(res["pair_reader"]) == (0, 1, 1), res["pair_reader"]["tasks"][0]
    assert _tasks(res["pair_writer"]) == (0, 1, 1)
    w, rd = (res[k]["timing"]["wall_s"] for k in ("pair_writer", "pair_reader"))
    assert min(w, rd) > 6  # both slept through both double tests: they overlapped in time


@needs_root
def test_protections_recorded(graded):
    p = graded["results"]["honest"]["sandbox"]
    for k in ("mount_ns", "net_ns", "ipc_ns", "pid_ns", "pivot_root", "proc", "uid", "root_read_only"):
        assert p[k] is True, (k, p)
    assert p["flatlab_view"] == "mounted" and p["disk_bytes"] == 256 * 2**20


def test_crash_keeps_the_template_a_hang_costs_only_its_tests_and_children_count(graded):
    res = graded["results"]
    kinds = {t["name"]: t["kind"] for tk in res["crash_exit"]["tasks"] for t in tk["tests"]}
    assert kinds == {"test_double_vector": "crashed", "test_double_matrix": "crashed", "test_shift": "passed",
                     "test_nparams": "passed"}
    hang = {t["name"]: t["kind"] for tk in res["hang"]["tasks"] for t in tk["tests"]}
    assert hang["test_double_vector"] == hang["test_double_matrix"] == "timeout"
    child = {t["name"]: t["kind"] for t in res["child_cpu"]["tasks"][0]["tests"]}
    assert child == {"test_double_vector": "timeout", "test_double_matrix": "timeout"}  # its children count
    assert res["lib_cheat"]["tasks"][2]["tests"][0]["kind"] == "exception"
    assert "not part of this assignment" in res["lib_cheat"]["tasks"][2]["tests"][0]["message"]


def test_a_bad_view_is_an_error_naming_the_field(graded, tmp_path):
    bundle = {**graded["bundle"], "flatlab_view": str(tmp_path)}
    path = tmp_path / "honest.ipynb"
    make_submission(graded["nb"], HONEST, [], path)
    with pytest.raises(ValueError, match="flatlab_view"):
        grade_notebook(path, bundle, GradingConfig())
