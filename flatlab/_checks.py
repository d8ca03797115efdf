"""Argument checks shared by every room: one rule for "a positive number", one error message."""
from __future__ import annotations

import math

__all__ = ["check_positive"]


def check_positive(value, name: str, *, integer: bool = False, allow_zero: bool = False):
    """``value`` if it is a finite number (an int when ``integer``) > 0 (>= 0 with ``allow_zero``).

    Returns it as a float (an int when ``integer``); otherwise raises a ValueError naming
    ``name``. Booleans are refused.
    """
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < 0 or (
            value == 0 and not allow_zero):
        kind = "an int" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return int(value) if integer else float(value)
