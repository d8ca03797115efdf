"""Settings shared by several test files: small datasets, models and runs, quiet runner options."""
from flatlab.data import make_dataset
from flatlab.models import make_model

# runner keyword arguments for tests: no progress bar, no figures, no log lines
QUIET = {"progress": False, "figures": False, "log": lambda *a: None}

# a four-run sweep of scenario3's 1-SAM at the smoke preset: 2 learning rates x 2 seeds
SWEEP_GRID = {"seed": [0, 1], "lr": [0.1, 0.05]}
SWEEP_ARGS = ["scenario3", "--method", "one_sam", "--smoke", "--seeds", "0", "1", "--lr", "0.1", "0.05"]


def tiny_xor(n: int = 12, d: int = 5, n_test: int = 50, seed: int = 0):
    """A small XOR dataset (n training, n_test test points in d dimensions)."""
    return make_dataset("xor", n=n, d=d, n_test=n_test, seed=seed)


def tiny_model(arch: str = "bias", d: int = 5, width: int = 8, seed: int = 0, **kw):
    """A small model of ``arch`` (``make_model`` keywords pass through)."""
    return make_model(arch, d, width, seed=seed, **kw)
