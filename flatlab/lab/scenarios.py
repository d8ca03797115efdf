"""The paper's main scenarios as configs, and the directions their results must show.

Scenarios (d = 30, n = 100 XOR training points, fresh test points):

- ``scenario1``    no-bias net: GD + weight decay vs 1-SAM (Fig. 1). Both generalize.
- ``scenario1-bn`` Sim-BN net, 1-SAM (Fig. 2): generalizes; the largest neurons read x1, x2.
- ``scenario2``    bias net: GD + weight decay vs 1-SAM (Fig. 4). 1-SAM reaches the trace
  floor 4·sqrt(d+1) but generalizes much worse than GD, and degrades late.
- ``scenario3``    Sim-LN net: 1-SAM from a first layer scaled by 0.01, and projected 1-SAM
  with ‖(W1, b1)‖ = 10 (Fig. 6). Both generalize.

Budget of ``quick`` (measured, 3 seeds): ~215 CPU-seconds in all, about 2 minutes of wall
time with 2 workers on an idle 2-core machine; most of it is Sim-BN 1-SAM (O(m·n·d) per
step), GD (full batch) and the test-accuracy evaluations on 10,000 points at every log.
"""
from __future__ import annotations

from dataclasses import replace

from ..constructions import sim_ln_trace_floor
from ..sharpness import bias_trace_lower_bound
from .spec import MethodSpec, ModelConfig, ScenarioConfig, check_preset

__all__ = ["SCENARIOS", "build_config", "summary_extras", "check_directions"]

SCENARIOS = ("scenario1", "scenario1-bn", "scenario2", "scenario3")


def _gd(epochs: int, log_every: int, lr: float = 0.01, wd: float = 0.05) -> MethodSpec:
    return MethodSpec("gd_wd", "GD+wd", "gd", ((epochs, lr, 0.0),), weight_decay=wd, log_every=log_every)


def _sam(phases, log_every: int, name="one_sam", label="1-SAM", **kw) -> MethodSpec:
    return MethodSpec(name, label, "one_sam", tuple(phases), log_every=log_every, **kw)


_BN_NOTE = (
    "Sim-BN statistic = mean over the training set (quick, smoke). The paper's second phase (lr 0.003, rho 1) "
    "collapses this net to f = 0 (an ascent of radius 1 moves f_i by ~2 > margin 1), and lr 0.005 "
    "diverges at width 500 with gamma 1 (curvature ~2 m gamma^2). quick warms up at rho 0.1 and then "
    "raises rho (probe runs): width 100, gamma0 1, lr 0.005, rho 0.1 / 0.3 for 300 / 700 epochs. "
    "No GD baseline: full-batch GD+wd on Sim-BN "
    "generalizes only partly (probe runs: 0.886-0.996 over 3 seeds, no setting of six reached 0.95 on all)."
)
_BN_PAPER_NOTE = (
    "Table 2 exactly (width 500, gamma0 1, lr 0.005 / rho 0.1 for 1e5 epochs, then lr 0.003 / rho 1 for 1e5 "
    "epochs, batch 1, no weight decay) with the Sim-BN statistic sqrt(sum_i h^2 + eps^2) over the training set "
    "(model.bn_stat = 'sum'), the parameterization under which this schedule is stable: with the mean statistic "
    "(the paper's formula) lr 0.005 diverges at width 500 and rho 1 collapses the net to f = 0 (probe runs). "
    "The two differ by gamma -> gamma / sqrt(n). About 2e7 1-SAM steps: hours on one core."
)
_S2_NOTE = "quick: one 1-SAM phase at rho 0.1 (probe: peak ~0.75 then decline); paper: rho 0.05 then 0.1."
_S3_NOTE = ("standard: first layer initialized x0.01 (Fig. 6a); "
            "projected: ||(W1, b1)||_F = 10 after every step (Fig. 6b).")


_GD_QUICK_NOTE = ("GD+wd uses lr 0.05 (the paper: 0.01); quick runs 4,000 epochs, the same gradient-flow "
                  "time lr*epochs = 200 as the 2e4 epochs at 0.01 that the probe runs needed to reach ~1.0.")


PAPER_LOG_PER_DECADE = 20  # paper presets also log on a log-spaced grid: the learning phase of Figs. 1b, 6a


def build_config(name: str, preset: str) -> ScenarioConfig:
    """The ScenarioConfig of scenario ``name`` for ``preset``; ``notes`` says how it departs from Table 2.
    Paper presets log on a log-spaced epoch grid (``PAPER_LOG_PER_DECADE``) besides every ``log_every``."""
    config = _build_config(name, preset)
    if preset == "paper":
        config = replace(config, methods=tuple(replace(m, log_per_decade=PAPER_LOG_PER_DECADE)
                                               for m in config.methods))
    return config


def _build_config(name: str, preset: str) -> ScenarioConfig:
    check_preset(preset)
    p, s = preset == "paper", preset == "smoke"
    width, n_test = (100 if s else 500), (2_000 if s else 10_000)
    if name == "scenario1":
        methods = {
            "paper": (_gd(100_000, 500), _sam([(100_000, 0.01, 0.05)], 500)),
            "quick": (_gd(4_000, 50, lr=0.05), _sam([(2_000, 0.01, 0.05)], 20)),
            "smoke": (_gd(1_500, 25, lr=0.05), _sam([(300, 0.01, 0.05)], 10)),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario I: 2-MLP-No-Bias", ModelConfig("no_bias", 30, width), methods,
                              n_test=n_test, notes="Table 2, Fig. 1a/1b" if p else _GD_QUICK_NOTE)
    if name == "scenario1-bn":
        m = {
            "paper": _sam([(100_000, 0.005, 0.1), (100_000, 0.003, 1.0)], 1_000, model={"bn_stat": "sum"}),
            "quick": _sam([(300, 0.005, 0.1), (700, 0.005, 0.3)], 10),
            "smoke": _sam([(100, 0.005, 0.1), (100, 0.005, 0.3)], 5),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario I: 2-MLP-Sim-BN",
                              ModelConfig("sim_bn", 30, {"paper": 500, "quick": 100, "smoke": 50}[preset]), (m,),
                              n_test=n_test,
                              notes=_BN_PAPER_NOTE if p else _BN_NOTE)
    if name == "scenario2":
        methods = {
            "paper": (_gd(100_000, 500), _sam([(200_000, 0.01, 0.05), (400_000, 0.01, 0.1)], 1_000)),
            "quick": (_gd(4_000, 50, lr=0.05), _sam([(10_000, 0.01, 0.1)], 100)),
            "smoke": (_gd(1_500, 25, lr=0.05), _sam([(300, 0.01, 0.1)], 10)),
        }[preset]
        return ScenarioConfig(name, preset, "Scenario II: 2-MLP-Bias",
                              ModelConfig("bias", 30, 500), methods,  # 1-SAM's failure needs the paper's width
                              n_test=n_test,
                              notes=_S2_NOTE + ("" if p else " " + _GD_QUICK_NOTE))
    if name == "scenario3":
        e_std, e_proj = {"quick": (500, 300), "paper": (100_000, 500), "smoke": (60, 40)}[preset]
        every_std, every_proj = {"quick": (20, 30), "paper": (500, 15), "smoke": (5, 8)}[preset]
        methods = (
            _sam([(e_std, 0.1, 0.1)], every_std, model={"init_scale": 0.01}),
            _sam([(e_proj, 0.01, r) for r in (0.1, 0.5, 1.0)], every_proj, name="one_sam_projected",
                 label="1-SAM (projected)", project_norm=10.0),
        )
        return ScenarioConfig(name, preset, "Scenario III: 2-MLP-Sim-LN", ModelConfig("sim_ln", 30, width),
                              methods, n_test=n_test, notes=_S3_NOTE)
    raise ValueError(f"scenario must be one of {SCENARIOS}, got {name!r}")


def summary_extras(config: ScenarioConfig, runs: list[dict]) -> dict:
    """What a main scenario's summary adds: the trace floor of its interpolators, Fig. 2b's table."""
    out = {}
    arch = config.model.arch
    if arch == "bias":
        out["trace_floor"] = bias_trace_lower_bound(config.model.d)
    if arch == "sim_ln":
        out["trace_floor"] = sim_ln_trace_floor()
    if "trace_floor" in out:
        out["trace_floor_bounds"] = (
            "Tr ∇²L of every interpolator (f(x_i) = y_i on every training point), where Tr ∇²L equals its "
            "Gauss-Newton term; a run that does not interpolate exactly can sit below it")
    if arch == "sim_bn":  # Fig. 2b: the top-4 neurons of every run
        out["neuron_table"] = [
            {"method": r["method"], "seed": r["seed"],
             "neurons": [{k: v for k, v in row.items() if k != "w"} for row in r["neurons"]]} for r in runs]
    return out


def check_directions(results: dict) -> list[dict]:
    """The paper's directions for a main scenario, evaluated on a results dict.

    Returns [{"check": text, "passed": bool, "value": ...}]. Bars: ``quick``/``paper``
    use the course's thresholds; ``smoke`` (tiny nets, few epochs) only the directions.
    """
    name, smoke = results["scenario"], results.get("preset") == "smoke"
    by = {}
    for r in results["runs"]:
        by.setdefault(r["method"], []).append(r)
    out = []

    def add(text, values, ok):
        out.append({"check": text, "passed": bool(values) and all(ok(v) for v in values), "value": values})

    def accs(m):
        return [r["final"]["test_acc"] or 0.0 for r in by.get(m, [])]

    # a diverged run can still score on test accuracy (huge weights of the right sign): say it first
    add("every run trained without diverging (final training loss finite)",
        [(r["method"], r["seed"], r["final"].get("train_loss")) for r in results["runs"]],
        lambda v: v[2] is not None)
    bar = {"scenario1": 0.98, "scenario1-bn": 0.95, "scenario3": 0.93}.get(name)
    if smoke and bar:
        bar = 0.75
    if name in ("scenario1", "scenario1-bn", "scenario3"):
        for m, rs in by.items():
            add(f"{m}: final test acc >= {bar}", accs(m), lambda a: a >= bar)
    if name == "scenario1-bn":
        shares = [[row["x1x2_share"] or 0.0 for row in r["neurons"]] for r in by.get("one_sam", [])]
        if smoke:  # tiny runs align their largest neurons only partly; chance level is 2/d
            add("top-4 neurons: mean share of squared norm on x1, x2 >= 0.5",
                [sum(v) / len(v) for v in shares], lambda v: v >= 0.5)
        else:
            add("top-4 neurons: each >= 0.9 of squared norm on x1, x2",
                [min(v) for v in shares], lambda v: v >= 0.9)
    floor = results.get("summary", {}).get("trace_floor")
    if floor and not smoke:  # the floor is a theorem about interpolators: only a non-interpolator may be below it
        rs = [r for r in results["runs"] if r["final"].get("trace") is not None]
        add(f"every run whose trace is below the floor {floor:.2f} does not interpolate (max |f_i - y_i| > 1e-6)",
            [(r["method"], r["seed"], r["final"]["trace"], r["final"].get("train_max_residual")) for r in rs],
            lambda v: v[2] >= floor or (v[3] is not None and v[3] > 1e-6))
    if name == "scenario2" and "gd_wd" in by and "one_sam" in by:
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
