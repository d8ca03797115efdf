"""Beyond the paper: four sharpness minimizers on scenario II, and Sim-LN's scale blindness.

``run_beyond(preset, seeds, out_dir)`` (``flatlab reproduce beyond``) runs, on the bias net
(d = 30, n = 100 XOR points, width 500), side by side and for each seed:

- ``gd_wd``       full-batch GD with weight decay (the paper's baseline, Fig. 4a);
- ``one_sam``     1-SAM (batch 1, lr 0.01, ρ 0.1; ``flatlab.train`` with the fast engine);
- ``penalty``     full-batch Adam on L + λ(t)·S, S = (2/n) Σ‖∇θ f(x_i)‖² (``flatlab.train.penalty``);
- ``label_noise`` SGD on labels y_i + σ·ξ (``flatlab.train.penalty.LabelNoiseConfig``).

1-SAM and the penalty both end at the trace floor 4·sqrt(d+1) = 22.27, yet the penalty
generalizes and 1-SAM does not: equal sharpness, opposite generalization. Each run also
records :func:`flatlab.diagnostics.diagnose` (memorization index, firing counts, weight on
x1, x2).

The **rescaling demonstration** trains a Sim-LN net by plain full-batch GD (lr 0.1, no
weight decay) to an interpolator that generalizes poorly (test ~0.6), then multiplies its
first layer (W1, b1) by c. The function is unchanged (relu is positively homogeneous and
Sim-LN divides by ‖h‖) while S = 2 + O(1/c²) reaches the Sim-LN floor 2: a flattest
non-generalizing model in one line.

Output: ``out_dir/beyond/results.json`` (written atomically; same schema as the scenarios:
scenario, preset, config, runs[arch, method, seed, final, peak, history, diagnostics], summary,
checks, plus a ``rescaling`` block) and figures ``beyond_curves.png``, ``beyond_rescaling.png``.
Seeding follows ``flatlab.lab.spec``: data seed s, init seed INIT_SEED_OFFSET + s, the
example order / label noise seeded by s.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass

import torch

from .._version import __version__
from ..constructions import sim_ln_trace_floor
from ..data import make_dataset
from ..diagnostics import diagnose
from ..losses import accuracy, mse
from ..models import make_model
from ..sharpness import bias_trace_lower_bound
from ..train import Phase, TrainConfig, train
from ..train.penalty import LabelNoiseConfig, PenaltyConfig, sharpness_penalty
from .executors import LocalExecutor
from .plotting import plot_beyond
from .results import stats
from .runner import check_seeds, history_record, run_studies
from .spec import INIT_SEED_OFFSET, PRESETS, check_preset

__all__ = [
    "BEYOND_PRESETS",
    "BEYOND_METHODS",
    "BeyondConfig",
    "get_beyond_config",
    "run_beyond_job",
    "rescaling_demo",
    "beyond_checks",
    "BeyondStudy",
    "run_beyond",
]

BEYOND_PRESETS = PRESETS
BEYOND_METHODS = ("gd_wd", "one_sam", "penalty", "label_noise")
LABELS = {"gd_wd": "GD+wd", "one_sam": "1-SAM", "penalty": "sharpness penalty",
          "label_noise": "label-noise SGD"}


@dataclass(frozen=True)
class BeyondConfig:
    """Everything ``run_beyond`` runs; saved verbatim into results.json."""

    preset: str  # one of BEYOND_PRESETS
    d: int = 30  # input dimension
    n: int = 100  # training points
    width: int = 500  # hidden width of the bias net (the paper's 500)
    n_test: int = 10_000  # fresh test points
    gd_epochs: int = 20_000  # GD+wd full-batch steps (probe runs: 1.000 test at 2e4)
    gd_lr: float = 0.01  # GD learning rate (Table 2, Fig. 4a)
    gd_weight_decay: float = 0.05  # GD weight decay (Table 2, Fig. 4a)
    gd_log_every: int = 200  # epochs between GD history records
    sam_epochs: int = 10_000  # 1-SAM epochs (n steps each)
    sam_lr: float = 0.01  # 1-SAM learning rate
    sam_rho: float = 0.1  # 1-SAM radius (ρ 0.2 diverged on one seed in a probe run)
    sam_log_every: int = 100  # epochs between 1-SAM history records
    penalty: PenaltyConfig = PenaltyConfig()  # explicit penalty: Adam, λ 0.01, 3000 epochs
    label_noise: LabelNoiseConfig = LabelNoiseConfig(  # batch 1, σ 0.5; its seed is replaced by the run's
        epochs=1500, lr=0.01, sigma=0.5, anneal_epochs=200)
    rescale_width: int = 500  # Sim-LN width of the rescaling demonstration
    rescale_epochs: int = 2000  # plain GD epochs to reach a Sim-LN interpolator (train loss ~1e-7)
    rescale_lr: float = 0.1  # plain GD learning rate, no weight decay, default init
    rescale_factor: float = 1000.0  # c: (W1, b1) <- c·(W1, b1)
    rescale_curve: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4)  # c values drawn
    backend: str = "auto"  # flatlab.train backend for gd_wd / one_sam
    notes: str = ""  # deviations and reasons

    def to_dict(self) -> dict:
        return asdict(self)


def get_beyond_config(preset: str = "quick") -> BeyondConfig:
    """The BeyondConfig of a preset: ``quick`` (minutes), ``paper`` (longer), ``smoke`` (CI, seconds)."""
    check_preset(preset)
    if preset == "quick":
        return BeyondConfig("quick", notes="beyond the paper; settings from probe runs")
    if preset == "paper":
        return BeyondConfig(
            "paper", gd_epochs=100_000, gd_log_every=500, sam_epochs=50_000, sam_log_every=250,
            penalty=PenaltyConfig(hold_epochs=3000, anneal_epochs=3000),
            label_noise=LabelNoiseConfig(epochs=10_000, lr=0.01, sigma=0.5, anneal_epochs=500),
            rescale_epochs=4000, notes="longer schedules (1-SAM 5e4 epochs, as probed)")
    return BeyondConfig(
        "smoke", n_test=2_000, gd_epochs=1_000, gd_log_every=100, sam_epochs=300, sam_log_every=30,
        penalty=PenaltyConfig(fit_epochs=200, ramp_epochs=200, hold_epochs=400, anneal_epochs=400,
                              log_every=100),
        label_noise=LabelNoiseConfig(epochs=100, lr=0.01, sigma=0.5, anneal_epochs=20, log_every=10),
        rescale_width=100, rescale_epochs=600, rescale_curve=(1.0, 10.0, 1000.0),
        notes="smoke: short schedules, 2,000 test points, Sim-LN width 100 (CI)")


def _data_and_model(config: BeyondConfig, seed: int, arch: str = "bias", width: int | None = None):
    data = make_dataset("xor", n=config.n, d=config.d, n_test=config.n_test, seed=seed)
    model = make_model(arch, config.d, width or config.width, seed=INIT_SEED_OFFSET + seed)
    return data, model


def _train(config: BeyondConfig, method: str, model, data, seed: int, progress: bool):
    if method == "penalty":
        return train(model, data, config.penalty, progress=progress)
    if method == "label_noise":
        return train(model, data, dataclasses.replace(config.label_noise, seed=seed), progress=progress)
    if method == "gd_wd":
        tc = TrainConfig("gd", (Phase(config.gd_epochs, config.gd_lr),), weight_decay=config.gd_weight_decay,
                         seed=seed, log_every=config.gd_log_every, backend=config.backend)
    else:
        tc = TrainConfig("one_sam", (Phase(config.sam_epochs, config.sam_lr, config.sam_rho),), seed=seed,
                         log_every=config.sam_log_every, backend=config.backend)
    return train(model, data, tc, progress=progress)


def run_beyond_job(config: BeyondConfig, method: str, seed: int, progress: bool = False) -> dict:
    """Train one (method, seed) on the bias net; return its results.json record (deterministic
    apart from the clocks: ``seconds``, ``cpu_seconds`` (this process) and ``history.time``)."""
    if method not in BEYOND_METHODS:
        raise ValueError(f"method must be one of {BEYOND_METHODS}, got {method!r}")
    data, model = _data_and_model(config, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = _train(config, method, model, data, seed, progress)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rec = history_record(hist)
    h = rec["history"]
    last = max(h["epoch"][-1], 1)
    h["time"] = [round(seconds * e / last, 4) for e in h["epoch"]]  # wall seconds, assuming a steady pace
    diag = diagnose(model, data.X_train)
    neurons = diag.pop("top_neurons")
    return {
        "arch": "bias", "method": method, "label": LABELS[method], "seed": seed,
        "interrupted": bool(hist.interrupted), "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
        "final": rec["final"], "peak": rec["peak"],
        "diagnostics": diag, "neurons": neurons, "history": h,
    }


@torch.no_grad()
def _rescaled(model, c: float):
    clone = make_model("sim_ln", model.config.d, model.config.width, seed=0)
    clone.load_state_dict(model.state_dict())
    clone.W1.mul_(c)
    clone.b1.mul_(c)
    return clone


def rescaling_demo(config: BeyondConfig, seed: int) -> dict:
    """Sim-LN scale blindness: a plain-GD interpolator and its first layer times c.

    Returns {seed, interrupted, train_loss, test_acc, trace (S before), diagnostics, factor, after{...},
    curve[{c, trace, max_change_train, max_change_test, test_acc}]}; ``max_change_*`` is
    max |f_c(x) - f(x)| over the training / test inputs.
    """
    data, model = _data_and_model(config, seed, arch="sim_ln", width=config.rescale_width)
    gd = PenaltyConfig(lam=0.0, fit_epochs=config.rescale_epochs, ramp_epochs=0, hold_epochs=0,
                       anneal_epochs=0, optimizer="momentum", momentum=0.0, lr=config.rescale_lr,
                       log_every=max(1, config.rescale_epochs // 10))
    hist = train(model, data, gd)  # λ = 0, momentum 0: plain full-batch GD
    X, Xt = data.X_train, data.X_test
    with torch.no_grad():
        f_train, f_test = model(X), model(Xt)

    def measure(c: float) -> dict:
        m = _rescaled(model, c)
        with torch.no_grad():
            g_train, g_test = m(X), m(Xt)
        return {"c": c, "gn_trace": float(sharpness_penalty(m, X).detach()),
                "max_change_train": float((g_train - f_train).abs().max()),
                "max_change_test": float((g_test - f_test).abs().max()),
                "train_loss": float(mse(g_train, data.y_train)), "test_acc": accuracy(g_test, data.y_test)}

    diag = diagnose(model, X)
    diag.pop("top_neurons")
    return {
        "arch": "sim_ln", "seed": seed, "interrupted": bool(hist.interrupted),
        "train_loss": float(mse(f_train, data.y_train)),
        "test_acc": accuracy(f_test, data.y_test), "gn_trace": float(sharpness_penalty(model, X).detach()),
        "diagnostics": diag, "history": hist.to_dict(), "factor": config.rescale_factor,
        "after": measure(config.rescale_factor), "curve": [measure(c) for c in config.rescale_curve],
    }


# ----------------------------------------------------------------------------- results
def _summary(config: BeyondConfig, runs: list[dict]) -> dict:
    out = {"methods": {}}  # the same shape as the scenarios' summaries
    for m in BEYOND_METHODS:
        rs = [r for r in runs if r["method"] == m]
        if rs:
            out["methods"][m] = {
                "label": LABELS[m],
                "final_test_acc": stats([r["final"]["test_acc"] for r in rs]),
                "final_trace": stats([r["final"]["trace"] for r in rs]),
                "final_train_loss": stats([r["final"]["train_loss"] for r in rs]),
                "peak_test_acc": stats([r["peak"]["test_acc"] for r in rs]),
                "memorization_index": stats([r["diagnostics"]["memorization_index"] for r in rs]),
                "median_firing": stats([r["diagnostics"]["median_firing"] for r in rs]),
                "seconds": stats([r["seconds"] for r in rs]),
                "cpu_seconds": stats([r["cpu_seconds"] for r in rs]),
            }
    out["trace_floor"] = bias_trace_lower_bound(config.d)
    return out


def beyond_checks(results: dict) -> list[dict]:
    """The acceptance bars on a results dict: [{"check", "passed", "value"}].

    ``smoke`` (tiny nets, short runs) checks only the rescaling and loose directions.
    """
    smoke = results["preset"] == "smoke"
    floor = results["summary"]["trace_floor"]
    by = {}
    for r in results["runs"]:
        by.setdefault(r["method"], {})[r["seed"]] = r
    out = []

    def add(text, values, ok):
        out.append({"check": text, "passed": bool(values) and all(ok(v) for v in values), "value": values})

    pen, sam = by.get("penalty", {}), by.get("one_sam", {})

    def near(t, rel):
        return t is not None and abs(t - floor) <= rel * floor

    if not smoke:
        add("penalty: final test acc >= 0.98", [r["final"]["test_acc"] for r in pen.values()],
            lambda a: a is not None and a >= 0.98)
        add(f"penalty: final trace within 10% of the floor {floor:.2f}",
            [r["final"]["trace"] for r in pen.values()], lambda t: near(t, 0.10))
        add(f"one_sam: final trace within 5% of the floor {floor:.2f}",
            [r["final"]["trace"] for r in sam.values()], lambda t: near(t, 0.05))
    seeds = sorted(set(pen) & set(sam))
    gap = 0.05 if smoke else 0.2
    add(f"one_sam: final test acc at least {gap} below the penalty's",
        [(sam[s]["final"]["test_acc"], pen[s]["final"]["test_acc"]) for s in seeds],
        lambda p: None not in p and p[0] <= p[1] - gap)
    resc = results.get("rescaling", {}).get("runs", [])
    add("rescaling: function unchanged to 1e-12 (train and test inputs)",
        [max(r["after"]["max_change_train"], r["after"]["max_change_test"]) for r in resc],
        lambda v: v <= 1e-12)
    add("rescaling: S within 1e-3 of the Sim-LN floor 2", [r["after"]["gn_trace"] for r in resc],
        lambda v: abs(v - sim_ln_trace_floor()) <= 1e-3)
    add("rescaling: test accuracy unchanged", [(r["test_acc"], r["after"]["test_acc"]) for r in resc],
        lambda p: p[0] == p[1])
    return out


# ----------------------------------------------------------------------------- running
class BeyondStudy:
    """The comparison (one job per method and seed) and the rescaling (one per seed), for the runner."""

    name = "beyond"

    def __init__(self, config: BeyondConfig):
        self.config = config
        self.fingerprint = config.to_dict()

    def jobs(self, seeds):
        c = self.config
        cost = {"gd_wd": c.gd_epochs * 1.0, "one_sam": c.sam_epochs * 0.5,
                "penalty": c.penalty.epochs * 3.0, "label_noise": c.label_noise.epochs * 1.0}
        return ([((m, s), run_beyond_job, (c, m, s), cost[m]) for m in BEYOND_METHODS for s in seeds]
                + [(("rescale", s), rescaling_demo, (c, s), 0.0) for s in seeds])

    def line(self, key, record, secs) -> str:
        if key[0] != "rescale":
            f = record["final"]
            return (f"[beyond] {record['label']:<18} seed {key[1]}: test acc {f['test_acc']:.3f}, "
                    f"trace {f['trace']:.2f}, memorization {record['diagnostics']['memorization_index']:.2f} "
                    f"({secs:.0f} s)")
        return (f"[beyond] Sim-LN rescaling  seed {key[1]}: test acc {record['test_acc']:.3f}, "
                f"S {record['gn_trace']:.2f} -> {record['after']['gn_trace']:.6f} at c = {record['factor']:g} "
                f"({secs:.0f} s)")

    def assemble(self, records, seconds, seeds, interrupted, wall) -> dict:
        config = self.config
        runs = [records[(m, s)] for m in BEYOND_METHODS for s in seeds if (m, s) in records]
        resc = [records[("rescale", s)] for s in seeds if ("rescale", s) in records]
        missing = [{"method": m, "seed": s} for m in (*BEYOND_METHODS, "rescale") for s in seeds
                   if (m, s) not in records]
        res = {
            "scenario": "beyond", "preset": config.preset, "seeds": list(seeds), "config": config.to_dict(),
            "flatlab_version": __version__,
            "interrupted": bool(interrupted or missing or any(r["interrupted"] for r in runs + resc)),
            "missing": missing, "summary": _summary(config, runs), "runs": runs,
            "rescaling": {"arch": "sim_ln", "factor": config.rescale_factor, "trace_floor": sim_ln_trace_floor(),
                          "runs": resc},
            "timing": {"wall_seconds": round(wall, 3),
                       "run_seconds": {f"{r['method']}/seed{r['seed']}": r["seconds"] for r in runs}},
        }
        res["checks"] = beyond_checks(res)
        return res

    def figures(self, results, folder):
        if not (results["runs"] or results["rescaling"]["runs"]):
            return []
        return plot_beyond(results, folder, labels=LABELS)


def run_beyond(preset: str = "quick", seeds=(0, 1, 2), out_dir="results", *, workers: int = 2,
               executor=None, progress: bool = True, figures: bool = True, resume: bool = True,
               log=print) -> dict:
    """Run the comparison and the rescaling demonstration; write ``out_dir/beyond/results.json``.

    Jobs (one per method and seed, plus one rescaling per seed) run in ``executor``
    (default: ``workers`` local processes) through ``flatlab.lab.runner.run_studies``
    (resumable); every number is independent of where they run. Returns the results dict
    (also written as JSON, with ``checks`` = :func:`beyond_checks`).
    """
    config = get_beyond_config(preset)
    seeds = check_seeds(seeds)
    executor = executor or LocalExecutor(workers)
    return run_studies([BeyondStudy(config)], seeds, out_dir, executor=executor, progress=progress,
                       figures=figures, resume=resume, log=log)["beyond"]
