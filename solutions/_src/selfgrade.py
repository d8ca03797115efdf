"""A quick in-process dry run of a notebook's hidden tests (an authoring aid, not the grader).

It imitates the grader's contract from ``autograder/FORMAT.md`` without a sandbox: the
setup and task cells run in a "student" namespace, the hidden-test cells in a trusted
one, and ``student.fn(...)`` passes copies of its arguments (models rebuilt from config
and weights) and returns plain data (tensors become numpy arrays). Use it while writing
tests; the real grade comes from ``python -m autograder grade``.

Usage: ``python solutions/_src/selfgrade.py solutions/hw0.ipynb [--stub] [--seed 3]``
(``--stub`` replaces every solution region with ``raise NotImplementedError`` first).
"""
from __future__ import annotations

import argparse
import copy
import re
import time

import nbformat
import numpy as np
import torch

import flatlab
from flatlab.models import get_params, model_from_config

_REGION = re.compile(r"^(?P<ind>[ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*$", re.S | re.M)


def stub(source: str, task_id: str) -> str:
    return _REGION.sub(lambda m: f"{m['ind']}raise NotImplementedError('Task {task_id}')", source)


def _to_plain(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().copy()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (list, tuple)):
        return type(x)(_to_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if x is None or isinstance(x, (bool, int, float, str, np.floating, np.integer)):
        return x
    raise TypeError(f"returned an object of type {type(x).__name__}; expected a number/array")


def _send(x):
    if isinstance(x, torch.nn.Module):
        ref = getattr(x, "reference", None)
        return model_from_config(x.config, get_params(x), X_ref=None if ref is None else ref.clone())
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, (list, tuple)):
        return type(x)(_send(v) for v in x)
    if isinstance(x, dict):
        return {k: _send(v) for k, v in x.items()}
    return copy.deepcopy(x)


def _back(x):
    """Arguments after a call come back as plain data: a model as {"config", "params", "reference"}."""
    if isinstance(x, torch.nn.Module):
        ref = getattr(x, "reference", None)
        return {"config": x.config.to_dict(), "params": {k: _to_plain(v) for k, v in get_params(x).items()},
                "reference": None if ref is None else _to_plain(ref)}
    return _to_plain(x)


class Student:
    def __init__(self, ns):
        self._ns = ns

    def call(self, name, *args, return_args=False, **kwargs):
        args, kwargs = _send(args), _send(kwargs)
        out = _to_plain(self._ns[name](*args, **kwargs))
        if return_args:
            return out, tuple(_back(a) for a in args)
        return out

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *a, **k: self.call(name, *a, **k)


def assert_close(got, want, rtol=1e-7, atol=0.0):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want.detach() if isinstance(want, torch.Tensor) else want, dtype=float)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def run(path, *, stub_all=False, seed=0, wrong=None):
    nb = nbformat.read(path, as_version=4)
    sns, tns = {"__name__": "__student__"}, {"np": np, "torch": torch, "flatlab": flatlab,
                                              "assert_close": assert_close, "__name__": "__tests__"}
    points, tests = {}, []
    for cell in nb.cells:
        meta = cell.metadata.get("flatlab", {})
        role = meta.get("role", "code")
        if cell.cell_type != "code" or role in ("public_test", "experiment"):
            continue
        src = cell.source
        if role == "task":
            points[meta["id"]] = meta["points"]
            if stub_all or meta["id"] == wrong:
                src = stub(src, meta["id"])
        if role == "hidden_test":
            before = set(tns)
            exec(compile(src, f"<hidden {meta['id']}>", "exec"), tns)
            tests += [(meta["id"], k) for k in tns if k.startswith("test_") and k not in before]
        else:
            exec(compile(src, f"<{role}>", "exec"), sns)
    student = Student(sns)
    earned = {k: 0.0 for k in points}
    per_task = {k: [t for i, t in tests if i == k] for k in points}
    total = 0.0
    for task, names in per_task.items():
        fixed = {n: getattr(tns[n], "points") for n in names if hasattr(tns[n], "points")}
        rest = [n for n in names if n not in fixed]
        share = (points[task] - sum(fixed.values())) / max(len(rest), 1)
        for name in names:
            rng = np.random.default_rng([seed, sum(map(ord, name))])
            t0 = time.perf_counter()
            try:
                tns[name](student, rng)
                ok, msg = True, ""
            except Exception as exc:  # noqa: BLE001
                ok, msg = False, f"{type(exc).__name__}: {str(exc)[:200]}"
            dt = time.perf_counter() - t0
            pts = fixed.get(name, share)
            earned[task] += pts if ok else 0.0
            print(f"  {'PASS' if ok else 'FAIL'} {task:28s} {name:40s} {dt:6.2f}s {msg}")
        total += points[task]
        if not names:
            print(f"  NO HIDDEN TESTS for {task}")
    print(f"{path}: {sum(earned.values()):.2f} / {total:.2f}")
    return earned, points


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebook")
    p.add_argument("--stub", action="store_true")
    p.add_argument("--wrong", default=None, help="stub only this task id")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    run(a.notebook, stub_all=a.stub, seed=a.seed, wrong=a.wrong)
