"""Results files: the one atomic JSON writer, strict-JSON cleaning and summary statistics."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

__all__ = ["write_json_atomic", "write_text_atomic", "finite", "stats"]


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temp file in the same folder, then os.replace.

    A reader (or a crash, or Ctrl-C) never sees a half-written file: it sees the old file or
    the new one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path, obj) -> Path:
    """Write obj as JSON to path atomically (see :func:`write_text_atomic`); NaN/inf are refused."""
    return write_text_atomic(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")


def finite(obj):
    """Recursively replace NaN/inf floats by None (a diverged run still gives strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def stats(values):
    """{"mean", "min", "max"} of the values that are not None; None when there are none."""
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"mean": sum(v) / len(v), "min": min(v), "max": max(v)}
