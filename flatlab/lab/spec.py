"""What a study runs: ``MethodSpec`` (one curve) and ``ScenarioConfig`` (one figure), presets, seeding.

Presets: ``quick`` (course default), ``paper`` (Table 2 schedules, hours) and ``smoke``
(seconds, for CI; the same directions with looser bars). Deviations from the paper are
recorded in each config's ``notes`` and therefore in ``results.json``.

Seeding: for seed s the data is ``make_dataset(seed=s)``, the model is initialized with
seed ``INIT_SEED_OFFSET + s`` (a stream distinct from the data's) and the example order
(and label noise) uses s. Runs are independent, so where they execute (local processes or
a Dask cluster, ``flatlab.lab.executors``) does not change any number.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["PRESETS", "INIT_SEED_OFFSET", "MethodSpec", "ScenarioConfig", "check_preset"]

PRESETS = ("quick", "paper", "smoke")
INIT_SEED_OFFSET = 1_000_003  # model init seed = offset + seed (independent of the data stream)


@dataclass(frozen=True)
class MethodSpec:
    """One training method of a scenario (one curve in its figures)."""

    name: str  # id in results.json: "gd_wd", "one_sam", "one_sam_projected" (appendix: see flatlab.appendix)
    label: str  # legend text
    optimizer: str  # TrainConfig.method: "gd" (full batch), "sgd" (minibatch) or "one_sam"
    phases: tuple[tuple[int, float, float], ...]  # (epochs, lr, rho) run in order
    weight_decay: float = 0.0  # L2 coefficient (the paper's baselines use 0.05)
    project_norm: float | None = None  # Fig. 6b: keep ‖(W1, b1)‖_F at this value
    log_every: int = 100  # epochs between history records
    init_scale: float = 1.0  # first-layer init multiplier (Fig. 6a: 0.01)
    gamma_init: float = 1.0  # Sim-BN initial γ
    arch: str | None = None  # None: the scenario's arch; appendix figures compare archs in one config
    batch_size: int | None = None  # sgd minibatch size (None: TrainConfig's default)

    @property
    def epochs(self) -> int:
        return sum(p[0] for p in self.phases)


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything one scenario runs; saved verbatim into results.json."""

    name: str  # one of SCENARIOS
    preset: str  # one of PRESETS
    title: str  # figure title
    arch: str  # model architecture shared by all methods
    methods: tuple[MethodSpec, ...]  # the curves
    width: int = 500  # hidden width m (the paper uses 500)
    d: int = 30  # input dimension
    n: int = 100  # training points
    n_test: int = 10_000  # fresh test points
    backend: str = "auto"  # TrainConfig.backend: fast engine when it supports the case
    notes: str = ""  # deviations from the paper and why
    dataset: str = "xor"  # make_dataset name ("ball": Appendix B.2)
    loss: str = "mse"  # training loss ("logistic": Appendix B.3, label smoothing 0.2)
    activation: str = "relu"  # hidden activation ("softplus": Fig. 5)
    depth: int | None = None  # deep_bias depth (Fig. 11: 3)
    figures: tuple = ()  # ((file suffix, title, (method names...)), ...): one curves figure each; () = one

    def to_dict(self) -> dict:
        return asdict(self)


def check_preset(preset) -> str:
    """``preset`` if it is one of PRESETS, else a ValueError naming the argument."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return preset
