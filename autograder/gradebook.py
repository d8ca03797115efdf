"""The class gradebook: a function of the results folder.

``grades.csv`` and ``grades_canvas.csv`` are rebuilt, atomically, from every
``<out>/results/<student>.json`` each time ``python -m autograder grade`` writes there, so
regrading one student changes only that student's row. ``score``/``max_score`` are the
autograded points; ``manual``/``manual_max`` the hand-graded ones, from an optional
``<out>/manual.csv`` (``student`` + one column per manual question id) that the instructor
fills in; they are kept apart from the autograded points. ``review_flags.csv`` (``student,
task, flag``) lists the review flags of every task (a forbidden non-flatlab name in the
task's code, see FORMAT.md): for a person to read, never subtracted.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

__all__ = ["load_results", "rebuild", "CANVAS_HEAD", "add_arguments", "run"]

CANVAS_HEAD = ["Student", "ID", "SIS User ID", "Section"]


def _fmt(x) -> str:
    return "" if x is None else f"{x:g}"


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def load_results(out: Path, warn=_warn) -> list[dict]:
    """Every readable ``results/*.json`` of one assignment in ``out``, sorted by student id.
    Files that are unreadable or belong to another assignment than the majority are skipped
    with a warning."""
    results = []
    for p in sorted((Path(out) / "results").glob("*.json")):
        try:
            r = json.loads(p.read_text(encoding="utf-8"))
            r["student"], r["assignment"], r["tasks"]  # noqa: B018  (schema check)
        except (OSError, ValueError, KeyError, TypeError) as e:
            warn(f"skipping results/{p.name}: {type(e).__name__}: {e}")
            continue
        if r["student"] != p.stem:
            warn(f"skipping results/{p.name}: it is the results of {r['student']!r}")
            continue
        results.append(r)
    names = sorted({r["assignment"] for r in results})
    if len(names) > 1:
        main = max(names, key=lambda n: sum(r["assignment"] == n for r in results))
        for r in results:
            if r["assignment"] != main:
                warn(f"skipping results/{r['student']}.json: it is {r['assignment']}, this folder is {main}")
        results = [r for r in results if r["assignment"] == main]
    return sorted(results, key=lambda r: r["student"])


def _manual_scores(out: Path, warn=_warn) -> dict[str, dict[str, float]]:
    path = Path(out) / "manual.csv"
    if not path.exists():
        return {}
    scores = {}
    for row in csv.DictReader(path.open(encoding="utf-8", newline="")):
        sid = (row.pop("student", "") or "").strip()
        vals = {}
        for k, v in row.items():
            if k and (v or "").strip():
                try:
                    vals[k] = float(v)
                except ValueError:
                    warn(f"manual.csv: {sid} {k} = {v!r} is not a number; ignored")
        if sid:
            scores[sid] = vals
    return scores


def _write(path: Path, rows: list[list]) -> None:
    from .build import write_atomic
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_atomic(path, buf.getvalue())


def _roster(path: Path) -> list[dict]:
    rows = []
    for row in csv.DictReader(path.open(encoding="utf-8-sig", newline="")):
        if (row.get("Student") or "").strip().lower() == "points possible":
            continue
        missing = [k for k in CANVAS_HEAD if k not in row]
        if missing:
            raise ValueError(f"--roster {path}: missing column(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def rebuild(out: Path, roster: Path | None = None, warn=_warn) -> list[dict]:
    """Rewrite ``grades.csv``, ``review_flags.csv`` and ``grades_canvas.csv`` in ``out`` from all its results."""
    from .grade import student_id
    out = Path(out)
    results = load_results(out, warn)
    manual = _manual_scores(out, warn)
    task_ids = [t["id"] for t in results[0]["tasks"]] if results else []
    manual_ids = [q["id"] for q in results[0].get("manual", [])] if results else []
    rows = [["student", "status", "score", "max_score", "manual", "manual_max", "total",
             *task_ids, *manual_ids]]
    for r in results:
        scores = {t["id"]: t["score"] for t in r["tasks"]}
        m = manual.get(r["student"], {})
        msum = round(sum(m.get(q, 0.0) for q in manual_ids), 6) if m else None
        total = round(r["score"] + (msum or 0.0), 6)
        manual_max = r.get("manual_max", sum(q["points"] for q in r.get("manual", [])))
        rows.append([r["student"], r["status"], _fmt(r["score"]), _fmt(r["max_score"]), _fmt(msum),
                     _fmt(manual_max), _fmt(total), *[_fmt(scores.get(k, 0.0)) for k in task_ids],
                     *[_fmt(m.get(q)) for q in manual_ids]])
    _write(out / "grades.csv", rows)
    _write(out / "review_flags.csv", [["student", "task", "flag"]] + [
        [r["student"], t["id"], f] for r in results for t in r["tasks"] for f in t.get("review_flags", [])])

    name = results[0]["assignment"] if results else out.name
    col = f"{name} (autograded)"
    canvas = [[*CANVAS_HEAD, col]]
    by_id = {r["student"]: r for r in results}
    if roster is not None:
        listed = set()
        for row in _roster(Path(roster)):
            sid = student_id(Path((row.get("SIS User ID") or row.get("SIS Login ID") or "").strip() or "_"))
            listed.add(sid)
            r = by_id.get(sid)
            canvas.append([row["Student"], row["ID"], row["SIS User ID"], row["Section"],
                           _fmt(r["score"]) if r else ""])
        for sid in sorted(set(by_id) - listed):
            warn(f"{sid} has results but is not in the roster {roster}; not in grades_canvas.csv")
    else:
        canvas += [[r["student"], "", r["student"], "", _fmt(r["score"])] for r in results]
    _write(out / "grades_canvas.csv", canvas)
    return results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="a grading output folder (holding results/), e.g. graded/hw0")
    p.add_argument("--roster", type=Path, default=None,
                   help="Canvas gradebook export (Student, ID, SIS User ID, Section) for grades_canvas.csv")


def run(a: argparse.Namespace) -> int:
    """``python -m autograder gradebook OUT``: rebuild the CSVs (e.g. after editing manual.csv)."""
    if not (a.out / "results").is_dir():
        print(f"error: {a.out} has no results/ folder (run `python -m autograder grade` first)",
              file=sys.stderr)
        return 2
    if a.roster is not None and not a.roster.is_file():
        print(f"error: --roster {a.roster} does not exist", file=sys.stderr)
        return 2
    try:
        results = rebuild(a.out, roster=a.roster)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(results)} student(s) -> {a.out / 'grades.csv'}, {a.out / 'grades_canvas.csv'}")
    return 0
