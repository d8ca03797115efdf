"""``train(model, data, config)`` -> ``History``: the entry point of ``flatlab.train``.

``config`` is a ``TrainConfig`` (gd, sgd, sam, one_sam), a ``PenaltyConfig`` (explicit
sharpness penalty) or a ``LabelNoiseConfig`` (label-noise SGD); all run in the one loop of
``flatlab.train.loop`` and return the same ``History``.

Backends of a ``TrainConfig``: ``"torch"`` runs the readable reference of
``flatlab.train.reference`` for every architecture, loss and method; ``"engine"`` runs the
numba kernels of ``flatlab.train.engine`` (gd and one_sam, also sgd/sam with batch size 1,
for no_bias / bias / sim_ln, and one_sam for sim_bn; relu, MSE, float64), which match the
reference to 1e-10; ``"auto"`` takes the engine whenever it supports the case.

Epoch orders come from ``torch.Generator().manual_seed(config.seed)``: one
``randperm(n)`` per epoch, the same for both backends.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Dataset
from . import engine
from .config import TrainConfig
from .loop import History, run_loop
from .penalty import LabelNoiseConfig, PenaltyConfig, label_noise_segments, penalty_segments
from .reference import epoch_orders, gd_step, minibatch_epoch

__all__ = ["resolve_backend", "train"]

_ENGINE_CHUNK_STEPS = 50_000  # kernel steps per call (~0.3 s): bounds the Ctrl-C latency
_ENGINE_CHUNK_STEPS_BN = 300  # Sim-BN steps are O(m·n·d)
_ENGINE_CHUNK_STEPS_GD = 300


def _batch_size(config: TrainConfig, n: int) -> int:
    if config.method == "gd":
        if config.batch_size not in (None, n):
            raise ValueError(f"batch_size must be None or n={n} for full-batch gd (use method='sgd'), "
                             f"got {config.batch_size}")
        return n
    return 1 if config.batch_size is None else min(config.batch_size, n)


def _engine_method(model: nn.Module, config: TrainConfig, n: int) -> str | None:
    """The engine kernel ("gd" or "one_sam") that runs this case, or None."""
    mc = getattr(model, "config", None)
    if mc is None or mc.arch == "deep_bias" or model.W1.dtype != torch.float64:
        return None
    b = _batch_size(config, n)
    kernel = "gd" if config.method == "gd" else ("one_sam" if b == 1 else None)
    if kernel is None or not engine.supports(mc.arch, kernel, activation=mc.activation, loss=config.loss):
        return None
    if any(not p.is_contiguous() for p in model.parameters()):
        return None
    return kernel


def resolve_backend(model: nn.Module, data: Dataset, config: TrainConfig) -> str:
    """"engine" or "torch": what ``train`` will run for this model, data and config."""
    kernel = _engine_method(model, config, data.n)
    if config.backend == "engine" and kernel is None:
        raise ValueError(
            "backend='engine' supports gd and one_sam (or sgd/sam with batch size 1) for no_bias, bias, "
            "sim_ln and one_sam for sim_bn, with relu, MSE and float64; use backend='torch' or 'auto'"
        )
    if config.backend == "torch" or kernel is None:
        return "torch"
    return "engine"


def _segments(model, data: Dataset, config: TrainConfig, backend: str):
    """The loop segments of a TrainConfig (one per phase) and the chunk size."""
    dtype = next(model.parameters()).dtype
    X, y = data.X_train.to(dtype), data.y_train.to(dtype)
    n = X.shape[0]
    bs = _batch_size(config, n)
    kernel = _engine_method(model, config, n) if backend == "engine" else None
    gen = torch.Generator().manual_seed(config.seed)
    arch = getattr(getattr(model, "config", None), "arch", None)
    chunk = 1
    if kernel is not None:
        # numpy views sharing memory with the parameters: the engine updates the model itself
        arrays = {k: p.detach().numpy() for k, p in model.named_parameters()}
        Xn, yn = X.numpy(), y.numpy()
        X_ref = model.reference.numpy() if arch == "sim_bn" else None
        eps = model.config.eps
        if kernel == "gd":
            chunk = _ENGINE_CHUNK_STEPS_GD
        else:
            chunk = max(1, (_ENGINE_CHUNK_STEPS_BN if arch == "sim_bn" else _ENGINE_CHUNK_STEPS) // n)

    def phase_advance(phase):
        rho = phase.rho if config.method in ("sam", "one_sam") else 0.0

        def advance(epoch: int, k: int) -> None:
            if config.method == "gd":
                if kernel is not None:
                    engine.gd(arrays, arch, Xn, yn, k, phase.lr, weight_decay=config.weight_decay,
                              project_norm=config.project_norm, eps=eps)
                else:
                    for _ in range(k):
                        gd_step(model, X, y, phase.lr, config.loss, config.weight_decay, config.project_norm)
                return
            orders = epoch_orders(n, k, gen)
            if kernel is not None:
                engine.one_sam(arrays, arch, Xn, yn, orders.numpy(), phase.lr, rho,
                               weight_decay=config.weight_decay, project_norm=config.project_norm,
                               eps=eps, X_ref=X_ref, bn_stat=model.config.bn_stat)
            else:
                for order in orders:
                    minibatch_epoch(model, X, y, phase.lr, rho, order, config.loss, batch_size=bs,
                                    weight_decay=config.weight_decay, project_norm=config.project_norm)

        return advance

    return [(phase.epochs, phase_advance(phase)) for phase in config.phases], chunk


def train(model: nn.Module, data: Dataset, config, *, progress: bool = False) -> History:
    """Train ``model`` in place on ``data.X_train, data.y_train`` (n, d), (n,) as ``config`` says.

    ``config``: a ``TrainConfig``, ``PenaltyConfig`` or ``LabelNoiseConfig``. Returns the
    ``History`` logged at epoch 0, every ``config.log_every`` epochs, at the end and (TrainConfig
    ``log_per_decade``) on a log-spaced grid. Ctrl-C
    stops the run at the next chunk boundary: the current state is recorded as the last
    entry, ``history.interrupted`` is set, and the history is returned.
    Deterministic: same initial model, data and config give the same history and weights.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a flatlab model (torch.nn.Module), got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a flatlab.data.Dataset, got {type(data).__name__}")
    if isinstance(config, PenaltyConfig):
        segments = penalty_segments(model, data, config)
        return run_loop(model, data, segments, log_every=config.log_every, loss=config.loss,
                        progress=progress, desc="penalty")
    if isinstance(config, LabelNoiseConfig):
        segments = label_noise_segments(model, data, config)
        return run_loop(model, data, segments, log_every=config.log_every, loss="mse",
                        progress=progress, desc="label_noise")
    if not isinstance(config, TrainConfig):
        raise ValueError(
            "config must be a TrainConfig, PenaltyConfig or LabelNoiseConfig, "
            f"got {type(config).__name__}"
        )
    backend = resolve_backend(model, data, config)
    segments, chunk = _segments(model, data, config, backend)
    return run_loop(model, data, segments, log_every=config.log_every, loss=config.loss, chunk=chunk,
                    progress=progress, desc=f"{config.method}/{backend}", log_per_decade=config.log_per_decade)
