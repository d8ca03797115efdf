"""The house rules, checked on the source: an explicit public surface in every module, data
flowing one way (a room imports only lower rooms), no import circle, and no function-local
imports between flatlab modules (only the optional heavy dependencies may load lazily).

The module graph is computed from the AST of every file under flatlab/, with relative
imports resolved and every import counted, wherever it sits (top level, in a function, in
a class, under ``if``/``try``)."""
import ast
import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flatlab"

# rank of each room; a module may import only modules of a strictly lower rank
RANK = {
    "flatlab._version": 0, "flatlab._checks": 0, "flatlab.data": 0, "flatlab.losses": 0,
    "flatlab.models": 1,
    "flatlab._closed_form": 2,
    "flatlab.sharpness": 3, "flatlab.diagnostics": 3,
    "flatlab.constructions": 4,
    "flatlab.train.config": 5, "flatlab.train.reference": 5, "flatlab.train.engine": 5,
    "flatlab.train.penalty": 6, "flatlab.train.loop": 6,
    "flatlab.train.run": 7,
    "flatlab.train": 8,
    "flatlab.lab.spec": 9, "flatlab.lab.results": 9, "flatlab.lab.executors": 9, "flatlab.lab.plotting": 9,
    "flatlab.lab.scenarios": 10, "flatlab.lab.appendix": 10,
    "flatlab.lab.runner": 11,
    "flatlab.lab.beyond": 12, "flatlab.lab.sweep": 12,
    "flatlab.lab": 13,
    "flatlab.cli": 14,
    "flatlab": 15,
}
# third-party packages a function may import lazily (heavy or optional); nothing else
LAZY_OK = {"numba", "dask", "distributed", "matplotlib", "tqdm"}
NO_DEPEND = {"autograder", "nbgrader", "otter", "nbclient", "nbformat", "IPython"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}


@functools.lru_cache(maxsize=None)
def imports(name: str, path: pathlib.Path) -> tuple:
    """(imported module, is_local, lineno) for every import statement of a module.

    ``from pkg import x`` counts as an import of ``pkg.x`` when that is a flatlab module,
    else of ``pkg``. is_local: the statement sits inside a function or class body.
    """
    return tuple(_imports(name, path))


def _imports(name, path):
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        local = id(node) in nested
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, local, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for a in node.names:
                sub = f"{mod}.{a.name}"
                yield (sub if sub in MODULES else mod), local, node.lineno


@functools.lru_cache(maxsize=None)
def graph() -> dict:
    """flatlab module -> set of flatlab modules it imports."""
    out = {}
    for name, path in MODULES.items():
        out[name] = {m for m, _, _ in imports(name, path) if m in MODULES and m != name}
    return out


def find_cycle(edges: dict):
    """A list of modules forming an import circle, or None."""
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                found = visit(v)
                if found:
                    return found
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(edges):
        if u not in state:
            found = visit(u)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_circle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_imports_resolve_to_modules(tmp_path):
    """The resolver sees `from .. import x` in a subpackage and `from . import engine` as modules."""
    got = {m for m, _, _ in imports("flatlab.train.penalty", MODULES["flatlab.train.penalty"])}
    assert {"flatlab.train.engine", "flatlab.data", "flatlab._closed_form"} <= got
    got = {m for m, _, _ in imports("flatlab.lab.runner", MODULES["flatlab.lab.runner"])}
    assert {"flatlab.lab.appendix", "flatlab.lab.scenarios", "flatlab.train", "flatlab._version"} <= got


def test_every_module_has_a_rank():
    assert set(MODULES) == set(RANK), (
        f"unranked: {sorted(set(MODULES) - set(RANK))}, stale: {sorted(set(RANK) - set(MODULES))}")


def test_no_import_circle():
    assert find_cycle(graph()) is None, f"import circle: {' -> '.join(find_cycle(graph()))}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_lower_rooms_do_not_import_higher_ones(name):
    for mod in graph()[name]:
        assert RANK[mod] < RANK[name], f"{name} (rank {RANK[name]}) imports {mod} (rank {RANK[mod]})"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_function_local_imports_only_for_optional_heavy_deps(name):
    for mod, local, line in imports(name, MODULES[name]):
        if local:
            assert mod.split(".")[0] in LAZY_OK, (
                f"{name}:{line} imports {mod} inside a function: import it at the top "
                f"(only {sorted(LAZY_OK)} may load lazily)")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_has_explicit_all_and_docstring(name):
    tree = ast.parse(MODULES[name].read_text())
    assert ast.get_docstring(tree), f"{name} needs a module docstring"
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{name} must define __all__"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_library_never_imports_grading_or_jupyter(name):
    for mod, _, _ in imports(name, MODULES[name]):
        assert mod.split(".")[0] not in NO_DEPEND, (
            f"{name} imports {mod}: flatlab must not depend on grading or notebook tools")
