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
(``solutions/hwN.py``: the reference solution, the tests, the registered mistakes) are dropped.
So two students who both wrote the reference solution share nothing that counts.

**Rarity weights.** What is left is weighed by how few students hold it: a fingerprint held by
``df`` students weighs ``ln(M / df)``, and nothing once ``df >= M``, with ``M = idiom_share *
max(N, small_class)`` (half the class; a class smaller than 20 counts as 20). Sharing a line
half the class wrote says nothing; sharing one only the two wrote says the most, ``ln(M / 2)``.
(A first version dropped fingerprints held by more than 1% of the class and counted the rest
equally. In a generated class of 500, where every common form of a task is held by more than
five students, that dropped nearly all of a renamed copy's fingerprints: 0 and 1 of 25 planted
copies were flagged, on hw4 and hw1. Weights degrade smoothly instead.)

Scores. A part counts for a pair when both sides hold at least ``min_part`` pair-rare
fingerprints' weight; its score is the shared weight over the smaller side's. The pair score is
the shared weight over the smaller sides', summed over the counted parts. A pair is **flagged**
when

* its pair score is at least ``threshold`` on a shared weight of at least ``min_lines`` lines of
  code only the two wrote (``min_lines * per_line * ln(M / 2)``), or
* one part (a partial copy: one task of several) scores at least ``part_threshold`` on a shared
  weight of ``part_lines`` such lines.

The rule behind the thresholds: a copy put through the transforms that need no understanding
of the code (renaming, reformatting, comments, reordering, dead code) keeps nearly all its
fingerprints (score near 1), independent work shares only what the discounts miss (near 0); a
whole submission is flagged at the midpoint, 0.5; a single part, being small, only at 0.8. The
evidence needed grows with the class like ``ln(N)``, as the number of pairs that could share
something by chance grows like ``N^2``: three lines of code only the two wrote for a whole
submission, six for one part alone (one part is a smaller sample, tested for every task). The
instructor's reference solutions yield about 10 fingerprints per line of code (both kinds
together, median over the tasks of hw0-hw5): ``per_line = 10``. Consequently a copy of one short
task alone is not flagged, but it is ranked: pairs are ranked flagged first, then by their rank
score, the larger of the pair score and the best score of a part that alone carries the pair's
minimum evidence (three lines only the two wrote). Only a human decides what a flag means: the report shows the matching lines side
by side.

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
    threshold: float = 0.5  # flag: pair score (shared weight / smaller side's, all parts) at least this
    part_threshold: float = 0.8  # ... or one part's score at least this
    min_lines: int = 3  # ... on at least this many lines' worth of code only the two share (whole pair)
    part_lines: int = 6  # ... or, for the one-part route, this many
    per_line: int = 10  # fingerprints per line of code (measured on the reference solutions)
    min_part: int = 4  # a part counts only if both sides hold this many pair-rare fingerprints' weight
    idiom_share: float = 0.5  # held by this share of the class (of small_class, if larger): weight 0
    small_class: int = 20
    report_floor: float = 0.2  # unflagged pairs below this score are not written
    top: int = 40  # pairs shown side by side in the HTML

    def __post_init__(self):
        def bad(name, why):
            raise ValueError(f"SimilarityConfig.{name} = {getattr(self, name)!r}: {why}")
        for name in ("k", "window", "ast_nodes", "min_lines", "part_lines", "per_line", "min_part", "small_class",
                     "top"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                bad(name, "must be a positive int")
        for name in ("threshold", "part_threshold", "idiom_share", "report_floor"):
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


def _weights(holders: dict[int, int], n: int, config: "SimilarityConfig") -> tuple[dict[int, float], float]:
    """Each fingerprint's rarity weight, and the weight of one held by exactly two students.

    A fingerprint held by ``df`` students weighs ``ln(M / df)``, zero once ``df >= M`` (an
    idiom), with ``M = idiom_share * max(n, small_class)``: sharing something half the class
    wrote says nothing, sharing something only the two wrote says the most."""
    scale = config.idiom_share * max(n, config.small_class)
    return {h: math.log(scale / df) for h, df in holders.items() if df < scale}, math.log(scale / 2)


def compare(corpus: Corpus) -> tuple[list[dict], dict]:
    """Scored pairs, flagged first, then by score; and class-level counts.

    Per part, a sparse students x fingerprints matrix ``B`` gives every pair's shared weight
    ``B diag(w) B^T`` at once (no loop over the pairs that share an idiom)."""
    import numpy as np
    from scipy import sparse

    c, students = corpus.config, sorted(corpus.fp)
    n = len(students)
    evidence, counts, own, unit = [], [], [], 1.0
    common_by_part = {}
    for part in corpus.parts:
        df = Counter(h for s in students for h in corpus.fp[s].get(part, ()))
        w, unit = _weights(df, n, c)
        common_by_part[part] = set(df) - set(w)
        col = {h: j for j, h in enumerate(w)}
        rows, cols = [], []
        for si, s in enumerate(students):
            for h in corpus.fp[s].get(part, ()):
                if h in col:
                    rows.append(si)
                    cols.append(col[h])
        B = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(col)))
        wv = np.fromiter(w.values(), float, len(w))
        own.append(B @ wv)
        evidence.append(sparse.triu(B @ sparse.diags(wv) @ B.T, k=1).tocsr())
        counts.append(sparse.triu(B @ B.T, k=1).tocsr())
    min_info, part_info = c.min_lines * c.per_line * unit, c.part_lines * c.per_line * unit
    touched = sum((e != 0).astype(np.int8) for e in evidence) if evidence else sparse.csr_matrix((n, n))
    pairs = []
    for a, b in zip(*sparse.triu(touched, k=1).nonzero()):
        detail, num, den, shared, part_flag, best = [], 0.0, 0.0, 0, False, 0.0
        for pi, part in enumerate(corpus.parts):
            na, nb_ = float(own[pi][a]), float(own[pi][b])
            if min(na, nb_) < c.min_part * unit:
                continue
            m = float(evidence[pi][a, b])
            num, den = num + m, den + min(na, nb_)
            if m:
                k = int(counts[pi][a, b])  # fingerprints shared (idioms not counted)
                shared += k
                ps = m / min(na, nb_)
                part_flag |= ps >= c.part_threshold and m >= part_info
                if m >= min_info:  # a part alone carries the pair's minimum evidence: it ranks the pair
                    best = max(best, ps)
                detail.append({"part": part, "shared": k, "evidence": round(m, 2), "own_a": round(float(na), 2),
                               "own_b": round(float(nb_), 2), "score": ps})
        score = num / den if den else 0.0
        flagged = bool(part_flag or (score >= c.threshold and num >= min_info))
        rank = max(score, best)
        if flagged or rank >= c.report_floor:
            pairs.append({"a": students[a], "b": students[b], "score": float(score), "rank_score": float(rank), "evidence": round(num, 2),
                          "compared": round(den, 2), "shared": shared, "flagged": flagged, "parts": detail})
    pairs.sort(key=lambda p: (not p["flagged"], -p["rank_score"], -p["evidence"], p["a"], p["b"]))
    corpus.common = common_by_part
    return pairs, {"students": n, "idiom_limit": c.idiom_share * max(n, c.small_class),
                   "idioms_dropped": sum(len(v) for v in common_by_part.values()),
                   "base_fingerprints": len(corpus.base), "pair_weight": round(unit, 4),
                   "min_evidence": round(min_info, 2), "min_part_evidence": round(part_info, 2)}


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
        rows.append(f"<tr><th colspan=2>{html.escape(d['part'])}: {d['shared']} fingerprints shared, weight "
                    f"{d['evidence']:g} of {d['own_a']:g} / {d['own_b']:g} ({d['score']:.0%})</th></tr>"
                    f"<tr>{''.join(sides)}</tr>")
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
    w.writerow(["rank", "a", "b", "score", "evidence", "shared", "compared", "flagged", "parts"])
    for i, p in enumerate(pairs, 1):
        w.writerow([i, p["a"], p["b"], f"{p['score']:.4f}", p["evidence"], p["shared"], p["compared"], int(p["flagged"]),
                    "; ".join(f"{d['part']} {d['score']:.2f}" for d in p["parts"])])
    write_atomic(out / "pairs.csv", buf.getvalue())
    rank = "".join(f"<tr><td><a href=\"#pair-{i}\">{i}</a></td><td>{html.escape(p['a'])}</td>"
                   f"<td>{html.escape(p['b'])}</td><td>{p['score']:.2f}</td><td>{p['evidence']:g}</td>"
                   f"<td>{'yes' if p['flagged'] else ''}</td></tr>" if i <= c.top else
                   f"<tr><td>{i}</td><td>{html.escape(p['a'])}</td><td>{html.escape(p['b'])}</td>"
                   f"<td>{p['score']:.2f}</td><td>{p['evidence']:g}</td><td>{'yes' if p['flagged'] else ''}</td></tr>"
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
            f"{c.part_threshold:g}, with shared weight &ge; {counts['min_evidence']:g} (pair) or "
            f"{counts['min_part_evidence']:g} (one part): {c.min_lines} or {c.part_lines} lines of code only the "
            f"two wrote. A part's score: the weight of the fingerprints (runs of {c.k} normalized tokens, "
            f"winnowed over {c.window}; syntax subtrees of &ge; {c.ast_nodes} nodes, names and literals "
            f"abstracted) both sides share, over the smaller side's. A fingerprint held by df students weighs "
            f"ln({counts['idiom_limit']:g}/df): starter and solution code and idioms of {counts['idiom_limit']:g} "
            f"or more students weigh nothing. A flag is a reason to look, not a verdict.</p>"
            + (f"<p>Not compared (unreadable):</p><ul>{bad}</ul>" if bad else "") + "</section>\n"
            f"<section id=ranking><h2>Ranking</h2><table><tr><th>#</th><th>a</th><th>b</th><th>score</th>"
            f"<th>shared weight</th><th>flagged</th></tr>{rank}</table></section>\n"
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
    p.add_argument("--min-lines", type=int, default=d.min_lines,
                   help="... on at least this many lines' worth of code only the two share")
    p.add_argument("--k", type=int, default=d.k, help="tokens per hashed run")
    p.add_argument("--window", type=int, default=d.window, help="winnowing window")
    p.add_argument("--top", type=int, default=d.top, help="pairs shown side by side")


def run(a: argparse.Namespace) -> int:
    try:
        config = SimilarityConfig(k=a.k, window=a.window, threshold=a.threshold, part_threshold=a.part_threshold,
                                  min_lines=a.min_lines, top=a.top)
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
