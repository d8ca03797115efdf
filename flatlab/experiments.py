"""The paper's scenarios as typed configs, and a runner that writes ``results.json``.

Scenarios (d = 30, n = 100 XOR training points, fresh test points):

- ``scenario1``    no-bias net: GD + weight decay vs 1-SAM (Fig. 1). Both generalize.
- ``scenario1-bn`` Sim-BN net, 1-SAM (Fig. 2): generalizes; the largest neurons read x1, x2.
- ``scenario2``    bias net: GD + weight decay vs 1-SAM (Fig. 4). 1-SAM reaches the trace
  floor 4·sqrt(d+1) but generalizes much worse than GD, and degrades late.
- ``scenario3``    Sim-LN net: 1-SAM from a first layer scaled by 0.01, and projected 1-SAM
  with ‖(W1, b1)‖ = 10 (Fig. 6). Both generalize.

Appendix figures (fig7, fig11, fig8-10) are configs of ``flatlab.appendix`` run by the same machinery.

Presets: ``quick`` (course default), ``paper`` (Table 2 schedules, hours) and ``smoke``
(seconds, for CI; the same directions with looser bars). Deviations from the paper are
recorded in each config's ``notes`` and therefore in ``results.json``. Budget of ``quick``
(measured, 3 seeds): ~215 CPU-seconds in all, i.e. about 2 minutes of wall time with 2
workers on an idle 2-core machine; most of it is Sim-BN 1-SAM (O(m·n·d) per step), GD
(full batch) and the test-accuracy evaluations on 10,000 points at every log.

Seeding: for seed s the data is ``make_dataset(seed=s)``, the model is initialized with
seed ``INIT_SEED_OFFSET + s`` (a stream distinct from the data's) and the example order
of 1-SAM uses ``TrainConfig.seed = s``. Runs are independent, so running them in worker
processes does not change any number.
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .data import make_dataset
from .models import make_model

__all__ = [
    "SCENARIOS",
    "PRESETS",
    "INIT_SEED_OFFSET",
    "MethodSpec",
    "ScenarioConfig",
    "get_config",
    "neuron_table",
    "run_job",
    "run_scenario",
    "run_scenarios",
    "check_directions",
    "write_results",
    "write_json_atomic",
]

SCENARIOS = ("scenario1", "scenario1-bn", "scenario2", "scenario3")
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


def _gd(epochs: int, log_every: int, lr: float = 0.01, wd: float = 0.05) -> MethodSpec:
    return MethodSpec("gd_wd", "GD+wd", "gd", ((epochs, lr, 0.0),), weight_decay=wd, log_every=log_every)


def _sam(phases, log_every: int, name="one_sam", label="1-SAM", **kw) -> MethodSpec:
    return MethodSpec(name, label, "one_sam", tuple(phases), log_every=log_every, **kw)


_BN_NOTE = (
    "Sim-BN statistic = mean over the training set. The paper's second phase (lr 0.003, rho 1) "
    "collapses this net to f = 0 (an ascent of radius 1 moves f_i by ~2 > margin 1), and lr 0.005 "
    "diverges at width 500 with gamma 1 (curvature ~2 m gamma^2). We warm up at rho 0.1 and then "
    "raise rho (PROBES.md): quick = width 100, gamma0 1, lr 0.005, rho 0.1 / 0.3 for 300 / 700 epochs; "
    "paper = width 500, gamma0 0.447 (same m*gamma^2 as width 100 with gamma 1), lr 0.005, "
    "rho 0.1 / 0.3 / 0.5 for 300 / 700 / 500 epochs. No GD baseline: full-batch GD+wd on Sim-BN "
    "generalizes only partly (PROBES.md: 0.886-0.996 over 3 seeds, no setting of six reached 0.95 on all)."
)
_S2_NOTE = "quick: one 1-SAM phase at rho 0.1 (probe: peak ~0.75 then decline); paper: rho 0.05 then 0.1."
_S3_NOTE = ("standard: first layer initialized x0.01 (Fig. 6a); "
            "projected: ||(W1, b1)||_F = 10 after every step (Fig. 6b).")


_GD_QUICK_NOTE = ("GD+wd uses lr 0.05 (the paper: 0.01); quick runs 4,000 epochs, the same gradient-flow "
                  "time lr*epochs = 200 as the 2e4 epochs at 0.01 that PROBES.md needed to reach ~1.0.")


def _build(name: str, preset: str) -> ScenarioConfig:
    """The per-preset schedules; see each config's ``notes`` for deviations from Table 2."""
    p, s = preset == "paper", preset == "smoke"
    width, n_test = (100 if s else 500), (2_000 if s else 10_000)
    if name == "scenario1":
        methods = {
            "paper": (_gd(100_000, 500), _sam([(100_000, 0.01, 0.05)], 500)),
            "quick": (_gd(4_000, 50, lr=0.05), _sam([(2_000, 0.01, 0.05)], 20)),
            "smoke": (_gd(1_500, 25, lr=0.05), _sam([(300, 0.01, 0.05)], 10)),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario I: 2-MLP-No-Bias", "no_bias", methods, width=width,
                              n_test=n_test, notes="Table 2, Fig. 1a/1b" if p else _GD_QUICK_NOTE)
    if name == "scenario1-bn":
        m = {
            "paper": _sam([(300, 0.005, 0.1), (700, 0.005, 0.3), (500, 0.005, 0.5)], 10, gamma_init=0.447),
            "quick": _sam([(300, 0.005, 0.1), (700, 0.005, 0.3)], 10),
            "smoke": _sam([(100, 0.005, 0.1), (100, 0.005, 0.3)], 5),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario I: 2-MLP-Sim-BN", "sim_bn", (m,),
                              width={"paper": 500, "quick": 100, "smoke": 50}[preset], n_test=n_test,
                              notes=_BN_NOTE)
    if name == "scenario2":
        methods = {
            "paper": (_gd(100_000, 500), _sam([(200_000, 0.01, 0.05), (400_000, 0.01, 0.1)], 1_000)),
            "quick": (_gd(4_000, 50, lr=0.05), _sam([(10_000, 0.01, 0.1)], 100)),
            "smoke": (_gd(1_500, 25, lr=0.05), _sam([(300, 0.01, 0.1)], 10)),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario II: 2-MLP-Bias", "bias", methods,
                              width=500, n_test=n_test,  # 1-SAM's failure needs the paper's width
                              notes=_S2_NOTE + ("" if p else " " + _GD_QUICK_NOTE))
    if name == "scenario3":
        e_std, e_proj = {"quick": (500, 300), "paper": (100_000, 500), "smoke": (60, 40)}[preset]
        every_std, every_proj = {"quick": (20, 30), "paper": (500, 15), "smoke": (5, 8)}[preset]
        methods = (
            _sam([(e_std, 0.1, 0.1)], every_std, init_scale=0.01),
            _sam([(e_proj, 0.01, r) for r in (0.1, 0.5, 1.0)], every_proj, name="one_sam_projected",
                 label="1-SAM (projected)", project_norm=10.0),
        )
        return ScenarioConfig(name, preset, "Scenario III: 2-MLP-Sim-LN", "sim_ln", methods, width=width,
                              n_test=n_test, notes=_S3_NOTE)
    raise ValueError(f"scenario must be one of {SCENARIOS}, got {name!r}")


def _appendix_names() -> tuple:
    from .appendix import FIGURES  # lazy: appendix builds on this module

    return FIGURES


def get_config(name: str, preset: str = "quick") -> ScenarioConfig:
    """The ScenarioConfig of ``name`` (``SCENARIOS`` or ``flatlab.appendix.FIGURES``) for ``preset``."""
    if name not in SCENARIOS and name not in _appendix_names():
        raise ValueError(f"scenario must be one of {SCENARIOS + _appendix_names()}, got {name!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if name not in SCENARIOS:
        from .appendix import build_config

        return build_config(name, preset)
    return _build(name, preset)


# ----------------------------------------------------------------------------- one run
def neuron_table(model, k: int = 4) -> list[dict]:
    """The k first-layer neurons with the largest ‖W1[i]‖ (Fig. 2b), largest first.

    Each row: neuron index, W1 weights on x1 and x2, ‖W1[i, 2:]‖ (the rest), and
    share_x12 = (W1[i,0]² + W1[i,1]²)/‖W1[i]‖² (share of the squared norm on x1, x2), and
    the whole row ``w`` (d,) for the heatmap.
    """
    W1 = model.W1.detach()
    norms = W1.norm(dim=1)
    top = torch.argsort(norms, descending=True, stable=True)[:k]
    rows = []
    for i in top.tolist():
        w = W1[i]
        sq = float(w.pow(2).sum())
        rows.append({
            "neuron": i, "w_x1": float(w[0]), "w_x2": float(w[1]), "rest_norm": float(w[2:].norm()),
            "norm": float(norms[i]), "share_x12": float((w[0] ** 2 + w[1] ** 2) / sq) if sq > 0 else 0.0,
            "w": [float(v) for v in w],
        })
    return rows


def _train_config(spec: MethodSpec, seed: int, backend: str, loss: str = "mse"):
    from .training import Phase, TrainConfig  # lazy: the engine is optional at import time

    return TrainConfig(
        method=spec.optimizer, phases=tuple(Phase(int(e), float(lr), float(r)) for e, lr, r in spec.phases),
        weight_decay=spec.weight_decay, project_norm=spec.project_norm, loss=loss, seed=seed,
        log_every=spec.log_every, backend=backend, batch_size=spec.batch_size,
    )


def _clean(x):
    """float -> float, NaN/inf -> None (strict JSON)."""
    x = float(x)
    return x if math.isfinite(x) else None


def run_job(config: ScenarioConfig, spec: MethodSpec, seed: int, progress: bool = False) -> dict:
    """Train one (method, seed) of a scenario; return its results.json record (deterministic)."""
    from .training import train

    arch = spec.arch or config.arch
    data = make_dataset(config.dataset, n=config.n, d=config.d, n_test=config.n_test, seed=seed)
    model = make_model(arch, config.d, config.width, seed=INIT_SEED_OFFSET + seed, init_scale=spec.init_scale,
                       gamma_init=spec.gamma_init, activation=config.activation, depth=config.depth,
                       X_ref=data.X_train if arch == "sim_bn" else None)
    hist = train(model, data, _train_config(spec, seed, config.backend, config.loss), progress=progress)
    h = {k: [(_clean(v) if k != "epoch" else int(v)) for v in vals] for k, vals in hist.to_dict().items()}
    acc = [a if a is not None else -1.0 for a in h["test_acc"]]
    peak = max(range(len(acc)), key=acc.__getitem__) if acc else 0
    final = {k: h[k][-1] if h[k] else None for k in ("train_loss", "test_acc", "trace")}
    with torch.no_grad():  # the regression metric of ball data (Fig. 7); also defined for ±1 labels
        final["test_mse"] = float((model(data.X_test) - data.y_test).pow(2).mean())
    return _finite({
        "arch": arch, "method": spec.name, "label": spec.label, "seed": seed,
        "interrupted": bool(hist.interrupted),
        "final": {"epoch": h["epoch"][-1] if h["epoch"] else 0, **final},
        "peak": {"test_acc": h["test_acc"][peak] if acc else None,
                 "epoch": h["epoch"][peak] if acc else None},
        "neurons": neuron_table(model),
        "history": h,
    })


def _finite(obj):
    """Recursively replace NaN/inf floats by None (a diverged run still gives strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- scheduling
_STOP = None  # multiprocessing.Event shared with the workers


def _worker_init(stop_event) -> None:
    global _STOP
    _STOP = stop_event
    try:  # own process group: a terminal Ctrl-C reaches the parent only, which forwards one SIGINT
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # idle workers ignore Ctrl-C; jobs re-enable it
    torch.set_num_threads(1)


def _job_entry(job):
    """Worker side: run one job unless a stop was requested; Ctrl-C inside ends it gracefully."""
    key, config, spec, seed = job
    if _STOP is not None and _STOP.is_set():
        return key, None, 0.0
    t0 = time.perf_counter()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        record = run_job(config, spec, seed)
    except KeyboardInterrupt:
        record = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return key, record, time.perf_counter() - t0


def _cost(config: ScenarioConfig, spec: MethodSpec) -> float:
    """Rough relative cost, used only to start the longest jobs first."""
    steps = spec.epochs * config.n  # example-gradients: a GD epoch also touches all n examples
    arch = spec.arch or config.arch
    per_step = {"sim_bn": 60.0, "sim_ln": 3.0}.get(arch, 1.0) * config.width
    from .engine import supports  # torch-backend cases are ~300x slower per step than the engine

    kernel = "gd" if spec.optimizer == "gd" else "one_sam"
    slow = spec.optimizer == "sgd" or not supports(arch, kernel, activation=config.activation,
                                                   loss=config.loss)
    return steps * per_step * (300.0 if slow else 1.0)


def _run_jobs(jobs, workers: int, progress: bool, report, on_start=lambda: None):
    """Run jobs [(key, config, spec, seed)]; call report(key, record, seconds) as each ends.

    ``on_start`` is called once the workers exist (so no thread is alive when they fork).
    Returns True when interrupted (Ctrl-C): running jobs stop and return what they have,
    queued jobs are skipped.
    """
    if workers <= 1 or len(jobs) <= 1:
        on_start()
        for key, config, spec, seed in jobs:
            t0 = time.perf_counter()
            try:
                record = run_job(config, spec, seed, progress=progress)
            except KeyboardInterrupt:
                return True
            report(key, record, time.perf_counter() - t0)
            if record["interrupted"]:
                return True
        return False
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    stop = ctx.Event()
    pool = ctx.Pool(min(workers, len(jobs)), initializer=_worker_init, initargs=(stop,))
    interrupted = False
    on_start()
    try:
        results = pool.imap_unordered(_job_entry, jobs)
        while True:
            try:
                key, record, seconds = next(results)
            except StopIteration:
                break
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                for proc in list(getattr(pool, "_pool", [])):  # ask running jobs to stop early
                    try:
                        os.kill(proc.pid, signal.SIGINT)
                    except (ProcessLookupError, AttributeError):
                        pass
                continue
            if record is None:
                interrupted = True
                continue
            report(key, record, seconds)
            interrupted |= record["interrupted"]
        pool.close()
    except KeyboardInterrupt:  # a second Ctrl-C while draining: give up on running jobs
        interrupted = True
        pool.terminate()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return interrupted


def run_scenarios(names, preset: str = "quick", seeds=(0, 1, 2), out_dir="results", *, progress: bool = True,
                  workers: int = 2, figures: bool = True, log=print) -> dict:
    """Run every (method, seed) of the named scenarios; write ``out_dir/<name>/results.json``.

    All jobs share one pool of ``workers`` processes (longest first). Each results file is
    written atomically once its runs are done; on Ctrl-C the finished (or stopped) runs are
    written with ``"interrupted": true`` and the queued ones listed under ``"missing"``.
    Returns {name: results dict}.
    """
    names = list(dict.fromkeys(names))
    configs = {nm: get_config(nm, preset) for nm in names}
    seeds = [_check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must contain at least one seed")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    out_dir = Path(out_dir)
    jobs = [((nm, spec.name, s), configs[nm], spec, s)
            for nm in names for spec in configs[nm].methods for s in seeds]
    jobs.sort(key=lambda j: -_cost(j[1], j[2]))
    records, seconds = {}, {}
    pending = {nm: sum(1 for j in jobs if j[0][0] == nm) for nm in names}
    written = {}
    t_start = time.perf_counter()
    bar = None

    def finish(nm, interrupted):
        res = _assemble(configs[nm], seeds, records, seconds, interrupted, time.perf_counter() - t_start)
        write_results(res, out_dir, figures=figures)
        written[nm] = res

    def report(key, record, secs):
        nm = key[0]
        records[key], seconds[key] = record, secs
        pending[nm] -= 1
        f = record["final"]
        msg = (f"[{nm}] {record['label']:<18} seed {key[2]}: test acc {_fmt(f['test_acc'])}, "
               f"trace {_fmt(f['trace'], '.2f')}, train loss {_fmt(f['train_loss'], '.2e')} ({secs:.0f} s)")
        (bar.write if bar else log)(msg)
        if bar:
            bar.update(1)
        if pending[nm] == 0 and not record["interrupted"]:
            finish(nm, False)

    def start():
        nonlocal bar
        bar = _progress_bar(len(jobs)) if progress else None

    _run_jobs(jobs, workers, progress and workers <= 1, report, start)
    if bar:
        bar.close()
    for nm in names:
        if nm not in written:
            finish(nm, True)
    return {nm: written[nm] for nm in names}


def run_scenario(name: str, preset: str = "quick", seeds=(0, 1, 2), out_dir="results", progress: bool = True,
                 workers: int = 2, figures: bool = True, log=print) -> dict:
    """Run one scenario (see :func:`run_scenarios`); returns its results dict."""
    return run_scenarios([name], preset, seeds, out_dir, progress=progress, workers=workers,
                         figures=figures, log=log)[name]


def _check_seed(s) -> int:
    if isinstance(s, bool) or not isinstance(s, int) or s < 0:
        raise ValueError(f"seeds must be non-negative ints, got {s!r}")
    return s


def _fmt(x, spec=".3f"):
    return "nan" if x is None else format(x, spec)


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc="runs", unit="run", leave=False)


# ----------------------------------------------------------------------------- results
def _stats(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"mean": sum(v) / len(v), "min": min(v), "max": max(v)}


def _assemble(config, seeds, records, seconds, interrupted, wall) -> dict:
    from . import __version__

    runs, missing, timing = [], [], {}
    for spec in config.methods:
        for s in seeds:
            key = (config.name, spec.name, s)
            if key in records:
                runs.append(records[key])
                timing[f"{spec.name}/seed{s}"] = round(seconds[key], 3)
            else:
                missing.append({"method": spec.name, "seed": s})
    summary = {"methods": {}}
    for spec in config.methods:
        rs = [r for r in runs if r["method"] == spec.name]
        if rs:
            summary["methods"][spec.name] = {
                "label": spec.label,
                "final_test_acc": _stats([r["final"]["test_acc"] for r in rs]),
                "final_trace": _stats([r["final"]["trace"] for r in rs]),
                "final_train_loss": _stats([r["final"]["train_loss"] for r in rs]),
                "final_test_mse": _stats([r["final"].get("test_mse") for r in rs]),
                "peak_test_acc": _stats([r["peak"]["test_acc"] for r in rs]),
                "peak_epoch": _stats([r["peak"]["epoch"] for r in rs]),
                "top4_min_share_x12": _stats([min(row["share_x12"] or 0.0 for row in r["neurons"])
                                              for r in rs]),
            }
    main = config.name in SCENARIOS  # appendix figures: flatlab.appendix.check_directions
    if main and config.arch == "bias":
        from .constructions import bias_trace_floor

        summary["trace_floor"] = bias_trace_floor(config.d)
    if main and config.arch == "sim_ln":
        summary["trace_floor"] = 2.0
    if main and config.arch == "sim_bn":  # Fig. 2b: the top-4 neurons of every run
        summary["neuron_table"] = [
            {"method": r["method"], "seed": r["seed"],
             "neurons": [{k: v for k, v in row.items() if k != "w"} for row in r["neurons"]]} for r in runs]
    res = {
        "scenario": config.name, "preset": config.preset, "seeds": list(seeds),
        "config": config.to_dict(), "flatlab_version": __version__,
        "interrupted": bool(interrupted or missing or any(r["interrupted"] for r in runs)),
        "missing": missing, "summary": summary, "runs": runs,
        "timing": {"elapsed_seconds": round(wall, 3), "run_seconds": timing},  # not deterministic
    }
    res["checks"] = check_directions(res)
    return res


def check_directions(results: dict) -> list[dict]:
    """The issue's acceptance directions, evaluated on a results dict.

    Returns [{"check": text, "passed": bool, "value": ...}]. Bars: ``quick``/``paper``
    use the issue's thresholds; ``smoke`` (tiny nets, few epochs) only the directions.
    """
    name, smoke = results["scenario"], results.get("preset") == "smoke"
    if name not in SCENARIOS:
        from .appendix import check_directions as appendix_checks

        return appendix_checks(results)
    by = {}
    for r in results["runs"]:
        by.setdefault(r["method"], []).append(r)
    out = []

    def add(text, values, ok):
        out.append({"check": text, "passed": bool(values) and all(ok(v) for v in values), "value": values})

    def accs(m):
        return [r["final"]["test_acc"] or 0.0 for r in by.get(m, [])]

    bar = {"scenario1": 0.98, "scenario1-bn": 0.95, "scenario3": 0.93}.get(name)
    if smoke and bar:
        bar = 0.75
    if name in ("scenario1", "scenario1-bn", "scenario3"):
        for m, rs in by.items():
            add(f"{m}: final test acc >= {bar}", accs(m), lambda a: a >= bar)
    if name == "scenario1-bn":
        shares = [[row["share_x12"] or 0.0 for row in r["neurons"]] for r in by.get("one_sam", [])]
        if smoke:  # tiny runs align their largest neurons only partly; chance level is 2/d
            add("top-4 neurons: mean share of squared norm on x1, x2 >= 0.5",
                [sum(v) / len(v) for v in shares], lambda v: v >= 0.5)
        else:
            add("top-4 neurons: each >= 0.9 of squared norm on x1, x2",
                [min(v) for v in shares], lambda v: v >= 0.9)
    if name == "scenario2" and "gd_wd" in by and "one_sam" in by:
        floor = results["summary"]["trace_floor"]
        gd = {r["seed"]: r for r in by["gd_wd"]}
        sam = {r["seed"]: r for r in by["one_sam"]}
        seeds = sorted(set(gd) & set(sam))
        gd_bar = 0.9 if smoke else 0.98
        add(f"gd_wd: final test acc >= {gd_bar}", accs("gd_wd"), lambda a: a >= gd_bar)
        tol = 0.25 if smoke else 0.05
        add(f"one_sam: final trace within {tol:.0%} of the floor {floor:.2f}",
            [sam[s]["final"]["trace"] for s in seeds],
            lambda t: t is not None and abs(t - floor) <= tol * floor)
        add("one_sam: final trace below gd_wd's",
            [(sam[s]["final"]["trace"], gd[s]["final"]["trace"]) for s in seeds],
            lambda p: None not in p and p[0] < p[1])
        gap = 0.1 if smoke else 0.2
        add(f"one_sam: final test acc at least {gap} below gd_wd's",
            [(sam[s]["final"]["test_acc"], gd[s]["final"]["test_acc"]) for s in seeds],
            lambda p: None not in p and p[0] <= p[1] - gap)
        if not smoke:
            add("one_sam: test acc declines after its peak (final <= peak - 0.01)",
                [(sam[s]["final"]["test_acc"], sam[s]["peak"]["test_acc"]) for s in seeds],
                lambda p: None not in p and p[0] <= p[1] - 0.01)
    return out


def write_results(results: dict, out_dir, *, figures: bool = True) -> Path:
    """Write ``out_dir/<scenario>/results.json`` atomically, then the figures next to it."""
    folder = Path(out_dir) / results["scenario"]
    folder.mkdir(parents=True, exist_ok=True)
    path = write_json_atomic(folder / "results.json", results)
    if figures and results["runs"]:
        from .plotting import plot_results

        results["figures"] = [p.name for p in plot_results(results, folder)]
        write_json_atomic(path, results)
    return path



def write_json_atomic(path, obj) -> Path:
    """Write obj as JSON to path atomically: a temp file in the same folder, then os.replace.

    A reader (or a crash, or Ctrl-C) never sees a half-written file: it sees the old file or
    the new one. NaN/inf are not allowed (use None).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
