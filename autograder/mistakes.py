"""``python -m autograder mistakes``: grade every registered mistake (FORMAT.md "Known mistakes").

For each assignment it makes one submission per ``mistake`` cell of ``solutions/hwN.py``: the
solution notebook (``build/solutions/hwN.ipynb``: the source without its mistake cells) with
that mistake's source appended to the end of its task cell, so the variant replaces the
function. All of them, and the reference solution, are graded as one folder by the real
grader (:func:`autograder.grade.grade_paths`: the sandbox, the restricted flatlab, ``--jobs``
workers). Meanwhile one subprocess runs the notebook as a student would on a laptop
(:mod:`autograder._selfcheck`: full flatlab, setup, task and public_test cells in order) to see
whether the task's self-check catches each mistake, and with an informative message.

Criteria (exit 1 with the reasons unless ``--no-thresholds``): the reference solution earns
full marks and passes its self-checks; >= 3 mistakes per task; every mistake loses points on
its own task and none elsewhere; >= 80% of each assignment's mistakes caught informatively by
the self-check; >= 100 mistakes when the whole course is checked (no assignment named).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from .build import solution_notebook, write_atomic
from .notebook import Assignment, Mistake, cell_meta, parse_source, read_source

__all__ = ["MIN_PER_TASK", "MIN_COURSE", "MIN_INFORMATIVE", "informative", "mistake_notebook", "self_checks",
           "check_assignment", "criteria", "format_report", "add_arguments", "run", "main"]

MIN_PER_TASK = 3  # mistakes per task
MIN_COURSE = 100  # mistakes in the whole course
MIN_INFORMATIVE = 0.8  # share of an assignment's mistakes its self-checks catch informatively
_EPS = 1e-9

# the headers of torch.testing / numpy.testing failures: they say that values differ, not what is wrong
_GENERIC_HEADERS = re.compile(
    r"^(Tensor-likes|Scalars|Booleans) are not (close|equal)!$"
    r"|^Not equal to tolerance( rtol=\S+,? atol=\S+)?$"
    r"|^Arrays are not (almost )?equal( to \d+ decimals)?$"
    r"|^Arrays are not less-ordered$"
    r"|^Items are not equal:?$"
    r"|^Not (almost )?equal to \d+ (decimals|significant digits)$")
# the statistics those tools print after the header
_STATS = re.compile(
    r"^(Mismatched elements|Mismatch|Greatest (absolute|relative) difference|Max absolute difference"
    r"|Max relative difference|x:|y:|ACTUAL:|DESIRED:|\(shapes .* mismatch\)|x and y .*mismatch"
    r"|The failure occurred for item|Expected .* but got|[+-]?inf location mismatch|nan location mismatch)")


def informative(exc_type: str | None, message: str | None) -> bool:
    """Whether a failed self-check's exception tells the student what is wrong.

    False for an empty message (a bare ``assert``) and for a message that is only a generic
    closeness report of torch.testing / numpy.testing ("Tensor-likes are not close!",
    "Scalars are not close!", "Not equal to tolerance rtol=..., atol=..." followed by their
    statistics) with no text of the author's; true for any other message.
    """
    if not exc_type:
        return False
    lines = [ln.strip() for ln in (message or "").strip().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return False
    if not _GENERIC_HEADERS.match(lines[0]):
        return True
    # numpy puts the author's err_msg right after its header; torch replaces the whole message
    for ln in lines[1:]:
        if _STATS.match(ln):
            return False
        return True
    return False


def mistake_notebook(solution_nb, asg: Assignment, mistake: Mistake):
    """The solution notebook with ``mistake``'s source appended to the end of its task cell."""
    nb = copy.deepcopy(solution_nb)
    task = asg.task(mistake.task)
    cells = [c for c in nb.cells if c.cell_type == "code" and cell_meta(c).get("role") == "task"
             and cell_meta(c).get("id") == task.id]
    if not cells:
        raise ValueError(f"the solution notebook has no task cell {task.id}")
    cells[0].source = cells[0].source.rstrip("\n") + "\n\n\n" + mistake.source
    return nb


def _key(m: Mistake) -> str:
    """The submission's file stem (a valid student id): ``<task>--<name>``."""
    return f"{m.task}--{m.name}"


def self_checks(solution_nb, asg: Assignment, timeout: float = 60.0, total_timeout: float | None = None) -> dict:
    """Run the self-checks of the reference and of every mistake (see :mod:`autograder._selfcheck`).

    Returns ``{"reference": run, "mistakes": {key: run}}``; raises ``RuntimeError`` if the
    runner fails as a whole (its stderr tail in the message)."""
    cells = [{"role": (cell_meta(c).get("role") or "code") if c.cell_type == "code" else "markdown",
              "id": cell_meta(c).get("id"), "source": c.source} for c in solution_nb.cells]
    req = {"cells": cells, "timeout": timeout,
           "mistakes": [{"key": _key(m), "task": m.task, "source": m.source} for m in asg.mistakes]}
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    limit = total_timeout or 600.0 + timeout * (len(asg.mistakes) + 1)
    with tempfile.TemporaryDirectory(prefix=f"flatlab-selfcheck-{asg.name}-") as cwd:
        try:
            proc = subprocess.run([sys.executable, "-m", "autograder._selfcheck"], input=json.dumps(req),
                                  capture_output=True, text=True, cwd=cwd, env=env, timeout=limit)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{asg.name}: the self-check run took more than {limit:g} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{asg.name}: the self-check runner failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[-1500:]}")
    return json.loads(proc.stdout)


def _selfcheck_verdict(run: dict, task: str) -> dict:
    """Caught / informative / the first failing check of ``task`` in one self-check run."""
    mine = [c for c in run.get("checks", []) if c["id"] == task]
    failed = [c for c in mine if not c["passed"]]
    if run.get("timeout"):
        return {"caught": False, "informative": False, "check": "timed out", "type": "timeout", "message": ""}
    if not mine:
        errors = run.get("errors", [])
        why = f"{errors[0]['type']}: {errors[0]['message']}" if errors else f"no self-check of {task} ran"
        return {"caught": False, "informative": False, "check": why, "type": "", "message": ""}
    if not failed:
        return {"caught": False, "informative": False, "check": "passed", "type": "", "message": ""}
    c = failed[0]
    return {"caught": True, "informative": informative(c["type"], c["message"]),
            "check": f"{c['type']}: {c['message']}".strip().rstrip(":"), "type": c["type"],
            "message": c["message"]}


def _task_scores(result: dict) -> dict[str, float]:
    return {t["id"]: float(t["score"]) for t in result["tasks"]}


def check_assignment(source: Path, bundles: Path, config=None, *, selfcheck_timeout: float = 60.0,
                     progress=None) -> dict:
    """Grade and self-check every mistake of one source ``hwN.py``; returns its report dict."""
    from .grade import GradingConfig, grade_paths, load_bundle

    config = config or GradingConfig(jobs=2)
    t0 = time.monotonic()
    source = Path(source)
    text = source.read_text(encoding="utf-8")
    src_nb = read_source(source)
    asg = parse_source(src_nb)
    bundle = load_bundle(bundles, asg.name)
    if bundle.get("source_sha256") != hashlib.sha256(text.encode()).hexdigest():
        raise ValueError(f"{Path(bundles) / asg.name / 'bundle.json'} is not built from {source}: "
                         f"run `python -m autograder build` first")
    sol = solution_notebook(src_nb)
    checks, failure = {}, []

    def run_checks():
        try:
            checks.update(self_checks(sol, asg, selfcheck_timeout))
        except Exception as e:  # reported as a reason, after grading
            failure.append(str(e))

    if asg.mistakes:  # every mistake fails some test: start the diagnosis server while workers start
        from .diagnose import diagnoser
        threading.Thread(target=diagnoser(bundle).warm, daemon=True).start()
    th = threading.Thread(target=run_checks, daemon=True)
    th.start()  # runs while the grader grades (one subprocess; the grader uses --jobs workers)
    with tempfile.TemporaryDirectory(prefix=f"flatlab-mistakes-{asg.name}-") as d:
        folder = Path(d)
        paths = [folder / "reference.ipynb"]
        nbformat.write(sol, str(paths[0]))
        for m in asg.mistakes:
            p = folder / f"{_key(m)}.ipynb"
            nbformat.write(mistake_notebook(sol, asg, m), str(p))
            paths.append(p)
        results = grade_paths(paths, bundle, config, hide=[str(folder), str(Path(bundles).resolve())],
                              progress=progress)
    th.join()
    by_source = {r["source"]: r for r in results}
    ref = by_source["reference.ipynb"]
    ref_scores = _task_scores(ref)
    ref_checks = checks.get("reference", {"checks": [], "errors": []})
    rows = []
    for m in asg.mistakes:
        r = by_source[f"{_key(m)}.ipynb"]
        scores = _task_scores(r)
        lost_task = ref_scores[m.task] - scores.get(m.task, 0.0)
        lost_else = sum(ref_scores[k] - scores.get(k, 0.0) for k in ref_scores if k != m.task)
        task_rec = next(t for t in r["tasks"] if t["id"] == m.task)
        diagnosed = any(x.get("mistake") == m.name for x in task_rec["tests"])
        verdict = (_selfcheck_verdict(checks["mistakes"][_key(m)], m.task) if "mistakes" in checks
                   else {"caught": False, "informative": False, "check": "self-check not run", "type": "",
                         "message": ""})
        rows.append({"task": m.task, "name": m.name, "feedback": m.feedback, "status": r["status"],
                     "points": asg.task(m.task).points, "lost_task": round(lost_task, 6),
                     "lost_elsewhere": round(lost_else, 6),
                     "lost_where": sorted(k for k in ref_scores if k != m.task
                                          and abs(ref_scores[k] - scores.get(k, 0.0)) > _EPS),
                     "diagnosed": diagnosed, **verdict,
                     "failed_tests": [{"name": x["name"], "kind": x["kind"], "message": x["message"][:300]}
                                      for t in r["tasks"] for x in t["tests"] if not x["passed"]]})
    tasks = {}
    for t in asg.tasks:
        mine = [x for x in rows if x["task"] == t.id]
        tasks[t.id] = {"mistakes": len(mine), "caught": sum(x["caught"] for x in mine),
                       "informative": sum(x["informative"] for x in mine),
                       "loses_on_task": sum(x["lost_task"] > _EPS for x in mine),
                       "clean_elsewhere": sum(abs(x["lost_elsewhere"]) <= _EPS for x in mine),
                       "diagnosed": sum(x["diagnosed"] for x in mine)}
    n = len(rows)
    summary = {"mistakes": n, "tasks": len(asg.tasks),
               **{k: sum(v[k] for v in tasks.values()) for k in
                  ("caught", "informative", "loses_on_task", "clean_elsewhere", "diagnosed")}}
    summary["informative_share"] = round(summary["informative"] / n, 4) if n else 0.0
    return {"assignment": asg.name, "title": asg.title,
            "reference": {"status": ref["status"], "score": ref["score"], "max_score": ref["max_score"],
                          "failed_tests": [x["name"] for t in ref["tasks"] for x in t["tests"] if not x["passed"]],
                          "failed_checks": [f"{c['id']}: {c['type']}: {c['message'][:200]}"
                                            for c in ref_checks.get("checks", []) if not c["passed"]],
                          "errors": [f"cell {e['cell']}: {e['type']}: {e['message'][:200]}"
                                     for e in ref_checks.get("errors", [])]},
            "selfcheck_error": failure[0] if failure else None,
            "mistakes": rows, "tasks": tasks, "summary": summary,
            "time_s": round(time.monotonic() - t0, 2)}


def criteria(reports: list[dict], full_course: bool) -> list[str]:
    """The reasons the mistakes check fails (empty: it passes)."""
    reasons = []
    for rep in reports:
        a, ref = rep["assignment"], rep["reference"]
        if rep.get("selfcheck_error"):
            reasons.append(f"{a}: {rep['selfcheck_error']}")
        if ref["status"] != "graded" or abs(ref["score"] - ref["max_score"]) > _EPS:
            reasons.append(f"{a}: the reference solution scores {ref['score']:g}/{ref['max_score']:g} "
                           f"({ref['status']}; failed: {', '.join(ref['failed_tests']) or '-'})")
        if ref["failed_checks"] or ref["errors"]:
            reasons.append(f"{a}: the reference solution fails its own notebook: "
                           + "; ".join(ref["failed_checks"] + ref["errors"])[:500])
        for tid, t in rep["tasks"].items():
            if t["mistakes"] < MIN_PER_TASK:
                reasons.append(f"{tid}: {t['mistakes']} mistake(s); at least {MIN_PER_TASK} needed")
        for x in rep["mistakes"]:
            tag = f"{x['task']}/{x['name']}"
            if x["lost_task"] <= _EPS:
                reasons.append(f"{tag}: loses no points on {x['task']} (the hidden tests do not catch it)")
            if abs(x["lost_elsewhere"]) > _EPS:
                reasons.append(f"{tag}: changes the score of other tasks by {-x['lost_elsewhere']:g} "
                               f"({', '.join(x['lost_where'])})")
        s = rep["summary"]
        if s["mistakes"] and s["informative_share"] < MIN_INFORMATIVE - _EPS:
            reasons.append(f"{a}: {s['informative']}/{s['mistakes']} mistakes caught informatively by the "
                           f"self-checks ({100 * s['informative_share']:.0f}%); at least "
                           f"{100 * MIN_INFORMATIVE:.0f}% needed")
    total = sum(r["summary"]["mistakes"] for r in reports)
    if full_course and total < MIN_COURSE:
        reasons.append(f"course: {total} mistakes; at least {MIN_COURSE} needed")
    return reasons


def _yn(v: bool) -> str:
    return "yes" if v else "no"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def format_report(reports: list[dict], reasons: list[str] | None = None, elapsed: float | None = None) -> str:
    """The plain-text tables (per assignment, per task, course totals) of a mistakes check."""
    out = []
    for rep in reports:
        s = rep["summary"]
        out.append(f"{rep['assignment']}: {s['mistakes']} mistakes in {s['tasks']} tasks "
                   f"(reference {rep['reference']['score']:g}/{rep['reference']['max_score']:g}; "
                   f"{rep['time_s']:.1f} s)")
        rows = [["task", "mistake", "self-check caught", "informative", "lost on task", "lost elsewhere",
                 "diagnosed"]]
        for x in rep["mistakes"]:
            rows.append([x["task"], x["name"], _yn(x["caught"]), _yn(x["informative"]),
                         f"{x['lost_task']:g}/{x['points']:g}", f"{x['lost_elsewhere']:g}", _yn(x["diagnosed"])])
        if len(rows) > 1:
            out += ["  " + ln for ln in _table(rows)]
        rows = [["task", "mistakes", "caught", "informative", "lose on task", "clean elsewhere", "diagnosed"]]
        for tid, t in rep["tasks"].items():
            rows.append([tid, *(str(t[k]) for k in ("mistakes", "caught", "informative", "loses_on_task",
                                                       "clean_elsewhere", "diagnosed"))])
        rows.append([f"{rep['assignment']} total", *(str(s[k]) for k in (
            "mistakes", "caught", "informative", "loses_on_task", "clean_elsewhere", "diagnosed"))])
        out += ["  " + ln for ln in _table(rows)]
        out.append(f"  informative catches: {100 * s['informative_share']:.0f}%")
        out.append("")
    tot = {k: sum(r["summary"][k] for r in reports)
           for k in ("mistakes", "caught", "informative", "loses_on_task", "clean_elsewhere", "diagnosed")}
    out.append("course: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in tot.items())
               + (f"; {elapsed:.1f} s" if elapsed is not None else ""))
    if reasons:
        out.append(f"FAILED ({len(reasons)}):")
        out += [f"  - {r}" for r in reasons]
    elif reasons is not None:
        out.append("OK: every criterion holds")
    return "\n".join(out) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("assignments", nargs="*", metavar="hwN",
                   help="assignments to check (default: every source in --solutions)")
    p.add_argument("--solutions", default="solutions", help="folder of the sources hwN.py")
    p.add_argument("--bundles", default="build/grading", help="folder of the grading bundles (`build` writes them)")
    p.add_argument("--json", default=None, help="also write the whole report as JSON to this file")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded in parallel (1..64)")
    p.add_argument("--seed", type=int, default=0, help="course seed of the grading runs")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds per cell and per hidden test while grading; per mistake for the self-checks")
    p.add_argument("--no-thresholds", action="store_true",
                   help="print the tables and exit 0 whatever the criteria say (while mistakes are being written)")


def run(a: argparse.Namespace) -> int:
    """Exit status: 0 every criterion holds (or --no-thresholds), 1 some does not, 2 usage error."""
    from .grade import GradingConfig, _warm_trusted
    from .sandbox import prestart

    sol = Path(a.solutions)
    if not sol.is_dir():
        print(f"error: --solutions {sol} is not a folder", file=sys.stderr)
        return 2
    every = sorted(p.stem for p in sol.glob("*.py"))
    names = list(dict.fromkeys(a.assignments)) or every
    missing = [n for n in names if n not in every]
    if missing or not names:
        print(f"error: assignments: no source {', '.join(str(sol / f'{n}.py') for n in missing) or 'in ' + str(sol)}",
              file=sys.stderr)
        return 2
    try:
        config = GradingConfig(seed=a.seed, cell_timeout=a.timeout, test_timeout=a.timeout, jobs=a.jobs)
    except ValueError as e:
        print(f"error: --jobs/--seed/--timeout: {e}", file=sys.stderr)
        return 2
    if not a.timeout > 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return 2
    prestart()
    import torch
    torch.set_num_threads(1)
    threading.Thread(target=_warm_trusted, daemon=True).start()
    t0, reports = time.monotonic(), []
    for name in names:
        try:
            rep = check_assignment(sol / f"{name}.py", Path(a.bundles), config, selfcheck_timeout=a.timeout)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        reports.append(rep)
        print(f"{name}: {rep['summary']['mistakes']} mistakes checked in {rep['time_s']:.1f} s", flush=True)
    elapsed = time.monotonic() - t0
    full = not a.assignments  # the course total applies to a run over every source
    reasons = criteria(reports, full)
    print()
    print(format_report(reports, reasons, elapsed), end="")
    print(f"mistakes check of {', '.join(names)} took {elapsed:.1f} s")
    if a.json:
        doc = {"assignments": reports, "full_course": full, "reasons": reasons, "ok": not reasons,
               "time_s": round(elapsed, 2),
               "totals": {k: sum(r["summary"][k] for r in reports) for k in
                          ("mistakes", "caught", "informative", "loses_on_task", "clean_elsewhere", "diagnosed")},
               "criteria": {"min_per_task": MIN_PER_TASK, "min_course": MIN_COURSE,
                            "min_informative": MIN_INFORMATIVE}}
        write_atomic(Path(a.json), json.dumps(doc, indent=1, sort_keys=True) + "\n")
    if reasons and not a.no_thresholds:
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder mistakes", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
