"""How to train: ``Phase`` (epochs, lr, rho) and ``TrainConfig``, validated on construction.

Methods: ``"gd"`` (full-batch GD), ``"sgd"`` (minibatch SGD), ``"sam"`` (minibatch SAM),
``"one_sam"`` (SAM with batch size 1), each with optional weight decay (added to the
gradient as wd·θ) and the projected variant (after each step (W1, b1) is rescaled to
``project_norm``, Fig. 6b). A run is a sequence of ``Phase`` s. The explicit sharpness
minimizers have their own configs in ``flatlab.train.penalty`` (``PenaltyConfig``,
``LabelNoiseConfig``); ``flatlab.train.train`` accepts all three.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .._checks import check_positive

__all__ = ["METHODS", "BACKENDS", "Phase", "TrainConfig"]

METHODS = ("gd", "sgd", "sam", "one_sam")
BACKENDS = ("auto", "torch", "engine")


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
        object.__setattr__(self, "lr", check_positive(self.lr, "lr"))
        object.__setattr__(self, "rho", check_positive(self.rho, "rho", allow_zero=True))


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
    log_per_decade: int = 0  # also log on a log-spaced grid: this many epochs per decade (0: none)

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
        object.__setattr__(self, "weight_decay", check_positive(self.weight_decay, "weight_decay", allow_zero=True))
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise ValueError(f"batch_size must be None or an int >= 1, got {b!r}")
        if self.method == "one_sam" and b not in (None, 1):
            raise ValueError(f"batch_size must be None or 1 for one_sam (use method='sam'), got {b!r}")
        if self.project_norm is not None:
            object.__setattr__(self, "project_norm", check_positive(self.project_norm, "project_norm"))
        if self.loss not in ("mse", "logistic"):
            raise ValueError(f"loss must be 'mse' or 'logistic', got {self.loss!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        le = self.log_every
        if isinstance(le, bool) or not isinstance(le, int) or le < 1:
            raise ValueError(f"log_every must be an int >= 1, got {le!r}")
        lp = self.log_per_decade
        if isinstance(lp, bool) or not isinstance(lp, int) or lp < 0:
            raise ValueError(f"log_per_decade must be an int >= 0, got {lp!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def epochs(self) -> int:
        """Total number of epochs over all phases."""
        return sum(p.epochs for p in self.phases)

    def to_dict(self) -> dict:
        return asdict(self)
