"""Beyond the paper: four sharpness minimizers on scenario II, and Sim-LN's scale blindness.

``run_beyond(preset, seeds, out_dir)`` (``flatlab reproduce beyond``) runs, on the bias net
(d = 30, n = 100 XOR points, width 500), side by side and for each seed:

- ``gd_wd``       full-batch GD with weight decay (the paper's baseline, Fig. 4a);
- ``one_sam``     1-SAM (batch 1, lr 0.01, ρ 0.1; ``flatlab.training`` with the fast engine);
- ``penalty``     full-batch Adam on L + λ(t)·S, S = (2/n) Σ‖∇θ f(x_i)‖² (``flatlab.penalty``);
- ``label_noise`` SGD on labels y_i + σ·ξ (``flatlab.penalty.train_label_noise``).

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
Seeding follows ``flatlab.experiments``: data seed s, init seed INIT_SEED_OFFSET + s, the
example order / label noise seeded by s.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .data import make_dataset
from .models import make_model
from .penalty import LabelNoiseConfig, PenaltyConfig, sharpness_penalty, train_label_noise, train_penalty

__all__ = [
    "BEYOND_PRESETS",
    "BEYOND_METHODS",
    "BeyondConfig",
    "get_beyond_config",
    "run_beyond_job",
    "rescaling_demo",
    "beyond_checks",
    "run_beyond",
    "write_beyond",
    "plot_beyond",
]

BEYOND_PRESETS = ("quick", "paper", "smoke")
BEYOND_METHODS = ("gd_wd", "one_sam", "penalty", "label_noise")
LABELS = {"gd_wd": "GD+wd", "one_sam": "1-SAM", "penalty": "sharpness penalty",
          "label_noise": "label-noise SGD"}
COLORS = {"gd_wd": "#1f77b4", "one_sam": "#d62728", "penalty": "#2ca02c", "label_noise": "#9467bd"}


@dataclass(frozen=True)
class BeyondConfig:
    """Everything ``run_beyond`` runs; saved verbatim into results.json."""

    preset: str  # one of BEYOND_PRESETS
    d: int = 30  # input dimension
    n: int = 100  # training points
    width: int = 500  # hidden width of the bias net (the paper's 500)
    n_test: int = 10_000  # fresh test points
    gd_epochs: int = 20_000  # GD+wd full-batch steps (PROBES: 1.000 test at 2e4)
    gd_lr: float = 0.01  # GD learning rate (Table 2, Fig. 4a)
    gd_weight_decay: float = 0.05  # GD weight decay (Table 2, Fig. 4a)
    gd_log_every: int = 200  # epochs between GD history records
    sam_epochs: int = 10_000  # 1-SAM epochs (n steps each)
    sam_lr: float = 0.01  # 1-SAM learning rate
    sam_rho: float = 0.1  # 1-SAM radius (ρ 0.2 diverged on one seed in PROBES)
    sam_log_every: int = 100  # epochs between 1-SAM history records
    penalty: PenaltyConfig = PenaltyConfig()  # explicit penalty: Adam, λ 0.01, 3000 epochs
    label_noise: LabelNoiseConfig = LabelNoiseConfig(  # batch 1, σ 0.5; its seed is replaced by the run's
        epochs=1500, lr=0.01, sigma=0.5, anneal_epochs=200)
    rescale_width: int = 500  # Sim-LN width of the rescaling demonstration
    rescale_epochs: int = 2000  # plain GD epochs to reach a Sim-LN interpolator (train loss ~1e-7)
    rescale_lr: float = 0.1  # plain GD learning rate, no weight decay, default init
    rescale_factor: float = 1000.0  # c: (W1, b1) <- c·(W1, b1)
    rescale_curve: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4)  # c values drawn
    backend: str = "auto"  # flatlab.training backend for gd_wd / one_sam
    notes: str = ""  # deviations and reasons

    def to_dict(self) -> dict:
        return asdict(self)


def get_beyond_config(preset: str = "quick") -> BeyondConfig:
    """The BeyondConfig of a preset: ``quick`` (minutes), ``paper`` (longer), ``smoke`` (CI, seconds)."""
    if preset not in BEYOND_PRESETS:
        raise ValueError(f"preset must be one of {BEYOND_PRESETS}, got {preset!r}")
    if preset == "quick":
        return BeyondConfig("quick", notes="beyond the paper; settings from PROBES.md")
    if preset == "paper":
        return BeyondConfig(
            "paper", gd_epochs=100_000, gd_log_every=500, sam_epochs=50_000, sam_log_every=250,
            penalty=PenaltyConfig(hold_epochs=3000, anneal_epochs=3000),
            label_noise=LabelNoiseConfig(epochs=10_000, lr=0.01, sigma=0.5, anneal_epochs=500),
            rescale_epochs=4000, notes="longer schedules (1-SAM 5e4 epochs as in PROBES.md)")
    return BeyondConfig(
        "smoke", n_test=2_000, gd_epochs=1_000, gd_log_every=100, sam_epochs=300, sam_log_every=30,
        penalty=PenaltyConfig(fit_epochs=200, ramp_epochs=200, hold_epochs=400, anneal_epochs=400,
                              log_every=100),
        label_noise=LabelNoiseConfig(epochs=100, lr=0.01, sigma=0.5, anneal_epochs=20, log_every=10),
        rescale_width=100, rescale_epochs=600, rescale_curve=(1.0, 10.0, 1000.0),
        notes="smoke: short schedules, 2,000 test points, Sim-LN width 100 (CI)")


def _clean(x):
    """float -> float, NaN/inf -> None (strict JSON)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _data_and_model(config: BeyondConfig, seed: int, arch: str = "bias", width: int | None = None):
    from .experiments import INIT_SEED_OFFSET

    data = make_dataset("xor", n=config.n, d=config.d, n_test=config.n_test, seed=seed)
    model = make_model(arch, config.d, width or config.width, seed=INIT_SEED_OFFSET + seed)
    return data, model


def _train(config: BeyondConfig, method: str, model, data, seed: int, progress: bool):
    if method == "penalty":
        return train_penalty(model, data, config.penalty, progress=progress)
    if method == "label_noise":
        ln = dataclasses.replace(config.label_noise, seed=seed)
        return train_label_noise(model, data, ln, progress=progress)
    from .training import Phase, TrainConfig, train

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
    from .diagnostics import diagnose

    if method not in BEYOND_METHODS:
        raise ValueError(f"method must be one of {BEYOND_METHODS}, got {method!r}")
    data, model = _data_and_model(config, seed)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = _train(config, method, model, data, seed, progress)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    h = {k: [int(v) if k == "epoch" else _clean(v) for v in vals] for k, vals in hist.to_dict().items()}
    last = max(h["epoch"][-1], 1)
    h["time"] = [round(seconds * e / last, 4) for e in h["epoch"]]  # wall seconds, assuming a steady pace
    acc = [a if a is not None else -1.0 for a in h["test_acc"]]
    peak = max(range(len(acc)), key=acc.__getitem__)
    diag = diagnose(model, data.X_train)
    neurons = diag.pop("top_neurons")
    return {
        "arch": "bias", "method": method, "label": LABELS[method], "seed": seed,
        "interrupted": bool(hist.interrupted), "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
        "final": {"epoch": h["epoch"][-1], **{k: h[k][-1] for k in ("train_loss", "test_acc", "trace")}},
        "peak": {"test_acc": h["test_acc"][peak], "epoch": h["epoch"][peak]},
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
    from .diagnostics import diagnose
    from .losses import accuracy, mse

    data, model = _data_and_model(config, seed, arch="sim_ln", width=config.rescale_width)
    gd = PenaltyConfig(lam=0.0, fit_epochs=config.rescale_epochs, ramp_epochs=0, hold_epochs=0,
                       anneal_epochs=0, optimizer="momentum", momentum=0.0, lr=config.rescale_lr,
                       log_every=max(1, config.rescale_epochs // 10))
    hist = train_penalty(model, data, gd)  # λ = 0, momentum 0: plain full-batch GD
    X, Xt = data.X_train, data.X_test
    with torch.no_grad():
        f_train, f_test = model(X), model(Xt)

    def measure(c: float) -> dict:
        m = _rescaled(model, c)
        with torch.no_grad():
            g_train, g_test = m(X), m(Xt)
        return {"c": c, "trace": float(sharpness_penalty(m, X).detach()),
                "max_change_train": float((g_train - f_train).abs().max()),
                "max_change_test": float((g_test - f_test).abs().max()),
                "train_loss": float(mse(g_train, data.y_train)), "test_acc": accuracy(g_test, data.y_test)}

    diag = diagnose(model, X)
    diag.pop("top_neurons")
    return {
        "arch": "sim_ln", "seed": seed, "interrupted": bool(hist.interrupted),
        "train_loss": float(mse(f_train, data.y_train)),
        "test_acc": accuracy(f_test, data.y_test), "trace": float(sharpness_penalty(model, X).detach()),
        "diagnostics": diag, "history": hist.to_dict(), "factor": config.rescale_factor,
        "after": measure(config.rescale_factor), "curve": [measure(c) for c in config.rescale_curve],
    }


# ----------------------------------------------------------------------------- results
def _stats(values):
    v = [x for x in values if x is not None]
    return {"mean": sum(v) / len(v), "min": min(v), "max": max(v)} if v else None


def _summary(config: BeyondConfig, runs: list[dict]) -> dict:
    from .constructions import bias_trace_floor

    out = {"methods": {}}  # the same shape as flatlab.experiments' summaries
    for m in BEYOND_METHODS:
        rs = [r for r in runs if r["method"] == m]
        if rs:
            out["methods"][m] = {
                "label": LABELS[m],
                "final_test_acc": _stats([r["final"]["test_acc"] for r in rs]),
                "final_trace": _stats([r["final"]["trace"] for r in rs]),
                "final_train_loss": _stats([r["final"]["train_loss"] for r in rs]),
                "peak_test_acc": _stats([r["peak"]["test_acc"] for r in rs]),
                "memorization_index": _stats([r["diagnostics"]["memorization_index"] for r in rs]),
                "median_firing": _stats([r["diagnostics"]["median_firing"] for r in rs]),
                "seconds": _stats([r["seconds"] for r in rs]),
                "cpu_seconds": _stats([r["cpu_seconds"] for r in rs]),
            }
    out["trace_floor"] = bias_trace_floor(config.d)
    return out


def beyond_checks(results: dict) -> list[dict]:
    """The issue's acceptance bars on a results dict: [{"check", "passed", "value"}].

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
    add("rescaling: S within 1e-3 of the Sim-LN floor 2", [r["after"]["trace"] for r in resc],
        lambda v: abs(v - 2.0) <= 1e-3)
    add("rescaling: test accuracy unchanged", [(r["test_acc"], r["after"]["test_acc"]) for r in resc],
        lambda p: p[0] == p[1])
    return out


# ----------------------------------------------------------------------------- running
def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    torch.set_num_threads(1)


def _job(job):
    kind, config, method, seed = job
    t0 = time.perf_counter()
    record = rescaling_demo(config, seed) if kind == "rescale" else run_beyond_job(config, method, seed)
    return job[0], method, seed, record, time.perf_counter() - t0


def _jobs(config: BeyondConfig, seeds) -> list[tuple]:
    cost = {"gd_wd": config.gd_epochs * 1.0, "one_sam": config.sam_epochs * 0.5,
            "penalty": config.penalty.epochs * 3.0, "label_noise": config.label_noise.epochs * 1.0}
    jobs = [("run", config, m, s) for m in BEYOND_METHODS for s in seeds]
    jobs.sort(key=lambda j: -cost[j[2]])  # longest first
    return jobs + [("rescale", config, "rescale", s) for s in seeds]


def run_beyond(preset: str = "quick", seeds=(0, 1, 2), out_dir="results", *, workers: int = 2,
               progress: bool = True, figures: bool = True, log=print) -> dict:
    """Run the comparison and the rescaling demonstration; write ``out_dir/beyond/results.json``.

    Jobs (one per method and seed, plus one rescaling per seed) run in ``workers``
    processes; every number is independent of the worker count. On Ctrl-C the finished
    jobs are written with ``"interrupted": true`` and the others listed under ``"missing"``.
    Returns the results dict (also written as JSON, with ``checks`` = :func:`beyond_checks`).
    """
    config = get_beyond_config(preset)
    seeds = list(dict.fromkeys(seeds))
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of non-negative ints, got {seeds!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    jobs = _jobs(config, seeds)
    done: dict = {}
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="beyond", unit="run", leave=False)

    def report(kind, method, seed, record, secs):
        done[(kind, method, seed)] = record
        if kind == "run":
            f = record["final"]
            msg = (f"[beyond] {record['label']:<18} seed {seed}: test acc {f['test_acc']:.3f}, "
                   f"trace {f['trace']:.2f}, memorization {record['diagnostics']['memorization_index']:.2f} "
                   f"({secs:.0f} s)")
        else:
            msg = (f"[beyond] Sim-LN rescaling  seed {seed}: test acc {record['test_acc']:.3f}, "
                   f"S {record['trace']:.2f} -> {record['after']['trace']:.6f} at c = {record['factor']:g} "
                   f"({secs:.0f} s)")
        (bar.write if bar else log)(msg)
        if bar:
            bar.update(1)

    interrupted = False
    try:
        if workers == 1:
            for job in jobs:
                out = _job(job)
                report(*out)
                if out[3]["interrupted"]:  # Ctrl-C inside a run: it returned early; stop here
                    interrupted = True
                    break
        else:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(min(workers, len(jobs)), initializer=_worker_init) as pool:
                for out in pool.imap_unordered(_job, jobs):
                    report(*out)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar:
            bar.close()
    results = _assemble(config, seeds, done, interrupted, time.perf_counter() - t0)
    write_beyond(results, out_dir, figures=figures)
    return results


def _assemble(config: BeyondConfig, seeds, done: dict, interrupted: bool, wall: float) -> dict:
    from . import __version__

    runs = [done[("run", m, s)] for m in BEYOND_METHODS for s in seeds if ("run", m, s) in done]
    resc = [done[("rescale", "rescale", s)] for s in seeds if ("rescale", "rescale", s) in done]
    missing = [{"method": m, "seed": s} for m in (*BEYOND_METHODS, "rescale") for s in seeds
               if (("rescale" if m == "rescale" else "run"), m, s) not in done]
    res = {
        "scenario": "beyond", "preset": config.preset, "seeds": list(seeds), "config": config.to_dict(),
        "flatlab_version": __version__,
        "interrupted": bool(interrupted or missing or any(r["interrupted"] for r in runs + resc)),
        "missing": missing, "summary": _summary(config, runs), "runs": runs,
        "rescaling": {"arch": "sim_ln", "factor": config.rescale_factor, "trace_floor": 2.0, "runs": resc},
        "timing": {"wall_seconds": round(wall, 3),
                   "run_seconds": {f"{r['method']}/seed{r['seed']}": r["seconds"] for r in runs}},
    }
    res["checks"] = beyond_checks(res)
    return res


def write_beyond(results: dict, out_dir, *, figures: bool = True) -> Path:
    """Write ``out_dir/beyond/results.json`` atomically, then the figures next to it."""
    from .experiments import write_json_atomic

    folder = Path(out_dir) / "beyond"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_json_atomic(folder / "results.json", results)
    if figures and (results["runs"] or results["rescaling"]["runs"]):
        results["figures"] = [p.name for p in plot_beyond(results, folder)]
        write_json_atomic(path, results)
    return path


# ----------------------------------------------------------------------------- figures
def plot_beyond(results: dict, folder) -> list[Path]:
    """Draw ``beyond_curves.png`` (test accuracy and trace vs epoch and vs wall time, per
    method: mean over seeds with the min-max range; the floor 4·sqrt(d+1) dashed) and
    ``beyond_rescaling.png`` (S - 2 and max |Δf| against c, test accuracy per seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder = Path(folder)
    paths = []
    floor = results["summary"]["trace_floor"]
    methods = [m for m in BEYOND_METHODS if any(r["method"] == m for r in results["runs"])]
    if methods:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
        for col, xkey, xlabel in ((0, "epoch", "epoch (log scale)"), (1, "time", "wall time (s, log scale)")):
            for row, key in enumerate(("test_acc", "trace")):
                ax = axes[row, col]
                for m in methods:
                    rs = [r for r in results["runs"] if r["method"] == m]
                    k = min(len(r["history"]["epoch"]) for r in rs)
                    x = np.array([r["history"][xkey][:k] for r in rs], dtype=float).mean(0)
                    v = np.array([[np.nan if a is None else a for a in r["history"][key][:k]] for r in rs],
                                 dtype=float)
                    x = np.maximum(x, x[1] / 2 if k > 1 else 1.0)  # epoch 0 at the left edge of the log axis
                    ax.plot(x, np.nanmean(v, 0), color=COLORS[m], label=LABELS[m])
                    ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=COLORS[m], alpha=0.2, lw=0)
                ax.set_xscale("log")
                ax.set_xlabel(xlabel)
                if key == "trace":
                    ax.set_yscale("log")
                    ax.axhline(floor, color="k", ls="--", lw=1, label=f"floor 4·sqrt(d+1) = {floor:.2f}")
                    ax.set_ylabel("Tr ∇²L (Gauss-Newton)")
                else:
                    ax.set_ylim(0.4, 1.02)
                    ax.set_ylabel("test accuracy")
                ax.grid(alpha=0.3)
        handles, labels = axes[1, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
        fig.suptitle(f"Bias net (scenario II): four sharpness minimizers, {len(results['seeds'])} seed(s), "
                     f"preset {results['preset']} (mean, min-max shaded)")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        paths.append(folder / "beyond_curves.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    resc = results["rescaling"]["runs"]
    if resc:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for r in resc:
            c = np.array([p["c"] for p in r["curve"]])
            axes[0].loglog(c, [p["trace"] - 2.0 for p in r["curve"]], "o-", label=f"seed {r['seed']}")
            ch = [max(p["max_change_train"], p["max_change_test"], 1e-17) for p in r["curve"]]
            axes[1].loglog(c, ch, "s-", label=f"seed {r['seed']}: test acc {r['test_acc']:.3f} for every c")
        c = np.array([p["c"] for p in resc[0]["curve"]])
        axes[0].loglog(c, (resc[0]["trace"] - 2.0) / c**2, "k:", label="(S(1) - 2)/c²")
        axes[0].axhline(1e-3, color="gray", ls="--", lw=1, label="1e-3")
        axes[0].set(xlabel="c: (W1, b1) <- c·(W1, b1)", ylabel="S - 2 (Sim-LN floor 2)",
                    title="Sim-LN: sharpness falls to the floor")
        axes[1].axhline(1e-12, color="gray", ls="--", lw=1, label="1e-12")
        axes[1].set(xlabel="c", ylabel="max |f_c(x) - f(x)|", title="…while the function does not change")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(folder / "beyond_rescaling.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
