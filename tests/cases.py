"""Settings shared by several test files: small datasets, models and runs, quiet runner options,
and the task ids of solutions/hwN.py (the pytest markers of conftest.py)."""
import json
import pathlib
import re

from flatlab.data import make_dataset
from flatlab.models import make_model

# runner keyword arguments for tests: no progress bar, no figures, no log lines
QUIET = {"progress": False, "figures": False, "log": lambda *a: None}

# the cheapest scenario run (scenario3 at the smoke preset: 1-SAM and projected 1-SAM, seconds)
SMOKE_SCENARIO = ("scenario3", "smoke")

# a four-run sweep of scenario3's 1-SAM at the smoke preset: 2 learning rates x 2 seeds
SWEEP_GRID = {"seed": [0, 1], "lr": [0.1, 0.05]}
SWEEP_ARGS = ["scenario3", "--method", "one_sam", "--smoke", "--seeds", "0", "1", "--lr", "0.1", "0.05"]


def tiny_xor(n: int = 12, d: int = 5, n_test: int = 50, seed: int = 0):
    """A small XOR dataset (n training, n_test test points in d dimensions)."""
    return make_dataset("xor", n=n, d=d, n_test=n_test, seed=seed)


def tiny_model(arch: str = "bias", d: int = 5, width: int = 8, seed: int = 0, **kw):
    """A small model of ``arch`` (``make_model`` keywords pass through)."""
    return make_model(arch, d, width, seed=seed, **kw)


ROOT = pathlib.Path(__file__).resolve().parents[1]
_CELL = re.compile(r"# %% (?:\[markdown\] )?flatlab=(\{.*\})\s*$")


def task_forbids() -> dict:
    """{task id: [forbidden dotted names]} for every task and manual cell of solutions/hwN.py."""
    out = {}
    for path in sorted((ROOT / "solutions").glob("hw*.py")):
        for line in path.read_text().splitlines():
            m = _CELL.match(line)
            if m:
                meta = json.loads(m.group(1))
                if meta.get("role") in ("task", "manual"):
                    out[meta["id"]] = list(meta.get("forbid", []))
    return out


def tasks_of(source: str, forbids: dict) -> list:
    """The task ids whose forbidden functions ``source`` calls (by name)."""
    return sorted(task for task, names in forbids.items()
                  if any(re.search(rf"\b{re.escape(n.rsplit('.', 1)[1])}\(", source) for n in names))
