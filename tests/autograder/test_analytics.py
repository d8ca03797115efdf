"""``python -m autograder report``: class analytics from real graded results of hwfix (graded
once per module), a synthesized class of 1000 built from them, and the page rendered in
headless Chromium."""
from __future__ import annotations

import copy
import csv
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from agfixtures import SOLUTIONS, make_submission

from autograder.__main__ import main as cli
from autograder.class_report import SECTIONS, analyze, render_html, write_report
from autograder.grade import GradingConfig, grade_paths, load_bundle, write_outputs

pytestmark = pytest.mark.slow  # grades six real submissions once (~20 s on a loaded machine)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# one real submission per kind of outcome; expected (score, kinds of the failed tests)
SUBMISSIONS = {
    "ada": (dict(SOLUTIONS), 7.0),
    "bob": ({}, 0.0),  # the untouched student notebook: every task not implemented
    "cyd": ({"hwfix.square": "def square(x):\n    return x * 2\n",
             "hwfix.mse": "def mse_loss(f, y):\n    raise ValueError('no idea')\n",
             "hwfix.nparams": "def num_params(model):\n    import flatlab\n"
                              "    return flatlab.models.flatten_params(model).numel()\n"}, 0.0),
    "dee": ({**SOLUTIONS, "hwfix.mse": "def mse_loss(f, y):\n    while True:\n        pass\n"}, 4.0),
    "eve": ({**SOLUTIONS, "hwfix.square": "def square(x):\n    import os\n    os._exit(3)\n",
             "hwfix.nparams": "def num_params(model):\n    return float(sum(p.numel() for p in model.parameters()))\n"},
            3.0),
}


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """A grading folder of real results: the five submissions above plus an unreadable file."""
    root, nb, bundles = built
    subs = tmp_path_factory.mktemp("subs")
    for name, (tasks, _) in SUBMISSIONS.items():
        make_submission(nb, tasks, [], subs / f"{name}.ipynb")
    (subs / "zed.ipynb").write_text("{ not json")
    paths = sorted(subs.iterdir())
    results = grade_paths(paths, load_bundle(bundles, "hwfix"), GradingConfig(seed=3, cell_timeout=20, test_timeout=2))
    out = tmp_path_factory.mktemp("graded")
    write_outputs(results, out)
    return out, {r["student"]: r for r in results}


def test_real_results_have_the_expected_scores_and_kinds(graded):
    _, res = graded
    for name, (_, score) in SUBMISSIONS.items():
        assert res[name]["score"] == score, (name, res[name]["tasks"])
    kinds = {n: {x["name"]: x["kind"] for t in r["tasks"] for x in t["tests"]} for n, r in res.items()}
    assert set(kinds["bob"].values()) == {"not_implemented"}
    assert kinds["cyd"]["test_square_array"] == "wrong" and kinds["cyd"]["test_mse_random"] == "exception"
    assert kinds["cyd"]["test_nparams_bias"] == "forbidden"
    assert kinds["dee"]["test_mse_random"] == "timeout"
    assert kinds["eve"]["test_square_array"] == "crashed" and kinds["eve"]["test_nparams_bias"] == "wrong"
    assert res["zed"]["status"] == "invalid"


def test_report_command_on_real_results(graded, tmp_path, capsys):
    src, res = graded
    assert cli(["report", str(src), "--out", str(tmp_path / "rep")]) == 0
    assert "hwfix: 6 student(s), mean 2.33/7" in capsys.readouterr().out
    a = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert a["students"] == 6 and a["status"] == {"graded": 5, "invalid": 1}
    assert a["score"]["mean"] == pytest.approx(14 / 6) and a["score"]["median"] == pytest.approx(1.5)
    assert a["score"]["full_marks"] == pytest.approx(1 / 6)
    tests = {t["name"]: t for t in a["tests"]}
    # square_array: passed by ada, dee; not implemented (bob), wrong (cyd), crashed (eve), invalid (zed)
    assert tests["test_square_array"]["pass_rate"] == pytest.approx(2 / 6)
    assert tests["test_square_array"]["failures"] == {"crashed": 1, "invalid": 1, "not_implemented": 1, "wrong": 1}
    assert tests["test_mse_random"]["failures"] == {"exception": 1, "invalid": 1, "not_implemented": 1, "timeout": 1}
    tasks = {t["id"]: t for t in a["tasks"]}
    assert tasks["hwfix.mse"]["mean"] == pytest.approx(6 / 6) and tasks["hwfix.mse"]["full_marks"] == pytest.approx(2 / 6)
    assert a["failure_kinds"]["not_implemented"] == 6 and a["failure_kinds"]["invalid"] == 6
    assert a["failure_kinds"]["forbidden"] == 2
    assert a["mistakes"] is None  # hwfix registers no mistakes: said so, not an error
    flags = {(f["student"], f["kind"]) for f in a["review"]}
    assert {("zed", "status invalid"), ("cyd", "forbidden")} <= flags
    assert [s["student"] for s in a["slowest"]][0] == "dee"  # the one that timed out
    with open(tmp_path / "rep" / "tests.csv") as f:
        rows = {r["test"]: r for r in csv.DictReader(f)}
    assert rows["test_mse_random"]["fail_timeout"] == "1" and rows["test_mse_random"]["pass_rate"] == "0.3333"
    page = (tmp_path / "rep" / "report.html").read_text()
    for k in SECTIONS:
        assert f'<section id="{k}">' in page
    assert "<h2>Known mistakes</h2>" in page and "no <code>mistake</code> field" in page
    assert "<script" not in page and "http" not in page.replace('lang="en"', "")  # self-contained
    assert page.count('src="data:image/png;base64,') == 4


def _synthesize(base: dict[str, dict], n: int, seed: int = 0) -> tuple[list[dict], list[str]]:
    """``n`` results, each a renamed copy of a random real one with its own wall time and,
    for every failed wrong-value test, a registered-mistake match; returns (results, base names)."""
    rng = random.Random(seed)
    names = sorted(base)
    out, picks = [], []
    for i in range(n):
        b = rng.choice(names)
        r = copy.deepcopy(base[b])
        r["student"] = f"s{i:04d}"
        r["timing"] = {**(r.get("timing") or {}), "wall_s": round(rng.uniform(0.1, 5.0), 3)}
        for t in r["tasks"]:
            for x in t["tests"]:
                if x["kind"] == "wrong":
                    x["mistake"] = {"id": f"{t['id']}.m{i % 3}", "text": f"mistake {i % 3} of {t['id']}"}
        out.append(r)
        picks.append(b)
    return out, picks


def test_a_class_of_1000_matches_counts_of_its_real_bases(graded):
    _, res = graded
    results, picks = _synthesize(res, 1000)
    a = analyze(results)
    count = {b: picks.count(b) for b in res}
    assert a["students"] == 1000
    assert a["score"]["mean"] == pytest.approx(sum(res[b]["score"] * c for b, c in count.items()) / 1000)
    for t in a["tests"]:
        passed = sum(c for b, c in count.items() for tk in res[b]["tasks"] for x in tk["tests"]
                     if x["name"] == t["name"] and x["passed"])
        assert t["pass_rate"] == pytest.approx(passed / 1000), t["name"]
    # wrong values: square_array/tensor of cyd, nparams_bias/sim_bn of eve; mistakes by i % 3
    wrong = {tk["id"]: sum(x["kind"] == "wrong" for x in tk["tests"]) for tk in res["cyd"]["tasks"]}
    want = {}
    for i, b in enumerate(picks):
        for tk in res[b]["tasks"]:
            k = sum(x["kind"] == "wrong" for x in tk["tests"])
            if k:
                want[(tk["id"], f"{tk['id']}.m{i % 3}")] = want.get((tk["id"], f"{tk['id']}.m{i % 3}"), 0) + k
    got = {(m["task"], m["mistake"]): m["count"] for m in a["mistakes"]}
    assert got == want and wrong["hwfix.square"] == 2
    assert [m["count"] for m in a["mistakes"]] == sorted(got.values(), reverse=True)
    walls = sorted((r["timing"]["wall_s"] for r in results), reverse=True)[:10]
    assert [s["wall_s"] for s in a["slowest"]] == walls


def test_tolerates_missing_keys_and_rejects_nothing_to_report(tmp_path, capsys):
    r = {"student": "a", "assignment": "hwx", "score": 1, "max_score": 2, "tasks": [
        {"id": "hwx.t", "points": 2, "score": 1, "tests": [
            {"name": "test_a", "passed": True}, {"name": "test_b", "passed": False, "mistake": "hwx.t.sign"}]}]}
    a = write_report([r], tmp_path / "one")
    assert a["slowest"] == [] and a["review"] == [] and a["mistakes"] == [
        {"task": "hwx.t", "mistake": "hwx.t.sign", "text": "hwx.t.sign", "count": 1, "students": 1}]
    assert a["known_mistakes"] == [{"task": "hwx.t", "registered": None, "students": 1, "tests": 1,
                                    "by_mistake": {"hwx.t.sign": 1}}]
    assert a["failure_kinds"] == {"unknown": 1} and a["score"]["stdev"] == 0.0
    with pytest.raises(ValueError, match="no results"):
        analyze([])
    assert cli(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "GRADED" in err and "no results/ folder" in err
    (tmp_path / "empty" / "results").mkdir(parents=True)
    assert cli(["report", str(tmp_path / "empty")]) == 2
    assert "no readable results" in capsys.readouterr().err


def test_page_renders_in_headless_chromium(graded, tmp_path):
    assert os.path.exists(CHROMIUM), "needs Debian's chromium (.ci/run installs it: apt-get install chromium)"
    _, res = graded
    results, _ = _synthesize(res, 300, seed=1)
    write_report(results, tmp_path / "rep")
    page = tmp_path / "rep" / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for k in SECTIONS:
        assert re.search(rf'<section id="{k}">\s*<h2>', dom.stdout), k
    assert dom.stdout.count("data:image/png;base64,") == 4
    errors = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not errors, errors
    shot = tmp_path / "rep" / "report.png"
    s = subprocess.run([CHROMIUM, *flags, "--window-size=1100,2600", "--hide-scrollbars",
                        f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=60)
    assert s.returncode == 0 and shot.stat().st_size > 20_000, s.stderr[-2000:]
    if os.environ.get("FLATLAB_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["FLATLAB_KEEP_SCREENSHOT"])
