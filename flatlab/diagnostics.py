"""Diagnostics that tell flat solutions apart: memorization index and neuron alignment.

Two interpolators can share the minimal sharpness and still compute very different
functions (Section 4 of the paper). These measures read the weights and the training
activations of a two-layer net (``no_bias``, ``bias``, ``sim_bn``, ``sim_ln``):

- :func:`firing_counts`: for each neuron j, the number of training points with
  pre-activation > 0, i.e. h_j(x_i) > 0. Shape (m,).
- :func:`memorization_index`: the share of the training output carried by neurons that
  fire on at most ``threshold`` (3) training points,
  Σ_{j: c_j ≤ 3} Σ_i |W2_j φ_j(x_i)| / Σ_j Σ_i |W2_j φ_j(x_i)|, with φ = ``model.features``
  (h, or its Sim-BN / Sim-LN normalization). Memorizing construction 1.0; generalizing 0.
- :func:`median_firing`: the median firing count over neurons that fire at least once
  (memorizing ~1, generalizing ~n/4, trained nets 15-50 on XOR with n = 100).
- :func:`x1x2_share`: ‖W1[:, :2]‖_F² / ‖W1‖_F², the share of first-layer weight on the two
  label coordinates (generalizing 1.0; memorizing and chance 2/d).
- :func:`neuron_table`: the top-k neurons (by ‖W1_j‖·|W2_j| or by ‖W1_j‖) with their
  weights on x1, x2 and the norm of the rest (the table of Fig. 2b).
- :func:`diagnose`: all of the above as one JSON-ready dict.
"""
from __future__ import annotations

import torch
from torch import nn

from .data import check_xy

__all__ = [
    "MEMORIZATION_THRESHOLD",
    "firing_counts",
    "memorization_index",
    "median_firing",
    "x1x2_share",
    "column_norms",
    "neuron_table",
    "diagnose",
]

MEMORIZATION_THRESHOLD = 3  # a neuron firing on <= 3 training points counts as memorizing
_ARCHS = ("no_bias", "bias", "sim_bn", "sim_ln")


def _check_model(model) -> None:
    arch = getattr(getattr(model, "config", None), "arch", None)
    if not isinstance(model, nn.Module) or arch not in _ARCHS:
        got = arch or type(model).__name__
        raise ValueError(f"model must be a two-layer flatlab model with arch in {_ARCHS}, got {got!r}")


def _check_inputs(model, X) -> None:
    _check_model(model)
    check_xy(X, d=model.config.d)


def _check_threshold(threshold) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ValueError(f"threshold must be an int >= 0, got {threshold!r}")
    return threshold


@torch.no_grad()
def firing_counts(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Number of rows of X (n, d) on which each neuron fires (h > 0): int64 tensor (m,)."""
    _check_inputs(model, X)
    return (model.hidden(X) > 0).sum(0)


@torch.no_grad()
def memorization_index(model: nn.Module, X: torch.Tensor, *,
                       threshold: int = MEMORIZATION_THRESHOLD) -> float:
    """Share of Σ_i Σ_j |W2_j φ_j(x_i)| carried by neurons firing on ≤ ``threshold`` rows of X.

    X: the training inputs (n, d). Returns a float in [0, 1]; 0.0 if the net outputs 0
    on every training point (no output to share).
    """
    _check_inputs(model, X)
    _check_threshold(threshold)
    contrib = (model.features(X) * model.W2).abs().sum(0)  # (m,)
    total = float(contrib.sum())
    if total == 0.0:
        return 0.0
    counts = (model.hidden(X) > 0).sum(0)
    return float(contrib[counts <= threshold].sum()) / total


@torch.no_grad()
def median_firing(model: nn.Module, X: torch.Tensor) -> float:
    """Median of :func:`firing_counts` over neurons firing on ≥ 1 row of X (0.0 if none).

    The median of an even count is the mean of the two middle values.
    """
    counts = firing_counts(model, X)
    active = counts[counts > 0].to(torch.float64)
    return float(active.quantile(0.5)) if active.numel() else 0.0


@torch.no_grad()
def x1x2_share(model: nn.Module) -> float:
    """‖W1[:, :2]‖_F² / ‖W1‖_F²: the share of first-layer weight on the label coordinates x1, x2."""
    _check_model(model)
    W1 = model.W1.detach()
    total = float(W1.pow(2).sum())
    return float(W1[:, :2].pow(2).sum()) / total if total > 0 else 0.0


@torch.no_grad()
def column_norms(model: nn.Module) -> torch.Tensor:
    """Euclidean norms of the columns of W1: (d,) (Fig. 2b: first two ≫ the rest)."""
    _check_model(model)
    return model.W1.detach().norm(dim=0)


@torch.no_grad()
def neuron_table(model: nn.Module, k: int = 4, *, by: str = "product",
                 X: torch.Tensor | None = None, weights: bool = False) -> list[dict]:
    """The top-k neurons and how their first-layer weight splits between x1, x2 and the rest.

    by: ``"product"`` ranks by ‖W1_j‖·|W2_j| (times |γ_j| for sim_bn), ``"norm"`` by ‖W1_j‖
    (also for the first layer of a ``deep_bias`` net, without X; its ``w2`` is None).
    X (n, d), optional: adds each neuron's firing count on X.
    Returns a list of k dicts (largest first) with keys ``neuron``, ``score``, ``w1_norm``,
    ``w_x1``, ``w_x2``, ``rest_norm`` (‖W1_j[2:]‖), ``x1x2_share`` (of ‖W1_j‖²),
    ``bias`` (None for no_bias), ``w2``, ``gamma`` (sim_bn, else None), ``firing`` (if X),
    ``w`` (the whole row W1_j, d floats, if ``weights``: Fig. 2b's heatmap).
    """
    deep = getattr(getattr(model, "config", None), "arch", None) == "deep_bias"
    if not (deep and by == "norm" and X is None):  # a deep net's first layer: ranked by norm only
        _check_model(model)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= model.config.width:
        raise ValueError(f"k must be an int in [1, width={model.config.width}], got {k!r}")
    if by not in ("product", "norm"):
        raise ValueError(f"by must be 'product' or 'norm', got {by!r}")
    W1, W2 = model.W1.detach(), None if deep else model.W2.detach()
    norms = W1.norm(dim=1)
    gamma = model.gamma.detach() if model.config.arch == "sim_bn" else None
    score = norms if by == "norm" else norms * W2.abs() * (gamma.abs() if gamma is not None else 1.0)
    counts = firing_counts(model, X) if X is not None else None
    rows = []
    for j in torch.argsort(score, descending=True, stable=True)[:k].tolist():
        sq = float(norms[j]) ** 2
        rows.append({
            "neuron": j,
            "score": float(score[j]),
            "w1_norm": float(norms[j]),
            "w_x1": float(W1[j, 0]),
            "w_x2": float(W1[j, 1]),
            "rest_norm": float(W1[j, 2:].norm()),
            "x1x2_share": float(W1[j, :2].pow(2).sum()) / sq if sq > 0 else 0.0,
            "bias": float(model.b1[j]) if hasattr(model, "b1") else None,
            "w2": None if deep else float(W2[j]),
            "gamma": float(gamma[j]) if gamma is not None else None,
            **({"firing": int(counts[j])} if counts is not None else {}),
            **({"w": [float(v) for v in W1[j]]} if weights else {}),
        })
    return rows


def diagnose(model: nn.Module, X: torch.Tensor, *, k: int = 4,
             threshold: int = MEMORIZATION_THRESHOLD) -> dict:
    """All diagnostics on training inputs X (n, d) as a JSON-ready dict.

    Keys: ``memorization_index``, ``median_firing``, ``x1x2_share``, ``n_active``
    (neurons firing on ≥ 1 point), ``top_neurons`` (:func:`neuron_table`, by product),
    ``top_x1x2_share`` (the x1, x2 share of the top-k neurons' squared norms together).
    """
    _check_inputs(model, X)
    counts = firing_counts(model, X)
    table = neuron_table(model, k=min(k, model.config.width), X=X)
    top_sq = sum(r["w1_norm"] ** 2 for r in table)
    top_x12 = sum(r["w1_norm"] ** 2 * r["x1x2_share"] for r in table)
    out = {
        "memorization_index": memorization_index(model, X, threshold=threshold),
        "median_firing": median_firing(model, X),
        "x1x2_share": x1x2_share(model),
        "n_active": int((counts > 0).sum()),
        "top_neurons": table,
        "top_x1x2_share": top_x12 / top_sq if top_sq > 0 else 0.0,
    }
    return out
