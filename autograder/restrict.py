"""The restricted copy of flatlab that a submission runs against (its "view").

A task that asks students to write ``flatlab.sharpness.hessian_trace`` themselves lists it in
``forbid``. ``build`` then writes, per assignment, a copy of the installed flatlab package in
which the *definition* of every forbidden flatlab name is replaced by a stub that raises
``RuntimeError`` (a class: one whose construction raises), and so is every private flatlab
function or class (``_name``) that a removed definition reaches through private code
(``_exact_trace``, ``_sam_update``...): the code that computes the same thing. The original
body is not in the copy, so no alias, thread, ``inspect.getsource``, reload or file path
reaches it. Every other file and line is byte-identical.

Forbidden names outside flatlab (``torch.autograd.grad``, ``numpy.linalg.eigh``...) cannot be
removed: the grader reports them as review flags (:func:`review_flags`), never as points.

Names are resolved at build time by importing them and following ``__wrapped__`` (and a numba
dispatcher's ``py_func``) to the defining module and ``__qualname__``, so re-exports
(``flatlab.zero_one_error``) map to their definition (``flatlab.losses.zero_one_error``).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Removed", "resolve", "plan", "collateral", "write_view", "is_flatlab_name", "review_flags", "check_solution"]

PACKAGE = "flatlab"
UNAVAILABLE = "is not available while"  # every stub's message contains this


def is_flatlab_name(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


@dataclass(frozen=True)
class Removed:
    """One definition replaced by a stub in the view."""

    name: str  # canonical dotted name: module + qualname, e.g. flatlab.losses.zero_one_error
    module: str
    qualname: str
    reason: str  # "forbidden by hw0.zero_one (as flatlab.zero_one_error)" | "private core of flatlab.x.y"

    def as_dict(self) -> dict:
        return {"name": self.name, "module": self.module, "qualname": self.qualname, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "Removed":
        return cls(d["name"], d["module"], d["qualname"], d["reason"])


def resolve(name: str) -> tuple[str, str]:
    """(defining module, qualname) of a dotted flatlab name; ``LookupError`` with the reason."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
            break
        except ImportError:
            continue
    else:
        raise LookupError(f"{name!r} does not import")
    if k == len(parts):
        raise LookupError(f"{name!r} is a module, not a function or class")
    for i, p in enumerate(parts[k:], k):
        try:
            obj = getattr(obj, p)
        except AttributeError:
            raise LookupError(f"{'.'.join(parts[:i])} has no attribute {p!r}") from None
    obj = inspect.unwrap(obj)
    obj = getattr(obj, "py_func", obj)  # a numba dispatcher
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (isinstance(mod, str) and isinstance(qual, str)) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
        raise LookupError(f"{name!r} is not a function or class (a {type(obj).__name__})")
    if not is_flatlab_name(mod):
        raise LookupError(f"{name!r} is {mod}.{qual}, defined outside {PACKAGE}: it cannot be removed "
                          f"(forbid {mod}.{qual} to get a review flag)")
    if "<locals>" in qual:
        raise LookupError(f"{name!r} is defined inside a function ({qual}); forbid the enclosing function")
    return mod, qual


class _Package:
    """The parsed source of a package: modules, top-level definitions, import maps."""

    def __init__(self, root: Path, pkg: str = PACKAGE):
        self.root, self.pkg = Path(root), pkg
        self.modules: dict[str, tuple[Path, str, ast.Module]] = {}
        for path in sorted(self.root.rglob("*.py")):
            rel = path.relative_to(self.root).with_suffix("")
            parts = [pkg, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            text = path.read_text(encoding="utf-8")
            self.modules[".".join(parts)] = (path, text, ast.parse(text))
        self.defs: dict[str, dict[str, ast.AST]] = {m: {} for m in self.modules}
        self.imports: dict[str, dict[str, tuple]] = {}
        for m, (path, _, tree) in self.modules.items():
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defs[m][node.name] = node
            self.imports[m] = self._import_map(m, tree.body, path.name == "__init__.py")

    def _import_map(self, mod: str, body, is_init: bool) -> dict[str, tuple]:
        """alias -> ("module", name) | ("obj", module, name), for the imports in ``body`` (not nested)."""
        out = {}
        for node in body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        out[a.asname] = ("module", a.name)
                    else:
                        out[a.name.split(".")[0]] = ("module", a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod if is_init else mod.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if node.module else pkg
                for a in node.names:
                    full = f"{base}.{a.name}"
                    out[a.asname or a.name] = ("module", full) if full in self.modules else ("obj", base, a.name)
        return out

    def is_init(self, mod: str) -> bool:
        return self.modules[mod][0].name == "__init__.py"

    def canonical(self, mod: str, name: str, _depth: int = 0) -> tuple[str, str] | None:
        """The (module, top-level name) where ``mod.name`` is defined, following re-exports."""
        if mod not in self.modules or _depth > 20:
            return None
        if name in self.defs[mod]:
            return mod, name
        imp = self.imports[mod].get(name)
        if imp and imp[0] == "obj":
            return self.canonical(imp[1], imp[2], _depth + 1)
        return None

    def node(self, mod: str, qual: str) -> ast.AST:
        parts = qual.split(".")
        node = self.defs[mod].get(parts[0])
        for p in parts[1:]:
            node = next((n for n in getattr(node, "body", []) if isinstance(
                n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == p), None)
        if node is None:
            raise LookupError(f"{mod}.{qual}: no such definition in {self.modules[mod][0]}")
        return node

    def references(self, mod: str, node: ast.AST) -> set[tuple[str, str]]:
        """Top-level flatlab definitions that ``node``'s code names (module-level and local imports,
        ``module.attr`` references, names of its own module)."""
        local = dict(self.imports[mod])
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                local.update(self._import_map(mod, [sub], self.is_init(mod)))
        out = set()
        for sub in ast.walk(node):
            target = None
            if isinstance(sub, ast.Name):
                imp = local.get(sub.id)
                if imp and imp[0] == "obj":
                    target = self.canonical(imp[1], imp[2])
                elif imp is None:
                    target = self.canonical(mod, sub.id)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                imp = local.get(sub.value.id)
                if imp and imp[0] == "module":
                    target = self.canonical(imp[1], sub.attr)
            elif isinstance(sub, ast.ImportFrom):
                for a in sub.names:
                    imp = self._import_map(mod, [ast.ImportFrom(sub.module, [a], sub.level)], self.is_init(mod))
                    kind = next(iter(imp.values()))
                    if kind[0] == "obj":
                        target = self.canonical(kind[1], kind[2])
                        if target:
                            out.add(target)
                target = None
            if target and target != (mod, getattr(node, "name", None)):
                out.add(target)
        return out


_VALIDATORS = ("_check", "_validate")


def _is_core(name: str) -> bool:
    """A private name that can compute what a task asks for: argument validators
    (``_check*``, ``_validate*``) compute nothing and are shared by kept code, so they stay."""
    return name.startswith("_") and not name.startswith("__") and not name.startswith(_VALIDATORS)


def plan(forbidden: dict[str, list[str]], assignment: str, root: Path | None = None) -> list[Removed]:
    """What the view of ``assignment`` removes: ``forbidden`` maps task id -> its forbid list
    (names outside flatlab are skipped). Raises ``ValueError`` naming the task and the name
    when a flatlab name does not resolve to a flatlab function or class."""
    root = Path(root) if root is not None else _installed_root()
    pkg = _Package(root)
    removed: dict[tuple[str, str], Removed] = {}
    for task, names in forbidden.items():
        for name in names:
            if not is_flatlab_name(name):
                continue
            try:
                mod, qual = resolve(name)
                pkg.node(mod, qual)
            except LookupError as e:
                raise ValueError(f"task {task}: forbid name {name!r} cannot be removed from the "
                                 f"grading copy of flatlab: {e}") from None
            key = (mod, qual)
            if key not in removed:
                alias = "" if name == f"{mod}.{qual}" else f" (as {name})"
                removed[key] = Removed(f"{mod}.{qual}", mod, qual, f"forbidden by {task}{alias}")
    frontier = list(removed)
    while frontier:
        mod, qual = frontier.pop(0)
        for tm, tn in sorted(pkg.references(mod, pkg.node(mod, qual))):
            if _is_core(tn) and (tm, tn) not in removed:
                origin = removed[(mod, qual)]
                core_of = origin.name if origin.reason.startswith("forbidden") else \
                    origin.reason.removeprefix("private core of ")
                removed[(tm, tn)] = Removed(f"{tm}.{tn}", tm, tn, f"private core of {core_of}")
                frontier.append((tm, tn))
    return sorted(removed.values(), key=lambda r: r.name)


def collateral(removed: list[Removed], root: Path | None = None) -> list[str]:
    """Public flatlab definitions kept in the view that call a removed definition directly (a
    forbidden one or a private core): depending on their arguments they raise too, and
    students are told so."""
    pkg = _Package(Path(root) if root is not None else _installed_root())
    gone = {(r.module, r.qualname) for r in removed}
    out = []
    for mod, defs in pkg.defs.items():
        for name, node in defs.items():
            if name.startswith("_") or (mod, name) in gone:
                continue
            if pkg.references(mod, node) & gone:
                out.append(f"{mod}.{name}")
    return sorted(out)


def _installed_root() -> Path:
    import flatlab
    return Path(flatlab.__file__).resolve().parent


def _message(r: Removed, assignment: str) -> str:
    if r.reason.startswith("private core of "):
        return (f"{r.name} {UNAVAILABLE} {assignment} is graded: it computes what "
                f"{r.reason.removeprefix('private core of ')} does, which a task asks you to write yourself")
    return f"{r.name} {UNAVAILABLE} {assignment} is graded: a task asks you to write it yourself"


def _stub_lines(node: ast.AST, indent: str, msg: str) -> list[str]:
    m = json.dumps(msg)
    if isinstance(node, ast.ClassDef):
        return [f"{indent}class {node.name}:", f"{indent}    def __new__(cls, *args, **kwargs):",
                f"{indent}        raise RuntimeError({m})"]
    return [f"{indent}def {node.name}(*args, **kwargs):", f"{indent}    raise RuntimeError({m})"]


def stubbed_source(text: str, tree: ast.Module, targets: list[tuple[ast.AST, str]]) -> str:
    """``text`` with each (definition node, message) replaced by its stub; other lines untouched."""
    lines = text.splitlines(keepends=True)
    spans = []
    for node, msg in targets:
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        spans.append((start, node.end_lineno, node, msg))
    for start, end, node, msg in sorted(spans, key=lambda s: s[0], reverse=True):
        first = lines[start - 1]
        indent = first[:len(first) - len(first.lstrip())]
        nl = "\r\n" if lines[end - 1].endswith("\r\n") else "\n"
        lines[start - 1:end] = [ln + nl for ln in _stub_lines(node, indent, msg)]
    return "".join(lines)


def write_view(dest: Path, removed: list[Removed], assignment: str, root: Path | None = None) -> Path:
    """Write the restricted package to ``dest/flatlab`` (replacing what was there, atomically:
    built in a sibling folder, then renamed). Returns ``dest/flatlab``."""
    root = Path(root) if root is not None else _installed_root()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".flatlab."))
    try:
        shutil.copytree(root, tmp / PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
        pkg = _Package(root)
        by_mod: dict[str, list] = {}
        for r in removed:
            by_mod.setdefault(r.module, []).append((pkg.node(r.module, r.qualname), _message(r, assignment)))
        for mod, targets in by_mod.items():
            path, text, tree = pkg.modules[mod]
            out = tmp / PACKAGE / path.relative_to(root)
            out.write_text(stubbed_source(text, tree, targets), encoding="utf-8")
        final = dest / PACKAGE
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=dest, prefix=".old."))
            os.replace(final, old / PACKAGE)
        os.replace(tmp / PACKAGE, final)
        if old is not None:
            shutil.rmtree(old)
        for d in (dest, final):
            os.chmod(d, 0o755)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- review flags (not removable)

def _attr_chain(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def review_flags(source: str, names) -> list[str]:
    """Forbidden names outside flatlab that a cell's code refers to, resolved through its imports
    and attribute chains: ``torch.autograd.grad(...)``, ``from torch.autograd import grad as g``,
    ``import torch.linalg as la; la.eigh``; a method ``torch.Tensor.m`` is any ``x.m``. A local name that merely looks the same (a helper
    called ``grad`` or ``hvp``) is not a hit; comments and strings are not code. These are flags
    for a human reader, never points. ``torch.func.*`` in ``names`` matches the whole module."""
    from .notebook import strip_magics
    names = [n for n in names if not is_flatlab_name(n)]
    if not names:
        return []
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return []
    alias: dict[str, str] = {}  # local name -> dotted name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    alias[a.asname] = a.name
                else:
                    alias[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"
    dotted, methods = set(), set()
    for node in ast.walk(tree):
        chain = _attr_chain(node) if isinstance(node, (ast.Attribute, ast.Name)) else None
        if chain and chain[0] in alias:
            dotted.add(".".join([alias[chain[0]], *chain[1:]]))
        if isinstance(node, ast.Attribute):
            methods.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            dotted.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            dotted.update(a.name for a in node.names)
    hits = []
    for n in names:
        prefix = n[:-2] if n.endswith(".*") else None
        if any(d == n or (prefix and (d == prefix or d.startswith(prefix + "."))) for d in dotted):
            hits.append(n)
        elif n.startswith("torch.Tensor.") and n.rsplit(".", 1)[1] in methods:  # x.backward(): any tensor
            hits.append(n)
    return hits


# ---------------------------------------------------------------- the reference solutions still pass

_REPLAY = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import flatlab, numpy as np, torch
assert flatlab.__file__.startswith(sys.argv[1]), flatlab.__file__
from autograder import codec
from autograder.magics import install
job = json.load(open(sys.argv[2]))
ns = {"__name__": "__main__"}
install(ns)
for src in job["cells"]:
    exec(compile(src, "<cell>", "exec"), ns)
out = []
for c in job["calls"]:
    args = codec.decode(c["args"], tensors=True, models=True)
    kwargs = codec.decode(c["kwargs"], tensors=True, models=True)
    try:
        res = ns[c["name"]](*args, **kwargs)
        out.append({"ok": True, "res": codec.encode(res), "after": codec.encode(list(args)) if c["return_args"] else None})
    except Exception as e:
        out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
json.dump(out, open(sys.argv[3], "w"))
"""


class _Recorder:
    """``student`` for a hidden test run here: calls the reference solution in this process and
    records each call (arguments before it, result, arguments after it)."""

    def __init__(self, ns: dict, calls: list):
        self._ns, self._calls = ns, calls

    def call(self, name, *args, return_args=False, **kwargs):
        from . import codec
        rec = {"name": name, "args": codec.encode(list(args)), "kwargs": codec.encode(dict(kwargs)),
               "return_args": return_args}
        mine = codec.decode(rec["args"], tensors=True, models=True)  # a copy, as the worker gets
        res = self._ns[name](*mine, **codec.decode(rec["kwargs"], tensors=True, models=True))
        rec["res"] = codec.encode(res)
        rec["after"] = codec.encode(list(mine)) if return_args else None
        self._calls.append(rec)
        return (codec.decode(rec["res"]), codec.decode(rec["after"])) if return_args else codec.decode(rec["res"])

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)


def _same(a, b) -> bool:
    import numpy as np
    from . import codec
    x, y = codec.decode(a), codec.decode(b)
    try:
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(_same(codec.encode(x[k]), codec.encode(y[k])) for k in x)
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            return len(x) == len(y) and all(_same(codec.encode(p), codec.encode(q)) for p, q in zip(x, y))
        return bool(np.allclose(np.asarray(x, dtype=complex), np.asarray(y, dtype=complex), rtol=1e-9, atol=1e-12,
                                equal_nan=True))
    except (TypeError, ValueError):
        return x == y


def check_solution(cells: list[str], bundle: dict, view: Path) -> list[str]:
    """Problems of the reference solution against the view (empty = it keeps full marks).

    Runs the hidden tests here with the solution's functions (``cells``: the graded code cells
    of the solution notebook) and records every call; then replays the calls in a subprocess
    whose ``flatlab`` is the view and compares. A call that hits a removed name is reported
    with the task and the name."""
    import numpy as np
    from .grade import _hidden_namespace
    from .magics import install
    ns = {"__name__": "__main__"}
    install(ns)
    for src in cells:
        exec(compile(src, "<solution cell>", "exec"), ns)
    hidden = _hidden_namespace(bundle)
    problems, calls, owner = [], [], []
    for t in bundle["tests"]:
        n0 = len(calls)
        try:
            hidden[t["name"]](_Recorder(ns, calls), np.random.default_rng(12345))
        except Exception as e:  # the reference itself fails its test: the source is broken
            problems.append(f"{t['task']}: the reference solution fails {t['name']} even with the full "
                            f"library: {type(e).__name__}: {str(e)[:200]}")
        owner += [t] * (len(calls) - n0)
    with tempfile.TemporaryDirectory() as d:
        job, res = Path(d) / "job.json", Path(d) / "out.json"
        job.write_text(json.dumps({"cells": cells, "calls": calls}), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1])])}
        p = subprocess.run([sys.executable, "-c", _REPLAY, str(Path(view).resolve()), str(job), str(res)],
                           capture_output=True, text=True, env=env, timeout=1800)
        if p.returncode != 0:
            tail = p.stderr.strip().splitlines()[-1:] or ["(no output)"]
            return problems + [f"the solution cells do not run against the grading copy of flatlab: {tail[0]}"]
        out = json.loads(res.read_text(encoding="utf-8"))
    for c, o, t in zip(calls, out, owner):
        where = f"{t['task']} ({t['name']}, call of {c['name']})"
        if not o["ok"]:
            problems.append(f"{where}: the reference solution fails against the grading copy: {o['error'][:300]}")
        elif not _same(o["res"], c["res"]) or (c["return_args"] and not _same(o["after"], c["after"])):
            problems.append(f"{where}: the reference solution returns something else against the grading copy")
    return problems
