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

from dataclasses import asdict, dataclass, field, fields, replace

from ..models import ModelConfig

__all__ = ["PRESETS", "INIT_SEED_OFFSET", "ModelConfig", "MethodSpec", "ScenarioConfig", "check_preset"]

PRESETS = ("quick", "paper", "smoke")
INIT_SEED_OFFSET = 1_000_003  # model init seed = offset + seed (independent of the data stream)


@dataclass(frozen=True)
class MethodSpec:
    """One training method of a scenario (one curve in its figures)."""

    name: str  # id in results.json: "gd_wd", "one_sam", "one_sam_projected" (appendix: see lab.appendix)
    label: str  # legend text
    optimizer: str  # TrainConfig.method: "gd" (full batch), "sgd" (minibatch) or "one_sam"
    phases: tuple[tuple[int, float, float], ...]  # (epochs, lr, rho) run in order
    weight_decay: float = 0.0  # L2 coefficient (the paper's baselines use 0.05)
    project_norm: float | None = None  # Fig. 6b: keep ‖(W1, b1)‖_F at this value
    log_every: int = 100  # epochs between history records
    log_per_decade: int = 0  # and this many log-spaced records per decade of epochs (paper presets)
    batch_size: int | None = None  # sgd minibatch size (None: TrainConfig's default)
    model: dict = field(default_factory=dict)  # changes to the scenario's ModelConfig for this method, e.g.
    #                                            {"init_scale": 0.01} (Fig. 6a), {"arch": "bias"} (appendix)

    def __post_init__(self):
        names = {f.name for f in fields(ModelConfig)}
        if not isinstance(self.model, dict) or not set(self.model) <= names:
            raise ValueError(f"model must be a dict of ModelConfig fields {sorted(names)}, got {self.model!r}")

    @property
    def epochs(self) -> int:
        return sum(p[0] for p in self.phases)

    def model_config(self, base: ModelConfig) -> ModelConfig:
        """The ModelConfig this method trains: the scenario's ``base`` with this method's changes."""
        return replace(base, **self.model)


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything one scenario runs; saved verbatim into results.json."""

    name: str  # one of SCENARIOS
    preset: str  # one of PRESETS
    title: str  # figure title
    model: ModelConfig  # the net every method trains (arch, d, width, ...), unless its MethodSpec.model changes it
    methods: tuple[MethodSpec, ...]  # the curves
    n: int = 100  # training points
    n_test: int = 10_000  # fresh test points
    backend: str = "auto"  # TrainConfig.backend: fast engine when it supports the case
    notes: str = ""  # deviations from the paper and why
    dataset: str = "xor"  # make_dataset name ("ball": Appendix B.2)
    loss: str = "mse"  # training loss ("logistic": Appendix B.3, label smoothing 0.2)
    figures: tuple = ()  # ((file suffix, title, (method names...)), ...): one curves figure each; () = one

    def to_dict(self) -> dict:
        return asdict(self)


def check_preset(preset) -> str:
    """``preset`` if it is one of PRESETS, else a ValueError naming the argument."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return preset
