"""Training: configs, the torch reference optimizers, the numba engine and the one loop.

Rooms, lowest first: ``config`` (Phase, TrainConfig), ``reference`` (readable torch SAM,
1-SAM, GD+wd, projection), ``engine`` (all numba kernels), ``penalty`` (explicit
sharpness penalty and label-noise SGD: configs and step functions), ``loop`` (the epoch
loop and ``History``), ``run`` (``train(model, data, config)``).

    from flatlab.train import Phase, TrainConfig, train
    history = train(model, data, TrainConfig("one_sam", (Phase(100, 0.01, 0.05),)))
"""
from __future__ import annotations

from .config import BACKENDS, METHODS, Phase, TrainConfig
from .loop import History
from .penalty import LabelNoiseConfig, PenaltyConfig
from .run import resolve_backend, train

__all__ = ["METHODS", "BACKENDS", "Phase", "TrainConfig", "History", "PenaltyConfig", "LabelNoiseConfig",
           "resolve_backend", "train"]
