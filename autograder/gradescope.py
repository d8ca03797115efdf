"""Gradescope: ``python -m autograder export gradescope`` builds an autograder zip that
runs this same sandboxed grader; ``run`` is what its ``run_autograder`` calls.

Zip layout (Gradescope unpacks it to ``/autograder/source`` and runs ``setup.sh`` there once,
as root; it copies ``run_autograder`` to ``/autograder/`` and runs it per submission)::

    setup.sh            makes its own venv /autograder/flatlab-venv and installs the wheel into it
    run_autograder      <venv>/bin/python -m autograder.gradescope --assignment hwN ...
    requirements.txt    ranges: >= flatlab's minimum, <= the versions this zip was built with
    wheels/flatlab-<version>-py3-none-any.whl   flatlab + the grader (a built wheel, never a source tree)
    bundle/hwN/bundle.json

``setup.sh`` fails on the first error (``set -euo pipefail``), works under a PEP 668
"externally managed" system Python (it never installs into it), and calls ``apt-get``
(after ``apt-get update``) only when the interpreter cannot make a venv. Variables it
honours: ``FLATLAB_PYTHON`` (interpreter for the venv, default ``python3``), ``FLATLAB_TORCH``
(torch requirement, default ``torch>=2.1,<=<built version>`` from PyPI; e.g. a wheel file or a
CPU build), ``AUTOGRADER_ROOT`` (default ``/autograder``), ``FLATLAB_SETUP_DRY_RUN=1`` (make the
venv, check that the index has a torch release in range, resolve the other requirements with
``pip install --dry-run --report`` into ``<venv>/resolve.json``, install only the flatlab wheel
without dependencies), and pip's own
``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` / ``PIP_FIND_LINKS``.

``run`` grades one notebook of ``<root>/submission`` (searched recursively): the one named
``<assignment>.ipynb``, else the only ``.ipynb``; with several and none so named it grades
nothing and says which files it found (score 0). It writes ``<root>/results/results.json`` in
Gradescope's format (``score``, ``execution_time``, ``output``, ``visibility``,
``stdout_visibility``, ``tests[]`` with name, score, max_score, status, output, visibility).
The root folder is ``$AUTOGRADER_ROOT`` (default ``/autograder``), so the whole flow can be
tested on a fake tree.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ._export_common import build_wheel, requirements
from .build import write_atomic
from .report import KIND_TEXT

__all__ = ["results_json", "make_zip", "pick_submission", "run", "main"]

VENV = "flatlab-venv"  # the venv setup.sh makes, in the autograder root

_SETUP = r"""#!/usr/bin/env bash
# Installs flatlab and its grader into their own venv; Gradescope runs this once, as root,
# in /autograder/source. Stops at the first failing command.
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{FLATLAB_PYTHON:-python3}}"
TORCH="${{FLATLAB_TORCH:-{torch}}}"
VENV="$ROOT/{venv}"
WHEEL="$HERE/wheels/{wheel}"
cd "$HERE"  # never import from the caller's folder (a source checkout there would shadow the wheel)

# a venv, never the system interpreter (PEP 668); apt only if this Python cannot make one
rm -rf "$VENV"
if ! "$PYTHON" -m venv "$VENV"; then
    echo "setup.sh: '$PYTHON -m venv' failed; installing python3-venv with apt-get" >&2
    rm -rf "$VENV"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y python3 python3-venv
    PYTHON=python3
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), "flatlab needs Python >= 3.10, not " + sys.version'
echo "setup.sh: $("$PY" -V) in $VENV; torch requirement: $TORCH"
if [ "${{FLATLAB_SETUP_DRY_RUN:-0}}" = 1 ]; then
    # torch: only check that the index has a release in range for this Python (resolving it would
    # download its wheel, ~530 MB, where the index serves no separate metadata file)
    "$PY" -m pip index versions torch | "$PY" -c '
import sys
from pip._vendor.packaging.requirements import Requirement
req, text = Requirement(sys.argv[1]), sys.stdin.read()
avail = [v.strip() for v in text.split("Available versions:")[1].splitlines()[0].split(",")]
ok = [v for v in avail if req.specifier.contains(v)]
assert ok, f"no torch release in {{req.specifier}} for this Python; the index has {{avail[:5]}}"
print("setup.sh (dry run): torch", ok[0], "is available for this Python")' "$TORCH"
    # the rest resolves as it would install; then the flatlab wheel alone
    "$PY" -m pip install --dry-run --ignore-installed --report "$VENV/resolve.json" -r "$HERE/requirements.txt"
    "$PY" -m pip install --no-deps "$WHEEL"
else
    "$PY" -m pip install "$TORCH" -r "$HERE/requirements.txt" "$WHEEL"
fi
"$PY" -m pip check || [ "${{FLATLAB_SETUP_DRY_RUN:-0}}" = 1 ]
if [ "${{FLATLAB_SETUP_DRY_RUN:-0}}" = 1 ]; then  # where it is, without importing its missing dependencies
    "$PY" -c 'import importlib.util as u; print("setup.sh: flatlab (dry run) from", u.find_spec("flatlab").origin)'
else
    "$PY" -c 'import autograder.gradescope, flatlab; print("setup.sh: flatlab", flatlab.__version__, "from", flatlab.__file__)'
fi
"""

_RUN = """#!/usr/bin/env bash
# Grades the notebook in /autograder/submission in the sandbox -> /autograder/results/results.json
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$ROOT"
exec "${{AUTOGRADER_PYTHON:-$ROOT/{venv}/bin/python}}" -m autograder.gradescope --assignment {assignment} \\
    --seed {seed} --timeout {timeout} --root "$ROOT"
"""


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


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: reproducible zip
            info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    return buf.getvalue()


def make_zip(assignment: str, bundles: Path, out: Path, *, seed: int = 0, timeout: float = 60.0) -> Path:
    """Write ``<out>/gradescope_<assignment>.zip``; returns its path."""
    bundle = Path(bundles) / assignment / "bundle.json"
    if not bundle.exists():
        raise ValueError(f"no grading bundle {bundle}; run `python -m autograder build` first")
    if timeout <= 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout}")
    with tempfile.TemporaryDirectory(prefix="flatlab-gs-") as tmp:
        wheel = build_wheel(Path(tmp))
        torch, reqs = requirements(wheel)
        files: dict[str, bytes] = {
            "setup.sh": _SETUP.format(torch=torch, venv=VENV, wheel=wheel.name).encode(),
            "run_autograder": _RUN.format(assignment=assignment, seed=int(seed), timeout=float(timeout),
                                          venv=VENV).encode(),
            "requirements.txt": ("# flatlab's minimum versions up to the ones this zip was built with;"
                                 " torch is in setup.sh\n" + "\n".join(reqs) + "\n").encode(),
            f"wheels/{wheel.name}": wheel.read_bytes(),
            f"bundle/{assignment}/bundle.json": bundle.read_bytes(),
        }
    path = Path(out) / f"gradescope_{assignment}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".zip.tmp")
    tmp_path.write_bytes(_zip_bytes(files))
    os.replace(tmp_path, path)
    return path


def pick_submission(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The notebook to grade in ``folder`` (searched recursively) and, if none, why not."""
    found = sorted(p for p in Path(folder).rglob("*.ipynb")
                   if p.is_file() and ".ipynb_checkpoints" not in p.parts)
    named = [p for p in found if p.name == f"{assignment}.ipynb"]
    if len(named) == 1:
        return named[0], ""
    if len(found) == 1 and not named:
        return found[0], ""
    if not found:
        return None, "no .ipynb file found in the submission"
    names = ", ".join(str(p.relative_to(folder)) for p in found)
    return None, (f"the submission holds {len(found)} notebooks ({names}) and "
                  f"{'several are' if named else 'none is'} named {assignment}.ipynb: "
                  f"submit exactly one {assignment}.ipynb")


def run(root: Path, assignment: str, *, seed: int = 0, timeout: float = 60.0) -> dict:
    """Grade the notebook of ``<root>/submission`` and write ``<root>/results/results.json``."""
    from .grade import GradingConfig, grade_notebook, load_bundle
    root = Path(root).resolve()
    bundle = load_bundle(root / "source" / "bundle", assignment)
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(results_dir, 0o700)
    t0 = time.monotonic()
    target, why = pick_submission(root / "submission", assignment)
    # the worker sees none of the autograder tree but the venv
    hide = [root / "submission", results_dir, root / "source"]
    config = GradingConfig(seed=int(seed), cell_timeout=float(timeout), test_timeout=float(timeout))
    r = grade_notebook(target or root / "submission" / "(not graded).ipynb", bundle, config,
                       hide=[str(p) for p in hide], student="submission")
    if why:
        r["note"] = why
    elif target.name != f"{assignment}.ipynb":
        r["note"] = f"graded {target.relative_to(root / 'submission')}"
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
