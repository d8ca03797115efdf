"""flatlab: when do flat minima explain generalization? (Wen, Li & Ma, NeurIPS 2023)

The library behind the course, in rooms that import only the rooms below them:
``data``, ``losses``, ``models`` -> ``_closed_form`` -> ``sharpness``, ``constructions``,
``diagnostics`` -> ``train`` (configs, torch reference optimizers, numba engine, the one
training loop) -> ``lab`` (scenario specs, the runner and its executors, figures, sweeps)
-> ``cli``. Submodules are imported lazily by name: ``flatlab.sharpness``, ``flatlab.train`` …
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .data import Dataset, ball_data, make_dataset, sparse_parity, xor_parity
from .losses import accuracy, logistic, mse, zero_one_error
from .models import flatten_params, make_model, unflatten_params


_SUBMODULES = (
    "data", "models", "losses", "sharpness", "constructions", "diagnostics", "train", "lab", "cli",
)

__all__ = [
    "__version__",
    "Dataset", "xor_parity", "sparse_parity", "ball_data", "make_dataset",
    "mse", "logistic", "zero_one_error", "accuracy",
    "make_model", "flatten_params", "unflatten_params",
]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'flatlab' has no attribute {name!r}")
