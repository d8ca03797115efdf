"""The paper's appendix figures as scenario configs for ``flatlab reproduce``.

- ``fig7``    ball data of Appendix B.2 (d = 10, n = 100, y = |x1| - |x2|): 1-SAM (lr 0.01,
  ρ 0.2) on the no-bias and on the bias net. Paper: the flattest no-bias model generalizes
  far better than the bias one. The labels are real, so the test metric that matters is the
  test MSE (recorded as ``final.test_mse``); the curves show the sign accuracy
  Pr(y·f(x) > 0), the paper's zero-one metric applied to sign(y). Both are checked.
- ``fig11``   3-layer MLP with bias in the first layer, XOR data: SGD + weight decay
  (batch 1, lr 0.01, wd 0.05) vs 1-SAM (lr 0.01, ρ 0.05). Paper: the same contrast as
  Fig. 4 (the baseline generalizes, 1-SAM ends flatter and generalizes worse).
- ``fig8-10`` logistic loss with label smoothing 0.2 (Appendix B.3): no-bias baseline vs
  1-SAM (Fig. 8), bias baseline vs 1-SAM (Fig. 9), Sim-BN and Sim-LN 1-SAM (Fig. 10).
  Three figure files from one config.
  At ``quick`` scale only Fig. 8 reproduces; the config's notes say what does not.
- ``fig5`` (softplus) is not implemented here yet.

Softplus, logistic loss and the deep net run on the torch backend (a few hundred 1-SAM
steps per second), so ``quick`` uses small widths and short schedules; each config's
``notes`` (saved in results.json) says how it departs from Table 2. Checks encode the
paper's direction; where a direction does not show at quick scale, the notes say so.
"""
from __future__ import annotations

from .spec import MethodSpec, ModelConfig, ScenarioConfig, check_preset

__all__ = ["FIGURES", "build_config", "check_directions"]

FIGURES = ("fig7", "fig11", "fig8-10")  # implemented appendix figures (cli: flatlab reproduce fig7 ...)


def _m(name, label, optimizer, phases, log_every, **kw) -> MethodSpec:
    return MethodSpec(name, label, optimizer, tuple(phases), log_every=log_every, **kw)


def _fig7(preset: str) -> ScenarioConfig:
    epochs, every, width, n_test = {"paper": (100_000, 1_000, 500, 10_000), "quick": (2_000, 50, 500, 10_000),
                                    "smoke": (150, 25, 100, 1_000)}[preset]
    methods = tuple(_m(f"one_sam_{a}", f"1-SAM, {lab}", "one_sam", [(epochs, 0.01, 0.2)], every, model={"arch": a})
                    for a, lab in (("no_bias", "no bias"), ("bias", "bias")))
    return ScenarioConfig(
        "fig7", preset, "Fig. 7: ball data, no-bias vs bias, 1-SAM", ModelConfig("no_bias", 10, width), methods,
        n_test=n_test, dataset="ball",
        notes="Table 2 lr 0.01, rho 0.2; quick runs 2,000 of the paper's 1e5 epochs (the gap is settled "
              "by ~200 epochs). Test metric: test MSE (real labels) and sign accuracy, both checked. "
              "The bias net ends at a LOWER trace than the no-bias net (different architectures).")


def _fig11(preset: str) -> ScenarioConfig:
    epochs, every, width, n_test = {"paper": (100_000, 1_000, 500, 10_000), "quick": (60, 5, 50, 5_000),
                                    "smoke": (8, 4, 30, 1_000)}[preset]
    methods = (
        _m("sgd_wd", "SGD+wd (batch 1)", "sgd", [(epochs, 0.01, 0.0)], every, weight_decay=0.05,
           batch_size=1),
        _m("one_sam", "1-SAM", "one_sam", [(epochs, 0.01, 0.05)], every),
    )
    return ScenarioConfig(
        "fig11", preset, "Fig. 11: 3-layer MLP, bias in the first layer", ModelConfig("deep_bias", 30, width, depth=3),
        methods, n_test=n_test,
        notes="Table 2 lr 0.01, wd 0.05 / rho 0.05, batch 1. The deep net runs on the torch backend "
              "(~300-700 steps/s), so quick = width 50 and 60 of the paper's 1e5 epochs: the contrast "
              "(SGD+wd climbing towards 1, 1-SAM fitting the data at a lower trace and much lower test "
              "accuracy) is an early-training one here, not the paper's converged state.")


def _fig8_10(preset: str) -> ScenarioConfig:
    p = preset == "paper"
    e_gd, e_sam, e_ln, every, width, n_test = {
        "paper": (100_000, 100_000, 100_000, 1_000, 500, 10_000),
        "quick": (400, 40, 40, 10, 100, 5_000),
        "smoke": (50, 5, 5, 5, 100, 1_000)}[preset]
    e_bn = 40_000 if p else e_sam
    warm = max(1, e_ln // 10)  # Sim-LN: rho 0.5 first, then 1 (paper: 1e3 + 1e5 epochs)
    ln_phases = [(1_000, 1.0, 0.5), (100_000, 1.0, 1.0)] if p else [(warm, 1.0, 0.5), (e_ln - warm, 1.0, 1.0)]
    methods = (
        _m("sgd_wd_no_bias", "no bias: SGD+wd (batch 10)", "sgd", [(e_gd, 0.1, 0.0)], every * 10,
           weight_decay=0.01, batch_size=10, model={"arch": "no_bias"}),
        _m("one_sam_no_bias", "no bias: 1-SAM", "one_sam", [(e_sam, 0.1, 0.2)], every, model={"arch": "no_bias"}),
        _m("sgd_wd_bias", "bias: SGD+wd (batch 1)", "sgd", [(e_sam, 0.01, 0.0)], every,
           weight_decay=0.05, batch_size=1, model={"arch": "bias"}),
        _m("one_sam_bias", "bias: 1-SAM", "one_sam", [(e_sam, 0.1, 0.2)], every, model={"arch": "bias"}),
        _m("one_sam_sim_bn", "Sim-BN: 1-SAM", "one_sam", [(e_bn, 0.1, 0.2)], every, model={"arch": "sim_bn"}),
        _m("one_sam_sim_ln", "Sim-LN: 1-SAM", "one_sam",
           ln_phases, every,
           model={"arch": "sim_ln", "init_scale": 0.01}),
    )
    figures = (("fig8", "Fig. 8: logistic loss, 2-MLP-No-Bias", ("sgd_wd_no_bias", "one_sam_no_bias")),
               ("fig9", "Fig. 9: logistic loss, 2-MLP-Bias", ("sgd_wd_bias", "one_sam_bias")),
               ("fig10", "Fig. 10: logistic loss, Sim-BN and Sim-LN, 1-SAM",
                ("one_sam_sim_bn", "one_sam_sim_ln")))
    return ScenarioConfig(
        "fig8-10", preset, "Figs. 8-10: logistic loss (label smoothing 0.2)", ModelConfig("no_bias", 30, width), methods,
        n_test=n_test, loss="logistic", figures=figures,
        notes="Table 2 lr / rho / batch / wd. Torch backend (logistic loss): quick = width 100 (at width 50 "
              "no-bias 1-SAM collapsed to f = 0 on 2 of 3 seeds) and 40 epochs of 1-SAM (the no-bias SGD "
              "baseline, batch 10, gets 400 epochs = the same number of steps); the paper runs 1e5 epochs "
              "(Sim-BN 4e4). Sim-LN: first layer init x0.01, rho 0.5 for the first tenth then 1. "
              "AT QUICK SCALE ONLY FIG. 8 REPRODUCES: Fig. 9's contrast is reversed (after 40 epochs bias "
              "1-SAM at lr 0.1 is ahead of SGD+wd at lr 0.01, which has not generalized yet; the paper's "
              "failure of 1-SAM comes late, as in Fig. 4), and Fig. 10's Sim-BN / Sim-LN runs have not "
              "reached 0.9 on every seed (Sim-LN at lr 1, rho 1 is unstable early). Those checks fail at "
              "quick by design: they encode the paper's direction, which needs the paper preset.")


_BUILDERS = {"fig7": _fig7, "fig11": _fig11, "fig8-10": _fig8_10}


def build_config(name: str, preset: str) -> ScenarioConfig:
    """The ScenarioConfig of appendix figure ``name`` (one of ``FIGURES``) for ``preset``."""
    if name not in _BUILDERS:
        raise ValueError(f"appendix figure must be one of {FIGURES}, got {name!r}")
    check_preset(preset)
    return _BUILDERS[name](preset)


def check_directions(results: dict) -> list[dict]:
    """The paper's direction for an appendix figure, as [{"check", "passed", "value"}].

    ``smoke`` checks the sign of each contrast only; ``quick``/``paper`` ask for a clear gap.
    Pairs are compared seed by seed.
    """
    name, smoke = results["scenario"], results.get("preset") == "smoke"
    by = {}
    for r in results["runs"]:
        by.setdefault(r["method"], {})[r["seed"]] = r["final"]
    out = []

    def add(text, values, ok):
        out.append({"check": text, "passed": bool(values) and all(ok(v) for v in values), "value": values})

    def get(m, key):
        return [f.get(key) for _, f in sorted(by.get(m, {}).items())]

    def pairs(a, b, key):
        seeds = sorted(set(by.get(a, {})) & set(by.get(b, {})))
        return [(by[a][s].get(key), by[b][s].get(key)) for s in seeds]

    def at_least(m, bar):
        add(f"{m}: final test acc >= {bar}", get(m, "test_acc"), lambda a: a is not None and a >= bar)

    def gap(a, b, g, key="test_acc"):  # a's metric at least g below b's (g = 0: strictly below)
        add(f"{a}: final {key} {'at least ' + str(g) + ' ' if g else ''}below {b}'s", pairs(a, b, key),
            lambda p: None not in p and (p[0] <= p[1] - g if g else p[0] < p[1]))

    if name == "fig7":
        ratio = 1.0 if smoke else 0.5
        add(f"one_sam_no_bias: final test MSE <= {ratio} x one_sam_bias's",
            pairs("one_sam_no_bias", "one_sam_bias", "test_mse"),
            lambda p: None not in p and p[0] <= ratio * p[1] and (not smoke or p[0] < p[1]))
        gap("one_sam_bias", "one_sam_no_bias", 0.0 if smoke else 0.1)
        if not smoke:
            at_least("one_sam_no_bias", 0.9)
    elif name == "fig11":
        if not smoke:
            at_least("sgd_wd", 0.8)
            gap("one_sam", "sgd_wd", 0.0, key="trace")
        gap("one_sam", "sgd_wd", 0.0 if smoke else 0.15)
    elif name == "fig8-10":  # smoke: Fig. 8 only (the one direction reached below the paper preset)
        for m in ("sgd_wd_no_bias", "one_sam_no_bias") if smoke else (
                "sgd_wd_no_bias", "one_sam_no_bias", "sgd_wd_bias", "one_sam_sim_bn", "one_sam_sim_ln"):
            at_least(m, 0.6 if smoke else 0.9)
        if not smoke:
            gap("one_sam_bias", "sgd_wd_bias", 0.1)
    return out
