"""The trusted diagnosis server (``python -m autograder._diagnose``), see :mod:`autograder.diagnose`.

It holds the full flatlab and the reference solution: the first message ``{"reference":
[cell sources]}`` runs those cells once in a fresh namespace (this process's stdout and
stderr go to /dev/null). Each later message ``{"source", "function", "calls": [{"args",
"kwargs", "return_args"}], "timeout"}`` is answered from a fork of that state: the child runs
the mistake's source (the variant replaces the function), calls it on each recorded
(codec-encoded) argument list and replies ``{"ok": true, "results": [{"result", "args"} |
{"error"}]}``; a child past ``timeout`` seconds is killed (``{"ok": false, "error"}``). One
JSON message per line on the process's own stdin/stdout. Instructor code only: no sandbox.
"""
from __future__ import annotations

import json
import os
import sys

from autograder._child import in_child


def _answer(ns: dict, req: dict) -> dict:
    from autograder import codec
    from autograder.notebook import strip_magics

    exec(compile(strip_magics(req["source"]), "<mistake>", "exec"), ns)
    fn = ns.get(req["function"])
    if not callable(fn):
        return {"ok": False, "error": f"the mistake defines no function {req['function']!r}"}
    out = []
    for call in req["calls"]:
        try:
            args = codec.decode(call["args"], tensors=True, models=True)
            kwargs = codec.decode(call["kwargs"], tensors=True, models=True)
            res = fn(*args, **kwargs)
            rec = {"result": codec.encode(res)}
            if call.get("return_args"):
                rec["args"] = codec.encode(list(args), "plain data")
            out.append(rec)
        except BaseException as e:  # noqa: BLE001
            out.append({"error": f"{type(e).__name__}: {str(e)[:300]}"})
    return {"ok": True, "results": out}


def _fork_answer(ns: dict, req: dict) -> dict:
    def work():
        try:
            return _answer(ns, req)
        except BaseException as e:  # noqa: BLE001
            return {"ok": False, "error": f"{type(e).__name__}: {str(e)[:300]}"}

    rep, why = in_child(work, float(req.get("timeout", 60)))
    if why == "timed out":
        return {"ok": False, "error": "timed out"}
    return rep if rep is not None else {"ok": False, "error": "the diagnosis process died"}


def main() -> int:
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch
    torch.set_num_threads(1)  # this process forks after torch has run
    from autograder import magics
    from autograder.notebook import strip_magics

    first = json.loads(inp.readline())
    ns = magics.install({"__name__": "__main__"})
    errors = []
    for k, src in enumerate(first["reference"]):
        try:
            exec(compile(strip_magics(src), f"<reference cell {k}>", "exec"), ns)
        except BaseException as e:  # noqa: BLE001
            errors.append(f"cell {k}: {type(e).__name__}: {str(e)[:200]}")
    out.write(json.dumps({"ok": not errors, "errors": errors}) + "\n")
    for line in inp:
        if not line.strip():
            continue
        out.write(json.dumps(_fork_answer(ns, json.loads(line))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
