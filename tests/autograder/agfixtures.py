"""Helpers of the autograder tests: paths, honest solutions of hwfix, and a submission
writer (the built student notebook with some cells replaced or inserted)."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat

from autograder.build import build_one

FIXTURE = Path(__file__).parent / "fixtures" / "hwfix.py"
REPO = Path(__file__).resolve().parents[2]



def build_fixture(source: Path, root: Path):
    """Build the fixture assignment ``source`` (a solutions/hwX.py) under ``root``, as an instructor
    would: returns (its student notebook, the bundles folder)."""
    name = source.stem
    (root / "solutions").mkdir(parents=True, exist_ok=True)
    shutil.copy(source, root / "solutions" / source.name)
    build_one(root / "solutions" / source.name, root / "assignments", root / "bundles")
    return nbformat.read(str(root / "assignments" / f"{name}.ipynb"), as_version=4), root / "bundles"


# honest solutions of the three tasks, as a student would paste them
SOLUTIONS = {
    "hwfix.square": "def square(x):\n    return x ** 2\n",
    "hwfix.mse": "def mse_loss(f, y):\n    return ((f - y) ** 2).mean()\n",
    "hwfix.nparams": "def num_params(model):\n    return int(sum(p.numel() for p in model.parameters()))\n",
}


def make_submission(student_nb, tasks: dict | None = None, before: list[str] = (), path: Path | None = None):
    """A copy of the student notebook with task cells replaced (by id) and extra code
    cells inserted right after the import cell; written to ``path`` if given."""
    nb = copy.deepcopy(student_nb)
    for cell in nb.cells:
        tid = cell.metadata.get("flatlab", {}).get("id")
        if cell.metadata.get("flatlab", {}).get("role") == "task" and tasks and tid in tasks:
            cell.source = tasks[tid]
    imports = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    for k, src in enumerate(before):
        nb.cells.insert(imports + 1 + k, nbformat.v4.new_code_cell(src))
    for i, c in enumerate(nb.cells):
        c.id = f"c{i}"
    if path is not None:
        nbformat.write(nb, str(path))
    return nb
