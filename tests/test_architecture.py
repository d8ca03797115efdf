"""The house rules of ARCHITECTURE.md, checked on the source: an explicit public surface
in every module, and data flowing one way (lower rooms never import higher ones)."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLATLAB = sorted(p for p in (ROOT / "flatlab").glob("*.py") if p.name != "__main__.py")

# rank of each room; a module may import only rooms of lower or equal rank
RANK = {
    "data": 0, "losses": 0, "models": 1, "_closed_form": 2, "sharpness": 2, "constructions": 2,
    "diagnostics": 3, "optim": 3, "engine": 3, "penalty": 5, "training": 5, "experiments": 6, "appendix": 6, "beyond": 6,
    "plotting": 6, "cli": 7, "__init__": 8,
}


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level and node.module:
                yield "flatlab." + node.module
            elif node.level:
                for a in node.names:
                    yield "flatlab." + a.name
            elif node.module:
                yield node.module


@pytest.mark.parametrize("path", FLATLAB, ids=lambda p: p.name)
def test_module_has_explicit_all_and_docstring(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} needs a module docstring"
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "__all__" in names, f"{path.name} must define __all__"


@pytest.mark.parametrize("path", FLATLAB, ids=lambda p: p.name)
def test_library_never_imports_grading_or_jupyter(path):
    for mod in imported_modules(path):
        top = mod.split(".")[0]
        assert top not in {"autograder", "nbgrader", "otter", "nbclient", "nbformat", "IPython"}, (
            f"{path.name} imports {mod}: flatlab must not depend on grading or notebook tools"
        )


@pytest.mark.parametrize("path", FLATLAB, ids=lambda p: p.name)
def test_lower_rooms_do_not_import_higher_ones(path):
    me = path.stem
    assert me in RANK, f"new module {me}.py: give it a rank in tests/test_architecture.py"
    for mod in imported_modules(path):
        parts = mod.split(".")
        if parts[0] != "flatlab" or len(parts) < 2 or parts[1] not in RANK:
            continue
        assert RANK[parts[1]] <= RANK[me], f"{me} (rank {RANK[me]}) imports {parts[1]} (rank {RANK[parts[1]]})"
