"""The self-check runner of ``python -m autograder mistakes`` (run as ``python -m autograder._selfcheck``).

It runs an assignment's solution notebook the way a student runs it on a laptop, with the
full flatlab: setup, task and public_test cells in order (experiment, hidden_test, mistake and
markdown cells skipped), recording each public_test cell's outcome. Each registered mistake
is tried in a fork taken just before its task cell runs: the child runs that cell with the
mistake's source appended (the variant replaces the function) and every later cell up to the
task's last self-check, reports its outcomes and exits; the parent then runs the reference cell and goes on. So the cells
before a task run once for all of its mistakes, and a mistake never leaks into another run.

Protocol: a JSON request on stdin ``{"cells": [{"role", "id", "source"}], "mistakes": [{"key",
"task", "source"}], "timeout": seconds per mistake}``; a JSON reply on stdout
``{"reference": run, "mistakes": {key: run}}`` with ``run = {"checks": [{"cell", "id",
"passed", "type", "message"}], "errors": [{"cell", "role", "type", "message"}], "timeout":
bool}``. The notebook's own output goes to /dev/null. Instructor code only: this is no
sandbox.
"""
from __future__ import annotations

import json
import os
import sys

from autograder._child import in_child

_MAX_MESSAGE = 2000


def _outcome(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(exc)[:_MAX_MESSAGE]


def _run_cells(cells, start: int, ns: dict, extra: tuple[str, str] | None, run: dict, forks=None,
               stop: int | None = None) -> None:
    """Run ``cells[start:stop]`` in ``ns``; ``extra`` = (task id, source appended to that task's
    cell). ``forks(index)`` is called before each task cell (the parent's hook to try its mistakes)."""
    from autograder.notebook import strip_magics

    for k in range(start, len(cells) if stop is None else stop):
        cell = cells[k]
        role, tid, src = cell["role"], cell.get("id"), cell["source"]
        if role not in ("code", "task", "public_test"):
            continue
        if role == "task" and forks is not None:
            forks(k)
        if role == "task" and extra is not None and extra[0] == tid and k == start:
            src = src.rstrip("\n") + "\n\n\n" + extra[1]
        try:
            exec(compile(strip_magics(src), f"<cell {k}>", "exec"), ns)
        except BaseException as e:  # noqa: BLE001 - a notebook cell may raise anything, even SystemExit
            t, m = _outcome(e)
            if role == "public_test":
                run["checks"].append({"cell": k, "id": tid, "passed": False, "type": t, "message": m})
            else:
                run["errors"].append({"cell": k, "role": role, "type": t, "message": m})
            continue
        if role == "public_test":
            run["checks"].append({"cell": k, "id": tid, "passed": True, "type": "", "message": ""})


def _new_run() -> dict:
    return {"checks": [], "errors": [], "timeout": False}


def _try_mistake(cells, k: int, ns: dict, mistake: dict, timeout: float) -> dict:
    """Fork; the child runs cells[k:] with the mistake appended to cell k and reports on a pipe."""
    def work():
        run = _new_run()
        # up to the task's last self-check: later cells cannot change its outcome
        mine = [i for i, c in enumerate(cells) if i > k and c["role"] == "public_test"
                and c.get("id") == mistake["task"]]
        _run_cells(cells, k, ns, (mistake["task"], mistake["source"]), run,
                   stop=mine[-1] + 1 if mine else None)
        return run

    run, why = in_child(work, timeout)
    if why == "timed out":
        return {**_new_run(), "timeout": True}
    if run is None:
        return {**_new_run(), "errors": [{"cell": k, "role": "task", "type": "crashed",
                                          "message": "the notebook process died"}]}
    return run


def main() -> int:
    req = json.loads(sys.stdin.read())
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import numpy  # noqa: F401  (imported once, before any fork)
    import torch
    torch.set_num_threads(1)  # forks after torch has run: keep its thread pools out of it
    import flatlab  # noqa: F401
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass
    from autograder import magics

    cells, timeout = req["cells"], float(req["timeout"])
    by_task: dict[str, list[dict]] = {}
    for m in req["mistakes"]:
        by_task.setdefault(m["task"], []).append(m)
    ns = magics.install({"__name__": "__main__"})
    results: dict[str, dict] = {}

    def forks(k: int) -> None:
        for m in by_task.get(cells[k].get("id"), []):
            if m["key"] not in results:
                results[m["key"]] = _try_mistake(cells, k, ns, m, timeout)

    reference = _new_run()
    _run_cells(cells, 0, ns, None, reference, forks)
    for m in req["mistakes"]:  # a task cell that never ran (no such cell): not checked
        results.setdefault(m["key"], {**_new_run(), "errors": [
            {"cell": None, "role": "task", "type": "missing", "message": f"no task cell {m['task']}"}]})
    with os.fdopen(out_fd, "w") as f:
        f.write(json.dumps({"reference": reference, "mistakes": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
