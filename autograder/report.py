"""Feedback for students (Markdown, HTML), from results dicts (the class CSVs: :mod:`autograder.gradebook`).

Feedback shows, per failed hidden test, its docstring and what went wrong (a wrong value
described by its relative error, sign and ratio, never by the expected value; the exception
your code raised; timeout, crash, forbidden call); never hidden-test code.
"""
from __future__ import annotations

import html

__all__ = ["KIND_TEXT", "feedback_markdown", "feedback_html"]

KIND_TEXT = {
    "passed": "passed",
    "wrong": "wrong value",
    "exception": "your code raised an exception",
    "not_implemented": "not implemented yet",
    "bad_return": "returned the wrong kind of object",
    "missing": "function not found",
    "forbidden": "forbidden call",
    "timeout": "timed out",
    "crashed": "crashed (the process running your notebook died)",
    "error": "the grader could not check your result",
    "invalid": "invalid submission",
}


def _fmt(x: float) -> str:
    return f"{x:g}"


def _lines(r: dict) -> list[tuple[str, str]]:
    """(kind of line, text) pairs shared by both renderings."""
    out = [("h1", f"{r['assignment']}: feedback for {r['student']}"),
           ("p", f"Autograded score: {_fmt(r['score'])} / {_fmt(r['max_score'])} (status: {r['status']})")]
    if r.get("note"):
        out.append(("p", r["note"]))
    for t in r["tasks"]:
        out.append(("h2", f"Task {t['id']}: {_fmt(t['score'])} / {_fmt(t['points'])}"))
        for x in t["tests"]:
            head = f"{'PASS' if x['passed'] else 'FAIL'} ({_fmt(x['score'])}/{_fmt(x['points'])}): {x['doc']}"
            out.append(("li", head))
            if not x["passed"]:
                out.append(("detail", f"{KIND_TEXT.get(x['kind'], x['kind'])}: {x['message']}".rstrip(": ")))
                if x.get("traceback"):
                    out.append(("code", x["traceback"]))
    bad = [c for c in r.get("cells", []) if c.get("status") != "ok"]
    if bad:
        out.append(("h2", "Notebook cells that failed while grading"))
        for c in bad:
            out.append(("li", f"cell {c['index']}: {c['status']}: {c.get('message', '')}"))
    if r.get("manual"):
        out.append(("h2", "Questions graded by hand"))
        for q in r["manual"]:
            out.append(("li", f"{q['id']} ({_fmt(q['points'])} points): {q['status']}"))
    return out


def feedback_markdown(r: dict) -> str:
    md = []
    for kind, text in _lines(r):
        if kind == "h1":
            md.append(f"# {text}\n")
        elif kind == "h2":
            md.append(f"\n## {text}\n")
        elif kind == "p":
            md.append(f"{text}\n")
        elif kind == "li":
            md.append(f"- {text}")
        elif kind == "detail":
            md.append(f"  - {text}")
        elif kind == "code":
            md.append("\n```\n" + text.replace("```", "'''").rstrip() + "\n```\n")
    return "\n".join(md).rstrip() + "\n"


def feedback_html(r: dict) -> str:
    body, in_list = [], False
    for kind, text in _lines(r):
        t = html.escape(text)
        if kind in ("li", "detail", "code") and not in_list:
            body.append("<ul>")
            in_list = True
        if kind not in ("li", "detail", "code") and in_list:
            body.append("</ul>")
            in_list = False
        body.append({"h1": f"<h1>{t}</h1>", "h2": f"<h2>{t}</h2>", "p": f"<p>{t}</p>",
                     "li": f"<li>{t}</li>", "detail": f"<ul><li><em>{t}</em></li></ul>",
                     "code": f"<pre>{t}</pre>"}[kind])
    if in_list:
        body.append("</ul>")
    title = html.escape(f"{r['assignment']} feedback: {r['student']}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
