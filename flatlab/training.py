"""The training entry point: ``train(model, data, TrainConfig(...))`` -> ``History``.

Methods: ``"gd"`` (full-batch GD), ``"sgd"`` (minibatch SGD), ``"sam"`` (minibatch SAM),
``"one_sam"`` (SAM with batch size 1), each with optional weight decay (added to the
gradient as wd·θ) and the projected variant (after each step (W1, b1) is rescaled to
``project_norm``, Fig. 6b). A run is a sequence of ``Phase`` s (epochs, lr, ρ).

Backends: ``"torch"`` runs the readable reference of ``flatlab.optim`` for every
architecture, loss and method; ``"engine"`` runs the numba kernels of ``flatlab.engine``
(gd and one_sam, also sgd/sam with batch size 1, for no_bias / bias / sim_ln, and
one_sam for sim_bn; relu, MSE, float64), which match the reference to 1e-10;
``"auto"`` takes the engine whenever it supports the case.

Every ``log_every`` epochs (and at epoch 0 and at the end) the history records the
training loss, the test accuracy on ``data.X_test`` and the Gauss-Newton trace
``flatlab.sharpness.hessian_trace(..., method="gauss_newton")``. One record costs about
as much as 3,000-10,000 engine 1-SAM steps at width 500 with 10,000 test points (the test
forward pass dominates; the Sim-LN/Sim-BN trace uses per-example gradients), so keep
``log_every`` >= 100 epochs for engine runs (>= 1,000 for the paper's long schedules).

Epoch orders come from ``torch.Generator().manual_seed(config.seed)``: one
``randperm(n)`` per epoch, the same for both backends.
"""
from __future__ import annotations

import math
import signal
import threading
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import engine
from .data import Dataset
from .losses import accuracy, get_loss
from .optim import epoch_orders, gd_step, minibatch_epoch

__all__ = ["METHODS", "BACKENDS", "Phase", "TrainConfig", "History", "resolve_backend", "train"]

METHODS = ("gd", "sgd", "sam", "one_sam")
BACKENDS = ("auto", "torch", "engine")
_ENGINE_CHUNK_STEPS = 50_000  # kernel steps per call (~0.3 s): bounds the Ctrl-C latency
_ENGINE_CHUNK_STEPS_BN = 300  # Sim-BN steps are O(m·n·d)
_ENGINE_CHUNK_STEPS_GD = 300
_TEST_CHUNK = 512  # rows of X_test per forward pass when logging


def _number(value, name, *, minimum=0.0, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Phase:
    """A stretch of training with a fixed learning rate and SAM radius."""

    epochs: int  # number of epochs in this phase (an integral float such as 2e5 is accepted)
    lr: float  # learning rate
    rho: float = 0.0  # SAM radius (ignored by gd/sgd)

    def __post_init__(self):
        e = self.epochs
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not float(e).is_integer() or e < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {e!r}")
        object.__setattr__(self, "epochs", int(e))
        object.__setattr__(self, "lr", _number(self.lr, "lr", strict=True))
        object.__setattr__(self, "rho", _number(self.rho, "rho"))


@dataclass(frozen=True)
class TrainConfig:
    """How to train: method, phases and everything else a run needs (recorded with results)."""

    method: str  # "gd" (full batch), "sgd" (minibatch), "sam" (minibatch SAM), "one_sam" (SAM, batch 1)
    phases: tuple  # tuple[Phase, ...], run in order
    weight_decay: float = 0.0  # L2 coefficient added to the gradient (wd * theta)
    batch_size: int | None = None  # None: n for gd, 1 for one_sam, sgd and sam
    project_norm: float | None = None  # Fig. 6b: after each step rescale (W1, b1) to this Frobenius norm
    loss: str = "mse"  # "mse" or "logistic"
    seed: int = 0  # seeds the example order (and nothing else)
    log_every: int = 100  # epochs between history records (also logs epoch 0 and the last)
    backend: str = "auto"  # "auto": fast engine when it supports the case, else torch; "torch"; "engine"

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        phases = self.phases
        if isinstance(phases, Phase):
            phases = (phases,)
        ok = isinstance(phases, (tuple, list)) and phases and all(isinstance(p, Phase) for p in phases)
        if not ok:
            raise ValueError(f"phases must be a non-empty tuple of Phase, got {self.phases!r}")
        object.__setattr__(self, "phases", tuple(phases))
        object.__setattr__(self, "weight_decay", _number(self.weight_decay, "weight_decay"))
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise ValueError(f"batch_size must be None or an int >= 1, got {b!r}")
        if self.method == "one_sam" and b not in (None, 1):
            raise ValueError(f"batch_size must be None or 1 for one_sam (use method='sam'), got {b!r}")
        if self.project_norm is not None:
            object.__setattr__(self, "project_norm", _number(self.project_norm, "project_norm", strict=True))
        if self.loss not in ("mse", "logistic"):
            raise ValueError(f"loss must be 'mse' or 'logistic', got {self.loss!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        le = self.log_every
        if isinstance(le, bool) or not isinstance(le, int) or le < 1:
            raise ValueError(f"log_every must be an int >= 1, got {le!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def epochs(self) -> int:
        """Total number of epochs over all phases."""
        return sum(p.epochs for p in self.phases)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """What ``train`` logged; one entry per logged epoch."""

    epoch: list = field(default_factory=list)  # global epoch (0 = before training)
    train_loss: list = field(default_factory=list)  # loss on the training set
    test_acc: list = field(default_factory=list)  # accuracy on data.X_test
    trace: list = field(default_factory=list)  # Gauss-Newton trace of the training-loss Hessian
    interrupted: bool = False  # True if Ctrl-C stopped the run (the last entry is the state then)

    def to_dict(self) -> dict:
        return {"epoch": list(self.epoch), "train_loss": list(self.train_loss),
                "test_acc": list(self.test_acc), "trace": list(self.trace)}

    def __len__(self) -> int:
        return len(self.epoch)


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


class _Interrupt:
    """Turn Ctrl-C into a flag checked between chunks, so the state is always consistent.

    A second Ctrl-C raises KeyboardInterrupt at once. Only installed in the main thread.
    """

    def __init__(self):
        self.flag = False
        self._old = None

    def _handler(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _record(history: History, model, data, X, y, loss_fn, loss_name, epoch):
    from .sharpness import hessian_trace  # lazy: keeps this module importable on its own

    if history.epoch and history.epoch[-1] == epoch:
        return
    with torch.no_grad():
        train_loss = float(loss_fn(model(X), y))
        Xt = data.X_test.to(X.dtype)
        # chunks of 512 rows keep the (rows, m) activations in cache: ~2-3x faster than one pass
        f_test = torch.cat([model(Xt[i : i + _TEST_CHUNK]) for i in range(0, Xt.shape[0], _TEST_CHUNK)])
        test_acc = accuracy(f_test, data.y_test.to(X.dtype))
    trace = float(hessian_trace(model, X, y, loss=loss_name, method="gauss_newton"))
    history.epoch.append(epoch)
    history.train_loss.append(train_loss)
    history.test_acc.append(test_acc)
    history.trace.append(trace)


def train(model: nn.Module, data: Dataset, config: TrainConfig, *, progress: bool = False) -> History:
    """Train ``model`` in place on ``data.X_train, data.y_train`` (n, d), (n,) as ``config`` says.

    ``config`` may also be a ``flatlab.penalty.PenaltyConfig`` or ``LabelNoiseConfig``
    (methods "penalty" and "label_noise"), dispatched to ``flatlab.penalty``.

    Returns the ``History`` logged at epoch 0, every ``config.log_every`` epochs and at the
    end. Ctrl-C stops the run at the next chunk boundary: the current state is recorded
    as the last entry, ``history.interrupted`` is set, and the history is returned.
    Deterministic: same initial model, data and config give the same history and weights.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a flatlab model (torch.nn.Module), got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a flatlab.data.Dataset, got {type(data).__name__}")
    if getattr(config, "method", None) in ("penalty", "label_noise"):  # flatlab.penalty configs
        from . import penalty

        return getattr(penalty, "train_" + config.method)(model, data, config, progress=progress)
    if not isinstance(config, TrainConfig):
        raise ValueError(
            "config must be a TrainConfig (or a flatlab.penalty PenaltyConfig / LabelNoiseConfig), "
            f"got {type(config).__name__}"
        )
    dtype = next(model.parameters()).dtype
    X, y = data.X_train.to(dtype), data.y_train.to(dtype)
    n = X.shape[0]
    bs = _batch_size(config, n)
    backend = resolve_backend(model, data, config)
    kernel = _engine_method(model, config, n) if backend == "engine" else None
    loss_fn = get_loss(config.loss)
    gen = torch.Generator().manual_seed(config.seed)
    history = History()
    total = config.epochs
    arch = getattr(getattr(model, "config", None), "arch", None)

    if kernel is not None:
        # numpy views sharing memory with the parameters: the engine updates the model itself
        arrays = {k: p.detach().numpy() for k, p in model.named_parameters()}
        Xn, yn = X.numpy(), y.numpy()
        X_ref = model.reference.numpy() if arch == "sim_bn" else None
        eps = model.config.eps
        if kernel == "gd":
            chunk_max = _ENGINE_CHUNK_STEPS_GD
        else:
            chunk_max = max(1, (_ENGINE_CHUNK_STEPS_BN if arch == "sim_bn" else _ENGINE_CHUNK_STEPS) // n)
    else:
        chunk_max = 1

    def run_epochs(k: int, phase: Phase) -> None:
        rho = phase.rho if config.method in ("sam", "one_sam") else 0.0
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
                           eps=eps, X_ref=X_ref)
        else:
            for order in orders:
                minibatch_epoch(model, X, y, phase.lr, rho, order, config.loss, batch_size=bs,
                                weight_decay=config.weight_decay, project_norm=config.project_norm)

    from tqdm import tqdm

    bar = tqdm(total=total, disable=not progress, unit="epoch", desc=f"{config.method}/{backend}")
    epoch = 0
    try:
        with _Interrupt() as stop:
            _record(history, model, data, X, y, loss_fn, config.loss, 0)
            for phase in config.phases:
                done = 0
                while done < phase.epochs:
                    to_log = config.log_every - epoch % config.log_every
                    k = min(phase.epochs - done, to_log, chunk_max)
                    run_epochs(k, phase)
                    done += k
                    epoch += k
                    bar.update(k)
                    if epoch % config.log_every == 0 or epoch == total:
                        _record(history, model, data, X, y, loss_fn, config.loss, epoch)
                        bar.set_postfix(loss=f"{history.train_loss[-1]:.3g}",
                                        acc=f"{history.test_acc[-1]:.3f}", trace=f"{history.trace[-1]:.3g}")
                    if stop.flag:
                        raise KeyboardInterrupt
            _record(history, model, data, X, y, loss_fn, config.loss, epoch)
    except KeyboardInterrupt:
        history.interrupted = True
        _record(history, model, data, X, y, loss_fn, config.loss, epoch)
    finally:
        bar.close()
    return history
