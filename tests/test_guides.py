"""The guides' commands work when followed literally, the way a new instructor or student would.

Every ```` ```bash ```` block of course/instructor_guide.md and course/exports.md is run, in
order, in one bash session (``set -euo pipefail``) from the root of a fresh copy of this
repository; the student guide's blocks run in a fresh student repository made by
``python -m autograder release``. A block the test cannot run (it clones from a URL, installs
packages, starts an interactive server) is preceded by the line
``<!-- guide-test: skip (why) -->``, and must say why.

The tools come from this test's environment (its ``bin/`` first on ``PATH``), which is the
environment the guides' install step makes (``.ci/run`` does that step).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDES = {"instructor": REPO / "course" / "instructor_guide.md", "exports": REPO / "course" / "exports.md",
          "student": REPO / "course" / "student_guide.md"}
_FENCE = re.compile(r"(?:^<!-- guide-test: skip \((?P<why>[^)]*)\) -->\n)?^```bash[^\n]*\n(?P<code>.*?)^```",
                    re.M | re.S)
# what a fresh clone does not have: build products, local environments, caches
_NOT_IN_A_CLONE = {".git", "build", "graded", "results", "submissions", ".pytest_cache", ".hypothesis",
                   "__pycache__", "flatlab.egg-info"}


def blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, reason to skip or None) of each bash block of a guide."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        out.append((text[:m.start("code")].count("\n") + 1, m.group("code"), m.group("why")))
    return out


def test_every_block_runs_or_says_why_not():
    for name, path in GUIDES.items():
        found = blocks(path)
        assert len(found) == path.read_text().count("```bash"), f"{path}: a bash fence the parser missed"
        run = [code for _, code, why in found if why is None]
        assert run, f"{path}: no runnable block"
        for line, code, why in found:
            if why is not None:
                assert len(why.strip()) > 10, f"{path}:{line}: say why the block is not run"
            else:  # placeholders a reader would have to replace cannot be followed literally
                commands = "\n".join(ln.split("#", 1)[0] for ln in code.splitlines())
                assert not re.search(r"<[a-z ]+>|\bDIR\b", commands), f"{path}:{line}: placeholder in {code!r}"


def _fresh_copy(dst: Path) -> Path:
    def ignore(folder, names):
        top = Path(folder) == REPO
        return [n for n in names if n in _NOT_IN_A_CLONE or n.endswith(".egg-info")
                or (top and (n.startswith(".venv") or n == "my_work"))]

    shutil.copytree(REPO, dst, ignore=ignore, symlinks=True)
    return dst


def _follow(path: Path, cwd: Path, timeout: float) -> str:
    script = ["set -euo pipefail"]
    for line, code, why in blocks(path):
        if why is None:
            script += [f"echo '### {path.name}:{line}' >&2", code]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", HOME=str(cwd.parent / "home"))
    (cwd.parent / "home").mkdir(exist_ok=True)
    p = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{path.name}: a block failed (the last '###' line names it):\n" \
                              f"{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p.stdout


def _printed_gradebooks(out: str) -> list[dict[str, dict[str, str]]]:
    """Each grades.csv the guide printed (``cat``), as {student: row}."""
    import csv

    books, lines = [], out.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("student,status,score,"):
            rows = []
            for row in lines[k + 1:]:
                if not re.match(r"[a-z0-9_.-]+,(graded|invalid|crashed|timeout),", row):
                    break
                rows.append(row)
            books.append({r["student"]: r for r in csv.DictReader([line, *rows])})
    return books


@pytest.mark.slow
def test_instructor_guide(tmp_path):
    repo = _fresh_copy(tmp_path / "flatlab")
    out = _follow(GUIDES["instructor"], repo, 900)
    assert re.search(r"\b14/14\b", out) and re.search(r"\b0/14\b", out), out[-2000:]  # as §1 says
    # §4 and §5 print grades.csv: manual points added, then bob's regrade changes only bob's scores
    books = _printed_gradebooks(out)
    assert len(books) == 2, out[-3000:]
    graded, regraded = books
    assert graded["bob"]["manual"] == "0.5" and graded["alice"]["manual"] == "3", graded
    assert float(graded["bob"]["score"]) == 0 and float(graded["alice"]["score"]) == float(graded["alice"]["max_score"])
    assert regraded["alice"] == graded["alice"], (graded, regraded)
    assert float(regraded["bob"]["score"]) == float(regraded["bob"]["max_score"]) > 0
    assert regraded["bob"]["manual"] == "0.5"  # the hand-graded points survive the regrade
    assert (tmp_path / "flatlab-student" / "assignments" / "hw0.ipynb").is_file()  # §2's release
    assert "wrote build/gradescope/gradescope_hw0.zip" in out  # §6 (§7 then deletes build/ and rebuilds)
    assert (repo / "build" / "grading" / "hw0" / "bundle.json").is_file() and not (repo / "graded").exists()


@pytest.mark.slow
def test_exports_guide(tmp_path):
    repo = _fresh_copy(tmp_path / "flatlab")
    _follow(GUIDES["exports"], repo, 900)
    import csv
    import json

    rows = list(csv.DictReader(open(repo / "build" / "nbgrader" / "grades.csv")))
    assert [(r["student_id"], float(r["score"])) for r in rows] == [("alice", 0.0)]  # the blank notebook
    res = json.loads((repo / "build" / "otter-out" / "results.json").read_text())
    assert res["tests"] and all(t["score"] == 0 for t in res["tests"] if t.get("max_score"))


@pytest.mark.slow
def test_student_guide(tmp_path):
    repo = _fresh_copy(tmp_path / "flatlab")
    subprocess.run([sys.executable, "-m", "autograder", "release", "--out", tmp_path / "student"], cwd=repo,
                   check=True, capture_output=True)
    _follow(GUIDES["student"], tmp_path / "student", 300)
    assert (tmp_path / "student" / "my_work" / "hw0.ipynb").is_file()
