"""flatlab: when do flat minima explain generalization? (Wen, Li & Ma, NeurIPS 2023)

The library behind the course: datasets, the model zoo, sharpness measures, SAM and
1-SAM, a fast training engine, the flattest-solution constructions, plots and a CLI.
Submodules are imported lazily by name: ``flatlab.sharpness``, ``flatlab.engine`` …
"""
from __future__ import annotations

import importlib

from .data import Dataset, ball_data, make_dataset, sparse_parity, xor_parity
from .losses import accuracy, logistic, mse, zero_one_error
from .models import flatten_params, make_model, unflatten_params

__version__ = "0.1.0"

_SUBMODULES = (
    "data", "models", "losses", "sharpness", "optim", "engine", "training",
    "constructions", "diagnostics", "penalty", "beyond", "experiments", "appendix", "plotting", "cli",
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
