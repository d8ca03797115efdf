"""The attack corpus: every submission earns exactly what its honest content earns, and
no submission stops the batch. Graded once per module through the CLI (``--jobs 2``).

Points of hwfix: square 2 (1+1), mse 3 (2+1), nparams 2 (1+1); total 7.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from agfixtures import FIXTURE, REPO, SOLUTIONS, build_fixture, make_submission
from filelock import FileLock


pytestmark = pytest.mark.slow

S, M, P = SOLUTIONS["hwfix.square"], SOLUTIONS["hwfix.mse"], SOLUTIONS["hwfix.nparams"]
ALL = dict(SOLUTIONS)

FILE_ATTACK = r'''
import os, json, sys, warnings
report = {}
for p in READ:
    try:
        with open(p) as f:
            f.read()
        report[p] = "READ"
    except Exception as e:
        report[p] = type(e).__name__
for p in WRITE:
    try:
        with open(p, "w") as f:
            f.write('{"score": 1000}')
        report["w:" + p] = "WROTE"
    except Exception as e:
        report["w:" + p] = type(e).__name__
for d in LIST:
    try:
        report["ls:" + d] = sorted(os.listdir(d))
    except Exception as e:
        report["ls:" + d] = type(e).__name__
with open("results.json", "w") as f:
    json.dump({"score": 7, "tests": []}, f)
print("ATTACK-REPORT " + json.dumps(report, sort_keys=True))
print("Score: 7/7\nhwfix.square: OK\nhwfix.mse: OK\n{\"score\": 100, \"max_score\": 7}")
print("Score: 7/7 FAIL everything", file=sys.stderr)
warnings.warn("noisy warning that must not cost points")
sys.stderr.write("\x1b[31mERROR: this is only noise\x1b[0m\n" * 50)
'''

MONKEY = r'''
import numpy, numpy.testing, torch, flatlab, flatlab.models
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: True
numpy.array_equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
flatlab.mse = lambda f, y: torch.tensor(0.0)
flatlab.models.make_model = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
'''
LIAR = '''
class Liar:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    __float__ = lambda self: 0.0
    __array__ = lambda self, *a, **k: __import__("numpy").zeros(3)

class LiarInt(int):
    def __eq__(self, other):
        return True

class LiarTensor(torch.Tensor):
    def __eq__(self, other):
        return True
'''
BUILTINS = ("import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.float = lambda *a: 0.0\n"
            "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: int\n")


def _world_readable(root):
    """A 0755 folder in /tmp holding a 0644 copy of the solutions (a careless instructor)."""
    return Path(tempfile.gettempdir()) / f"ag-world-readable-{root.parent.name}"


def corpus(tmp, bundles):
    """name -> (tasks, before cells, expected score)."""
    sub = tmp / "subs"
    out = tmp / "out"
    read = [str(bundles / "hwfix" / "bundle.json"), str(tmp / "solutions" / "hwfix.py"),
            str(REPO / "tests" / "autograder" / "fixtures" / "hwfix.py"), str(REPO / "autograder" / "grade.py"),
            str(REPO / ".git" / "HEAD"), str(sub / "reference.ipynb"), "/root/.bash_history", "/etc/shadow",
            str(_world_readable(tmp) / "hwfix.py")]
    write = [str(bundles / "hwfix" / "bundle.json"), str(out / "grades.csv"), str(out / "results" / "files.json"),
             str(sub / "reference.ipynb")]
    lst = [str(sub), str(bundles), str(tmp / "solutions"), str(REPO / "tests"), str(out)]
    attack = f"READ = {read!r}\nWRITE = {write!r}\nLIST = {lst!r}\n" + FILE_ATTACK
    return {
        "reference": (ALL, [], 7),
        "blank": ({}, [], 0),
        "partial": ({"hwfix.square": S, "hwfix.mse": "def mse_loss(f, y):\n    return (f - y).abs().mean()\n"},
                    [], 2 + 1),
        "toplevel": (ALL, ["import sys\nsys.exit(0)", "raise ImportError('no module named cheat')",
                           "while True:\n    pass", "import os\nos._exit(1)",
                           "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"], 7),
        "infunc": ({"hwfix.square": S, "hwfix.mse": "def mse_loss(f, y):\n    while True:\n        pass\n",
                    "hwfix.nparams": "def num_params(model):\n    import os\n    os._exit(0)\n"}, [], 2),
        "exits": ({"hwfix.square": "def square(x):\n    import sys\n    sys.exit(0)\n", "hwfix.mse": M,
                   "hwfix.nparams": P}, [], 3 + 2),
        "bombs": ({"hwfix.square": "def square(x):\n    hog = bytearray(2**34)  # 16 GiB\n    return x ** 2\n",
                   "hwfix.mse": M,
                   "hwfix.nparams": "def num_params(model):\n    import os\n    while True:\n        os.fork()\n"},
                  [], 3),
        "monkey": ({"hwfix.square": "def square(x):\n    return x * 0\n",
                    "hwfix.mse": "def mse_loss(f, y):\n    return torch.zeros(()).as_subclass(LiarTensor)\n",
                    "hwfix.nparams": "def num_params(model):\n    return LiarInt(0)\n"}, [LIAR, MONKEY, BUILTINS], 0),
        "liar": ({"hwfix.square": "def square(x):\n    return Liar()\n", "hwfix.mse": M,
                  "hwfix.nparams": P}, [LIAR], 5),
        "files": (ALL, [attack], 7),
        "forbidden_dyn": ({**ALL, "hwfix.nparams": "def num_params(model):\n    f = getattr(flatlab.models, "
                           "'flatten' + '_params')\n    return int(f(model).numel())\n"}, [], 5),
        "forbidden_alias": ({**ALL, "hwfix.nparams": "def num_params(model):\n    return int(fp(model).numel())\n"},
                            ["from flatlab.models import flatten_params as fp"], 5),
        "forbidden_static": ({**ALL, "hwfix.nparams": "def num_params(model):\n    return int(flatlab.flatten_params("
                              "model).numel())\n"}, [], 5),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the corpus once per test session, even across pytest-xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "ag-corpus"
    with FileLock(str(shared / "ag-corpus.lock")):
        if not (root / "done.json").exists():
            _grade_corpus(root)
    done = json.loads((root / "done.json").read_text())
    results = {p.stem: json.loads(p.read_text()) for p in (root / "out" / "results").glob("*.json")}
    return {"root": root, "cases": corpus(root, root / "bundles"), "results": results, "pid": done["pid"],
            "bundle_before": bytes.fromhex(done["bundle_before"]), "bundles": root / "bundles"}


def _grade_corpus(root):
    nb, bundles = build_fixture(FIXTURE, root)
    (root / "subs").mkdir()
    for name, (tasks, before, _) in corpus(root, bundles).items():
        make_submission(nb, tasks, before, root / "subs" / f"{name}.ipynb")
    (root / "subs" / "garbage.ipynb").write_text("this is not a notebook {")
    bundle_before = (bundles / "hwfix" / "bundle.json").read_bytes()
    leak = _world_readable(root)
    leak.mkdir(mode=0o755, exist_ok=True)
    os.chmod(leak, 0o755)
    shutil.copy(FIXTURE, leak / "hwfix.py")
    os.chmod(leak / "hwfix.py", 0o644)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", str(root / "subs"), "--assignment", "hwfix",
         "--bundles", str(bundles), "--out", str(root / "out"), "--jobs", "2", "--timeout", "4", "--seed", "3"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        shutil.rmtree(leak, ignore_errors=True)
    assert proc.returncode == 1, stderr  # 1: some submission (garbage.ipynb) is invalid
    (root / "done.json").write_text(json.dumps({"pid": proc.pid, "bundle_before": bundle_before.hex(),
                                                "stdout": stdout}))


def _kinds(r):
    return {t["name"]: t["kind"] for task in r["tasks"] for t in task["tests"]}


def test_every_submission_earns_its_honest_score(graded):
    res = graded["results"]
    assert set(res) == set(graded["cases"]) | {"garbage"}
    got = {name: res[name]["score"] for name in graded["cases"]}
    want = {name: float(exp) for name, (_, _, exp) in graded["cases"].items()}
    assert got == want
    assert all(res[n]["status"] == "graded" for n in graded["cases"])
    assert res["garbage"]["status"] == "invalid" and res["garbage"]["score"] == 0


def test_grades_csv_lists_the_whole_class(graded):
    rows = list(csv.DictReader(open(graded["root"] / "out" / "grades.csv")))
    assert [r["student"] for r in rows] == sorted(graded["results"])
    by = {r["student"]: r for r in rows}
    assert by["partial"]["hwfix.square"] == "2" and by["partial"]["hwfix.mse"] == "1"
    assert by["reference"]["score"] == "7" and by["reference"]["max_score"] == "7"


def test_blank_fails_as_not_implemented(graded):
    assert set(_kinds(graded["results"]["blank"]).values()) == {"not_implemented"}


def test_toplevel_attacks_are_recorded_and_skipped(graded):
    r = graded["results"]["toplevel"]
    status = [c["status"] for c in r["cells"]]
    # imports ok, sys.exit -> error, raise -> error, loop -> timeout, os._exit -> crashed, fork bomb -> timeout
    assert status[:6] == ["ok", "error", "error", "timeout", "crashed", "timeout"]
    assert "SystemExit" in r["cells"][1]["message"] and "ImportError" in r["cells"][2]["message"]


def test_infunction_loop_and_exit_fail_only_their_tests(graded):
    k = _kinds(graded["results"]["infunc"])
    assert k["test_mse_random"] == k["test_mse_zero"] == "timeout"
    assert k["test_nparams_bias"] == k["test_nparams_sim_bn"] == "crashed"
    assert k["test_square_array"] == "passed"


def test_exit_and_bombs_are_contained(graded):
    k = _kinds(graded["results"]["exits"])
    assert k["test_square_array"] == "exception"
    k = _kinds(graded["results"]["bombs"])
    assert k["test_square_array"] == "exception" and k["test_mse_random"] == "passed"
    assert k["test_nparams_bias"] in ("exception", "crashed", "timeout")
    assert "MemoryError" in graded["results"]["bombs"]["tasks"][0]["tests"][0]["message"]


def test_no_worker_process_survives(graded):
    base = 2_000_000 + 64 * graded["pid"]
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = open(f"/proc/{pid}/status").read()
            uid = int(st.split("Uid:")[1].split()[0])
        except (OSError, IndexError):
            continue
        if base <= uid < base + 64 and "\nState:\tZ" not in st:  # zombies are dead already
            alive.append(pid)
    assert alive == []


def test_liars_and_monkeypatches_earn_nothing(graded):
    r = graded["results"]["monkey"]
    k = _kinds(r)
    assert r["score"] == 0 and "passed" not in k.values()
    assert k["test_square_array"] in ("wrong", "exception", "bad_return")  # x * 0 never passes our check
    # the numpy/torch/flatlab patches stayed in force (their cell ran fine); whatever the builtins
    # patch did to the worker (error, crash, or nothing) was recorded, and grading went on
    assert r["cells"][2]["status"] == "ok" and r["cells"][3]["status"] in ("ok", "error", "crashed")
    liar = graded["results"]["liar"]["tasks"][0]["tests"][0]
    assert liar["kind"] == "bad_return" and "returned an object of type __main__.Liar" in liar["message"]


def test_files_of_the_grader_are_out_of_reach(graded):
    r = graded["results"]["files"]
    line = next(ln for ln in r["log"]["stdout"].splitlines() if ln.startswith("ATTACK-REPORT"))
    report = json.loads(line.split(" ", 1)[1])
    assert not [k for k, v in report.items() if v in ("READ", "WROTE")], report
    assert all(v == [] or isinstance(v, str) for k, v in report.items() if k.startswith("ls:")), report
    assert (graded["bundles"] / "hwfix" / "bundle.json").read_bytes() == graded["bundle_before"]
    assert r["sandbox"]["uid"] is True and r["sandbox"]["net_ns"] is True
    # printed score lines, warnings and stderr noise change nothing
    assert r["score"] == 7 and "Score: 7/7" in r["log"]["stdout"]


def test_forbidden_calls_fail_that_task_only(graded):
    for name in ("forbidden_dyn", "forbidden_alias", "forbidden_static"):
        r = graded["results"][name]
        nparams = r["tasks"][2]
        assert nparams["score"] == 0 and {t["kind"] for t in nparams["tests"]} == {"forbidden"}, name
        assert "flatlab.models.flatten_params" in nparams["tests"][0]["message"]


def test_feedback_explains_without_hidden_code(graded):
    root = graded["root"]
    md = (root / "out" / "feedback" / "partial.md").read_text()
    html = (root / "out" / "feedback" / "partial.html").read_text()
    assert "mse_loss must be the mean of the squared differences" in md
    assert "wrong value" in md and "expected" in md
    for leak in ("rng.normal", "assert_close(", "def test_", "flatlab.mse(f, y)"):
        assert leak not in md and leak not in html
    assert "&lt;" not in md and "<h1>" in html
    assert "manual, ungraded" in md
