"""`python -m autograder release`: the student repository carries no solution, hidden test or grader."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autograder.release import STAMP, release, scan_release

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "student"
    names = release(out)
    return out, names


def test_release_has_what_students_need_and_nothing_else(released):
    out, names = released
    assert names == sorted(p.stem for p in (ROOT / "solutions").glob("hw*.py"))
    top = {p.name for p in out.iterdir()}
    assert top == {"README.md", "assignments", "course", "flatlab", "setup.cfg", "pyproject.toml", STAMP}
    assert not (out / "solutions").exists() and not (out / "autograder").exists() and not (out / "tests").exists()
    for name in names:  # the student notebooks are exactly the committed, freshly built ones
        assert (out / "assignments" / f"{name}.ipynb").read_text() == (ROOT / "assignments" / f"{name}.ipynb").read_text()
    assert {p.name for p in (out / "course").iterdir()} == {"student_guide.md", "syllabus.md", "reading_guide.md"}


def test_release_scan_is_clean_and_catches_a_planted_leak(released, tmp_path):
    out, _ = released
    sources = sorted((ROOT / "solutions").glob("hw*.py"))
    assert scan_release(out, sources) == []
    planted = tmp_path / "leaky"
    planted.mkdir()
    (planted / "notes.md").write_text("### BEGIN SOLUTION\n")
    assert any("marker" in p for p in scan_release(planted, sources))
    import nbformat

    from autograder.build import _solution_lines
    from autograder.notebook import read_source

    src = read_source(ROOT / "solutions" / "hw1.py")
    line = sorted(_solution_lines(src))[0]
    student = nbformat.read(out / "assignments" / "hw1.ipynb", as_version=4)
    student.cells[-1].source += "\n" + line
    (planted / "notes.md").unlink()
    nbformat.write(student, planted / "hw1.ipynb")
    assert scan_release(planted, sources) == [f"hw1.ipynb: solution line {line!r}"]


def test_released_library_imports_from_the_release(released):
    out, _ = released
    code = "import flatlab, sys; print(flatlab.__file__); print('autograder' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True,
                          env={"PYTHONPATH": str(out), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "flatlab" / "__init__.py"), "False"]


def test_release_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ValueError, match="out must be a new or empty folder"):
        release(precious)
    assert (precious / "thesis.tex").read_text() == "do not delete"
    with pytest.raises(ValueError, match="solutions must be"):
        release(tmp_path / "x", solutions=tmp_path)


def test_release_replaces_its_own_previous_output(released, tmp_path):
    out = tmp_path / "again"
    release(out)
    (out / "assignments" / "stale.ipynb").write_text("{}")
    release(out)
    assert not (out / "assignments" / "stale.ipynb").exists()


def test_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(tmp_path / "s")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no solutions, no hidden tests" in proc.stdout
