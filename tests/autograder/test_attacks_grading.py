"""Attacks on the *trusted* side of grading, and the gradebook, through the CLI.

Fixture ``fixtures/hwatk.py``: scale (2 tests, 1 point each), rescale (a bias net's
parameters; one test checks the function, one an exact Hessian trace of what came back),
inplace (1 test, ``return_args``). Every submission asserts exact per-task scores
(scale, rescale, inplace). Four grading runs share one output folder where it matters:

1. the class (``--jobs 2``, test budget 1 s, return cap 20000 numbers) -> exit 1 (invalid files);
2. a resubmission of bob, mallory's copy of alice's answers and alice unchanged -> exit 0;
3. a submission that spends its whole budget -> exit 1, status timeout;
4. a folder with two submissions of one student -> exit 2, nothing graded.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from agfixtures import REPO, build_fixture, make_submission
from filelock import FileLock


pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "hwatk.py"
SCALE = "def scale(x, c):\n    return c * np.asarray(x)\n"
RESCALE = ('def rescale(model, c):\n    return {"W1": c * model.W1.detach(), "b1": c * model.b1.detach(), '
           '"W2": model.W2.detach() / c}\n')
DOUBLE = "def double_output(model):\n    with torch.no_grad():\n        model.W2.mul_(2)\n"
HONEST = {"hwatk.scale": SCALE, "hwatk.rescale": RESCALE, "hwatk.inplace": DOUBLE}


def _pad(width):
    """rescale that appends dead neurons (row 0, bias -1, output 0) up to ``width``: same function
    and trace, but a model as large as the student likes."""
    return ("def rescale(model, c):\n"
            "    W1, b1, W2 = c * model.W1.detach(), c * model.b1.detach(), model.W2.detach() / c\n"
            f"    k = {width} - W1.shape[0]\n"
            "    return {'W1': torch.cat([W1, torch.zeros(k, W1.shape[1], dtype=W1.dtype)]),\n"
            "            'b1': torch.cat([b1, -torch.ones(k, dtype=b1.dtype)]),\n"
            "            'W2': torch.cat([W2, torch.zeros(k, dtype=W2.dtype)])}\n")


def scale_with(body):
    return {**HONEST, "hwatk.scale": "def scale(x, c):\n" + "".join(f"    {ln}\n" for ln in body.split("\n"))}


# name -> (task cells, extra cells after the imports, expected (scale, rescale, inplace))
CLASS = {
    "alice": (HONEST, [], (2, 2, 1)),
    "alice_copy": (HONEST, [], (2, 2, 1)),  # same content, another student: other inputs
    "bob": (scale_with("return 0.5 * c * np.asarray(x)"), [], (0, 2, 1)),
    "blank": ({}, [], (0, 0, 0)),
    # huge returned objects: rejected by size before the hidden test sees them
    "huge_array": (scale_with("return np.zeros(10**6)"), [], (0, 2, 1)),
    "huge_many": (scale_with("return [np.asarray(x)] * 8000"), [], (0, 2, 1)),
    "huge_20mb": (scale_with("return np.zeros(5 * 10**6, dtype=np.float32)"), [], (0, 2, 1)),
    # padded models: over the cap (rejected before the exact Hessian), under it (trusted time counted)
    "padded_cap": ({**HONEST, "hwatk.rescale": _pad(10_000)}, [], (2, 0, 1)),
    "padded_dead": ({**HONEST, "hwatk.rescale": _pad(1000)}, [], (2, 1, 1)),
    "inplace_grow": ({**HONEST, "hwatk.inplace": "def double_output(model):\n    model.W1 = torch.nn.Parameter("
                      "torch.zeros(500, 3, dtype=model.W1.dtype))\n    with torch.no_grad():\n"
                      "        model.W2.mul_(2)\n"}, [], (2, 2, 0)),
    "trusted_error": ({**HONEST, "hwatk.rescale": "def rescale(model, c):\n    return {'W1': model.W1}\n"},
                      [], (2, 0, 1)),
    # crashes and hangs cost only their own task
    "crash": (scale_with("import os\nos._exit(3)"), [], (0, 2, 1)),
    "crash_two": ({**scale_with("import os\nos._exit(3)"),
                   "hwatk.inplace": "def double_output(model):\n    import os\n    os.kill(os.getpid(), 9)\n"},
                  [], (0, 2, 0)),
    "hang": (scale_with("while True:\n    pass"), [], (0, 2, 1)),
    "sleeper": (scale_with("import time\ntime.sleep(100)"), [], (0, 2, 1)),
    "raiser": ({**HONEST, "hwatk.rescale": "def rescale(model, c):\n    raise ValueError('nope')\n"}, [], (2, 0, 1)),
    # wrong values, described without the expected value
    "wrong_sign": (scale_with("return -c * np.asarray(x)"), [], (0, 2, 1)),
    "doubled": (scale_with("return 2 * c * np.asarray(x)"), [], (0, 2, 1)),
    "shape": (scale_with("return (c * np.asarray(x)).ravel()[:-1]"), [], (0, 2, 1)),
    "nan": (scale_with("return np.asarray(x) * np.nan"), [], (0, 2, 1)),
    # honest look-alikes: slow but within budget, a heavy setup cell
    "slow_legal": (scale_with("import time\ntime.sleep(0.3)\nt = time.thread_time()\n"
                              "while time.thread_time() - t < 0.2:\n    pass\nreturn c * np.asarray(x)"),
                   [], (2, 2, 1)),
    "heavy_setup": (HONEST, ["import time\n_t = time.thread_time()\nwhile time.thread_time() - _t < 2.0:\n"
                             "    pass\nBIG = np.ones((2000, 2000)) @ np.ones((2000, 50))\n"], (2, 2, 1)),
}
INVALID = ("wrong_assignment", "garbage")
OPTS = ["--jobs", "2", "--seed", "5", "--cell-timeout", "10", "--test-timeout", "1", "--return-floor", "20000"]


def _cli(root, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=root, env=env,
                       capture_output=True, text=True, timeout=600)
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def _main(*args):
    """``python -m autograder ARGS`` in this process (for runs that stop before grading)."""
    from autograder.__main__ import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main([str(x) for x in args])
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _inputs(seed, test):
    """The hidden inputs of a scale test, regenerated from the seed recorded in the results."""
    rng = np.random.default_rng(seed)
    if test == "test_scale_vector":
        x, c = rng.normal(size=int(rng.integers(3, 7))), float(rng.uniform(0.5, 3.0))
    else:
        x, c = rng.normal(size=(int(rng.integers(2, 5)), 3)), float(rng.uniform(0.5, 3.0))
    return x, c


def _constants(result):
    """A scale that returns, as constants, the right answers for ``result``'s inputs."""
    seeds = {t["name"]: t["seed"] for t in result["tasks"][0]["tests"]}
    vec = (lambda x, c: c * x)(*_inputs(seeds["test_scale_vector"], "test_scale_vector"))
    mat = (lambda x, c: c * x)(*_inputs(seeds["test_scale_matrix"], "test_scale_matrix"))
    return scale_with(f"return np.array({vec.tolist()!r}) if np.ndim(x) == 1 else np.array({mat.tolist()!r})")


def _grade_all(root):
    nb, bundles = build_fixture(FIXTURE, root)
    subs, out = root / "subs", root / "out"
    subs.mkdir()
    for name, (tasks, before, _) in CLASS.items():
        make_submission(nb, tasks, before, subs / f"{name}.ipynb")
    wrong = make_submission(nb, HONEST)
    wrong.metadata["flatlab"]["assignment"] = "hw4"
    nbformat.write(wrong, str(subs / "wrong_assignment.ipynb"))
    (subs / "garbage.ipynb").write_text("this is not a notebook {")
    (subs / "notes.txt").write_text("remember to grade by Friday\n")
    base = ["grade", "--assignment", "hwatk", "--bundles", bundles]
    runs = {"class": _cli(root, *base, subs, "--out", out, *OPTS)}
    runs["class_results"] = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    runs["csv_before"] = (out / "grades.csv").read_text()
    runs["alice_seed_before"] = runs["class_results"]["alice"]["submission_seed"]

    # 2: bob resubmits the constants a feedback that printed expected values would have shown him;
    # mallory submits alice's answers; alice's file is regraded unchanged
    first = runs["class_results"]
    subs2 = root / "subs2"
    subs2.mkdir()
    make_submission(nb, _constants(first["bob"]), [], subs2 / "bob.ipynb")
    make_submission(nb, _constants(first["alice"]), [], subs2 / "mallory.ipynb")
    shutil.copy(subs / "alice.ipynb", subs2 / "alice.ipynb")
    runs["regrade"] = _cli(root, *base, subs2, "--out", out, *OPTS)

    # 3: a submission whose scale never returns, with a 4 s budget for the whole submission
    subs3 = root / "subs3"
    subs3.mkdir()
    make_submission(nb, scale_with("while True:\n    pass"), [], subs3 / "spender.ipynb")
    runs["budget"] = _cli(root, *base, subs3, "--out", root / "out3", "--test-timeout", "100",
                          "--submission-timeout", "4")

    # 4: carol.ipynb and carol.json, and "Dave Smith.ipynb" / "dave_smith.ipynb"
    for k, names in enumerate([("carol.ipynb", "carol.json"), ("Dave Smith.ipynb", "dave_smith.ipynb")]):
        d = root / f"dup{k}"
        d.mkdir()
        for n in names:
            make_submission(nb, HONEST, [], d / n)
        runs[f"dup{k}"] = _main(*base, d, "--out", root / f"out_dup{k}")
    runs["usage_jobs"] = _main(*base, subs2, "--out", root / "out_usage", "--jobs", "0")
    runs["usage_path"] = _main(*base, root / "nowhere", "--out", root / "out_usage")
    (root / "done.json").write_text(json.dumps({k: v for k, v in runs.items() if k != "class_results"}))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Run the four gradings once per test session, even across pytest-xdist workers."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "ag-attacks-grading"
    with FileLock(str(shared / "ag-attacks-grading.lock")):
        if not (root / "done.json").exists():
            _grade_all(root)
    runs = json.loads((root / "done.json").read_text())
    results = {p.stem: json.loads(p.read_text()) for p in (root / "out" / "results").glob("*.json")}
    return {"root": root, "runs": runs, "results": results}


def _tasks(r):
    return tuple(t["score"] for t in r["tasks"])


def _kinds(r):
    return {t["name"]: t["kind"] for task in r["tasks"] for t in task["tests"]}


@pytest.mark.parametrize("name", sorted(CLASS))
def test_each_submission_earns_exactly_its_honest_scores(graded, name):
    r = graded["results"][name]
    assert _tasks(r) == tuple(float(x) for x in CLASS[name][2]), _kinds(r)
    assert r["status"] == "graded"


def test_huge_returns_are_rejected_by_size_before_any_check(graded):
    res = graded["results"]
    for name in ("huge_array", "huge_many", "huge_20mb"):
        tests = res[name]["tasks"][0]["tests"]
        # rejected by size, or (20 MB) by the time its transfer took; never checked
        assert {t["kind"] for t in tests} <= {"bad_return", "timeout"} and tests[0]["kind"] == "bad_return", name
        assert "may return at most 20000" in tests[0]["message"]
        assert all(t["time"]["trusted_s"] < 0.5 for t in tests)
    pad = res["padded_cap"]["tasks"][1]["tests"]
    assert [t["kind"] for t in pad] == ["bad_return", "bad_return"]
    assert all(t["time"]["trusted_s"] < 0.5 for t in pad)  # no exact Hessian of the padded model was computed
    grow = res["inplace_grow"]["tasks"][2]["tests"][0]
    assert grow["kind"] == "bad_return" and "changed the shape of argument 1" in grow["message"]


def test_trusted_work_counts_against_the_test_that_triggered_it(graded):
    tests = graded["results"]["padded_dead"]["tasks"][1]["tests"]
    assert [t["kind"] for t in tests] == ["passed", "timeout"]
    assert tests[1]["time"]["trusted_s"] > 1.0 and "checks of what it returned" in tests[1]["message"]
    # the honest submissions graded alongside (2 jobs) were not charged for its trusted work
    for name in ("alice", "alice_copy", "slow_legal", "heavy_setup"):
        assert all(t["time"]["student_s"] + t["time"]["trusted_s"] <= 1.0
                   for task in graded["results"][name]["tasks"] for t in task["tests"])


def test_crashes_and_hangs_fail_only_their_tests(graded):
    res = graded["results"]
    assert set(_kinds(res["crash"]).values()) == {"crashed", "passed"}
    assert _kinds(res["crash_two"])["test_double_in_place"] == "crashed"
    for name in ("hang", "sleeper"):
        k = _kinds(res[name])
        assert k["test_scale_vector"] == k["test_scale_matrix"] == "timeout", k
    assert _kinds(res["raiser"])["test_rescale_trace"] == "exception"
    assert _kinds(res["trusted_error"])["test_rescale_function"] == "error"


def test_feedback_describes_wrong_values_without_the_expected_ones(graded):
    res, root = graded["results"], graded["root"]
    first = {t["name"]: t for t in res["doubled"]["tasks"][0]["tests"]}
    assert "about 2x the expected value" in first["test_scale_vector"]["message"]
    assert "wrong sign" in res["wrong_sign"]["tasks"][0]["tests"][0]["message"]
    assert "has shape" in res["shape"]["tasks"][0]["tests"][0]["message"]
    assert "NaN" in res["nan"]["tasks"][0]["tests"][0]["message"]
    for name in ("doubled", "wrong_sign", "shape", "nan"):
        # the student's own value may be shown (for wrong_sign it is the expected one negated)
        md = re.sub(r"you returned [^;(]+", "", (root / "out" / "feedback" / f"{name}.md").read_text())
        for t in res[name]["tasks"][0]["tests"]:
            x, c = _inputs(t["seed"], t["name"])
            for v in (c * x).ravel():
                for fmt in (".8g", ".6g", ".5g", ".4g"):
                    assert format(v, fmt) not in md, (name, t["name"], format(v, fmt))


def test_inputs_differ_per_student_and_per_content_and_are_recorded(graded):
    res = graded["results"]
    a, b = res["alice"], res["alice_copy"]
    assert a["content_sha256"] == b["content_sha256"] and a["submission_seed"] != b["submission_seed"]
    assert a["config"]["seed"] == 5 and a["config"]["test_timeout"] == 1.0 and a["config"]["jobs"] == 2
    seeds = [t["seed"] for task in a["tasks"] for t in task["tests"]]
    assert len({tuple(s) for s in seeds}) == len(seeds) and all(s[0] == a["submission_seed"] for s in seeds)


def test_printed_constants_and_donor_answers_fail_on_the_next_submission(graded):
    runs, res = graded["runs"], graded["results"]
    assert runs["regrade"]["rc"] == 0, runs["regrade"]["stderr"]
    assert _tasks(res["bob"]) == (0.0, 2.0, 1.0) and _tasks(res["mallory"]) == (0.0, 2.0, 1.0)
    assert {t["kind"] for t in res["bob"]["tasks"][0]["tests"]} == {"wrong"}


def test_regrading_an_unchanged_file_gives_the_same_inputs_and_scores(graded):
    from autograder.grade import _asg, content_hash, load_bundle, submission_seed
    from autograder.notebook import submission_cells

    root, now = graded["root"], graded["results"]["alice"]
    nb = nbformat.read(str(root / "subs" / "alice.ipynb"), as_version=4)
    run, _ = submission_cells(nb, _asg(load_bundle(root / "bundles", "hwatk")))
    assert now["content_sha256"] == content_hash(run)  # run 2 regraded the same file: same hash,
    assert now["submission_seed"] == submission_seed(5, "alice", content_hash(run))  # same seed
    assert _tasks(now) == (2.0, 2.0, 1.0) and now["status"] == "graded"
    assert graded["runs"]["alice_seed_before"] == now["submission_seed"]


def test_gradebook_keeps_the_class_when_one_student_is_regraded(graded):
    root = graded["root"]
    before = {r["student"]: r for r in csv.DictReader(graded["runs"]["csv_before"].splitlines())}
    after = {r["student"]: r for r in csv.DictReader((root / "out" / "grades.csv").open())}
    assert set(after) == set(before) | {"mallory"} == set(CLASS) | set(INVALID) | {"mallory"}
    for sid in set(before) - {"bob", "alice"}:
        assert after[sid] == before[sid]
    assert before["bob"]["score"] == "3" and after["bob"]["score"] == "3"
    assert after["alice"] == before["alice"]
    assert after["padded_dead"]["hwatk.rescale"] == "1" and after["padded_dead"]["score"] == "4"
    assert after["alice"]["manual"] == "" and after["alice"]["max_score"] == "5"
    assert list(after["alice"])[:7] == ["student", "status", "score", "max_score", "manual",
                                        "manual_max", "total"]
    canvas = list(csv.reader((root / "out" / "grades_canvas.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "Section", "hwatk (autograded)"]
    assert ["alice", "", "alice", "", "5"] in canvas and len(canvas) == len(after) + 1


def test_invalid_files_and_exit_status(graded):
    runs, res = graded["runs"], graded["results"]
    assert runs["class"]["rc"] == 1  # wrong_assignment and garbage are invalid
    assert res["wrong_assignment"]["status"] == "invalid" and res["wrong_assignment"]["score"] == 0
    assert "this notebook is hw4, not hwatk" in res["wrong_assignment"]["note"]
    assert res["garbage"]["status"] == "invalid"
    assert "notes" not in res and "skipping notes.txt: not a notebook" in runs["class"]["stderr"]
    assert "not graded normally: garbage, wrong_assignment" in runs["class"]["stderr"]


def test_the_submission_budget_holds_while_code_runs(graded):
    run = graded["runs"]["budget"]
    r = json.loads((graded["root"] / "out3" / "results" / "spender.json").read_text())
    assert run["rc"] == 1 and r["status"] == "timeout" and _tasks(r) == (0.0, 0.0, 0.0)
    assert {t["message"] for task in r["tasks"] for t in task["tests"]} == {
        "the grading time for this submission ran out"}
    assert r["config"]["submission_timeout"] == 4.0


def test_duplicate_students_are_an_error_naming_both_files(graded):
    runs, root = graded["runs"], graded["root"]
    assert runs["dup0"]["rc"] == 2 and "carol.ipynb and carol.json" in runs["dup0"]["stderr"]
    assert runs["dup1"]["rc"] == 2 and "Dave Smith.ipynb and dave_smith.ipynb" in runs["dup1"]["stderr"]
    assert not (root / "out_dup0").exists() and not (root / "out_dup1").exists()
    assert not (root / "out_usage").exists()


def test_usage_errors_exit_2_naming_the_argument(graded):
    runs = graded["runs"]
    assert runs["usage_jobs"]["rc"] == 2 and "--jobs" in runs["usage_jobs"]["stderr"]
    assert runs["usage_path"]["rc"] == 2 and "does not exist" in runs["usage_path"]["stderr"]
