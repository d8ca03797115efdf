"""Run a function in a forked child with a deadline and read its JSON reply: shared by the trusted
helper processes (:mod:`autograder._diagnose`, :mod:`autograder._selfcheck`). Standard library only."""
from __future__ import annotations

import json
import os
import select
import signal
import time

__all__ = ["in_child"]


def in_child(work, timeout: float):
    """Fork; the child (its own process group) runs ``work()`` and writes its JSON-able result to a
    pipe. Returns ``(result, None)``, or ``(None, "timed out" | "died")``: at the deadline the
    child's whole group is killed; a child that exits without a readable reply died."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setpgid(0, 0)
            data = json.dumps(work()).encode()
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            b = os.read(r, 1 << 20)
            if not b:
                break
            chunks.append(b)
    os.close(r)
    if timed_out:
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
    os.waitpid(pid, 0)
    if timed_out:
        return None, "timed out"
    try:
        return json.loads(b"".join(chunks).decode()), None
    except ValueError:
        return None, "died"
