"""Explicit sharpness minimizers: a sharpness-penalty optimizer and label-noise SGD.

The penalty is the Gauss-Newton trace of the MSE loss (Lemma 4.1 of the paper),

    S(θ) = (2/n) Σ_i ‖∇_θ f(x_i)‖²,

which equals Tr ∇²L(θ) at an interpolator. For the two-layer nets without normalization
it has a closed form from the activations (``no_bias`` drops the ``+ 1``):

    S = (2/n) [ ‖act(X W1ᵀ + b1)‖_F² + Σ_i (‖x_i‖² + 1) Σ_j W2_j² act'(pre_ij)² ],

and ``sim_ln`` has one too (see ``flatlab._closed_form``, shared with ``flatlab.sharpness``),
differentiable in torch (for relu, act' = 1[pre > 0] carries no gradient). ``sim_bn`` and
``deep_bias`` use a generic double-backprop path: per-example gradients by
``torch.func.vmap(torch.func.grad(...))`` with autograd flowing through them.

``PenaltyConfig``: full-batch GD with momentum (or Adam) on L + λ(t)·S with a
fit → ramp → hold → anneal schedule for λ; ``LabelNoiseConfig``: minibatch SGD on labels
y_i + σ·ξ with fresh, seeded noise every step. This module holds the step functions
(``penalty_segments``, ``label_noise_segments``); ``flatlab.train.train(model, data, config)``
runs them in the one training loop (``flatlab.train.loop``), so they return the same
``History`` as GD and 1-SAM. Shapes: X (n, d), y (n,).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .._checks import check_positive
from .._closed_form import GRAD_NORM_ARCHS, gauss_newton_trace_closed
from ..data import Dataset, check_xy
from ..losses import get_loss
from . import engine

__all__ = [
    "sharpness_penalty",
    "sharpness_penalty_closed_form",
    "sharpness_penalty_generic",
    "per_example_grads",
    "penalized_grads",
    "PenaltyConfig",
    "LabelNoiseConfig",
    "penalty_weight",
    "penalty_segments",
    "label_noise_segments",
]

_CLOSED_FORM_ARCHS = GRAD_NORM_ARCHS  # archs whose S has a closed form
_PLAIN_ARCHS = ("no_bias", "bias")  # no normalization: hand-written gradients and the numba kernel


# --------------------------------------------------------------------------- the penalty S
def _check_model_x(model: nn.Module, X: torch.Tensor) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise ValueError(f"model must be a flatlab model (make_model), got {type(model).__name__}")
    check_xy(X, d=model.config.d)


def sharpness_penalty_closed_form(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """S(θ) from activations for ``no_bias`` / ``bias`` / ``sim_ln`` nets: a 0-dim tensor with autograd.

    X: (n, d). O(n·m·d) work; exact (equal to the per-example-gradient formula). The formulas
    live in ``flatlab._closed_form`` (shared with ``flatlab.sharpness``).
    """
    _check_model_x(model, X)
    arch = model.config.arch
    if arch not in _CLOSED_FORM_ARCHS:
        raise ValueError(f"model arch must be one of {_CLOSED_FORM_ARCHS} for the closed form, got {arch!r}")
    return gauss_newton_trace_closed(model, X)


def per_example_grads(model: nn.Module, X: torch.Tensor, params: dict | None = None) -> dict:
    """∇_θ f(x_i) for every row of X: a dict name -> tensor (n, *param_shape).

    Uses ``torch.func.vmap(torch.func.grad(...))``; when ``params`` (default: the model's
    own parameters) require grad, autograd flows through the result (double backprop).
    Sim-BN keeps its statistic over ``model.reference`` for every example.
    """
    _check_model_x(model, X)
    if params is None:
        params = dict(model.named_parameters())

    def f_single(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    return vmap(grad(f_single), in_dims=(None, 0))(params, X)


def sharpness_penalty_generic(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """S(θ) for any architecture via per-example gradients (double backprop): 0-dim tensor."""
    grads = per_example_grads(model, X)
    return 2.0 / X.shape[0] * sum(g.pow(2).sum() for g in grads.values())


def sharpness_penalty(model: nn.Module, X: torch.Tensor, *, method: str = "auto") -> torch.Tensor:
    """S(θ) = (2/n) Σ_i ‖∇_θ f(x_i)‖², differentiable w.r.t. the model's parameters.

    method: ``"auto"`` (closed form for no_bias / bias / sim_ln, else generic), ``"closed_form"``,
    ``"generic"``. X: (n, d). Returns a 0-dim tensor.
    """
    if method not in ("auto", "closed_form", "generic"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'generic', got {method!r}")
    _check_model_x(model, X)
    if method == "closed_form" or (method == "auto" and model.config.arch in _CLOSED_FORM_ARCHS):
        return sharpness_penalty_closed_form(model, X)
    return sharpness_penalty_generic(model, X)


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class PenaltyConfig:
    """Full-batch training on L + λ(t)·S. λ(t): 0 for ``fit_epochs``, then linear up to
    ``lam`` over ``ramp_epochs``, constant for ``hold_epochs``, then geometric decay by
    ``anneal_factor`` over ``anneal_epochs`` (λ_end = lam·anneal_factor)."""

    lam: float = 0.01  # peak λ. Shrinking the output to c·y costs (1-c)² in L and saves ≈ λ·S·(1-c),
    #                    so the held net fits c ≈ 1 - λ·S/2 ≈ 0.89 on the bias net; λ = 0.1 gives f = 0
    fit_epochs: int = 500  # λ = 0: fit the training data first (a penalty from step 0 freezes features)
    ramp_epochs: int = 500  # λ rises linearly 0 -> lam
    hold_epochs: int = 1000  # λ = lam: the sharpness is driven down while L stays small
    anneal_epochs: int = 1000  # λ decays geometrically lam -> lam·anneal_factor: re-interpolate
    anneal_factor: float = 1e-3  # final λ relative to lam
    lr: float = 0.01  # step size (Adam) or learning rate (momentum)
    optimizer: str = "adam"  # "adam" (reaches the bound exactly) or "momentum" (heavy-ball GD)
    momentum: float = 0.9  # heavy-ball momentum (optimizer="momentum" only)
    weight_decay: float = 0.0  # L2 coefficient added to the objective's gradient
    penalty_method: str = "auto"  # "auto": hand-written gradient (penalized_grads) for relu no_bias/bias
    #                              with MSE, else autograd; "closed_form" | "generic": autograd through S
    loss: str = "mse"  # training loss L: "mse" or "logistic" (the penalty S is always the MSE one)
    log_every: int = 100  # epochs between history records (epoch 0 and the last are always logged)

    def __post_init__(self):
        _validate_penalty_fields(self)

    @property
    def method(self) -> str:
        """The method id, so ``flatlab.train.train`` can dispatch on ``config.method``."""
        return "penalty"

    @property
    def epochs(self) -> int:
        return self.fit_epochs + self.ramp_epochs + self.hold_epochs + self.anneal_epochs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LabelNoiseConfig:
    """Minibatch SGD on noisy labels y_i + σ·ξ_i, ξ ~ N(0, 1) fresh at every step."""

    epochs: int = 2000  # passes over the training set
    lr: float = 0.01  # SGD learning rate
    sigma: float = 0.5  # label-noise standard deviation σ
    batch_size: int = 1  # examples per step (1: the classic label-noise SGD)
    weight_decay: float = 0.0  # L2 coefficient added to the gradient
    anneal_epochs: int = 0  # final epochs with σ = 0 (plain SGD) to settle on an interpolator
    seed: int = 0  # seeds the example order and the label noise
    log_every: int = 100  # epochs between history records (epoch 0 and the last are always logged)
    backend: str = "auto"  # "auto": compiled numba epoch for relu no_bias/bias in float64, else torch

    def __post_init__(self):
        _validate_label_noise(self)

    @property
    def method(self) -> str:
        """The method id, so ``flatlab.train.train`` can dispatch on ``config.method``."""
        return "label_noise"

    def to_dict(self) -> dict:
        return asdict(self)


def _validate_penalty(config: PenaltyConfig) -> None:
    """At training time: the fields were checked on construction; a schedule may be empty
    (a lambda schedule is a valid config to evaluate) but cannot be trained."""
    if not isinstance(config, PenaltyConfig):
        raise ValueError(f"config must be a PenaltyConfig, got {type(config).__name__}")
    if config.epochs < 1:
        raise ValueError("config must train for at least one epoch (all phase lengths are 0)")


def _validate_penalty_fields(config: PenaltyConfig) -> None:
    check_positive(config.lam, "config.lam", allow_zero=True)
    for name in ("fit_epochs", "ramp_epochs", "hold_epochs", "anneal_epochs"):
        check_positive(getattr(config, name), f"config.{name}", allow_zero=True, integer=True)
    if not 0 < config.anneal_factor <= 1:
        raise ValueError(f"config.anneal_factor must be in (0, 1], got {config.anneal_factor!r}")
    check_positive(config.lr, "config.lr")
    check_positive(config.weight_decay, "config.weight_decay", allow_zero=True)
    check_positive(config.log_every, "config.log_every", integer=True)
    if config.optimizer not in ("adam", "momentum"):
        raise ValueError(f"config.optimizer must be 'adam' or 'momentum', got {config.optimizer!r}")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"config.momentum must be in [0, 1), got {config.momentum!r}")
    if config.penalty_method not in ("auto", "closed_form", "generic"):
        raise ValueError("config.penalty_method must be 'auto', 'closed_form' or 'generic', "
                         f"got {config.penalty_method!r}")
    if config.loss not in ("mse", "logistic"):
        raise ValueError(f"config.loss must be 'mse' or 'logistic', got {config.loss!r}")


def _validate_label_noise(config: LabelNoiseConfig) -> None:
    if not isinstance(config, LabelNoiseConfig):
        raise ValueError(f"config must be a LabelNoiseConfig, got {type(config).__name__}")
    check_positive(config.epochs, "config.epochs", integer=True)
    check_positive(config.lr, "config.lr")
    check_positive(config.sigma, "config.sigma", allow_zero=True)
    check_positive(config.batch_size, "config.batch_size", integer=True)
    check_positive(config.weight_decay, "config.weight_decay", allow_zero=True)
    check_positive(config.anneal_epochs, "config.anneal_epochs", allow_zero=True, integer=True)
    check_positive(config.log_every, "config.log_every", integer=True)
    if config.backend not in ("auto", "torch"):
        raise ValueError(f"config.backend must be 'auto' or 'torch', got {config.backend!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ValueError(f"config.seed must be a non-negative int, got {config.seed!r}")


def penalty_weight(config: PenaltyConfig, epoch: int) -> float:
    """λ at a given epoch (0-based) of the fit → ramp → hold → anneal schedule."""
    e = epoch - config.fit_epochs
    if e < 0:
        return 0.0
    if e < config.ramp_epochs:
        return config.lam * (e + 1) / config.ramp_epochs
    e -= config.ramp_epochs
    if e < config.hold_epochs:
        return config.lam
    e -= config.hold_epochs
    frac = min(1.0, (e + 1) / max(config.anneal_epochs, 1))
    return config.lam * config.anneal_factor**frac


# --------------------------------------------------------------------------- training
def _check_data(model: nn.Module, data: Dataset) -> None:
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a flatlab.data.Dataset, got {type(data).__name__}")
    _check_model_x(model, data.X_train)
    check_xy(data.X_train, data.y_train, name_x="data.X_train", name_y="data.y_train")
    check_xy(data.X_test, data.y_test, name_x="data.X_test", name_y="data.y_test")


def penalized_grads(model: nn.Module, X: torch.Tensor, y: torch.Tensor, lam: float) -> dict:
    """∇θ [mse(f(X), y) + lam·S(θ)] in closed form for relu ``no_bias`` / ``bias`` nets.

    With pre = X W1ᵀ + b1, a = 1[pre > 0], h = relu(pre), r = 2(f - y)/n, q_i = ‖x_i‖² (+1 with bias):
    G = r W2ᵀ ⊙ a + lam·(4/n)·h, ∇W1 = Gᵀ X, ∇b1 = Σ_i G_i, ∇W2 = hᵀ r + lam·(4/n)·W2 ⊙ (aᵀ q).
    Returns a dict name -> tensor shaped like the parameter (no autograd graph).
    """
    _check_model_x(model, X)
    check_xy(X, y)
    arch = model.config.arch
    if arch not in _PLAIN_ARCHS or model.config.activation != "relu":
        raise ValueError(f"model must be a relu no_bias/bias net for penalized_grads, got {arch!r}/"
                         f"{model.config.activation!r}")
    n = X.shape[0]
    with torch.no_grad():
        W1, W2 = model.W1.detach(), model.W2.detach()
        pre = X @ W1.T
        if arch == "bias":
            pre = pre + model.b1.detach()
        a = (pre > 0).to(pre.dtype)
        h = pre * a
        r = (h @ W2 - y) * (2.0 / n)
        q = X.pow(2).sum(1) + (1.0 if arch == "bias" else 0.0)
        G = r[:, None] * W2 * a + (4.0 * lam / n) * h
        out = {"W1": G.T @ X, "b1": G.sum(0), "W2": h.T @ r + (4.0 * lam / n) * W2 * (a.T @ q)}
        if arch != "bias":
            del out["b1"]
    return out


def penalty_segments(model: nn.Module, data: Dataset, config: PenaltyConfig) -> list:
    """Full-batch GD (Adam or heavy-ball momentum) on L(θ) + λ(t)·S(θ), as loop segments.

    Returns [(epochs, advance(epoch, k))] for ``flatlab.train.loop.run_loop``; ``advance``
    trains ``model`` in place. Deterministic (no randomness: full batch). While λ is held
    the net does not quite interpolate (its output shrinks by ≈ λ·S/2), so the trace can
    sit below the interpolators' floor. Run it with ``flatlab.train.train(model, data, config)``.
    """
    _validate_penalty(config)
    _check_data(model, data)
    loss_fn = get_loss(config.loss)
    X, y = data.X_train, data.y_train
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr)
    else:
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)

    fused = (config.penalty_method == "auto" and config.loss == "mse" and model.config.activation == "relu"
             and model.config.arch in _PLAIN_ARCHS)

    def step(epoch: int) -> None:
        lam = penalty_weight(config, epoch)
        if fused:  # hand-written gradient of the same objective: no autograd graph
            with torch.no_grad():
                grads = penalized_grads(model, X, y, lam)
                for name, p in model.named_parameters():
                    p.grad = grads[name] + config.weight_decay * p if config.weight_decay else grads[name]
            opt.step()
            return
        opt.zero_grad(set_to_none=True)
        obj = loss_fn(model(X), y)
        if lam > 0:
            obj = obj + lam * sharpness_penalty(model, X, method=config.penalty_method)
        if config.weight_decay > 0:
            obj = obj + 0.5 * config.weight_decay * sum(p.pow(2).sum() for p in params)
        obj.backward()
        opt.step()

    return [(config.epochs, _per_epoch(step))]


def _per_epoch(step):
    def advance(epoch: int, k: int) -> None:
        for e in range(epoch, epoch + k):
            step(e)

    return advance


def label_noise_segments(model: nn.Module, data: Dataset, config: LabelNoiseConfig) -> list:
    """Label-noise SGD: minibatch SGD on the MSE with labels y_i + σ·ξ_i, as loop segments.

    Each epoch visits the examples in a fresh seeded order in batches of ``batch_size``;
    every step draws new noise ξ ~ N(0, 1) from the same seeded generator. The last
    ``anneal_epochs`` epochs use σ = 0. Same seed => identical history and weights. The
    relu no_bias / bias case in float64 runs the compiled epoch ``flatlab.train.engine.label_noise_epoch``.
    """
    _validate_label_noise(config)
    _check_data(model, data)
    if config.anneal_epochs > config.epochs:
        raise ValueError(f"config.anneal_epochs must be <= config.epochs, got {config.anneal_epochs}")
    loss_fn = get_loss("mse")
    X, y = data.X_train, data.y_train
    n = X.shape[0]
    g = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    noisy_until = config.epochs - config.anneal_epochs

    fast = (config.backend == "auto" and model.config.arch in _PLAIN_ARCHS
            and model.config.activation == "relu" and model.W1.dtype == X.dtype == torch.float64)
    has_bias = model.config.arch == "bias"

    def draws(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's example order (n,) and the noisy labels in visiting order (n,)."""
        sigma = config.sigma if epoch < noisy_until else 0.0
        order = torch.randperm(n, generator=g)
        noise = torch.randn(n, generator=g, dtype=torch.float64)
        return order, y[order].to(torch.float64) + sigma * noise

    def step(epoch: int) -> None:
        order, target = draws(epoch)
        if fast:
            with torch.no_grad():
                b1 = model.b1.detach().numpy() if has_bias else np.zeros(model.config.width)
                engine.label_noise_epoch(model.W1.detach().numpy(), b1, model.W2.detach().numpy(), X.numpy(),
                                   order.numpy(), target.numpy(), config.lr, config.weight_decay,
                                   config.batch_size, has_bias)
            return
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            for p in params:
                p.grad = None
            loss_fn(model(X[idx]), target[start : start + config.batch_size].to(y.dtype)).backward()
            with torch.no_grad():
                for p in params:
                    p.sub_(config.lr * (p.grad + config.weight_decay * p if config.weight_decay else p.grad))

    return [(config.epochs, _per_epoch(step))]
