"""The one runner: a study's jobs -> an executor -> ``out_dir/<study>/results.json``.

A *study* is anything that lists independent jobs and assembles their records: the main
scenarios and the appendix figures (:class:`ScenarioStudy`, one per ``ScenarioConfig``),
the beyond-the-paper comparison (``flatlab.lab.beyond.BeyondStudy``) and grid sweeps
(``flatlab.lab.sweep.SweepStudy``). It has

- ``name`` (its folder), ``fingerprint`` (a JSON-able dict: the settings its records depend on),
- ``jobs(seeds)`` -> [(key, fn, args, cost)]: ``fn(*args)`` returns one JSON record; ``key`` is
  a tuple of str/int, unique within the study; ``cost`` orders the queue (longest first),
- ``line(key, record, seconds)`` -> the log line of a finished job,
- ``assemble(records, seconds, seeds, interrupted, wall)`` -> the results dict,
- ``figures(results, folder)`` -> the figure paths it drew.

:func:`run_studies` runs the jobs of several studies in one executor (local processes by
default, or a Dask cluster: ``flatlab.lab.executors``). It is resumable: each finished job
is saved at once, atomically, as ``out_dir/<study>/runs/<key>.json`` with the study's
fingerprint, and a later call with the same settings loads those records instead of
running the jobs again (``resume=False`` runs everything). A results file is written
atomically once all its jobs are done; on Ctrl-C the finished runs are written with
``"interrupted": true`` and the others listed under ``"missing"``.

Seeding and determinism: see ``flatlab.lab.spec``. A job computes the same bits in any
executor, so a resumed, a local and a Dask run give identical records.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from .._version import __version__
from ..data import make_dataset
from ..diagnostics import neuron_table
from ..models import build_model
from ..train import Phase, TrainConfig, train
from ..train.engine import supports
from . import appendix, scenarios
from .executors import LocalExecutor
from .plotting import plot_results
from .results import finite, stats, write_json_atomic
from .spec import INIT_SEED_OFFSET, PRESETS, MethodSpec, ScenarioConfig, check_preset

__all__ = [
    "SCENARIOS",
    "PRESETS",
    "INIT_SEED_OFFSET",
    "get_config",
    "run_job",
    "job_cost",
    "history_record",
    "ScenarioStudy",
    "run_studies",
    "run_scenario",
    "run_scenarios",
    "check_directions",
    "check_seeds",
    "write_results",
]

SCENARIOS = scenarios.SCENARIOS


def get_config(name: str, preset: str = "quick") -> ScenarioConfig:
    """The ScenarioConfig of ``name`` (``SCENARIOS`` or ``appendix.FIGURES``) for ``preset``."""
    if name not in SCENARIOS and name not in appendix.FIGURES:
        raise ValueError(f"scenario must be one of {SCENARIOS + appendix.FIGURES}, got {name!r}")
    check_preset(preset)
    return (scenarios if name in SCENARIOS else appendix).build_config(name, preset)


def check_directions(results: dict) -> list[dict]:
    """The checks of a scenario's or an appendix figure's results: [{"check", "passed", "value"}]."""
    module = scenarios if results["scenario"] in SCENARIOS else appendix
    return module.check_directions(results)


def check_seeds(seeds) -> list[int]:
    """The distinct seeds in order; a ValueError unless they are a non-empty list of ints >= 0."""
    seeds = list(dict.fromkeys(seeds))
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of non-negative ints, got {seeds!r}")
    return seeds


# ----------------------------------------------------------------------------- one run
def _train_config(spec: MethodSpec, seed: int, backend: str, loss: str = "mse") -> TrainConfig:
    return TrainConfig(
        method=spec.optimizer, phases=tuple(Phase(int(e), float(lr), float(r)) for e, lr, r in spec.phases),
        weight_decay=spec.weight_decay, project_norm=spec.project_norm, loss=loss, seed=seed,
        log_every=spec.log_every, backend=backend, batch_size=spec.batch_size, log_per_decade=spec.log_per_decade,
    )


def history_record(hist) -> dict:
    """A History as strict-JSON lists, and its final and peak (best test accuracy) entries."""
    h = {k: [(int(v) if k == "epoch" else _clean(v)) for v in vals] for k, vals in hist.to_dict().items()}
    acc = [a if a is not None else -1.0 for a in h["test_acc"]]
    peak = max(range(len(acc)), key=acc.__getitem__) if acc else 0
    final = {k: h[k][-1] if h.get(k) else None for k in ("train_loss", "test_acc", "trace", "gn_trace")}
    return {
        "final": {"epoch": h["epoch"][-1] if h["epoch"] else 0, **final},
        "peak": {"test_acc": h["test_acc"][peak] if acc else None, "epoch": h["epoch"][peak] if acc else None},
        "history": h,
    }


def _clean(x):
    """float -> float, NaN/inf -> None (strict JSON)."""
    x = float(x)
    return x if math.isfinite(x) else None


def run_job(config: ScenarioConfig, spec: MethodSpec, seed: int, progress: bool = False) -> dict:
    """Train one (method, seed) of a scenario; return its results.json record (deterministic)."""
    mc = spec.model_config(config.model)
    arch = mc.arch
    data = make_dataset(config.dataset, n=config.n, d=mc.d, n_test=config.n_test, seed=seed)
    model = build_model(mc, seed=INIT_SEED_OFFSET + seed, X_ref=data.X_train if arch == "sim_bn" else None)
    hist = train(model, data, _train_config(spec, seed, config.backend, config.loss), progress=progress)
    rec = history_record(hist)
    with torch.no_grad():  # the regression metric of ball data (Fig. 7); also defined for ±1 labels
        rec["final"]["test_mse"] = float((model(data.X_test) - data.y_test).pow(2).mean())
        # how far from interpolating: the floors bound the trace of exact interpolators only
        rec["final"]["train_max_residual"] = float((model(data.X_train) - data.y_train).abs().max())
    return finite({
        "arch": arch, "method": spec.name, "label": spec.label, "seed": seed,
        "interrupted": bool(hist.interrupted),
        "final": rec["final"], "peak": rec["peak"],
        "neurons": neuron_table(model, k=4, by="norm", weights=True),  # Fig. 2b: the largest ‖W1_j‖
        "history": rec["history"],
    })


def job_cost(config: ScenarioConfig, spec: MethodSpec) -> float:
    """Rough relative cost, used only to start the longest jobs first."""
    steps = spec.epochs * config.n  # example-gradients: a GD epoch also touches all n examples
    mc = spec.model_config(config.model)
    arch = mc.arch
    per_step = {"sim_bn": 60.0, "sim_ln": 3.0}.get(arch, 1.0) * mc.width
    kernel = "gd" if spec.optimizer == "gd" else "one_sam"  # torch-backend cases are ~300x slower per step
    slow = spec.optimizer == "sgd" or not supports(arch, kernel, activation=mc.activation, loss=config.loss)
    return steps * per_step * (300.0 if slow else 1.0)


def _fmt(x, spec=".3f"):
    return "nan" if x is None else format(x, spec)


# ----------------------------------------------------------------------------- studies
class ScenarioStudy:
    """A main scenario or an appendix figure: one job per (method, seed)."""

    def __init__(self, config: ScenarioConfig):
        self.config = config
        self.name = config.name
        self.fingerprint = config.to_dict()

    def jobs(self, seeds):
        return [((spec.name, s), run_job, (self.config, spec, s), job_cost(self.config, spec))
                for spec in self.config.methods for s in seeds]

    def line(self, key, record, secs) -> str:
        f = record["final"]
        return (f"[{self.name}] {record['label']:<18} seed {key[1]}: test acc {_fmt(f['test_acc'])}, "
                f"trace {_fmt(f['trace'], '.2f')} (GN {_fmt(f.get('gn_trace'), '.2f')}), train loss "
                f"{_fmt(f['train_loss'], '.2e')} ({secs:.0f} s)")

    def assemble(self, records, seconds, seeds, interrupted, wall) -> dict:
        config = self.config
        runs, missing, timing = [], [], {}
        for spec in config.methods:
            for s in seeds:
                key = (spec.name, s)
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
                    "final_test_acc": stats([r["final"]["test_acc"] for r in rs]),
                    "final_trace": stats([r["final"]["trace"] for r in rs]),
                    "final_gn_trace": stats([r["final"].get("gn_trace") for r in rs]),
                    "final_train_max_residual": stats([r["final"].get("train_max_residual") for r in rs]),
                    "final_train_loss": stats([r["final"]["train_loss"] for r in rs]),
                    "final_test_mse": stats([r["final"].get("test_mse") for r in rs]),
                    "peak_test_acc": stats([r["peak"]["test_acc"] for r in rs]),
                    "peak_epoch": stats([r["peak"]["epoch"] for r in rs]),
                    "top4_min_x1x2_share": stats([min(row["x1x2_share"] or 0.0 for row in r["neurons"])
                                                  for r in rs]),
                }
        if config.name in SCENARIOS:
            summary.update(scenarios.summary_extras(config, runs))
        res = {
            "scenario": config.name, "preset": config.preset, "seeds": list(seeds),
            "config": config.to_dict(), "flatlab_version": __version__,
            "interrupted": bool(interrupted or missing or any(r["interrupted"] for r in runs)),
            "missing": missing, "summary": summary, "runs": runs,
            "timing": {"elapsed_seconds": round(wall, 3), "run_seconds": timing},  # not deterministic
        }
        res["checks"] = check_directions(res)
        return res

    def figures(self, results, folder):
        return plot_results(results, folder)


def _run_file(folder: Path, key) -> Path:
    return folder / "runs" / ("-".join(str(k) for k in key) + ".json")


def _load_done(study, folder: Path, seeds) -> dict:
    """Finished records of ``study`` saved in ``folder/runs`` with the same fingerprint: {key: (record, s)}."""
    want = json.loads(json.dumps(study.fingerprint))
    done = {}
    for key, *_ in study.jobs(seeds):
        path = _run_file(folder, key)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if saved.get("fingerprint") == want and saved.get("key") == list(key) and not saved["record"].get(
                "interrupted"):
            done[key] = (saved["record"], float(saved.get("seconds", 0.0)))
    return done


def write_results(results: dict, out_dir, *, figures: bool = True, draw=plot_results) -> Path:
    """Write ``out_dir/<scenario>/results.json`` atomically, then the figures next to it."""
    folder = Path(out_dir) / results["scenario"]
    folder.mkdir(parents=True, exist_ok=True)
    path = write_json_atomic(folder / "results.json", results)
    if figures and results["runs"]:
        results["figures"] = [p.name for p in draw(results, folder)]
        write_json_atomic(path, results)
    return path


def run_studies(studies, seeds=(0, 1, 2), out_dir="results", *, executor=None, progress: bool = True,
                figures: bool = True, resume: bool = True, log=print) -> dict:
    """Run every job of ``studies`` in one ``executor`` (default: 2 local workers).

    Writes ``out_dir/<study.name>/results.json`` (and figures) for each; returns {name: results}.
    """
    seeds = check_seeds(seeds)
    executor = executor or LocalExecutor(2)
    out_dir = Path(out_dir)
    studies = {s.name: s for s in studies}
    records = {nm: {} for nm in studies}
    seconds = {nm: {} for nm in studies}
    tasks, pending = [], {}
    for nm, study in studies.items():
        folder = out_dir / nm
        done = _load_done(study, folder, seeds) if resume else {}
        for key, (rec, secs) in done.items():
            records[nm][key], seconds[nm][key] = rec, secs
        if done:
            log(f"[{nm}] {len(done)} finished run(s) found in {folder}/runs: not run again")
        todo = [(cost, (nm, *key), fn, args) for key, fn, args, cost in study.jobs(seeds) if key not in done]
        pending[nm] = len(todo)
        tasks += todo
    tasks.sort(key=lambda t: -t[0])
    written = {}
    t_start = time.perf_counter()
    bar = None

    def finish(nm, interrupted):
        study = studies[nm]
        res = study.assemble(records[nm], seconds[nm], seeds, interrupted, time.perf_counter() - t_start)
        write_results(res, out_dir, figures=figures, draw=study.figures)
        written[nm] = res

    def report(task_key, record, secs):
        nm, key = task_key[0], tuple(task_key[1:])
        records[nm][key], seconds[nm][key] = record, secs
        pending[nm] -= 1
        if not record.get("interrupted"):
            path = _run_file(out_dir / nm, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, {"key": list(key), "fingerprint": studies[nm].fingerprint,
                                     "seconds": round(secs, 3), "record": record})
        msg = studies[nm].line(key, record, secs)
        (bar.write if bar else log)(msg)
        if bar:
            bar.update(1)
        if pending[nm] == 0 and not record.get("interrupted"):
            finish(nm, False)

    def start():
        nonlocal bar
        if progress and tasks:
            from tqdm import tqdm

            bar = tqdm(total=len(tasks), desc="runs", unit="run", leave=False)

    for nm in studies:
        if pending[nm] == 0:
            finish(nm, False)
    interrupted = executor.run([(key, fn, args) for _, key, fn, args in tasks], report, start) if tasks else False
    if bar:
        bar.close()
    for nm in studies:
        if nm not in written:  # some of its jobs did not finish (Ctrl-C)
            finish(nm, interrupted or pending[nm] > 0)
    return {nm: written[nm] for nm in studies}


def run_scenarios(names, preset: str = "quick", seeds=(0, 1, 2), out_dir="results", *, progress: bool = True,
                  workers: int = 2, executor=None, figures: bool = True, resume: bool = True, log=print) -> dict:
    """Run every (method, seed) of the named scenarios / appendix figures (see :func:`run_studies`).

    ``executor`` (``flatlab.lab.executors``) defaults to ``LocalExecutor(workers)``.
    Returns {name: results dict}.
    """
    names = list(dict.fromkeys(names))
    configs = [get_config(nm, preset) for nm in names]
    seeds = check_seeds(seeds)
    executor = executor or LocalExecutor(workers)
    return run_studies([ScenarioStudy(c) for c in configs], seeds, out_dir, executor=executor,
                       progress=progress, figures=figures, resume=resume, log=log)


def run_scenario(name: str, preset: str = "quick", seeds=(0, 1, 2), out_dir="results", progress: bool = True,
                 workers: int = 2, figures: bool = True, log=print, **kw) -> dict:
    """Run one scenario (see :func:`run_scenarios`); returns its results dict."""
    return run_scenarios([name], preset, seeds, out_dir, progress=progress, workers=workers,
                         figures=figures, log=log, **kw)[name]
