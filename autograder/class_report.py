"""``python -m autograder report GRADED_DIR --out DIR``: class analytics for one assignment.

Reads every ``GRADED_DIR/results/<student>.json`` (what ``grade --out GRADED_DIR`` writes)
and writes to ``DIR``:

- ``report.html``: one self-contained page (plots are embedded PNGs, no scripts, no
  external assets) with the sections ``summary``, ``scores``, ``tasks``, ``tests``,
  ``failures``, ``mistakes``, ``slowest`` and ``review``;
- ``report.json``: the same numbers (:func:`analyze`);
- ``tests.csv``: one row per hidden test (pass rate, failures by kind, time);
- ``tasks.csv``: one row per task (mean score, full-marks rate, test pass rate).

Keys a results file may lack (older grader versions) are treated as absent, never as an error:
``timing``, per-test ``time``, ``review_flags``, a task's ``known_mistakes`` (how many mistakes
the bundle registers for it: the grader diagnoses its wrong values) and a failed test's
``mistake`` (the name, or ``{"id", "text"}``, of a registered known mistake its wrong value
matched; with a name, the text is the feedback that ends the test's message). The
``mistakes`` section counts, per task, the students and failed tests a known mistake was
diagnosed in, and each mistake's students.
"""
from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from .build import write_atomic
from .gradebook import load_results
from .report import KIND_TEXT

__all__ = ["SECTIONS", "analyze", "render_html", "write_report", "add_arguments", "run"]

SECTIONS = ("summary", "scores", "tasks", "tests", "failures", "mistakes", "slowest", "review")
FAIL_KINDS = ("wrong", "exception", "not_implemented", "bad_return", "missing", "forbidden", "timeout",
              "crashed", "error", "invalid")


def _num(x, default=None):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else default


_KNOWN = "This looks like a known mistake: "


def _mistake(x: dict) -> tuple[str, str] | None:
    m = x.get("mistake")
    if isinstance(m, str) and m:  # the grader's form: the name; its feedback ends the message
        msg = str(x.get("message") or "")
        return m, (msg.rsplit(_KNOWN, 1)[1].strip() or m) if _KNOWN in msg else m
    if isinstance(m, dict) and m.get("id"):
        return str(m["id"]), str(m.get("text") or m.get("message") or m["id"])
    return None


def _flags(r: dict) -> list[tuple[str, str]]:
    """(kind, text) review flags of one submission: the grader's ``review_flags``, a status
    other than graded, forbidden calls, and notebook cells that failed."""
    out = []
    for f in r.get("review_flags") or []:
        if isinstance(f, dict):
            kind = str(f.get("kind") or f.get("flag") or "flag")
            text = str(f.get("message") or f.get("reason") or f.get("text") or "")
            if f.get("task"):
                text = f"{f['task']}: {text}"
            out.append((kind, text))
        else:
            out.append(("flag", str(f)))
    if r.get("status", "graded") != "graded":
        out.append((f"status {r['status']}", str(r.get("note") or "")))
    for t in r.get("tasks", []):
        if any(x.get("kind") == "forbidden" for x in t.get("tests", [])):
            msg = next(x.get("message", "") for x in t["tests"] if x.get("kind") == "forbidden")
            out.append(("forbidden", f"{t['id']}: {msg}"))
    bad = [c for c in r.get("cells", []) if c.get("status", "ok") != "ok"]
    if bad:
        out.append(("cells failed", ", ".join(f"cell {c.get('index')}: {c.get('status')}" for c in bad[:5])
                    + (" ..." if len(bad) > 5 else "")))
    return out


def analyze(results: list[dict]) -> dict:
    """Class statistics of one assignment's results (plain data; ``report.json``)."""
    if not results:
        raise ValueError("no results to analyze")
    n = len(results)
    scores = [float(r.get("score", 0.0)) for r in results]
    max_score = max(float(r.get("max_score", 0.0)) for r in results)
    q = statistics.quantiles(scores, n=4, method="inclusive") if n > 1 else [scores[0]] * 3
    tasks, tests, kinds, mistakes = {}, {}, Counter(), Counter()
    mistake_text, mistake_seen, mistake_students = {}, False, {}
    by_task: dict[str, dict] = {}  # task -> diagnosed students, tests and registered mistakes
    for r in results:
        for t in r.get("tasks", []):
            if _num(t.get("known_mistakes"), 0) > 0:
                mistake_seen = True
                by_task.setdefault(t["id"], {"students": set(), "tests": 0,
                                             "registered": int(t["known_mistakes"])})
            ts = tasks.setdefault(t["id"], {"id": t["id"], "points": float(t.get("points", 0.0)), "scores": [],
                                            "tests": 0, "passed": 0})
            ts["scores"].append(float(t.get("score", 0.0)))
            for x in t.get("tests", []):
                key = (t["id"], x["name"])
                st = tests.setdefault(key, {"task": t["id"], "name": x["name"], "doc": x.get("doc", ""),
                                            "points": float(x.get("points", 0.0)), "n": 0, "passed": 0,
                                            "kinds": Counter(), "time": []})
                st["n"] += 1
                ts["tests"] += 1
                if x.get("passed"):
                    st["passed"] += 1
                    ts["passed"] += 1
                else:
                    kind = x.get("kind") or "unknown"
                    st["kinds"][kind] += 1
                    kinds[kind] += 1
                    if "mistake" in x:
                        mistake_seen = True
                    m = _mistake(x)
                    if m:
                        mistakes[(t["id"], m[0])] += 1
                        mistake_text[(t["id"], m[0])] = m[1]
                        mistake_students.setdefault((t["id"], m[0]), set()).add(r.get("student"))
                        bt = by_task.setdefault(t["id"], {"students": set(), "tests": 0, "registered": None})
                        bt["students"].add(r.get("student"))
                        bt["tests"] += 1
                secs = _num((x.get("time") or {}).get("student_s"))
                if secs is not None:
                    st["time"].append(secs)
    task_rows = [{"id": k, "points": v["points"], "mean": statistics.fmean(v["scores"]),
                  "full_marks": sum(s >= v["points"] - 1e-9 for s in v["scores"]) / len(v["scores"]),
                  "test_pass_rate": v["passed"] / v["tests"] if v["tests"] else None}
                 for k, v in tasks.items()]
    test_rows = [{"task": v["task"], "name": v["name"], "doc": v["doc"], "points": v["points"], "n": v["n"],
                  "pass_rate": v["passed"] / v["n"], "failures": dict(sorted(v["kinds"].items())),
                  "mean_student_s": statistics.fmean(v["time"]) if v["time"] else None,
                  "max_student_s": max(v["time"]) if v["time"] else None} for v in tests.values()]
    timed = [(r["student"], _num((r.get("timing") or {}).get("wall_s")),
              _num((r.get("timing") or {}).get("student_s"))) for r in results]
    timed = sorted((t for t in timed if t[1] is not None), key=lambda t: (-t[1], t[0]))
    flagged = [{"student": r["student"], "kind": k, "text": txt} for r in results for k, txt in _flags(r)]
    hist_bins = min(20, max(5, int(max_score) + 1)) if max_score > 0 else 5
    return {
        "assignment": results[0].get("assignment", ""), "title": results[0].get("title", ""),
        "students": n, "status": dict(sorted(Counter(r.get("status", "graded") for r in results).items())),
        "max_score": max_score,
        "score": {"mean": statistics.fmean(scores), "median": statistics.median(scores),
                  "stdev": statistics.stdev(scores) if n > 1 else 0.0, "min": min(scores), "max": max(scores),
                  "q1": q[0], "q3": q[2], "full_marks": sum(s >= max_score - 1e-9 for s in scores) / n,
                  "hist_bins": hist_bins},
        "scores": sorted(scores),
        "tasks": task_rows, "tests": test_rows,
        "failure_kinds": dict(kinds.most_common()),
        "mistakes": None if not mistake_seen else [
            {"task": k[0], "mistake": k[1], "text": mistake_text[k], "count": c,
             "students": len(mistake_students[k])} for k, c in mistakes.most_common(20)],
        # per task: students and failed tests a known mistake was diagnosed in, each mistake's students
        "known_mistakes": None if not mistake_seen else [
            {"task": tid, "registered": v["registered"], "students": len(v["students"]), "tests": v["tests"],
             "by_mistake": {k[1]: len(mistake_students[k]) for k in sorted(mistake_students) if k[0] == tid}}
            for tid, v in by_task.items()],
        "slowest": [{"student": s, "wall_s": w, "student_s": st} for s, w, st in timed[:10]],
        "review": flagged,
    }


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(a: dict) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    out = {}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(a["scores"], bins=a["score"]["hist_bins"], range=(0, max(a["max_score"], 1e-9)), color="#4477aa",
            edgecolor="white")
    ax.axvline(a["score"]["mean"], color="#cc3311", lw=1.5, label=f"mean {a['score']['mean']:.3g}")
    ax.set(xlabel=f"autograded score (of {a['max_score']:g})", ylabel="students", title="Score distribution")
    ax.legend(frameon=False)
    out["scores"] = _png(fig)
    for key, rows, label, val in (("tasks", a["tasks"], "id", "test_pass_rate"),
                                  ("tests", a["tests"], "name", "pass_rate")):
        labels = [r[label] if key == "tasks" else f"{r['task'].split('.', 1)[-1]}: {r['name']}" for r in rows]
        vals = [r[val] or 0.0 for r in rows]
        fig, ax = plt.subplots(figsize=(7, 0.8 + 0.28 * max(1, len(rows))))
        ax.barh(range(len(rows)), vals, color="#228833")
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set(xlim=(0, 1), xlabel="pass rate", title=f"Pass rate per {key[:-1]}")
        for i, v in enumerate(vals):
            ax.text(min(v, 0.88) + 0.01, i, f"{v:.0%}", va="center", fontsize=7)
        out[key] = _png(fig)
    fk = a["failure_kinds"]
    if fk:
        fig, ax = plt.subplots(figsize=(7, 0.8 + 0.3 * len(fk)))
        ax.barh(range(len(fk)), list(fk.values()), color="#ee7733")
        ax.set_yticks(range(len(fk)), [KIND_TEXT.get(k, k).split(" (")[0] for k in fk], fontsize=8)
        ax.invert_yaxis()
        ax.set(xlabel="failed tests (all students)", title="Failures by kind")
        out["failures"] = _png(fig)
    return out


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _pct(x) -> str:
    return "" if x is None else f"{x:.0%}"


def _s(x) -> str:
    return "" if x is None else f"{x:.3g}"


def render_html(a: dict, plots: dict[str, str] | None = None) -> str:
    """The report page for :func:`analyze`'s output (plots: section -> data URI)."""
    plots = _plots(a) if plots is None else plots
    img = lambda k: f'<img alt="{k} plot" src="{plots[k]}">' if k in plots else ""  # noqa: E731
    s = a["score"]
    sec = {}
    sec["summary"] = ("<p>" + html.escape(
        f"{a['students']} submission(s); status: " + ", ".join(f"{k} {v}" for k, v in a["status"].items()))
        + "</p>" + _table(["mean", "median", "stdev", "min", "q1", "q3", "max", "full marks"],
                          [[_s(s["mean"]), _s(s["median"]), _s(s["stdev"]), _s(s["min"]), _s(s["q1"]), _s(s["q3"]),
                            _s(s["max"]), _pct(s["full_marks"])]]))
    sec["scores"] = img("scores")
    sec["tasks"] = img("tasks") + _table(["task", "points", "mean score", "full marks", "tests passed"], [
        [t["id"], f"{t['points']:g}", _s(t["mean"]), _pct(t["full_marks"]), _pct(t["test_pass_rate"])]
        for t in a["tasks"]])
    hard = sorted(a["tests"], key=lambda t: (t["pass_rate"], t["task"], t["name"]))
    sec["tests"] = img("tests") + "<p>Hardest first. A test most of the class fails may be unclear or too strict.</p>" + _table(
        ["task", "test", "pass rate", "failures by kind", "mean / max student s", "what it checks"], [
            [t["task"], t["name"], _pct(t["pass_rate"]),
             ", ".join(f"{KIND_TEXT.get(k, k).split(' (')[0]} {v}" for k, v in t["failures"].items()),
             f"{_s(t['mean_student_s'])} / {_s(t['max_student_s'])}", t["doc"]] for t in hard])
    sec["failures"] = (img("failures") + _table(["kind", "failed tests"], [
        [KIND_TEXT.get(k, k), v] for k, v in a["failure_kinds"].items()]) if a["failure_kinds"]
        else "<p>No test failed.</p>")
    if a["mistakes"] is None:
        sec["mistakes"] = "<p>These results carry no known-mistake matches (no <code>mistake</code> field).</p>"
    elif not a["mistakes"]:
        sec["mistakes"] = "<p>No failed test matched a registered mistake.</p>"
    else:
        per_task = _table(["task", "registered mistakes", "students diagnosed", "failed tests diagnosed",
                           "diagnoses by mistake"], [
            [k["task"], "" if k["registered"] is None else k["registered"], k["students"], k["tests"],
             ", ".join(f"{name} {n}" for name, n in sorted(k["by_mistake"].items(), key=lambda kv: -kv[1]))]
            for k in a.get("known_mistakes") or []])
        sec["mistakes"] = per_task + _table(["task", "mistake", "students", "failed tests"], [
            [m["task"], m["text"], m.get("students", ""), m["count"]] for m in a["mistakes"]])
    sec["slowest"] = (_table(["student", "wall s", "student code s"], [
        [x["student"], _s(x["wall_s"]), _s(x["student_s"])] for x in a["slowest"]]) if a["slowest"]
        else "<p>These results carry no timing.</p>")
    sec["review"] = (_table(["student", "flag", "details"], [[f["student"], f["kind"], f["text"]] for f in a["review"]])
                     if a["review"] else "<p>Nothing to review.</p>")
    titles = {"summary": "Summary", "scores": "Score distribution", "tasks": "Tasks", "tests": "Hidden tests",
              "failures": "Why tests failed", "mistakes": "Known mistakes",
              "slowest": "Slowest submissions", "review": "Review flags"}
    nav = " · ".join(f'<a href="#{k}">{titles[k]}</a>' for k in SECTIONS)
    body = "\n".join(f'<section id="{k}"><h2>{titles[k]}</h2>\n{sec[k]}</section>' for k in SECTIONS)
    title = html.escape(f"{a['assignment']}: class report" + (f" ({a['title']})" if a["title"] else ""))
    css = ("body{font-family:sans-serif;max-width:1000px;margin:1em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:.5em 0;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;"
           "text-align:left;vertical-align:top}th{background:#eee}img{max-width:100%}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{css}</style></head>\n<body>\n<h1>{title}</h1>\n<nav>{nav}</nav>\n{body}\n</body></html>\n")


def _csv(head: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()


def write_report(results: list[dict], out: Path) -> dict:
    """Write report.html, report.json, tests.csv and tasks.csv to ``out``; returns the analysis."""
    a = analyze(results)
    out = Path(out)
    write_atomic(out / "report.json", json.dumps(a, indent=1, sort_keys=True) + "\n")
    kinds = sorted({k for t in a["tests"] for k in t["failures"]}, key=lambda k: (k not in FAIL_KINDS, k))
    write_atomic(out / "tests.csv", _csv(
        ["task", "test", "points", "students", "pass_rate", *(f"fail_{k}" for k in kinds), "mean_student_s",
         "max_student_s"],
        [[t["task"], t["name"], f"{t['points']:g}", t["n"], f"{t['pass_rate']:.4f}",
          *(t["failures"].get(k, 0) for k in kinds), _s(t["mean_student_s"]), _s(t["max_student_s"])]
         for t in a["tests"]]))
    write_atomic(out / "tasks.csv", _csv(["task", "points", "mean_score", "full_marks", "test_pass_rate"], [
        [t["id"], f"{t['points']:g}", f"{t['mean']:.4f}", f"{t['full_marks']:.4f}",
         "" if t["test_pass_rate"] is None else f"{t['test_pass_rate']:.4f}"] for t in a["tasks"]]))
    write_atomic(out / "report.html", render_html(a))
    return a


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("graded", type=Path, help="a grading folder (grade --out): holds results/<student>.json")
    p.add_argument("--out", type=Path, default=None, help="output folder; None: GRADED/report")


def run(a: argparse.Namespace) -> int:
    if not (a.graded / "results").is_dir():
        print(f"error: GRADED {a.graded}: no results/ folder (run `python -m autograder grade --out` first)",
              file=sys.stderr)
        return 2
    results = load_results(a.graded)
    if not results:
        print(f"error: GRADED {a.graded}: no readable results/*.json", file=sys.stderr)
        return 2
    out = a.out or a.graded / "report"
    rep = write_report(results, out)
    print(f"{rep['assignment']}: {rep['students']} student(s), mean {rep['score']['mean']:.3g}/{rep['max_score']:g}"
          f" -> {out}/report.html")
    return 0
