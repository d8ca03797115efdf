"""The grader's trusted pieces (assert_close, the static forbid scan, per-test rngs) and
end-to-end properties: determinism, return_args, the non-isolated fallback."""
from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import torch
from agfixtures import SOLUTIONS, make_submission

from autograder.grade import _test_rng, assert_close, grade_notebook, grade_paths, load_bundle, static_forbidden
from autograder.sandbox import SandboxConfig, Session, StudentError


def test_assert_close_accepts_within_tolerance_and_explains_failures():
    assert_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]), rtol=1e-6)
    assert_close(3, 3.0)
    assert_close(np.array([[2.0]]), 2.0)  # one-element results compare as scalars
    with pytest.raises(AssertionError, match=r"at index \(1,\): got 2.5, expected 2 .*1 of 2 entries"):
        assert_close(np.array([1.0, 2.5]), np.array([1.0, 2.0]))
    with pytest.raises(AssertionError, match=r"shape \(3,\); expected shape \(2,\)"):
        assert_close(np.zeros(3), np.zeros(2))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(np.array([np.nan]), np.array([1.0]))
    for bad in (None, "1.0", True, {"a": 1}, [object()]):
        with pytest.raises(AssertionError, match="expected a number or an array"):
            assert_close(bad, 1.0)


def test_static_forbidden_scan():
    names = ["flatlab.models.flatten_params", "torch.linalg.eigh"]
    assert static_forbidden("def f(m):\n    return flatlab.flatten_params(m)\n", names) == [names[0]]
    assert static_forbidden("from flatlab.models import flatten_params as fp\n", names) == [names[0]]
    assert static_forbidden("def f(m):\n    return getattr(flatlab.models, 'flatten_params')(m)\n", names) == [names[0]]
    assert static_forbidden("x = torch.linalg.eigh(a)\n", names) == [names[1]]
    assert static_forbidden("# flatten_params is not allowed\ndef f(m):\n    '''no flatten_params'''\n", names) == []
    assert static_forbidden("def f(:\n", names) == []  # a syntax error is the cell's problem, not a hit


def test_test_rng_depends_on_seed_and_name_only():
    a = _test_rng(3, "hw0.t", "test_a").integers(1 << 30, size=4)
    assert np.array_equal(a, _test_rng(3, "hw0.t", "test_a").integers(1 << 30, size=4))
    assert not np.array_equal(a, _test_rng(4, "hw0.t", "test_a").integers(1 << 30, size=4))
    assert not np.array_equal(a, _test_rng(3, "hw0.t", "test_b").integers(1 << 30, size=4))


def _strip(r):
    return {k: v for k, v in r.items() if k != "sandbox"}


@pytest.mark.slow
def test_regrading_is_deterministic(built, tmp_path):
    root, nb, bundles = built
    bundle = load_bundle(bundles, "hwfix")
    partial = {"hwfix.square": SOLUTIONS["hwfix.square"],
               "hwfix.mse": "def mse_loss(f, y):\n    return (f - y).abs().mean()\n"}
    make_submission(nb, partial, [], tmp_path / "p.ipynb")
    make_submission(nb, SOLUTIONS, [], tmp_path / "r.ipynb")
    paths = [tmp_path / "p.ipynb", tmp_path / "r.ipynb"]
    cfg = SandboxConfig(timeout=20)
    a = grade_paths(paths, bundle, seed=11, jobs=2, cfg=cfg)
    b = grade_paths(paths, bundle, seed=11, jobs=1, cfg=cfg)
    assert json.dumps([_strip(r) for r in a], sort_keys=True) == json.dumps([_strip(r) for r in b], sort_keys=True)
    c = grade_paths(paths, bundle, seed=12, jobs=2, cfg=cfg)
    assert [r["score"] for r in a] == [r["score"] for r in c] == [3.0, 7.0]
    # a different seed feeds different inputs: the wrong-value message changes
    msg = [t["message"] for r in (a[0], c[0]) for t in r["tasks"][1]["tests"] if t["kind"] == "wrong"]
    assert len(msg) == 2 and msg[0] != msg[1]


@pytest.mark.slow
def test_session_return_args_forbid_and_fallback():
    cells = [(0, "import torch, flatlab\n"
                 "def bump(model, k):\n    with torch.no_grad():\n        model.W2.add_(k)\n    return float(k)\n"
                 "def cheat(model):\n    return flatlab.flatten_params(model).numel()\n"
                 "def honest(model):\n    return sum(p.numel() for p in model.parameters())\n")]
    model = __import__("flatlab").make_model("bias", 3, 4, seed=0)
    for isolate in (True, False):
        s = Session(cells, SandboxConfig(timeout=20, isolate=isolate))
        try:
            res, after = s.call("bump", (model, 2.0), {}, return_args=True)
            assert res == 2.0 and after[1] == 2.0
            assert np.allclose(after[0]["params"]["W2"], model.W2.detach().numpy() + 2)
            assert s.call("honest", (model,), {}, forbid=["flatlab.models.flatten_params"])[0] == 20
            with pytest.raises(StudentError) as e:
                s.call("cheat", (model,), {}, forbid=["flatlab.models.flatten_params"])
            assert e.value.kind == "forbidden"
            assert s.call("cheat", (model,), {})[0] == 20  # allowed where not forbidden
            assert s.protections["uid"] is isolate
        finally:
            s.close()
    assert torch.equal(model.W2, __import__("flatlab").make_model("bias", 3, 4, seed=0).W2)  # parent untouched


def test_missing_file_is_invalid(built, tmp_path):
    _, _, bundles = built
    r = grade_notebook(tmp_path / "nothing.ipynb", load_bundle(bundles, "hwfix"))
    assert r["status"] == "invalid" and r["score"] == 0 and r["max_score"] == 7
    with pytest.raises(ValueError, match="no grading bundle"):
        load_bundle(bundles, "hw42")


def test_submission_cells_find_tasks_without_metadata(built):
    from autograder.grade import _asg
    from autograder.notebook import strip_magics, submission_cells
    _, nb, bundles = built
    asg = _asg(load_bundle(bundles, "hwfix"))
    sub = make_submission(nb, {"hwfix.square": "%time 1\ndef square(x):\n    return x * x\n"})
    for c in sub.cells:  # a student copied the task cells into fresh cells: metadata lost
        if c.metadata.get("flatlab", {}).get("role") == "task":
            c.metadata = {}
    sub.cells.append(nbformat.v4.new_code_cell("def num_params(model):\n    return 0\n"))  # redefined later
    run, task_src = submission_cells(sub, asg)
    roles = {c.metadata.get("flatlab", {}).get("role") for i, c in enumerate(sub.cells) if i in dict(run)}
    assert roles <= {None}  # public tests, experiments are not run
    assert "x * x" in task_src["hwfix.square"] and task_src["hwfix.nparams"].endswith("return 0\n")
    assert strip_magics("%time 1\n!ls\nx = 1") == "# %time 1\n# !ls\nx = 1"


def test_trusted_lock_is_held_by_hidden_tests_and_released_while_the_student_runs():
    """Hidden tests (trusted torch code) run one at a time across --jobs threads, but the lock is
    released while a test waits for the student's worker, so submissions still grade in parallel."""
    from autograder import grade as G

    seen = []

    class FakeSession:
        def call(self, name, args, kwargs, **kw):
            seen.append(("in student call", G._TRUSTED.locked()))
            return 42, None

    student = G._Student(FakeSession(), (), budget=10.0)
    with G._TRUSTED:
        seen.append(("in hidden test", G._TRUSTED.locked()))
        assert student.square(3) == 42
        seen.append(("after student call", G._TRUSTED.locked()))
    assert seen == [("in hidden test", True), ("in student call", False), ("after student call", True)]
    assert not G._TRUSTED.locked()


def test_forbid_name_in_a_missing_module_is_ignored_not_a_crash():
    from autograder.worker import _resolve

    assert _resolve("flatlab.no_such_module.fn") is None
    assert _resolve("flatlab.models.no_such_function") is None
    import flatlab.models

    assert _resolve("flatlab.models.make_model") is flatlab.models.make_model
