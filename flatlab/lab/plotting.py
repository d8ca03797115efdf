"""Figures mirroring the paper's, drawn from a scenario's ``results.json`` dict.

- ``<scenario>_curves.png``: test accuracy, training loss and Tr ∇²L against epoch
  (log x), one colour per method, the mean over seeds as a line and the range (min-max)
  shaded; phase changes of the ρ schedule as dotted verticals; the trace floor dashed
  (4·sqrt(d+1) for the bias net, 2 for Sim-LN). Figs. 1, 2a, 4, 6.
- ``<scenario>_neurons.png`` (scenario1, scenario1-bn): the four first-layer neurons with
  the largest ‖W1[i]‖ per seed, as a heatmap of W1[i]/‖W1[i]‖ over the d inputs with the
  numbers of Fig. 2b (weight on x1, x2, norm of the rest, share of the squared norm on x1, x2).

- Appendix figures (``flatlab.lab.appendix``): a config with ``figures`` gets one curves figure
  per entry, ``<scenario>_<suffix>.png``, showing only that entry's methods (Fig. 8, 9, 10
  of the ``fig8-10`` config are three files).

Matplotlib's Agg backend is used, so no display is needed.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullFormatter  # noqa: E402

__all__ = ["plot_results", "plot_curves", "curves_figure", "plot_neurons", "plot_beyond", "plot_sweep", "COLORS"]

COLORS = {"gd_wd": "#1f77b4", "gd": "#7f7f7f", "one_sam": "#d62728", "one_sam_projected": "#2ca02c", "penalty": "#2ca02c",
          "label_noise": "#9467bd"}  # by method id
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")  # other ids, in order
_PANELS = (("test_acc", "test accuracy", False), ("train_loss", "training loss", True),
           ("trace", "Tr ∇²L (sharpness)", True))


def _color(name, names):
    """A method's colour: its own where it has one, else the palette by position."""
    return COLORS.get(name) or _PALETTE[list(names).index(name) % len(_PALETTE)]


def _band(runs, key):
    """Epochs (k,) and mean/min/max (k,) of history[key] over runs, on their common prefix."""
    k = min(len(r["history"]["epoch"]) for r in runs)
    epochs = np.asarray(runs[0]["history"]["epoch"][:k], dtype=float)
    vals = np.array([[np.nan if v is None else v for v in r["history"][key][:k]] for r in runs], dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():  # all-NaN columns (a diverged run) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return epochs, np.nanmean(vals, 0), np.nanmin(vals, 0), np.nanmax(vals, 0)


def _num(x, spec: str) -> str:
    """A number for a label; ``nan`` for a value results.json holds as null (not finite)."""
    return "nan" if x is None else format(x, spec)


def _differs(runs) -> bool:
    """Whether the runs logged a Gauss-Newton term that is not their trace (normalized nets)."""
    pairs = [(t, g) for r in runs for t, g in zip(r["history"]["trace"], r["history"].get("gn_trace") or [])
             if t is not None and g is not None]
    return any(abs(t - g) > 1e-6 * max(1.0, abs(t)) for t, g in pairs)


def _methods(results):
    order = [m["name"] for m in results["config"]["methods"]]
    groups = {}
    for r in results["runs"]:
        groups.setdefault(r["method"], []).append(r)
    return [(name, groups[name]) for name in order if name in groups]


def plot_curves(results: dict, path, methods=None, title=None) -> Path:
    """The three training-curve panels of one scenario, saved to ``path`` (PNG)."""
    fig = curves_figure(results, methods, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def curves_figure(results: dict, methods=None, title=None):
    """The matplotlib Figure of :func:`plot_curves` (axes: test acc, train loss, trace).

    ``methods``: the method ids to draw (default all); ``title``: replaces the config's title.
    """
    cfg = results["config"]
    specs = {m["name"]: m for m in cfg["methods"]}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    seeds = sorted({r["seed"] for r in results["runs"]})
    groups = [(nm, rs) for nm, rs in _methods(results) if methods is None or nm in methods]
    for i, (name, runs) in enumerate(groups):
        color = COLORS.get(name) if len(groups) <= 3 and name in COLORS else _PALETTE[i % len(_PALETTE)]
        label = f"{runs[0]['label']} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
        for ax, (key, _, logy) in zip(axes, _PANELS):
            ep, mean, lo, hi = _band(runs, key)
            keep = ep > 0  # log x
            if logy:
                keep &= np.isfinite(mean) & (mean > 0)
            ax.plot(ep[keep], mean[keep], color=color, lw=1.8, label=label)
            if len(runs) > 1:
                ax.fill_between(ep[keep], lo[keep], hi[keep], color=color, alpha=0.2, lw=0)
            if key == "trace" and _differs(runs):  # the Gauss-Newton term, where it is not the trace
                ep2, gn, _, _ = _band(runs, "gn_trace")
                ok = (ep2 > 0) & np.isfinite(gn) & (gn > 0)
                ax.plot(ep2[ok], gn[ok], color=color, lw=1.2, ls="--", label=f"{runs[0]['label']}: Gauss-Newton term")
            start = 0
            for epochs, _lr, _rho in specs[name]["phases"][:-1]:
                start += epochs
                ax.axvline(start, color=color, ls=":", lw=1, alpha=0.7)
    floor = results.get("summary", {}).get("trace_floor")
    if floor:
        tag = "4·sqrt(d+1)" if cfg["model"]["arch"] == "bias" else "floor"
        axes[2].axhline(floor, color="k", ls="-.", lw=1.2, label=f"interpolators' {tag} = {floor:.2f}")
    for ax, (key, ylabel, logy) in zip(axes, _PANELS):
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if key == "trace":  # plain numbers (22.27, 60, 100), not 2×10¹
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
            ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xlabel("epoch")
        if key == "test_acc" and cfg.get("dataset") == "ball":  # real labels: Pr(y·f(x) > 0)
            ylabel = "test sign accuracy"
        ax.set_ylabel(ylabel + (f" ({cfg.get('loss', 'mse')})" if key == "train_loss" else ""))
        ax.grid(True, which="major", alpha=0.3)
    lo, hi = axes[2].get_ylim()
    if lo > 0 and hi / lo > 20:  # many decades: minor labels would overlap
        axes[2].yaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylim(min(0.45, axes[0].get_ylim()[0]), 1.02)
    axes[0].legend(loc="lower right", fontsize=9)
    axes[2].legend(loc="best", fontsize=8)
    tag = " (interrupted)" if results.get("interrupted") else ""
    fig.suptitle(f"{title or cfg['title']} — width {cfg['model']['width']}, d = {cfg['model']['d']}, n = {cfg['n']}, "
                 f"preset {cfg['preset']}, seeds {seeds}{tag}", fontsize=11)
    return fig


def plot_neurons(results: dict, path, method: str | None = None) -> Path:
    """Fig. 2b: the top-4 first-layer neurons of each seed as a heatmap + numbers."""
    groups = dict(_methods(results))
    method = method or ("one_sam" if "one_sam" in groups else next(iter(groups)))
    runs = sorted(groups[method], key=lambda r: r["seed"])
    d = results["config"]["model"]["d"]
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 1.25 + 1.05 * len(runs)), squeeze=False,
                             constrained_layout=True)
    image = None
    for ax, run in zip(axes[:, 0], runs):
        rows = run["neurons"]
        W = np.array([[np.nan if v is None else v for v in r["w"]] for r in rows], dtype=float)
        with np.errstate(all="ignore"):  # a diverged run: non-finite weights stay blank
            W = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-300)
        image = ax.imshow(W, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(rows)))
        labels = [f"#{r['neuron']}: x1 {_num(r['w_x1'], '+.2f')}, x2 {_num(r['w_x2'], '+.2f')}, "
                  f"rest {_num(r['rest_norm'], '.2f')}, {_num(r['x1x2_share'] and 100 * r['x1x2_share'], '.1f')}%"
                  for r in rows]
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xticks(range(0, d, max(1, d // 15)))
        ax.set_xticklabels([f"x{j + 1}" for j in range(0, d, max(1, d // 15))], fontsize=8)
        ax.set_title(f"seed {run['seed']}: test acc {_num(run['final']['test_acc'], '.3f')}"
                     + ("" if run["final"].get("train_loss") is not None else " (diverged: training loss not finite)"),
                     fontsize=9, loc="left")
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="W1[i] / ‖W1[i]‖", shrink=0.9)
    fig.suptitle(f"{results['config']['title']}, {runs[0]['label']}: the 4 largest first-layer neurons "
                 f"(label: weight on x1, x2, norm of the rest, share of squared norm on x1, x2)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_results(results: dict, folder) -> list[Path]:
    """All figures of one scenario into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = results["scenario"]
    panels = results["config"].get("figures") or ()
    if panels:
        paths = [plot_curves(results, folder / f"{name}_{suffix}.png", methods, title)
                 for suffix, title, methods in panels]
    else:
        paths = [plot_curves(results, folder / f"{name}_curves.png")]
    if name in ("scenario1", "scenario1-bn"):
        paths.append(plot_neurons(results, folder / f"{name}_neurons.png"))
    return paths


def plot_beyond(results: dict, folder, labels: dict) -> list[Path]:
    """Draw ``beyond_curves.png`` (test accuracy and trace vs epoch and vs wall time, per
    method (labels: id -> legend text): mean over seeds with the min-max range; the floor 4·sqrt(d+1) dashed) and
    ``beyond_rescaling.png`` (S - 2 and max |Δf| against c, test accuracy per seed)."""
    folder = Path(folder)
    paths = []
    floor = results["summary"]["trace_floor"]
    methods = list(dict.fromkeys(r["method"] for r in results["runs"]))
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
                    ax.plot(x, np.nanmean(v, 0), color=_color(m, methods), label=labels.get(m, m))
                    ax.fill_between(x, np.nanmin(v, 0), np.nanmax(v, 0), color=_color(m, methods), alpha=0.2, lw=0)
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
            axes[0].loglog(c, [p["gn_trace"] - 2.0 for p in r["curve"]], "o-", label=f"seed {r['seed']}")
            ch = [max(p["max_change_train"], p["max_change_test"], 1e-17) for p in r["curve"]]
            axes[1].loglog(c, ch, "s-", label=f"seed {r['seed']}: test acc {r['test_acc']:.3f} for every c")
        c = np.array([p["c"] for p in resc[0]["curve"]])
        axes[0].loglog(c, (resc[0]["gn_trace"] - 2.0) / c**2, "k:", label="(S(1) - 2)/c²")
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


def plot_sweep(table: list[dict], varying: list[str], path, metric: str = "final_test_acc") -> Path:
    """One panel of a sweep: ``metric`` (mean over seeds, min-max bars) against the first
    varying setting, one line per value of the others. ``table``: rows of ``flatlab.lab.sweep``."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    x_key = varying[0] if varying else None
    groups = {}
    for row in table:
        label = ", ".join(f"{k}={row[k]}" for k in varying[1:]) or "all"
        groups.setdefault(label, {}).setdefault(row[x_key] if x_key else 0, []).append(row[metric])
    for i, (label, by_x) in enumerate(groups.items()):
        xs = sorted(by_x)
        vals = [[v for v in by_x[x] if v is not None] or [np.nan] for x in xs]
        mean = np.array([np.mean(v) for v in vals])
        lo, hi = mean - np.array([np.min(v) for v in vals]), np.array([np.max(v) for v in vals]) - mean
        ax.errorbar(range(len(xs)) if not all(isinstance(x, (int, float)) for x in xs) else xs, mean,
                    yerr=[lo, hi], marker="o", capsize=3, color=_PALETTE[i % len(_PALETTE)], label=label)
    ax.set_xlabel(x_key or "")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
