"""``python -m autograder similarity SUBMISSIONS --assignment hwN --out DIR``: pairs of
submissions whose task code is unusually alike.

Each submission is cut into *parts*: one per task (the cell
:func:`autograder.notebook.submission_cells` finds: its ``metadata.flatlab.id``, else the cell
defining the task's function) and ``(other cells)``, the rest of its code. Each part gets a
set of fingerprints of two kinds:

1. **Token fingerprints** (winnowing, as in MOSS: Schleimer, Wilkerson & Aiken, SIGMOD 2003).
   The code is normalized with :mod:`tokenize`: comments, blank lines and docstrings
   dropped; every identifier becomes ``V`` except keywords, builtins, attribute names
   (``.mean``) and the names of keyword arguments of a call (``dim=``), which a copier cannot
   rename; strings become ``S``, numbers ``N``. Every run of ``k`` normalized tokens is
   hashed and the smallest hash of each window of ``window`` consecutive hashes kept (any
   shared run of ``k + window - 1`` tokens yields a shared fingerprint). Code that does not
   tokenize to the end (a syntax error) keeps the tokens read so far.
2. **AST fingerprints**: the hash of every subtree of at least ``ast_nodes`` nodes of the
   code's syntax tree, with identifiers and literals abstracted as above (docstrings and
   bare string statements dropped). They ignore layout, parentheses and line breaks, and a
   statement keeps its fingerprint wherever it moves. Code with a syntax error has none
   (the token fingerprints remain).

Fingerprints are a set: their order is not used, so reordering helpers or statements
changes only the few that span the moved boundary; renaming, reformatting and rewriting
comments change none; added dead code adds fingerprints to one side only.

What students did not write themselves is discounted: fingerprints of the starter notebook
(``assignments/hwN.ipynb``: imports, stubs, helpers) and of the instructor's source
(``solutions/hwN.py``: the reference solution, the tests) are dropped, and so are those that
more than ``max(common_min, common * N)`` students of the class share (idioms). So two
students who both wrote the reference solution share nothing that counts.

Scores. A part counts for a pair when both sides have at least ``min_part`` fingerprints of
their own; its score is shared / the smaller side's count. The pair score is shared / smaller
side, summed over the counted parts. A pair is **flagged** when

* its pair score is at least ``threshold`` on at least ``min_shared`` shared fingerprints, or
* one part (a partial copy: one task of several) scores at least ``part_threshold`` on at
  least ``min_shared`` shared fingerprints.

The thresholds follow a rule fixed before measuring: a copy put through the transforms that
need no understanding of the code (renaming, reformatting, comments, reordering, dead code)
keeps nearly all its fingerprints (score near 1), independent work shares only what the
discounts miss (near 0); a whole submission is flagged at the midpoint, 0.5; a single part,
being small, only at 0.8; and never on fewer than about three lines of a student's own code.
The instructor's reference solutions yield about 10 fingerprints per line of code (both
kinds together, median over the tasks of hw0-hw5), so three lines are ``min_shared = 30``.
(A first version counted three lines as 12 fingerprints and took ``common = 0.1``, an idiom
limit that grows to 50 students in a class of 500; on the test corpus it flagged 12 and 11 of
435 independent pairs, mostly on two-line tasks. This version was fixed before measuring again,
on a corpus drawn with another seed.) Consequently a short task cannot be flagged alone, only
with the rest of the submission. Pairs are ranked flagged first, then by pair score. Only a
human decides what a flag means: the report shows the matching lines side by side.

Writes ``similarity.html`` (ranked pairs, side-by-side views of the top ones; no scripts,
every piece of student text escaped), ``pairs.csv`` and ``similarity.json`` (every pair that
is flagged or has a score of at least ``report_floor``).
"""
from __future__ import annotations

import argparse
import ast
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
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

import nbformat

from .build import write_atomic
from .notebook import parse_source, read_source, strip_magics, submission_cells

__all__ = ["SimilarityConfig", "normalize", "fingerprints", "ast_fingerprints", "part_fingerprints", "Corpus",
           "compare", "write_similarity", "load_corpus", "add_arguments", "run"]

OTHER = "(other cells)"
_BUILTINS = frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING = tuple(getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n))
_OPEN, _CLOSE = {"(": ")", "[": "]", "{": "}"}, {")", "]", "}"}


@dataclass(frozen=True)
class SimilarityConfig:
    """The method's parameters (written into similarity.json). The flag thresholds follow the
    rule stated in the module docstring; they were not tuned on any corpus."""

    k: int = 10  # tokens per hashed run
    window: int = 4  # winnowing window (hashes)
    ast_nodes: int = 10  # smallest syntax subtree fingerprinted (nodes)
    threshold: float = 0.5  # flag: pair score (shared / smaller side, all parts) at least this
    part_threshold: float = 0.8  # ... or one part's score at least this
    min_shared: int = 30  # ... on at least this many shared fingerprints (about three lines)
    min_part: int = 4  # a part counts only if both sides have this many fingerprints of their own
    common: float = 0.01  # fingerprints held by more than max(common_min, common * N) students are idioms
    common_min: int = 4
    report_floor: float = 0.2  # unflagged pairs below this score are not written
    top: int = 40  # pairs shown side by side in the HTML

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"SimilarityConfig.{name} = {getattr(self, name)!r}: {why}")
        for name in ("k", "window", "ast_nodes", "min_shared", "min_part", "common_min", "top"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                bad(name, "must be a positive int")
        for name in ("threshold", "part_threshold", "common", "report_floor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                bad(name, "must be a number in (0, 1]")


def _tokens(source: str) -> list:
    """The tokens of a cell, up to the first tokenizer error."""
    toks = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(strip_magics(source) + "\n").readline):
            toks.append(t)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return toks


def normalize(source: str) -> list[tuple[str, int]]:
    """(normalized token, 1-based line) of a cell's code; see the module docstring."""
    sig = [t for t in _tokens(source) if t.type not in _SKIP]
    out, stack, in_f = [], [], 0  # stack: open brackets, "(" of a def's parameters as "def"
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
                    nxt is None or nxt.type in (tokenize.NEWLINE, tokenize.DEDENT)):
                continue  # a docstring or a bare string statement
            tok = "S"
        elif t.type == tokenize.NUMBER:
            tok = "N"
        elif t.type == tokenize.NAME:
            if keyword.iskeyword(t.string) or t.string in _BUILTINS or (prev is not None and prev.string == "."):
                tok = t.string
            elif (stack and stack[-1] == "(" and prev is not None and prev.string in ("(", ",")
                  and nxt is not None and nxt.string == "="):
                tok = t.string  # the name of a keyword argument of a call (not a parameter of a def)
            else:
                tok = "V"
        elif t.type == tokenize.NEWLINE:
            stack.clear()  # a logical line ends with every bracket closed
            if out and out[-1][0] in (";", "{", "}"):
                continue
            tok = ";"
        elif t.type == tokenize.INDENT:
            tok = "{"
        elif t.type == tokenize.DEDENT:
            tok = "}"
        else:
            tok = t.string
            if tok in _OPEN:
                is_def = tok == "(" and i >= 2 and sig[i - 2].string == "def"
                stack.append("def" if is_def else tok)
            elif tok in _CLOSE and stack:
                stack.pop()
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


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _is_doc(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _shape(node, out: list, min_nodes: int) -> tuple[str, int]:
    """(abstracted text, size) of a syntax subtree; appends (hash, first line, last line) of every
    subtree of at least ``min_nodes`` nodes that has a position."""
    parts, size = [type(node).__name__], 1
    for name, value in ast.iter_fields(node):
        if name in ("ctx", "type_comment", "kind", "type_ignores"):
            continue
        if isinstance(value, list):
            items = [v for v in value if not (name == "body" and _is_doc(v))]
        else:
            items = [value]
        texts = []
        for v in items:
            if isinstance(v, ast.AST):
                t, n = _shape(v, out, min_nodes)
                texts.append(t)
                size += n
            elif isinstance(node, ast.Constant):
                texts.append(type(v).__name__)  # literals abstracted: their type only
            elif isinstance(node, ast.Name) or (name in ("name", "arg", "vararg", "kwarg")
                                                 and not isinstance(node, (ast.alias, ast.keyword))):
                texts.append(v if v in _BUILTINS else "V")  # identifiers a copier can rename
            else:
                texts.append(repr(v))  # attribute names, keyword-argument names, operators, imports
        parts.append(f"{name}=[{','.join(texts)}]")
    text = "(" + " ".join(parts) + ")"
    if size >= min_nodes and hasattr(node, "lineno"):
        out.append((_h("ast\x1f" + text), node.lineno, getattr(node, "end_lineno", None) or node.lineno))
    return text, size


def ast_fingerprints(source: str, min_nodes: int) -> dict[int, list[tuple[int, int]]]:
    """AST fingerprints of a cell: hash -> [(first line, last line)] of its subtrees of at least
    ``min_nodes`` nodes; empty if the code does not parse."""
    try:
        tree = ast.parse(strip_magics(source))
    except (SyntaxError, ValueError):
        return {}
    found = []
    for node in tree.body:
        if not _is_doc(node):
            _shape(node, found, min_nodes)
    out = defaultdict(list)
    for h, lo, hi in found:
        out[h].append((lo, hi))
    return dict(out)


def part_fingerprints(source: str, config: SimilarityConfig) -> dict[int, list[tuple[int, int]]]:
    """Both kinds of fingerprints of a part: hash -> [(first line, last line)]."""
    out = fingerprints(source, config.k, config.window)
    for h, where in ast_fingerprints(source, config.ast_nodes).items():
        out.setdefault(h, []).extend(where)
    return out


def _all_hashes(source: str, config: SimilarityConfig) -> set[int]:
    """Every fingerprint a cell could yield (all k-grams, not only the winnowed ones)."""
    return {h for h, _, _ in _hashes(normalize(source), config.k)} | set(ast_fingerprints(source, config.ast_nodes))


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
            self.base |= _all_hashes(src, config)
        self.code: dict[str, dict[str, str]] = {}
        self.fp: dict[str, dict[str, dict[int, list]]] = {}
        self.unreadable: dict[str, str] = {}
        self.common: dict[str, set[int]] = {}  # part -> idioms (set by compare)

    def add(self, student: str, nb) -> None:
        run, task_src = submission_cells(nb, self.asg)
        used = set(task_src.values())
        code = dict(task_src)
        code[OTHER] = "\n\n".join(src for _, src in run if src not in used)
        self.code[student] = code
        self.fp[student] = {p: {h: v for h, v in part_fingerprints(s, self.config).items() if h not in self.base}
                            for p, s in code.items()}


def compare(corpus: Corpus) -> tuple[list[dict], dict]:
    """Scored pairs, flagged first, then by score; and class-level counts.

    An inverted index (fingerprint -> students holding it) yields only the pairs that share
    something; idioms are held by more than the idiom limit, so no fingerprint contributes more
    than C(limit, 2) pairs."""
    c, students = corpus.config, sorted(corpus.fp)
    n = len(students)
    max_df = max(c.common_min, math.ceil(c.common * n))
    shared = Counter()  # (i, j, part index) -> shared fingerprints
    own = {}  # (student index, part index) -> fingerprints left after dropping idioms
    common_by_part = {}
    for pi, part in enumerate(corpus.parts):
        holders = defaultdict(list)
        for si, s in enumerate(students):
            for h in corpus.fp[s].get(part, ()):
                holders[h].append(si)
        common = {h for h, who in holders.items() if len(who) > max_df}
        common_by_part[part] = common
        for si, s in enumerate(students):
            own[(si, pi)] = len(corpus.fp[s].get(part, {}).keys() - common)
        for h, who in holders.items():
            if 2 <= len(who) <= max_df:
                for a, b in combinations(who, 2):
                    shared[(a, b, pi)] += 1
    by_pair = defaultdict(dict)
    for (a, b, pi), m in shared.items():
        by_pair[(a, b)][pi] = m
    del shared
    pairs = []
    for (a, b), got in by_pair.items():
        detail, num, den, part_flag = [], 0, 0, False
        for pi, part in enumerate(corpus.parts):
            na, nb_ = own[(a, pi)], own[(b, pi)]
            if min(na, nb_) < c.min_part:
                continue
            m = got.get(pi, 0)
            num, den = num + m, den + min(na, nb_)
            if m:
                ps = m / min(na, nb_)
                part_flag |= ps >= c.part_threshold and m >= c.min_shared
                detail.append({"part": part, "shared": m, "own_a": na, "own_b": nb_, "score": ps})
        score = num / den if den else 0.0
        flagged = part_flag or (score >= c.threshold and num >= c.min_shared)
        if flagged or score >= c.report_floor:
            pairs.append({"a": students[a], "b": students[b], "score": score, "shared": num, "compared": den,
                          "flagged": flagged, "parts": detail})
    pairs.sort(key=lambda p: (not p["flagged"], -p["score"], -p["shared"], p["a"], p["b"]))
    corpus.common = common_by_part
    return pairs, {"students": n, "idiom_limit": max_df,
                   "idioms_dropped": sum(len(v) for v in common_by_part.values()),
                   "base_fingerprints": len(corpus.base)}


def _marked(source: str, lines: set[int]) -> str:
    out = []
    for i, ln in enumerate(source.split("\n"), 1):
        t = html.escape(ln) or " "
        out.append(f"<mark>{t}</mark>" if i in lines and ln.strip() else t)
    return "\n".join(out)


def _side_by_side(corpus: Corpus, p: dict) -> str:
    rows = []
    for d in p["parts"]:
        fa, fb = corpus.fp[p["a"]][d["part"]], corpus.fp[p["b"]][d["part"]]
        hs = (fa.keys() & fb.keys()) - corpus.common.get(d["part"], set())
        sides = []
        for s, fp in ((p["a"], fa), (p["b"], fb)):
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
               "pairs_flagged": len(flagged), "unreadable": corpus.unreadable, "pairs": pairs}
    out = Path(out)
    write_atomic(out / "similarity.json", json.dumps(summary, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "a", "b", "score", "shared", "compared", "flagged", "parts"])
    for i, p in enumerate(pairs, 1):
        w.writerow([i, p["a"], p["b"], f"{p['score']:.4f}", p["shared"], p["compared"], int(p["flagged"]),
                    "; ".join(f"{d['part']} {d['score']:.2f}" for d in p["parts"])])
    write_atomic(out / "pairs.csv", buf.getvalue())
    rank = "".join(f"<tr><td><a href=\"#pair-{i}\">{i}</a></td><td>{html.escape(p['a'])}</td>"
                   f"<td>{html.escape(p['b'])}</td><td>{p['score']:.2f}</td><td>{p['shared']}</td>"
                   f"<td>{'yes' if p['flagged'] else ''}</td></tr>" if i <= c.top else
                   f"<tr><td>{i}</td><td>{html.escape(p['a'])}</td><td>{html.escape(p['b'])}</td>"
                   f"<td>{p['score']:.2f}</td><td>{p['shared']}</td><td>{'yes' if p['flagged'] else ''}</td></tr>"
                   for i, p in enumerate(pairs, 1))
    details = "\n".join(f'<h3 id="pair-{i}">{i}. {html.escape(p["a"])} / {html.escape(p["b"])}: '
                        f"{p['score']:.0%}{' (flagged)' if p['flagged'] else ''}</h3>{_side_by_side(corpus, p)}"
                        for i, p in enumerate(pairs[:c.top], 1))
    bad = "".join(f"<li>{html.escape(s)}: {html.escape(e)}</li>" for s, e in sorted(corpus.unreadable.items()))
    css = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
           "padding:2px 6px;vertical-align:top;text-align:left}pre{margin:0;font-size:85%}mark{background:#ffd54f}"
           ".sbs td{width:50%}")
    title = html.escape(f"{corpus.asg.name}: similar submissions")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{css}</style>'
            f"</head><body><h1>{title}</h1>\n<section id=method><p>{counts['students']} submissions; "
            f"{len(flagged)} pair(s) flagged: pair score &ge; {c.threshold:g}, or one part &ge; "
            f"{c.part_threshold:g}, on &ge; {c.min_shared} shared fingerprints. A part's score: the "
            f"fingerprints (runs of {c.k} normalized tokens, winnowed over {c.window}; syntax subtrees of "
            f"&ge; {c.ast_nodes} nodes, names and literals abstracted) both sides share, over the smaller "
            f"side's count. Starter and solution code and idioms of more than {counts['idiom_limit']} students "
            f"are discounted. A flag is a reason to look, not a verdict.</p>"
            + (f"<p>Not compared (unreadable):</p><ul>{bad}</ul>" if bad else "") + "</section>\n"
            f"<section id=ranking><h2>Ranking</h2><table><tr><th>#</th><th>a</th><th>b</th><th>score</th>"
            f"<th>shared</th><th>flagged</th></tr>{rank}</table></section>\n"
            f"<section id=matches><h2>Matching code, top {min(c.top, len(pairs))}</h2>{details}</section>"
            "</body></html>\n")
    write_atomic(out / "similarity.html", page)
    return summary


def load_corpus(submissions: Path, assignment: str, solutions: Path, assignments: Path,
                config: SimilarityConfig, warn=print) -> Corpus:
    """Read the source, the starter notebook and every submission of a folder. Raises
    ``ValueError`` naming the argument at fault; an unreadable submission is recorded in
    ``Corpus.unreadable`` (and warned about), not compared."""
    from .grade import collect_submissions, student_id
    src, starter = Path(solutions) / f"{assignment}.py", Path(assignments) / f"{assignment}.ipynb"
    if not Path(submissions).is_dir():
        raise ValueError(f"SUBMISSIONS: {submissions} is not a folder")
    if not Path(solutions).is_dir():
        raise ValueError(f"--solutions: {solutions} is not a folder")
    if not src.is_file():
        have = ", ".join(sorted(p.stem for p in Path(solutions).glob("*.py") if p.stem.startswith("hw"))) or "none"
        raise ValueError(f"--assignment {assignment!r}: no source {src} (assignments there: {have})")
    if not starter.is_file():
        raise ValueError(f"--assignments: no student notebook {starter} (run python -m autograder build)")
    source_nb = read_source(src)
    asg = parse_source(source_nb)
    if asg.name != assignment:
        raise ValueError(f"--assignment {assignment!r}: {src} is {asg.name}")
    base = _code_cells(source_nb) + _code_cells(nbformat.read(str(starter), as_version=4))
    corpus = Corpus(asg, base, config)
    paths = collect_submissions(Path(submissions), warn=warn)
    if not paths:
        raise ValueError(f"SUBMISSIONS: no notebooks (*.ipynb) in {submissions}")
    for p in paths:
        try:
            nb = nbformat.read(str(p), as_version=4)
            if not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except Exception as e:  # unreadable: reported, not compared
            corpus.unreadable[student_id(p)] = f"{type(e).__name__}: {str(e)[:200]}"
            warn(f"warning: {p.name}: unreadable notebook, not compared ({type(e).__name__}: {str(e)[:120]})")
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
    p.add_argument("--part-threshold", type=float, default=d.part_threshold,
                   help="... or with one part scoring at least this")
    p.add_argument("--min-shared", type=int, default=d.min_shared, help="... on at least this many fingerprints")
    p.add_argument("--k", type=int, default=d.k, help="tokens per hashed run")
    p.add_argument("--window", type=int, default=d.window, help="winnowing window")
    p.add_argument("--top", type=int, default=d.top, help="pairs shown side by side")


def run(a: argparse.Namespace) -> int:
    try:
        config = SimilarityConfig(k=a.k, window=a.window, threshold=a.threshold, part_threshold=a.part_threshold,
                                  min_shared=a.min_shared, top=a.top)
    except ValueError as e:
        name = str(e).split(".", 1)[1].split(" ", 1)[0]
        print(f"error: --{name.replace('_', '-')}: {e}", file=sys.stderr)
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
