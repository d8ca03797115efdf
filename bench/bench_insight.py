"""Benchmark: the class-insight tools on a class of 500, against reading the class.

    python bench/bench_insight.py [--students 500] [--assignment hw4] [--seed 0]

Generates (seeded) a class of ``--students`` submissions of the assignment from the
similarity test corpus (independent solutions, plus 5% copies of a random classmate renamed)
and a results folder for it (one ``results/<student>.json`` per student, test outcomes drawn at
random: grading 500 notebooks is ``bench_grading.py``'s business), then runs, each in a fresh
process, measured in the same run:

- **baseline**: import the grader and read + parse the 500 notebooks with nbformat;
- **report**: ``python -m autograder report``;
- **similarity**: ``python -m autograder similarity``.

Prints wall time and peak resident memory (``resource.getrusage``) of each process, each
time as a ratio to the baseline, and where the planted copies landed. The machine may be
shared: the load average is printed. The corpus is made for 30 students: at 500 its
templates repeat (two-line tasks have ~160 distinct forms), so what it says about flags at
that size is a property of the corpus as much as of the method.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "autograder"))

_PHASE = r"""
import resource, sys, time
t0 = time.perf_counter()
{body}
wall = time.perf_counter() - t0
print("BENCH", wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
_BASELINE = """
import nbformat, autograder.similarity
from pathlib import Path
nbs = [nbformat.read(str(p), as_version=4) for p in sorted(Path(sys.argv[1]).glob('*.ipynb'))]
assert nbs
"""
_CLI = """
from autograder.__main__ import main
assert main(sys.argv[1:]) == 0
"""


def make_class(folder: Path, assignment: str, n: int, seed: int) -> tuple[Path, list[tuple[str, str]]]:
    """The class, and the (sorted) pairs of each planted copy and its original."""
    from similarity_corpus import planted_class, write_class
    subs, planted = planted_class(assignment, n, seed)
    return write_class(subs, assignment, folder), planted


def make_results(folder: Path, assignment: str, students: list[str], seed: int) -> Path:
    from autograder.notebook import parse_source, read_source
    asg = parse_source(read_source(REPO / "solutions" / f"{assignment}.py"))
    points = asg.test_points()
    rng = random.Random(seed)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    for s in students:
        skill = rng.random()
        tasks, total = [], 0.0
        for t in asg.tasks:
            tests = []
            for h in (x for x in asg.tests if x.task == t.id):
                ok = rng.random() < 0.3 + 0.7 * skill
                tests.append({"name": h.name, "doc": h.doc, "points": points[(t.id, h.name)], "passed": ok,
                              "kind": "passed" if ok else rng.choice(["wrong", "exception", "timeout", "not_implemented"]),
                              "time": {"student_s": round(rng.uniform(0.01, 2.0), 3)}})
            score = sum(x["points"] for x in tests if x["passed"])
            total += score
            tasks.append({"id": t.id, "points": t.points, "score": score, "tests": tests})
        r = {"student": s, "assignment": assignment, "title": asg.title, "status": "graded", "score": total,
             "max_score": sum(t.points for t in asg.tasks), "tasks": tasks,
             "timing": {"wall_s": round(rng.uniform(1, 30), 2)}}
        (folder / "results" / f"{s}.json").write_text(json.dumps(r))
    return folder


def phase(body: str, *args) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", _PHASE.format(body=body), *map(str, args)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH"))
    _, wall, mib = line.split()
    return float(wall), float(mib)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=500)
    p.add_argument("--assignment", default="hw4", choices=["hw1", "hw4"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        subs, planted = make_class(tmp / "subs", a.assignment, a.students, a.seed)
        names = sorted(x.stem for x in subs.glob("*.ipynb"))
        make_results(tmp / "graded", a.assignment, names, a.seed)
        print(f"generated {len(names)} submissions + results of {a.assignment} in {time.perf_counter() - t0:.1f} s "
              f"(load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
        rows = [("baseline: read + parse the notebooks", *phase(_BASELINE, subs)),
                ("report", *phase(_CLI, "report", tmp / "graded", "--out", tmp / "rep")),
                ("similarity", *phase(_CLI, "similarity", subs, "--assignment", a.assignment, "--out", tmp / "sim"))]
        s = json.loads((tmp / "sim" / "similarity.json").read_text())
        base = rows[0][1]
        for name, wall, mib in rows:
            print(f"{name:40s} {wall:7.2f} s  {wall / base:5.1f}x baseline  peak RSS {mib:7.0f} MiB")
        rank = {(p["a"], p["b"]): i + 1 for i, p in enumerate(s["pairs"])}
        found = sorted(rank[k] for k in planted if k in rank)
        hit = sum(s["pairs"][rank[k] - 1]["flagged"] for k in planted if k in rank)
        print(f"similarity: {s['students']} students, {s['pairs_reported']} pairs reported, {s['pairs_flagged']} "
              f"flagged, idiom limit {s['idiom_limit']:g}, evidence needed {s['min_evidence']:g}; of {len(planted)} renamed copies planted, {hit} flagged, "
              f"{len(found)} reported, at ranks {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
