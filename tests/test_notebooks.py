"""Every solution notebook (a source ``solutions/hwN.py`` as the notebook that ``autograder build``
writes to ``build/solutions/``) runs top to bottom in a real Jupyter kernel (nbclient, ``python3``).

Each notebook runs in its own temporary working directory with one BLAS/torch thread and
the non-interactive matplotlib backend; a cell may take up to 10 minutes, the whole
notebook must finish within ``NOTEBOOK_BUDGET_S``. Every public self-check must print
``<task id>: OK``. Run one with ``python -m pytest tests/test_notebooks.py -k hw2``.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from nbclient import NotebookClient

from autograder.build import solution_notebook
from autograder.notebook import read_source

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("hw*.py"))
NOTEBOOK_BUDGET_S = 600  # generous: a loaded 2-core machine runs the slowest one in ~75 s

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def test_solution_notebooks_found():
    names = {p.stem for p in SOLUTIONS}
    assert {f"hw{i}" for i in range(6)} <= names, f"missing solution notebooks: {sorted(names)}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = solution_notebook(read_source(path))  # the source without its mistake cells, as build writes it
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    assert elapsed < NOTEBOOK_BUDGET_S, f"{path.name} took {elapsed:.0f} s"
    text = _outputs_text(nb)
    checks = {c.metadata["flatlab"]["id"] for c in nb.cells
              if c.metadata.get("flatlab", {}).get("role") == "public_test"}
    missing = sorted(t for t in checks if f"{t}: OK" not in text)
    assert not missing, f"{path.name}: self-checks that did not print OK: {missing}"
    print(f"{path.stem}: {elapsed:.1f} s")  # shown with -s / -rA: the per-notebook timing
