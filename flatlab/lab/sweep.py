"""Grid sweeps: one method of a scenario over a grid of settings, one results table.

``run_sweep("scenario2", "one_sam", {"seed": [0, 1], "lr": [0.01, 0.02], "rho": [0.05, 0.1]},
preset="smoke", out_dir="results")`` (``flatlab sweep``) trains the method at every point of
the grid (the product of the value lists) and writes ``out_dir/sweep/results.json`` (the
table, the grid and every run), ``results.csv`` (one row per run) and ``sweep.png`` (final
test accuracy against the first varying setting). Grid settings (``GRID_KEYS``):

- ``seed``: the run's seed (data, init and example order, as in ``flatlab.lab.spec``);
- ``lr``, ``rho``: replace the learning rate / SAM radius of every phase of the method;
- ``weight_decay``: the method's weight decay; ``width``: the hidden width of the net.

Runs go through the one runner (``flatlab.lab.runner.run_studies``) and so through any
executor, and are resumable: a point already finished in ``out_dir/sweep/runs`` with the same
scenario, preset and method is not run again, so a grid can be extended.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
from pathlib import Path

from .._version import __version__
from .executors import LocalExecutor
from .plotting import plot_sweep
from .results import write_text_atomic
from .runner import check_seeds, get_config, job_cost, run_job, run_studies
from .spec import ScenarioConfig

__all__ = ["GRID_KEYS", "SweepStudy", "run_sweep", "TABLE_COLUMNS"]

GRID_KEYS = ("seed", "lr", "rho", "weight_decay", "width")
TABLE_COLUMNS = ("final_test_acc", "final_trace", "final_train_loss", "peak_test_acc", "peak_epoch")


def _check_grid(grid: dict) -> dict:
    if not isinstance(grid, dict):
        raise ValueError(f"grid must be a dict {{setting: [values]}}, got {type(grid).__name__}")
    out = {}
    for key, values in grid.items():
        if key not in GRID_KEYS:
            raise ValueError(f"grid setting must be one of {GRID_KEYS}, got {key!r}")
        values = list(dict.fromkeys(values)) if isinstance(values, (list, tuple)) else None
        if not values:
            raise ValueError(f"grid[{key!r}] must be a non-empty list of values, got {grid[key]!r}")
        integer = key in ("seed", "width")
        for v in values:
            bad = isinstance(v, bool) or not isinstance(v, int if integer else (int, float))
            if bad or v < 0 or (key in ("lr", "width") and v == 0):
                kind = "ints" if integer else "numbers"
                raise ValueError(f"grid[{key!r}] must hold {kind} {'> 0' if key in ('lr', 'width') else '>= 0'}, "
                                 f"got {v!r}")
        out[key] = [int(v) if integer else float(v) for v in values]
    return out


class SweepStudy:
    """The runs of a sweep: one job per grid point (seed last in each key)."""

    name = "sweep"

    def __init__(self, base: ScenarioConfig, method: str, grid: dict):
        specs = {m.name: m for m in base.methods}
        if method not in specs:
            raise ValueError(f"method must be one of {tuple(specs)} for {base.name}, got {method!r}")
        self.base, self.spec = base, specs[method]
        self.grid = _check_grid(grid)
        self.settings = [k for k in GRID_KEYS if k in self.grid and k != "seed"]
        self.fingerprint = {"base": base.to_dict(), "method": method}

    def point(self, values: dict):
        """The (ScenarioConfig, MethodSpec) of one grid point (``values``: setting -> value)."""
        spec, cfg = self.spec, self.base
        phases = tuple((e, values.get("lr", lr), values.get("rho", r)) for e, lr, r in spec.phases)
        spec = dataclasses.replace(spec, phases=phases,
                                   weight_decay=values.get("weight_decay", spec.weight_decay))
        if "width" in values:
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, width=values["width"]))
        return dataclasses.replace(cfg, methods=(spec,)), spec

    def points(self):
        return [dict(zip(self.settings, combo)) for combo in itertools.product(*(self.grid[k] for k in self.settings))]

    def jobs(self, seeds):
        out = []
        for values in self.points():
            cfg, spec = self.point(values)
            for s in seeds:
                out.append(((*[values[k] for k in self.settings], s), run_job, (cfg, spec, s), job_cost(cfg, spec)))
        return out

    def line(self, key, record, secs) -> str:
        f = record["final"]
        where = ", ".join(f"{k}={v}" for k, v in zip((*self.settings, "seed"), key))
        acc, tr = f["test_acc"], f["trace"]
        return (f"[sweep] {where}: test acc {'nan' if acc is None else format(acc, '.3f')}, "
                f"trace {'nan' if tr is None else format(tr, '.2f')} ({secs:.0f} s)")

    def assemble(self, records, seconds, seeds, interrupted, wall) -> dict:
        table, runs, missing = [], [], []
        for key, *_ in self.jobs(seeds):
            row = dict(zip((*self.settings, "seed"), key))
            if key not in records:
                missing.append(row)
                continue
            r = records[key]
            runs.append({**r, "point": row})
            table.append({**row, "final_test_acc": r["final"]["test_acc"], "final_trace": r["final"]["trace"],
                          "final_train_loss": r["final"]["train_loss"], "peak_test_acc": r["peak"]["test_acc"],
                          "peak_epoch": r["peak"]["epoch"], "seconds": round(seconds[key], 3)})
        return {
            "scenario": "sweep", "base": self.base.name, "preset": self.base.preset, "method": self.spec.name,
            "grid": {**self.grid, "seed": list(seeds)}, "varying": self.settings,
            "config": self.base.to_dict(), "flatlab_version": __version__,
            "interrupted": bool(interrupted or missing or any(r["interrupted"] for r in runs)),
            "missing": missing, "table": table, "runs": runs, "checks": [],
            "timing": {"elapsed_seconds": round(wall, 3)},  # not deterministic (nor is table[i]["seconds"])
        }

    def figures(self, results, folder):
        folder = Path(folder)
        csv_path = write_text_atomic(folder / "results.csv", table_csv(results["table"], self.settings))
        return [csv_path, plot_sweep(results["table"], self.settings or ["seed"], folder / "sweep.png")]


def table_csv(table: list[dict], settings) -> str:
    """The sweep table as CSV text: the settings, the seed, then ``TABLE_COLUMNS`` and seconds."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*settings, "seed", *TABLE_COLUMNS, "seconds"], lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def run_sweep(scenario: str, method: str, grid: dict, *, preset: str = "quick", out_dir="results",
              executor=None, workers: int = 2, progress: bool = True, figures: bool = True,
              resume: bool = True, log=print) -> dict:
    """Run the grid (see the module docstring); returns the results dict written to
    ``out_dir/sweep/results.json``. ``figures=False`` skips the plot but still writes the CSV."""
    study = SweepStudy(get_config(scenario, preset), method, grid)
    seeds = check_seeds(study.grid.get("seed", [0]))
    executor = executor or LocalExecutor(workers)
    res = run_studies([study], seeds, out_dir, executor=executor, progress=progress, figures=figures,
                      resume=resume, log=log)["sweep"]
    if not figures:
        write_text_atomic(Path(out_dir) / "sweep" / "results.csv", table_csv(res["table"], study.settings))
    return res
