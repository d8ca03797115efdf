"""The ``flatlab`` command line.

    flatlab reproduce SCENARIO [--quick | --paper | --smoke] [--seeds 0 1 2] [--out DIR]
                               [--workers 2 | --scheduler tcp://host:8786 | --scheduler-file PATH]
                               [--no-resume] [--no-progress] [--no-figures]

SCENARIO: scenario1, scenario1-bn, scenario2, scenario3, all (the four), beyond
(four sharpness minimizers side by side, and Sim-LN's scale blindness), or an appendix
figure of ``flatlab.lab.appendix.FIGURES`` (fig7, fig11, fig8-10; not part of ``all``). Writes
``DIR/<scenario>/results.json`` (atomically) and the figures next to it, prints one line
per finished run and a summary with the acceptance checks. Exit status: 0 on success,
1 when a check failed, 2 on bad arguments, 130 when interrupted (Ctrl-C; the files
then hold what finished, marked ``"interrupted": true``). Runs execute in ``--workers``
local processes or on a Dask cluster (``--scheduler`` / ``--scheduler-file``); the numbers
are the same either way. Finished runs are kept in ``DIR/<scenario>/runs/`` and not run
again by a later call with the same settings (``--no-resume`` runs everything).

    flatlab sweep SCENARIO --method METHOD [--seeds 0 1] [--lr ...] [--rho ...] [--width ...]
                  [--weight-decay ...] [--quick | --paper | --smoke] [--out DIR] [executor options]

trains one method of a scenario over the grid (product of the value lists) and writes
``DIR/sweep/results.json``, ``results.csv`` and ``sweep.png`` (``flatlab.lab.sweep``).

    flatlab construct KIND [--d 30] [--n 100] [--seed 0]

prints the trace, training fit and test accuracy of a flattest construction
(``flatlab.constructions``).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .constructions import (generalizing_bias, generalizing_sim_ln, memorizing_bias, memorizing_sim_ln,
                            sim_ln_trace_floor)
from .data import make_dataset
from .lab.appendix import FIGURES
from .lab.beyond import run_beyond
from .lab.executors import make_executor
from .lab.runner import SCENARIOS, run_scenarios
from .lab.sweep import run_sweep
from .losses import accuracy
from .sharpness import bias_trace_lower_bound, hessian_trace

__all__ = ["main", "build_parser", "APPENDIX"]

_APPENDIX_ALL = {
    "fig5": "softplus activation, Fig. 5",
    "fig7": "ball data, Fig. 7",
    "fig8-10": "logistic loss, Figs. 8-10",
    "fig11": "3-layer bias net, Fig. 11",
}


def _implemented() -> tuple:
    return FIGURES


APPENDIX = {k: v for k, v in _APPENDIX_ALL.items() if k not in _implemented()}  # not yet available
CONSTRUCTIONS = ("memorizing-bias", "generalizing-bias", "memorizing-sim-ln", "generalizing-sim-ln")


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _pos_int(text: str) -> int:
    value = _nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except on the --quick/--paper/--smoke switches (they share one)."""

    def _get_help_string(self, action):
        if action.dest == "preset":
            return action.help
        return super()._get_help_string(action)


def _executor_args(p) -> None:
    p.add_argument("--workers", type=_pos_int, default=2, help="local worker processes (runs are independent)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on a Dask cluster: the scheduler's address, e.g. tcp://host:8786")
    p.add_argument("--scheduler-file", metavar="PATH", default=None,
                   help="run on a Dask cluster given by its scheduler file")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="keep finished runs found in the output folder (same settings) instead of rerunning")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")
    p.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True, help="draw the PNG figures")


def _preset_args(p) -> None:
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="course schedules: 'all' in a few minutes on 2 cores (default preset)")
    preset.add_argument("--paper", dest="preset", action="store_const", const="paper",
                        help="the paper's Table 2 schedules (hours)")
    preset.add_argument("--smoke", dest="preset", action="store_const", const="smoke",
                        help="tiny schedules for CI (seconds)")
    p.set_defaults(preset="quick")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flatlab", description="flatlab: flat minima and generalization "
                                     "(Wen, Li & Ma, NeurIPS 2023).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = _Formatter
    rep = sub.add_parser(
        "reproduce", formatter_class=fmt, help="run a scenario of the paper and draw its figures",
        description="Run a scenario of the paper, write DIR/<scenario>/results.json and its figures."
                    + (" Appendix figures not yet available: "
                       + "; ".join(f"{k} ({v})" for k, v in APPENDIX.items()) + "." if APPENDIX else ""))
    figs = _implemented()
    rep.add_argument("scenario", metavar="SCENARIO", choices=(*SCENARIOS, "all", "beyond", *figs, *APPENDIX),
                     help=f"one of {', '.join(SCENARIOS)}, all (the four), beyond (GD+wd, 1-SAM, "
                          "sharpness penalty and label-noise SGD on scenario 2; Sim-LN rescaling), "
                          "or an appendix figure: " + ", ".join(f"{k} ({_APPENDIX_ALL[k]})" for k in figs)
                          + (f" (appendix figures {', '.join(APPENDIX)}: not yet available)"
                             if APPENDIX else ""))
    _preset_args(rep)
    rep.add_argument("--seeds", type=_nonneg_int, nargs="+", default=[0, 1, 2], metavar="SEED",
                     help="seeds (each seed draws its own data, init and example order)")
    rep.add_argument("--out", default="results", metavar="DIR", help="output folder")
    _executor_args(rep)

    swp = sub.add_parser(
        "sweep", formatter_class=fmt, help="train one method of a scenario over a grid of settings",
        description="Train one method of a scenario at every point of a grid (the product of the value "
                    "lists); write DIR/sweep/results.json, results.csv and sweep.png.")
    swp.add_argument("scenario", metavar="SCENARIO", choices=(*SCENARIOS, *figs),
                     help=f"one of {', '.join((*SCENARIOS, *figs))}")
    swp.add_argument("--method", required=True, help="the method id within the scenario, e.g. one_sam, gd_wd")
    _preset_args(swp)
    swp.add_argument("--seeds", type=_nonneg_int, nargs="+", default=[0], metavar="SEED", help="seeds")
    swp.add_argument("--lr", type=float, nargs="+", metavar="LR", help="learning rates (every phase)")
    swp.add_argument("--rho", type=float, nargs="+", metavar="RHO", help="SAM radii (every phase)")
    swp.add_argument("--weight-decay", type=float, nargs="+", metavar="WD", help="weight decays")
    swp.add_argument("--width", type=_pos_int, nargs="+", metavar="M", help="hidden widths")
    swp.add_argument("--out", default="results", metavar="DIR", help="output folder")
    _executor_args(swp)

    con = sub.add_parser(
        "construct", formatter_class=fmt, help="build a flattest construction and measure it",
        description="Build a flattest solution (flatlab.constructions) on XOR data and print "
                    "its fit, Hessian trace and test accuracy.")
    con.add_argument("kind", choices=CONSTRUCTIONS, metavar="KIND", help=f"one of {', '.join(CONSTRUCTIONS)}")
    con.add_argument("--d", type=_pos_int, default=30, help="input dimension")
    con.add_argument("--n", type=_pos_int, default=100, help="training points")
    con.add_argument("--seed", type=_nonneg_int, default=0, help="data seed")
    con.add_argument("--eps", type=float, default=0.1, help="margin of the memorizing neurons")
    return parser


def _executor(args):
    if args.scheduler and args.scheduler_file:
        raise ValueError("give at most one of --scheduler and --scheduler-file")
    return make_executor(args.workers, args.scheduler, args.scheduler_file)


def _threads() -> None:
    torch.set_num_threads(1)  # runs are independent: one thread each, in every executor


def _reproduce(args) -> int:
    if args.scenario in APPENDIX:
        print(f"flatlab reproduce: error: {args.scenario} ({APPENDIX[args.scenario]}) is not yet available; "
              f"available: {', '.join(SCENARIOS)}, all, beyond, {', '.join(_implemented())}", file=sys.stderr)
        return 2
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    seeds = list(dict.fromkeys(args.seeds))
    executor = _executor(args)
    _threads()
    print(f"flatlab reproduce {args.scenario} --{args.preset}: seeds {seeds}, {executor.describe()}, "
          f"output {args.out}/")
    t0 = time.perf_counter()
    kw = {"executor": executor, "progress": args.progress, "figures": args.figures, "resume": args.resume}
    if args.scenario == "beyond":
        res = run_beyond(args.preset, seeds, args.out, **kw)
        ok = _summary({"beyond": res}, args.out)
        print(f"total wall time {time.perf_counter() - t0:.0f} s")
        return 130 if res["interrupted"] else (0 if ok else 1)
    results = run_scenarios(names, args.preset, seeds, args.out, **kw)
    ok = _summary(results, args.out)
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    if any(r["interrupted"] for r in results.values()):
        print("interrupted: the result files hold the runs that finished", file=sys.stderr)
        return 130
    return 0 if ok else 1


def _summary(results: dict, out) -> bool:
    ok = True
    print()
    for name, res in results.items():
        print(f"== {name} ({res['preset']}) -> {out}/{name}/results.json"
              + (f", {', '.join(res.get('figures', []))}" if res.get("figures") else ""))
        summary = res["summary"]
        for s in summary["methods"].values():
            print(f"   {s['label']:<18} final test acc {_rng(s['final_test_acc'])}  trace "
                  f"{_rng(s['final_trace'], '.2f')}  peak test acc {_rng(s['peak_test_acc'])}"
                  + (f"  test MSE {_rng(s.get('final_test_mse'))}"
                     if res.get("config", {}).get("dataset") == "ball" else ""))
        if "trace_floor" in summary:
            print(f"   trace floor of interpolators: {summary['trace_floor']:.4f}")
        for row in summary.get("neuron_table", []):
            shares = ", ".join(f"{100 * (nr['x1x2_share'] or 0):.1f}%" for nr in row["neurons"])
            print(f"   seed {row['seed']}: top-4 neurons' share of squared norm on x1, x2: {shares}")
        for c in res["checks"]:
            ok &= c["passed"]
            print(f"   [{'PASS' if c['passed'] else 'FAIL'}] {c['check']}")
    return ok


def _rng(s, spec=".3f"):
    if s is None:
        return "n/a"
    return f"{format(s['mean'], spec)} [{format(s['min'], spec)}, {format(s['max'], spec)}]"


def _sweep(args) -> int:
    grid = {"seed": args.seeds}
    for key in ("lr", "rho", "weight_decay", "width"):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    executor = _executor(args)
    _threads()
    print(f"flatlab sweep {args.scenario} --method {args.method} --{args.preset}: "
          + ", ".join(f"{k} {v}" for k, v in grid.items()) + f"; {executor.describe()}, output {args.out}/")
    res = run_sweep(args.scenario, args.method, grid, preset=args.preset, out_dir=args.out, executor=executor,
                    progress=args.progress, figures=args.figures, resume=args.resume)
    print(f"\n== sweep -> {args.out}/sweep/results.json, results.csv"
          + (", sweep.png" if args.figures else ""))
    for row in res["table"]:
        where = ", ".join(f"{k}={row[k]}" for k in (*res["varying"], "seed"))
        print(f"   {where}: final test acc {_fmt(row['final_test_acc'])}, trace {_fmt(row['final_trace'], '.2f')}")
    if res["interrupted"]:
        print("interrupted: the result files hold the runs that finished", file=sys.stderr)
        return 130
    return 0


def _fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


def _construct(args) -> int:
    data = make_dataset("xor", n=args.n, d=args.d, n_test=10_000, seed=args.seed)
    X, y = data.X_train, data.y_train
    build = {
        "memorizing-bias": lambda: memorizing_bias(X, y, eps=args.eps),
        "generalizing-bias": lambda: generalizing_bias(args.d),
        "memorizing-sim-ln": lambda: memorizing_sim_ln(X, y, eps=args.eps),
        "generalizing-sim-ln": lambda: generalizing_sim_ln(args.d),
    }[args.kind]
    model = build()
    trace = hessian_trace(model, X, y, method="gauss_newton")
    with torch.no_grad():
        fit = float((model(X) - y).abs().max())
        acc = accuracy(model(data.X_test), data.y_test)
    floor = bias_trace_lower_bound(args.d) if "bias" in args.kind else sim_ln_trace_floor()
    print(f"{args.kind}: width {model.config.width}, max |f(x_i) - y_i| = {fit:.2e}, "
          f"trace = {trace:.6f} (floor {floor:.6f}), test acc = {acc:.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flatlab`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error (or --help)
        return int(exc.code or 0)
    try:
        if args.command == "reproduce":
            return _reproduce(args)
        if args.command == "sweep":
            return _sweep(args)
        return _construct(args)
    except ValueError as err:
        print(f"flatlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
