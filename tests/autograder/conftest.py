"""Fixture: the hwfix assignment built into a temp folder (student notebook + bundle)."""
from __future__ import annotations


import pytest
from agfixtures import FIXTURE, build_fixture



@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(root, student notebook node, bundles dir) of a fresh build of hwfix."""
    root = tmp_path_factory.mktemp("hwfix")
    nb, bundles = build_fixture(FIXTURE, root)
    return root, nb, bundles
