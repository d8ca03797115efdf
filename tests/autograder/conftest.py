"""Fixture: the hwfix assignment built into a temp folder (student notebook + bundle)."""
from __future__ import annotations

import shutil

import nbformat
import pytest
from agfixtures import FIXTURE

from autograder.build import build_one


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(root, student notebook node, bundles dir) of a fresh build of hwfix."""
    root = tmp_path_factory.mktemp("hwfix")
    (root / "solutions").mkdir()
    shutil.copy(FIXTURE, root / "solutions" / "hwfix.py")
    build_one(root / "solutions" / "hwfix.py", root / "assignments", root / "bundles")
    nb = nbformat.read(str(root / "assignments" / "hwfix.ipynb"), as_version=4)
    return root, nb, root / "bundles"
