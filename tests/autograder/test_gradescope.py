"""The Gradescope zip: its layout, and its run_autograder on a fake /autograder tree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
from agfixtures import SOLUTIONS, make_submission

from autograder.gradescope import make_zip


def test_zip_layout_is_reproducible(built, tmp_path):
    root, _, bundles = built
    z1 = make_zip("hwfix", bundles, tmp_path / "a")
    z2 = make_zip("hwfix", bundles, tmp_path / "b")
    assert z1.read_bytes() == z2.read_bytes()
    names = zipfile.ZipFile(z1).namelist()
    for need in ("setup.sh", "run_autograder", "requirements.txt", "bundle/hwfix/bundle.json",
                 "pkg/flatlab/models.py", "pkg/autograder/grade.py", "pkg/setup.cfg"):
        assert need in names
    assert not any("solutions/" in n or n.endswith(".ipynb") for n in names)
    with pytest.raises(ValueError, match="no grading bundle"):
        make_zip("hwnope", bundles, tmp_path / "c")


@pytest.mark.slow
def test_run_autograder_on_a_fake_tree(built, tmp_path):
    root, nb, bundles = built
    z = make_zip("hwfix", bundles, tmp_path, seed=5, timeout=20)
    ag = tmp_path / "autograder"
    zipfile.ZipFile(z).extractall(ag / "source")
    (ag / "submission").mkdir()
    tasks = {**SOLUTIONS, "hwfix.mse": "def mse_loss(f, y):\n    return (f - y).abs().mean()\n"}
    fake = "import os, json\nos.makedirs('/autograder/results', exist_ok=True)\nprint('Score: 7/7')\n"
    make_submission(nb, tasks, [fake], ag / "submission" / "my_hw.ipynb")
    env = {**os.environ, "AUTOGRADER_ROOT": str(ag), "AUTOGRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(ag / "source" / "pkg")}
    run = ag / "source" / "run_autograder"
    p = subprocess.run(["bash", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads((ag / "results" / "results.json").read_text())
    assert res["score"] == 2 + 1 + 2
    assert sum(t["max_score"] for t in res["tests"]) == 7
    by = {t["name"]: t for t in res["tests"]}
    assert by["hwfix.mse / test_mse_random"]["status"] == "failed"
    assert "wrong value" in by["hwfix.mse / test_mse_random"]["output"]
    assert by["hwfix.mse / test_mse_zero"]["score"] == 1
    assert all(t["visibility"] == "visible" for t in res["tests"])
    assert "manual, ungraded" in res["output"]
    assert "def test_" not in json.dumps(res)


@pytest.mark.slow
def test_run_autograder_without_a_notebook(built, tmp_path):
    root, nb, bundles = built
    z = make_zip("hwfix", bundles, tmp_path)
    ag = tmp_path / "autograder"
    zipfile.ZipFile(z).extractall(ag / "source")
    (ag / "submission").mkdir()
    (ag / "submission" / "answers.py").write_text("print('hi')")
    env = {**os.environ, "AUTOGRADER_ROOT": str(ag), "AUTOGRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(ag / "source" / "pkg")}
    p = subprocess.run(["bash", str(ag / "source" / "run_autograder")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads((ag / "results" / "results.json").read_text())
    assert res["score"] == 0 and "no .ipynb" in res["output"]
    assert {t["status"] for t in res["tests"]} == {"failed"}
