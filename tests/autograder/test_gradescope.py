"""The Gradescope zip: its layout, and setup.sh + run_autograder on a simulated /autograder tree
run by fresh interpreters, never the test's own environment.

What is verified on which Python (all on this Debian x86_64 machine):
- 3.11.2, ``/usr/bin/python3`` (Debian's system Python, PEP 668 externally managed): the
  whole flow. ``setup.sh`` makes its venv, installs torch (``FLATLAB_TORCH=torch==2.13.0``, the
  local CPU wheel), the requirements and the flatlab wheel; ``run_autograder`` then grades a
  full, a blank and a partial submission (exact scores, results.json schema) and refuses a
  submission with two notebooks, none named for the assignment.
- 3.10.13 (pyenv; Gradescope's Ubuntu 22.04 image has 3.10): the same whole flow, with torch
  2.13.0 from the index (there is no CPU wheel for 3.10 here, so it is the CUDA build, ~4.7 GB
  installed in about a minute, run on the CPU); and ``setup.sh`` with ``FLATLAB_SETUP_DRY_RUN=1``:
  the index has a torch release in range for 3.10, the other requirements resolve by
  ``pip install --dry-run`` (numpy below 2.4, which has no cp310 wheel), and the flatlab wheel is
  installed (no dependencies) into the venv's site-packages, not as a source tree.
- 3.12.1 and 3.13.0 (pyenv): the same checks (``pip --python X``): torch 2.13.0 is on the index for
  that Python, the other requirements resolve.
Why torch is only looked up, never resolved, off 3.11: this index serves no separate metadata
file for torch's wheels, so resolving it means downloading a ~530 MB wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from agfixtures import SOLUTIONS, make_submission

from autograder.gradescope import make_zip, pick_submission

SYSTEM_PYTHON = Path("/usr/bin/python3")
PY310 = Path("/root/.pyenv/versions/3.10.13/bin/python")
PYENV = {"3.12": Path("/root/.pyenv/versions/3.12.1/bin/python"),
         "3.13": Path("/root/.pyenv/versions/3.13.0/bin/python")}
TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility"}
WRONG_MSE = "def mse_loss(f, y):\n    return (f - y).abs().mean()\n"


def _fresh_env(root: Path, **extra) -> dict:
    """An environment without this test's venv: what Gradescope's shell has, plus the root."""
    venv = os.environ.get("VIRTUAL_ENV")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and not (venv and p.startswith(venv)) and Path(sys.executable).parent != Path(p)]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "AUTOGRADER_PYTHON")}
    return {**env, "PATH": os.pathsep.join(path), "AUTOGRADER_ROOT": str(root), **extra}


def _unpack(z: Path, root: Path) -> Path:
    zipfile.ZipFile(z).extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):  # zipfile drops the mode bits
        (root / "source" / name).chmod(0o755)
    return root


def _sh(cmd, env, timeout, cwd="/"):
    p = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert p.returncode == 0, f"{cmd} -> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def test_zip_layout_is_reproducible(built, tmp_path):
    root, _, bundles = built
    z1 = make_zip("hwfix", bundles, tmp_path / "a")
    z2 = make_zip("hwfix", bundles, tmp_path / "b")
    assert z1.read_bytes() == z2.read_bytes()
    zf = zipfile.ZipFile(z1)
    names = zf.namelist()
    wheels = [n for n in names if n.startswith("wheels/")]
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl")
    assert {"setup.sh", "run_autograder", "requirements.txt", "bundle/hwfix/bundle.json"} <= set(names)
    assert not any(n.startswith("pkg/") or "solutions/" in n or n.endswith((".ipynb", ".py")) for n in names)
    # the wheel holds the library and the grader, not the tests or the sources of the assignments
    inner = zipfile.ZipFile(zf.open(wheels[0])).namelist()
    assert "flatlab/models.py" in inner and "autograder/grade.py" in inner
    assert not any(n.startswith(("tests/", "solutions/")) for n in inner)
    setup = zf.read("setup.sh").decode()
    assert "set -euo pipefail" in setup and "|| true" not in setup and ">/dev/null" not in setup
    assert setup.index("apt-get update") < setup.index("apt-get install")
    assert "-m venv" in setup and "--break-system-packages" not in setup
    reqs = [ln for ln in zf.read("requirements.txt").decode().splitlines() if ln and not ln.startswith("#")]
    names_ = {r.split(">")[0] for r in reqs}
    assert {"numpy", "scipy", "matplotlib", "numba", "nbformat"} <= names_
    assert all(">=" in r and ",<=" in r and "==" not in r for r in reqs), reqs  # ranges, never pins
    assert "set -euo pipefail" in zf.read("run_autograder").decode()
    with pytest.raises(ValueError, match="no grading bundle"):
        make_zip("hwnope", bundles, tmp_path / "c")
    with pytest.raises(ValueError, match="timeout"):
        make_zip("hwfix", bundles, tmp_path / "c", timeout=0)


def test_pick_submission(tmp_path):
    sub = tmp_path / "submission"
    (sub / "nested").mkdir(parents=True)
    assert pick_submission(sub, "hw1") == (None, "no .ipynb file found in the submission")
    (sub / "nested" / "mine.ipynb").write_text("{}")
    assert pick_submission(sub, "hw1") == (sub / "nested" / "mine.ipynb", "")  # the only one
    (sub / "scratch.ipynb").write_text("{}")
    target, why = pick_submission(sub, "hw1")
    assert target is None and "nested/mine.ipynb, scratch.ipynb" in why and "hw1.ipynb" in why
    (sub / "hw1.ipynb").write_text("{}")
    (sub / ".ipynb_checkpoints").mkdir()
    (sub / ".ipynb_checkpoints" / "hw1.ipynb").write_text("{}")
    assert pick_submission(sub, "hw1") == (sub / "hw1.ipynb", "")  # the one named for the assignment
    (sub / "nested" / "hw1.ipynb").write_text("{}")
    target, why = pick_submission(sub, "hw1")
    assert target is None and "several are named hw1.ipynb" in why


def _grade(root: Path, nb_files: dict, env) -> dict:
    sub = root / "submission"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir()
    for name, (nb, tasks) in nb_files.items():  # every real assignment imports these in the sandbox
        make_submission(nb, tasks, ["import matplotlib.pyplot as plt\nimport scipy.linalg"], sub / name)
    shutil.rmtree(root / "results", ignore_errors=True)
    # Gradescope copies run_autograder to /autograder and runs it from there
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    _sh(["bash", root / "run_autograder"], env, 600)
    res = json.loads((root / "results" / "results.json").read_text())
    assert {"score", "output", "tests", "execution_time", "visibility", "stdout_visibility"} <= set(res)
    assert isinstance(res["execution_time"], int) and res["visibility"] == "visible"
    for t in res["tests"]:
        assert TEST_KEYS <= set(t) and t["status"] in ("passed", "failed"), t
        assert 0 <= t["score"] <= t["max_score"] and t["visibility"] == "visible"
    assert res["score"] == pytest.approx(sum(t["score"] for t in res["tests"]))
    assert sum(t["max_score"] for t in res["tests"]) == 7
    assert "def test_" not in json.dumps(res)  # hidden-test code never reaches the student
    return res


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_PYTHON.is_file(), reason="needs Debian's /usr/bin/python3 (CI machine)")
@pytest.mark.parametrize("python", [
    pytest.param(SYSTEM_PYTHON, id="system-3.11-pep668"),
    pytest.param(PY310, id="pyenv-3.10", marks=[pytest.mark.slow, pytest.mark.skipif(
        not PY310.is_file(), reason="needs pyenv's Python 3.10.13 (CI machine)")]),
])
def test_setup_and_run_on_a_fresh_python(built, tmp_path, python):
    """setup.sh on a bare interpreter, then three submissions graded: Debian's externally managed
    Python 3.11 (torch: the local CPU wheel) and Python 3.10, Gradescope's Ubuntu 22.04 Python
    (torch 2.13.0 from the index: the CUDA build, ~4.7 GB installed, run on the CPU)."""
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if python == SYSTEM_PYTHON:
        assert Path(f"/usr/lib/python{version}/EXTERNALLY-MANAGED").exists()
    _, nb, bundles = built
    root = _unpack(make_zip("hwfix", bundles, tmp_path, seed=5, timeout=20), tmp_path / "autograder")
    env = _fresh_env(root, FLATLAB_PYTHON=str(python), FLATLAB_TORCH="torch==2.13.0", PIP_NO_CACHE_DIR="1")
    out = _sh(["bash", root / "source" / "setup.sh"], env, 1200).stdout
    venv_py = root / "flatlab-venv" / "bin" / "python"
    assert f"Python {version}" in out and f"from {root}/flatlab-venv/lib/python{version}/site-packages/flatlab" in out
    # installed from the wheel, not editable
    info = _sh([venv_py, "-c", "import importlib.metadata as m, json; d = m.distribution('flatlab');"
                " print(json.dumps([d.read_text('direct_url.json'), str(d.locate_file(''))]))"], env, 60)
    direct, location = json.loads(info.stdout)
    assert "editable" not in (direct or "") and location.endswith("site-packages")

    full = _grade(root, {"my_hw.ipynb": (nb, SOLUTIONS)}, env)
    assert full["score"] == 7 and {t["status"] for t in full["tests"]} == {"passed"}
    assert "manual, ungraded" in full["output"] and "graded my_hw.ipynb" in full["output"]
    blank = _grade(root, {"hwfix.ipynb": (nb, {})}, env)
    assert blank["score"] == 0 and "not implemented" in blank["tests"][0]["output"].lower()
    partial = _grade(root, {"hwfix.ipynb": (nb, {**SOLUTIONS, "hwfix.mse": WRONG_MSE}),
                            "scratch.ipynb": (nb, {})}, env)  # graded: the one named hwfix.ipynb
    by = {t["name"]: t for t in partial["tests"]}
    assert partial["score"] == 2 + 1 + 2
    assert by["hwfix.mse / test_mse_random"]["status"] == "failed"
    assert "wrong value" in by["hwfix.mse / test_mse_random"]["output"]
    assert by["hwfix.mse / test_mse_zero"]["score"] == 1
    two = _grade(root, {"a.ipynb": (nb, SOLUTIONS), "b.ipynb": (nb, SOLUTIONS)}, env)
    assert two["score"] == 0 and "2 notebooks (a.ipynb, b.ipynb)" in two["output"]
    assert "hwfix.ipynb" in two["output"]


@pytest.mark.slow
@pytest.mark.skipif(not PY310.is_file(), reason="needs pyenv's Python 3.10.13 (CI machine)")
def test_setup_resolves_on_python310(built, tmp_path):
    """setup.sh's venv + wheel install on 3.10, and its real requirements resolve (metadata only)."""
    _, _, bundles = built
    root = _unpack(make_zip("hwfix", bundles, tmp_path), tmp_path / "autograder")
    env = _fresh_env(root, FLATLAB_PYTHON=str(PY310), FLATLAB_SETUP_DRY_RUN="1", PIP_NO_CACHE_DIR="1")
    out = _sh(["bash", root / "source" / "setup.sh"], env, 600).stdout
    assert "Python 3.10" in out and "flatlab-venv/lib/python3.10/site-packages/flatlab" in out
    report = json.loads((root / "flatlab-venv" / "resolve.json").read_text())
    got = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}
    assert report["environment"]["python_version"] == "3.10"
    assert {"numpy", "scipy", "matplotlib", "numba", "nbformat"} <= set(got)
    assert got["numpy"] != "2.4.6"  # 2.4 has no cp310 wheel: the range picks an older one
    assert "setup.sh (dry run): torch 2.13.0 is available for this Python" in out
    fetched = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("Downloading ")]
    big = [ln for ln in fetched if " MB)" in ln and float(ln.rsplit("(", 1)[1].split()[0]) > 100]
    assert not big, big  # numpy/scipy/numba wheels are fetched to read their metadata, never torch's
    print(f"3.10 resolve: {len(got)} packages, fetched: {fetched}",
          {k: got[k] for k in ("numpy", "scipy", "matplotlib", "numba")})


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(PYENV))
def test_requirements_resolve_on_newer_pythons(built, tmp_path, version):
    if not PYENV[version].is_file():
        pytest.skip(f"needs pyenv's Python {version} (CI machine)")
    _, _, bundles = built
    root = _unpack(make_zip("hwfix", bundles, tmp_path), tmp_path / "autograder")
    src = root / "source"
    env = dict(os.environ, PIP_NO_CACHE_DIR="1")
    report = tmp_path / "report.json"
    # as setup.sh's dry run: torch's versions for that Python (no 500 MB download), the rest resolved
    p = _sh([sys.executable, "-m", "pip", "--python", PYENV[version], "index", "versions", "torch"], env, 300)
    assert "2.13.0" in p.stdout.split("Available versions:")[1].splitlines()[0].split(", ")
    _sh([sys.executable, "-m", "pip", "--python", PYENV[version], "install", "--dry-run", "--ignore-installed",
         "--quiet", "--report", report, "-r", src / "requirements.txt"], env, 600)
    r = json.loads(report.read_text())
    assert r["environment"]["python_version"] == version
    got = {i["metadata"]["name"].lower() for i in r["install"]}
    assert {"numpy", "scipy", "matplotlib", "numba", "nbformat"} <= got
