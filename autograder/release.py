"""``python -m autograder release --out DIR``: the student repository, without solutions.

The instructor repository holds solutions, hidden tests and the grader; students must get
none of them. ``release`` writes what a student needs, built fresh from the sources
``solutions/hwN.py``:

    DIR/README.md                    how to install, open, self-check and submit
    DIR/assignments/hwN.ipynb        the student notebooks (a fresh build)
    DIR/course/{student_guide,syllabus,reading_guide}.md
    DIR/flatlab/                     the library the notebooks import
    DIR/setup.cfg, DIR/pyproject.toml

Then it scans every file it wrote for solution markers, hidden-test names and solution
lines and registered mistakes, and refuses (writing nothing) if any is found. The folder is assembled next to DIR
and moved into place at the end, so an interrupted release leaves no half-written copy; an
existing DIR is replaced only if it is empty or was written by a previous release.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .build import MARKERS, _solution_lines, build_one, mistake_leaks
from .notebook import parse_source, read_source

__all__ = ["release", "scan_release", "main"]

ROOT = Path(__file__).resolve().parents[1]
COURSE_FILES = ("student_guide.md", "syllabus.md", "reading_guide.md")
TOP_FILES = ("setup.cfg", "pyproject.toml")
STAMP = ".flatlab-release"  # marks a folder written by release, which a new release may replace
STUDENT_README = """# flatlab: student copy

The assignments of the flatlab course (Wen, Li & Ma, NeurIPS 2023: *Sharpness Minimization
Algorithms Do Not Only Minimize Sharpness To Achieve Better Generalization*).

```bash
pip install "torch==2.13.0" -e ".[dev]"        # the library the notebooks use, and Jupyter tooling
pip install jupyterlab && jupyter lab assignments/hw0.ipynb
```

Read `course/student_guide.md` first: how to work on a copy, self-check, and submit.
"""


def _scan_targets(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".cfg", ".toml", ".txt", ".json"):
            yield path


def scan_release(folder: Path, sources: list[Path]) -> list[str]:
    """Everything in ``folder`` that carries hidden material from ``sources`` (empty = clean)."""
    hidden_names, solution_lines, parsed = set(), {}, {}
    for src in sources:
        nb = read_source(src)
        asg = parse_source(nb)
        hidden_names |= {t.name for t in asg.tests}
        solution_lines[src.stem] = _solution_lines(nb)  # checked against that assignment's notebook
        parsed[src.stem] = (nb, asg)
    problems = []
    for path in _scan_targets(folder):
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(folder)
        problems += [f"{rel}: marker {m!r}" for m in MARKERS if m in text]
        problems += [f"{rel}: hidden test {n}" for n in sorted(hidden_names) if f"def {n}(" in text]
        if path.suffix == ".ipynb":
            lines = {ln.strip() for c in nbformat.reads(text, as_version=4).cells for ln in c.source.split("\n")}
            leaked = solution_lines.get(path.stem, set()) & lines
            problems += [f"{rel}: solution line {ln!r}" for ln in sorted(leaked)]
            if path.stem in parsed:
                cells = nbformat.reads(text, as_version=4).cells
                problems += [f"{rel}: {x}" for x in mistake_leaks(lines, "\n".join(c.source for c in cells),
                                                                   *parsed[path.stem])]
    return problems


def release(out: Path, solutions: Path = ROOT / "solutions", root: Path = ROOT) -> list[str]:
    """Write the student repository to ``out`` (replacing it); returns the assignment names."""
    out, solutions, root = Path(out).resolve(), Path(solutions), Path(root)
    sources = sorted(solutions.glob("hw*.py"))
    if not sources:
        raise ValueError(f"solutions must be a folder of sources hwN.py; none in {solutions}")
    if out.exists() and any(out.iterdir()) and not (out / STAMP).exists():
        raise ValueError(f"out must be a new or empty folder, or a previous release; {out} is neither "
                         "(refusing to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    try:
        names = [build_one(src, stage / "assignments", None)[0] for src in sources]
        shutil.copytree(root / "flatlab", stage / "flatlab",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (stage / "course").mkdir()
        for name in COURSE_FILES:
            shutil.copy2(root / "course" / name, stage / "course" / name)
        for name in TOP_FILES:
            shutil.copy2(root / name, stage / name)
        (stage / "README.md").write_text(STUDENT_README, encoding="utf-8")
        (stage / STAMP).write_text("written by `python -m autograder release`\n", encoding="utf-8")
        problems = scan_release(stage, sources)
        if problems:
            raise ValueError("the release would leak: " + "; ".join(problems[:5]))
        os.chmod(stage, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder release", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, help="folder to write the student repository to (replaced)")
    p.add_argument("--solutions", default=str(ROOT / "solutions"), help="folder of the sources hwN.py")
    a = p.parse_args(argv)
    try:
        names = release(Path(a.out), Path(a.solutions))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"released {', '.join(names)} to {a.out} (no solutions, no hidden tests, no grader)")
    return 0
