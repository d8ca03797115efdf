"""``python -m autograder similarity SUBMISSIONS --assignment hwN --out DIR``: pairs of
submissions whose task code is unusually alike.

Method (winnowing, as in MOSS: Schleimer, Wilkerson & Aiken, SIGMOD 2003), per task cell:

1. Normalize the cell with :mod:`tokenize`: comments, blank lines and docstrings dropped;
   every identifier becomes ``V`` except keywords, builtins, attribute names (``.mean``) and
   keyword-argument names (``dim=``), which a copier cannot rename; strings become ``S``,
   numbers ``N``. Renaming variables or rewriting comments changes nothing.
2. Hash every run of ``k`` normalized tokens; keep the smallest hash of each window of ``w``
   consecutive hashes (any shared run of ``k + w - 1`` tokens yields a shared fingerprint).
   The order of fingerprints is not used, so reordering helpers changes nothing either.
3. Discount what students did not write: fingerprints that occur in the starter notebook
   (``assignments/hwN.ipynb``) or the instructor's solution (``solutions/hwN.py``) are
   dropped, and so are those shared by more than ``max(common_min, common·N)`` students of the
   class (idioms everybody writes).
4. A task's cell is found as :func:`autograder.notebook.submission_cells` finds it (its
   ``metadata.flatlab.id``, else the cell defining the task's function); code in the other
   cells is compared as one more part, ``(other cells)``.
5. Score of a pair: shared fingerprints / the smaller side's fingerprints, summed over the
   parts where both sides have at least ``min_part`` fingerprints of their own. A pair is
   flagged when that score is at least ``threshold`` on at least ``min_shared`` shared
   fingerprints. Only a human decides what a flag means: the report shows the matching
   lines side by side.

Writes ``similarity.html`` (ranked pairs, side-by-side views of the top ones),
``pairs.csv`` and ``similarity.json`` (every pair with a score of at least ``report_floor``).
"""
from __future__ import annotations

import argparse
import builtins
import csv
import hashlib
import html
import io
import json
import keyword
import math
import sys
import tokenize
from collections import defaultdict
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

import nbformat

from .build import write_atomic
from .notebook import parse_source, read_source, strip_magics, submission_cells

__all__ = ["SimilarityConfig", "normalize", "fingerprints", "Corpus", "compare", "write_similarity",
           "add_arguments", "run"]

OTHER = "(other cells)"
_BUILTINS = frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING = tuple(getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n))


@dataclass(frozen=True)
class SimilarityConfig:
    """The method's parameters (written into similarity.json)."""

    k: int = 10  # tokens per hashed run
    window: int = 4  # winnowing window (hashes)
    threshold: float = 0.6  # flag: shared / smaller side's fingerprints (chosen on the dev corpus)
    min_shared: int = 8  # ... on at least this many shared fingerprints
    min_part: int = 4  # a part (task cell) counts only if both sides have this many fingerprints of their own
    common: float = 0.1  # fingerprints held by more than max(common_min, common * N) students are idioms
    common_min: int = 4
    report_floor: float = 0.2  # pairs below this score are not written
    top: int = 40  # pairs shown side by side in the HTML

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"SimilarityConfig.{name} = {getattr(self, name)!r}: {why}")
        for name in ("k", "window", "min_shared", "min_part", "common_min", "top"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                bad(name, "must be a positive int")
        for name in ("threshold", "common", "report_floor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                bad(name, "must be a number in (0, 1]")


def normalize(source: str) -> list[tuple[str, int]]:
    """(normalized token, 1-based line) of a cell's code; see the module docstring.
    Code that does not tokenize to the end keeps the tokens read so far."""
    toks = []
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(strip_magics(source) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        gen = tokenize.generate_tokens(io.StringIO(strip_magics(source) + "\n").readline)
        try:
            for t in gen:
                toks.append(t)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            pass
    sig = [t for t in toks if t.type not in _SKIP]
    out, depth, in_f = [], 0, 0
    for i, t in enumerate(sig):
        prev = sig[i - 1] if i else None
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        if _FSTRING and t.type in _FSTRING:
            if t.type == _FSTRING[0]:
                if not in_f:
                    out.append(("S", t.start[0]))
                in_f += 1
            elif t.type == _FSTRING[-1]:
                in_f -= 1
            continue
        if in_f:
            continue
        if t.type == tokenize.STRING:
            if (prev is None or prev.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)) and (
                    nxt is None or nxt.type == tokenize.NEWLINE):
                continue  # a docstring or a bare string statement
            tok = "S"
        elif t.type == tokenize.NUMBER:
            tok = "N"
        elif t.type == tokenize.NAME:
            if keyword.iskeyword(t.string) or t.string in _BUILTINS or (prev is not None and prev.string == "."):
                tok = t.string
            elif depth and nxt is not None and nxt.string == "=":
                tok = t.string  # keyword argument
            else:
                tok = "V"
        elif t.type == tokenize.NEWLINE:
            if out and out[-1][0] in (";", "{", "}"):
                continue
            tok = ";"
        elif t.type == tokenize.INDENT:
            tok = "{"
        elif t.type == tokenize.DEDENT:
            tok = "}"
        else:
            tok = t.string
            if tok in "([{":
                depth += 1
            elif tok in ")]}" and depth:
                depth -= 1
        out.append((tok, t.start[0]))
    return out


def _hashes(tokens: list[tuple[str, int]], k: int) -> list[tuple[int, int, int]]:
    """(hash, first line, last line) of every run of k tokens."""
    out = []
    for i in range(len(tokens) - k + 1):
        run = "\x1f".join(t for t, _ in tokens[i:i + k])
        h = int.from_bytes(hashlib.blake2b(run.encode(), digest_size=8).digest(), "big")
        out.append((h, tokens[i][1], tokens[i + k - 1][1]))
    return out


def fingerprints(source: str, k: int, window: int) -> dict[int, list[tuple[int, int]]]:
    """Winnowed fingerprints of a cell: hash -> [(first line, last line)] of its runs."""
    hs = _hashes(normalize(source), k)
    if not hs:
        return {}
    chosen = set()
    if len(hs) <= window:
        chosen.add(min(range(len(hs)), key=lambda j: (hs[j][0], -j)))
    for s in range(len(hs) - window + 1):
        chosen.add(min(range(s, s + window), key=lambda j: (hs[j][0], -j)))
    out = defaultdict(list)
    for j in sorted(chosen):
        out[hs[j][0]].append(hs[j][1:])
    return dict(out)


def _all_hashes(source: str, k: int) -> set[int]:
    return {h for h, _, _ in _hashes(normalize(source), k)}


def _code_cells(nb) -> list[str]:
    return [c.source if isinstance(c.source, str) else "".join(c.source)
            for c in nb.cells if c.cell_type == "code"]


class Corpus:
    """The parts (task cells + other cells) of every submission, with their own fingerprints."""

    def __init__(self, asg, base_sources: list[str], config: SimilarityConfig):
        self.asg, self.config = asg, config
        self.parts = [t.id for t in asg.tasks] + [OTHER]
        self.base = set()
        for src in base_sources:
            self.base |= _all_hashes(src, config.k)
        self.code: dict[str, dict[str, str]] = {}
        self.fp: dict[str, dict[str, dict[int, list]]] = {}
        self.unreadable: dict[str, str] = {}

    def add(self, student: str, nb) -> None:
        run, task_src = submission_cells(nb, self.asg)
        used = set(task_src.values())
        code = dict(task_src)
        code[OTHER] = "\n\n".join(src for _, src in run if src not in used)
        self.code[student] = code
        c = self.config
        self.fp[student] = {p: {h: v for h, v in fingerprints(s, c.k, c.window).items() if h not in self.base}
                            for p, s in code.items()}


def compare(corpus: Corpus) -> tuple[list[dict], dict]:
    """Scored pairs, best first, and class-level counts."""
    c, students = corpus.config, sorted(corpus.fp)
    n = len(students)
    max_df = max(c.common_min, math.ceil(c.common * n))
    shared = defaultdict(lambda: defaultdict(set))  # (a, b) -> part -> hashes
    own = {}  # (student, part) -> fingerprints left after dropping idioms
    dropped = 0
    for part in corpus.parts:
        holders = defaultdict(list)
        for s in students:
            for h in corpus.fp[s].get(part, {}):
                holders[h].append(s)
        common = {h for h, who in holders.items() if len(who) > max_df}
        dropped += len(common)
        for s in students:
            own[(s, part)] = len(set(corpus.fp[s].get(part, {})) - common)
        for h, who in holders.items():
            if 2 <= len(who) <= max_df:
                for a, b in combinations(who, 2):
                    shared[(a, b)][part].add(h)
    pairs = []
    for (a, b), parts in shared.items():
        detail, num, den = [], 0, 0
        for part in corpus.parts:
            na, nb_ = own[(a, part)], own[(b, part)]
            if min(na, nb_) < c.min_part:
                continue
            m = len(parts.get(part, ()))
            num, den = num + m, den + min(na, nb_)
            if m:
                detail.append({"part": part, "shared": m, "own_a": na, "own_b": nb_,
                               "score": m / min(na, nb_), "hashes": sorted(parts[part])})
        score = num / den if den else 0.0
        if score >= c.report_floor:
            pairs.append({"a": a, "b": b, "score": score, "shared": num, "compared": den,
                          "flagged": score >= c.threshold and num >= c.min_shared, "parts": detail})
    pairs.sort(key=lambda p: (-p["score"], -p["shared"], p["a"], p["b"]))
    return pairs, {"students": n, "idiom_limit": max_df, "idioms_dropped": dropped,
                   "base_fingerprints": len(corpus.base)}


def _marked(source: str, lines: set[int]) -> str:
    out = []
    for i, ln in enumerate(source.split("\n"), 1):
        t = html.escape(ln) or " "
        out.append(f"<mark>{t}</mark>" if i in lines else t)
    return "\n".join(out)


def _side_by_side(corpus: Corpus, p: dict) -> str:
    rows = []
    for d in p["parts"]:
        hs = set(d["hashes"])
        sides = []
        for s in (p["a"], p["b"]):
            fp = corpus.fp[s][d["part"]]
            lines = {ln for h in hs for lo, hi in fp.get(h, ()) for ln in range(lo, hi + 1)}
            sides.append(f"<td><pre>{_marked(corpus.code[s][d['part']], lines)}</pre></td>")
        rows.append(f"<tr><th colspan=2>{html.escape(d['part'])}: {d['shared']} shared of "
                    f"{d['own_a']} / {d['own_b']} ({d['score']:.0%})</th></tr><tr>{''.join(sides)}</tr>")
    head = f"<tr><th>{html.escape(p['a'])}</th><th>{html.escape(p['b'])}</th></tr>"
    return f"<table class=sbs>{head}{''.join(rows)}</table>"


def write_similarity(corpus: Corpus, out: Path) -> dict:
    """Compare, then write similarity.html, pairs.csv and similarity.json to ``out``."""
    pairs, counts = compare(corpus)
    c = corpus.config
    flagged = [p for p in pairs if p["flagged"]]
    summary = {"assignment": corpus.asg.name, "config": asdict(c), **counts, "pairs_reported": len(pairs),
               "pairs_flagged": len(flagged), "unreadable": corpus.unreadable,
               "pairs": [{k: v for k, v in p.items() if k != "parts"}
                         | {"parts": [{k: v for k, v in d.items() if k != "hashes"} for d in p["parts"]]}
                         for p in pairs]}
    out = Path(out)
    write_atomic(out / "similarity.json", json.dumps(summary, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "a", "b", "score", "shared", "compared", "flagged", "parts"])
    for i, p in enumerate(pairs, 1):
        w.writerow([i, p["a"], p["b"], f"{p['score']:.4f}", p["shared"], p["compared"], int(p["flagged"]),
                    "; ".join(f"{d['part']} {d['score']:.2f}" for d in p["parts"])])
    write_atomic(out / "pairs.csv", buf.getvalue())
    rank = "".join(f"<tr><td>{i}</td><td>{html.escape(p['a'])}</td><td>{html.escape(p['b'])}</td>"
                   f"<td>{p['score']:.2f}</td><td>{p['shared']}</td><td>{'yes' if p['flagged'] else ''}</td></tr>"
                   for i, p in enumerate(pairs, 1))
    details = "\n".join(f'<h3 id="pair-{i}">{i}. {html.escape(p["a"])} / {html.escape(p["b"])}: '
                        f"{p['score']:.0%}{' (flagged)' if p['flagged'] else ''}</h3>{_side_by_side(corpus, p)}"
                        for i, p in enumerate(pairs[:c.top], 1))
    css = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
           "padding:2px 6px;vertical-align:top;text-align:left}pre{margin:0;font-size:85%}mark{background:#ffd54f}"
           ".sbs td{width:50%}")
    title = html.escape(f"{corpus.asg.name}: similar submissions")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{css}</style>'
            f"</head><body><h1>{title}</h1>\n<section id=method><p>{counts['students']} submissions; "
            f"{len(flagged)} pair(s) flagged (score &ge; {c.threshold:g} on &ge; {c.min_shared} shared fingerprints). "
            f"Score: fingerprints (runs of {c.k} normalized tokens, window {c.window}) two task cells share, over the "
            f"smaller one's; starter and solution code and idioms of more than {counts['idiom_limit']} students "
            f"are discounted. A flag is a reason to look, not a verdict.</p></section>\n"
            f"<section id=ranking><h2>Ranking</h2><table><tr><th>#</th><th>a</th><th>b</th><th>score</th>"
            f"<th>shared</th><th>flagged</th></tr>{rank}</table></section>\n"
            f"<section id=matches><h2>Matching code, top {min(c.top, len(pairs))}</h2>{details}</section>"
            "</body></html>\n")
    write_atomic(out / "similarity.html", page)
    return summary


def load_corpus(submissions: Path, assignment: str, solutions: Path, assignments: Path,
                config: SimilarityConfig, warn=print) -> Corpus:
    """Read the source, the starter notebook and every submission of a folder."""
    from .grade import collect_submissions, student_id
    src, starter = Path(solutions) / f"{assignment}.py", Path(assignments) / f"{assignment}.ipynb"
    if not src.is_file():
        raise ValueError(f"--solutions: no source {src}")
    if not starter.is_file():
        raise ValueError(f"--assignments: no student notebook {starter}")
    source_nb = read_source(src)
    asg = parse_source(source_nb)
    if asg.name != assignment:
        raise ValueError(f"--assignment: {src} is {asg.name}")
    base = _code_cells(source_nb) + _code_cells(nbformat.read(str(starter), as_version=4))
    corpus = Corpus(asg, base, config)
    for p in collect_submissions(Path(submissions), warn=warn):
        try:
            nb = nbformat.read(str(p), as_version=4)
        except Exception as e:  # unreadable: reported, not compared
            corpus.unreadable[student_id(p)] = f"{type(e).__name__}: {str(e)[:200]}"
            continue
        corpus.add(student_id(p), nb)
    return corpus


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SimilarityConfig()
    p.add_argument("submissions", type=Path, help="a folder of <student>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment name, e.g. hw0")
    p.add_argument("--solutions", type=Path, default=Path("solutions"), help="folder of the sources hwN.py")
    p.add_argument("--assignments", type=Path, default=Path("assignments"), help="folder of the student notebooks")
    p.add_argument("--out", type=Path, default=None, help="output folder; None: similarity/<assignment>")
    p.add_argument("--threshold", type=float, default=d.threshold, help="flag pairs scoring at least this")
    p.add_argument("--min-shared", type=int, default=d.min_shared, help="... on at least this many fingerprints")
    p.add_argument("--k", type=int, default=d.k, help="tokens per hashed run")
    p.add_argument("--window", type=int, default=d.window, help="winnowing window")
    p.add_argument("--top", type=int, default=d.top, help="pairs shown side by side")


def run(a: argparse.Namespace) -> int:
    try:
        config = SimilarityConfig(k=a.k, window=a.window, threshold=a.threshold, min_shared=a.min_shared, top=a.top)
    except ValueError as e:
        name = str(e).split(".", 1)[1].split(" ", 1)[0]
        print(f"error: --{name.replace('_', '-')}: {e}", file=sys.stderr)
        return 2
    if not a.submissions.is_dir():
        print(f"error: SUBMISSIONS {a.submissions} is not a folder", file=sys.stderr)
        return 2
    try:
        corpus = load_corpus(a.submissions, a.assignment, a.solutions, a.assignments, config,
                             warn=lambda m: print(m, file=sys.stderr))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = a.out or Path("similarity") / a.assignment
    s = write_similarity(corpus, out)
    print(f"{a.assignment}: {s['students']} submissions, {s['pairs_flagged']} pair(s) flagged -> {out}/similarity.html")
    return 0
