"""Losses of the paper: mean squared error and logistic loss with label smoothing.

A loss maps predictions f (n,) and labels y (n,) with y in {-1, +1} (or real for
ball data with MSE) to a scalar mean over the n examples.
"""
from __future__ import annotations


import torch

__all__ = ["LOSSES", "mse", "logistic", "get_loss", "zero_one_error", "accuracy"]


def mse(f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = (1/n) Σ (f_i - y_i)²."""
    return (f - y).pow(2).mean()


def logistic(f: torch.Tensor, y: torch.Tensor, smoothing: float = 0.2) -> torch.Tensor:
    """Logistic loss with label smoothing p (Appendix B.3), labels y in {-1, +1}.

    The target probability of class y is 1 - p/2, so the loss is
    (1 - p/2)·softplus(-y f) + (p/2)·softplus(y f), averaged over examples.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    z = y * f
    q = smoothing / 2
    return ((1 - q) * torch.nn.functional.softplus(-z) + q * torch.nn.functional.softplus(z)).mean()


LOSSES = {"mse": mse, "logistic": logistic}


def get_loss(loss) -> callable:
    """Resolve a loss given by name (``"mse"``, ``"logistic"``) or as a callable."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable, got {loss!r}")
    return LOSSES[loss]


def zero_one_error(f: torch.Tensor, y: torch.Tensor) -> float:
    """Pr(y·f(x) <= 0): a prediction of exactly 0 counts as an error."""
    if f.shape != y.shape:
        raise ValueError(f"f and y must have the same shape, got {tuple(f.shape)} and {tuple(y.shape)}")
    return float((y * f <= 0).to(torch.float64).mean())


def accuracy(f: torch.Tensor, y: torch.Tensor) -> float:
    """1 - zero_one_error(f, y)."""
    return 1.0 - zero_one_error(f, y)


