"""Gradescope: ``python -m autograder export gradescope`` builds an autograder zip that
runs this same sandboxed grader; ``run`` is what its ``run_autograder`` calls.

Zip layout (Gradescope unpacks it to ``/autograder/source``)::

    setup.sh            pip-installs the bundled flatlab + autograder and pinned deps
    run_autograder      python3 -m autograder.gradescope --assignment hwN
    requirements.txt    the versions of torch/numpy/... this zip was built and tested with
    pkg/                flatlab/ + autograder/ sources with setup.cfg, pyproject.toml
    bundle/hwN/bundle.json

``run`` grades the first ``submission/*.ipynb`` and writes ``results/results.json``
(``score``, ``output``, ``tests[]`` with name, score, max_score, status, output,
visibility). The root folder is ``$AUTOGRADER_ROOT`` (default ``/autograder``), so the
whole flow can be tested on a fake tree.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

from .build import write_atomic
from .report import KIND_TEXT

__all__ = ["results_json", "make_zip", "run", "main"]

_SETUP = """#!/usr/bin/env bash
# Installs the grader and its dependencies (Gradescope runs this once, as root).
set -euo pipefail
apt-get install -y python3 python3-pip >/dev/null 2>&1 || true
cd /autograder/source
# torch: use a CPU-only build where your image allows it (set PIP_EXTRA_INDEX_URL), pinned:
python3 -m pip install -r requirements.txt
python3 -m pip install ./pkg
"""

_RUN = """#!/usr/bin/env bash
# Grades /autograder/submission/*.ipynb in the sandbox -> /autograder/results/results.json
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$ROOT"
exec "${{AUTOGRADER_PYTHON:-python3}}" -m autograder.gradescope --assignment {assignment} --seed {seed} \\
    --timeout {timeout} --root "$ROOT"
"""


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    lines = []
    for name in ("torch", "numpy", "scipy", "numba", "matplotlib", "tqdm", "nbformat"):
        try:
            v = version(name).split("+")[0]
        except PackageNotFoundError:
            continue
        lines.append(f"{name}=={v}")
    return "\n".join(lines) + "\n"


def results_json(r: dict, elapsed: float | None = None) -> dict:
    """Gradescope's results.json from one results dict of :func:`autograder.grade.grade_notebook`."""
    tests = []
    for task in r["tasks"]:
        for t in task["tests"]:
            out = t["doc"]
            if not t["passed"]:
                out += f"\n\n{KIND_TEXT.get(t['kind'], t['kind'])}: {t['message']}".rstrip(": ")
                if t.get("traceback"):
                    out += "\n\n" + t["traceback"]
            tests.append({"name": f"{task['id']} / {t['name']}", "score": t["score"],
                          "max_score": t["points"], "status": "passed" if t["passed"] else "failed",
                          "output": out, "visibility": "visible"})
    lines = [f"Autograded: {r['score']:g} / {r['max_score']:g} (status: {r['status']})"]
    if r.get("note"):
        lines.append(r["note"])
    lines += [f"Cell {c['index']}: {c['status']}: {c.get('message', '')}" for c in r.get("cells", [])
              if c.get("status") != "ok"]
    lines += [f"{q['id']} ({q['points']:g} points): {q['status']}" for q in r.get("manual", [])]
    out = {"score": r["score"], "output": "\n".join(lines), "visibility": "visible",
           "stdout_visibility": "hidden", "tests": tests}
    if elapsed is not None:
        out["execution_time"] = int(round(elapsed))
    return out


def make_zip(assignment: str, bundles: Path, out: Path, *, seed: int = 0, timeout: float = 60.0) -> Path:
    """Write ``<out>/gradescope_<assignment>.zip``; returns its path."""
    bundle = Path(bundles) / assignment / "bundle.json"
    if not bundle.exists():
        raise ValueError(f"no grading bundle {bundle}; run `python -m autograder build` first")
    repo = Path(__file__).resolve().parent.parent
    files: dict[str, bytes] = {
        "setup.sh": _SETUP.encode(),
        "run_autograder": _RUN.format(assignment=assignment, seed=int(seed), timeout=float(timeout)).encode(),
        "requirements.txt": _versions().encode(),
        f"bundle/{assignment}/bundle.json": bundle.read_bytes(),
    }
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (repo / name).exists():
            files[f"pkg/{name}"] = (repo / name).read_bytes()
    for pkg in ("flatlab", "autograder"):
        for p in sorted((repo / pkg).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".md"):
                files[f"pkg/{p.relative_to(repo)}"] = p.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: reproducible zip
            info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    path = Path(out) / f"gradescope_{assignment}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".zip.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path


def run(root: Path, assignment: str, *, seed: int = 0, timeout: float = 60.0) -> dict:
    """Grade ``<root>/submission/*.ipynb`` and write ``<root>/results/results.json``."""
    from .grade import grade_notebook, load_bundle
    from .sandbox import SandboxConfig
    root = Path(root).resolve()
    bundles = root / "source" / "bundle"
    bundle = load_bundle(bundles, assignment)
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(results_dir, 0o700)
    subs = sorted((root / "submission").glob("*.ipynb"))
    t0 = time.monotonic()
    # everything in the root except the library itself is hidden from the worker
    hide = [root / "submission", results_dir, bundles] + [
        p for p in (root / "source").iterdir() if p.name != "pkg"]
    target = subs[0] if subs else root / "submission" / "missing.ipynb"
    r = grade_notebook(target, bundle, seed=seed, cfg=SandboxConfig(timeout=timeout),
                       hide=[str(p) for p in hide], student="submission")
    if not subs:
        r["note"] = "no .ipynb file found in the submission"
    res = results_json(r, time.monotonic() - t0)
    write_atomic(results_dir / "results.json", json.dumps(res, indent=1, sort_keys=True) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    """``export gradescope`` (build the zip)."""
    p = argparse.ArgumentParser(prog="python -m autograder export gradescope",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--assignment", required=True)
    p.add_argument("--bundles", default="build/grading")
    p.add_argument("--out", default="build/gradescope")
    p.add_argument("--seed", type=int, default=0, help="grading seed baked into run_autograder")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per hidden test and per cell")
    a = p.parse_args(argv)
    try:
        path = make_zip(a.assignment, Path(a.bundles), Path(a.out), seed=a.seed, timeout=a.timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _run_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    p.add_argument("--assignment", required=True)
    p.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args(argv)
    from .sandbox import prestart
    prestart()
    import torch
    torch.set_num_threads(1)
    res = run(Path(a.root), a.assignment, seed=a.seed, timeout=a.timeout)
    print(res["output"])
    return 0


if __name__ == "__main__":
    sys.exit(_run_main())
