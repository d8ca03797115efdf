"""Convert the percent-format sources in ``solutions/_src/hwN.py`` into ``solutions/hwN.ipynb``.

The committed notebooks in ``solutions/`` are the source of truth that ``python -m autograder
build`` reads; these text files are a convenience for editing them. Format (a subset of
jupytext's "percent" format, see ``solutions/_src/README.md``):

    # notebook: {"assignment": "hw0", "title": "The testbed"}     (first line)
    # %% [markdown]                                                (a prose cell)
    # # A heading
    # Some text.
    # %% [markdown] {"role": "manual", "id": "hw0.q1", "points": 2}
    # %% {"role": "task", "id": "hw0.sample_xor", "points": 2, "function": "...", "summary": "..."}
    # %%                                                           (a plain code cell)

The JSON after the cell marker becomes ``cell.metadata["flatlab"]``.

Usage: ``python solutions/_src/percent_to_ipynb.py [hw0 hw1 ...]`` (default: all).
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

SRC = Path(__file__).resolve().parent
OUT = SRC.parent
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?P<meta>\s+\{.*\})?\s*$")


def parse(text: str) -> nbformat.NotebookNode:
    """Parse one percent-format source into a notebook (no outputs)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# notebook:"):
        raise ValueError("the first line must be '# notebook: {\"assignment\": ..., \"title\": ...}'")
    nb = nbformat.v4.new_notebook()
    nb.metadata["flatlab"] = json.loads(lines[0][len("# notebook:"):])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells: list[tuple[bool, dict | None, list[str]]] = []
    for line in lines[1:]:
        m = _HEADER.match(line)
        if m:
            meta = json.loads(m.group("meta")) if m.group("meta") else None
            cells.append((bool(m.group("md")), meta, []))
        elif cells:
            cells[-1][2].append(line)
        elif line.strip():
            raise ValueError(f"text before the first cell marker: {line!r}")
    for i, (is_md, meta, body) in enumerate(cells):
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if is_md:
            src = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body)
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell("\n".join(body))
        cell.id = f"{nb.metadata['flatlab']['assignment']}-{i:03d}"
        if meta:
            cell.metadata["flatlab"] = meta
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def convert(name: str) -> Path:
    """Write solutions/<name>.ipynb atomically from solutions/_src/<name>.py."""
    nb = parse((SRC / f"{name}.py").read_text())
    target = OUT / f"{name}.ipynb"
    fd, tmp = tempfile.mkstemp(dir=OUT, suffix=".ipynb.tmp")
    with os.fdopen(fd, "w") as fh:
        nbformat.write(nb, fh)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target


def main(argv: list[str]) -> None:
    names = argv or sorted(p.stem for p in SRC.glob("hw*.py"))
    for name in names:
        print(convert(name))


if __name__ == "__main__":
    main(sys.argv[1:])
