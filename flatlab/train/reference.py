"""SAM, 1-SAM and full-batch GD with weight decay: the readable torch reference.

- ``SAM``: a sharpness-aware wrapper around any base optimizer that behaves like a
  built-in one (after davda54/sam): ``first_step`` / ``second_step`` or ``step(closure)``.
- ``one_sam_epoch``: one epoch of 1-SAM (SAM with batch size 1) in a given example order:
  for each example i, g = ∇ℓ_i(θ); θ̃ = θ + ρ g/‖g‖; θ ← θ − η(∇ℓ_i(θ̃) + wd·θ).
  ℓ_i is the loss on the single example i, e.g. (f(x_i) − y_i)² for MSE.
- ``minibatch_epoch``: SAM (ρ > 0) or SGD (ρ = 0) with minibatches of a given size.
- ``gd_step``: one full-batch step θ ← θ − η(∇L(θ) + wd·θ).
- ``project_first_layer``: rescale the concatenation (W1, b1) to a fixed Frobenius norm
  (the projected 1-SAM of Fig. 6b). The first-layer init scaling of Fig. 6a is
  ``make_model(..., init_scale=0.01)``.
- ``epoch_orders``: the seeded example orders (one random permutation per epoch).

Zero gradient: when ‖g‖ = 0 exactly (e.g. every neuron is dead on the example, or the
example is fitted exactly) the ascent is skipped (θ̃ = θ). davda54/sam divides by
‖g‖ + 1e-12 instead, which gives the same θ̃ = θ when g = 0; we divide by ‖g‖ exactly
otherwise so that the fast engine (``flatlab.train.engine``), which does the same, matches
this reference to rounding.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..data import check_xy
from ..losses import get_loss

__all__ = [
    "SAM",
    "epoch_orders",
    "one_sam_epoch",
    "minibatch_epoch",
    "gd_step",
    "project_first_layer",
    "first_layer_norm",
]


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization around a base optimizer (Foret et al. 2021).

    params: the model's parameters (or param groups); base_optimizer_cls: e.g.
    ``torch.optim.SGD``; rho: ascent radius ρ >= 0; adaptive: ASAM's scale-invariant
    ascent (perturbation ∝ θ² ⊙ g); kwargs go to the base optimizer (``lr=...``).

    Two ways to use it::

        loss_fn(model(X), y).backward(); opt.first_step(zero_grad=True)   # θ -> θ + e(θ)
        loss_fn(model(X), y).backward(); opt.second_step(zero_grad=True)  # back to θ, base step

        def closure():                      # or: evaluate twice inside step()
            opt.zero_grad(); loss = loss_fn(model(X), y); loss.backward(); return loss
        opt.step(closure)

    ``step(closure)`` zeroes the gradients, calls the closure at θ, ascends, calls it at
    θ̃, restores θ and lets the base optimizer step with the gradient taken at θ̃. It
    returns the loss at θ. When the gradient norm is exactly 0 the ascent is skipped.
    """

    def __init__(self, params, base_optimizer_cls, rho: float = 0.05, adaptive: bool = False, **kwargs):
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not math.isfinite(rho) or rho < 0:
            raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
        if not callable(base_optimizer_cls):
            raise ValueError(
                "base_optimizer_cls must be an optimizer class such as torch.optim.SGD, "
                f"got {base_optimizer_cls!r}"
            )
        if not isinstance(adaptive, bool):
            raise ValueError(f"adaptive must be a bool, got {adaptive!r}")
        defaults = dict(rho=float(rho), adaptive=adaptive, **kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer_cls(self.param_groups, **kwargs)
        if not isinstance(self.base_optimizer, torch.optim.Optimizer):
            raise ValueError("base_optimizer_cls must build a torch.optim.Optimizer")
        self.param_groups = self.base_optimizer.param_groups  # shared: lr changes reach both
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [
            ((p.abs() if group["adaptive"] else 1.0) * p.grad).norm(p=2)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        if not norms:
            return torch.zeros(())
        return torch.stack(norms).norm(p=2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Ascend: θ ← θ + ρ·g/‖g‖ (θ² ⊙ g for ASAM), remembering θ."""
        grad_norm = float(self._grad_norm())
        for group in self.param_groups:
            scale = group["rho"] / grad_norm if grad_norm > 0 else 0.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                if scale > 0:
                    e_w = (p.pow(2) if group["adaptive"] else 1.0) * p.grad * scale
                    p.add_(e_w)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to θ and let the base optimizer step with the gradient taken at θ̃."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None):
        """One SAM step; ``closure`` (required) computes the loss, calls backward and returns the loss."""
        if closure is None or not callable(closure):
            raise ValueError(
                "SAM.step needs a closure that computes the loss and calls backward(); "
                "or call first_step() and second_step() yourself"
            )
        closure = torch.enable_grad()(closure)
        self.zero_grad()
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
        return loss

    def state_dict(self) -> dict:
        """SAM's state plus the base optimizer's (e.g. momentum buffers) under ``base_optimizer``."""
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        if "base_optimizer" not in state_dict:
            raise ValueError("state_dict must come from SAM.state_dict() (missing 'base_optimizer')")
        base = state_dict.pop("base_optimizer")
        super().load_state_dict(state_dict)
        self.base_optimizer.load_state_dict(base)
        # re-share the groups so that both optimizers see the same lr / rho
        for mine, theirs in zip(self.param_groups, self.base_optimizer.param_groups):
            theirs.update({k: v for k, v in mine.items() if k != "params"})
        self.param_groups = self.base_optimizer.param_groups


def epoch_orders(n: int, epochs: int, generator: torch.Generator) -> torch.Tensor:
    """Example orders for ``epochs`` epochs: one ``torch.randperm(n)`` per epoch, (epochs, n) int64.

    Drawing epoch by epoch from one generator makes the orders independent of how the
    epochs are split into chunks.
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if epochs == 0:
        return torch.empty((0, n), dtype=torch.int64)
    return torch.stack([torch.randperm(n, generator=generator) for _ in range(epochs)])


def _first_layer(model: nn.Module) -> list[torch.Tensor]:
    params = dict(model.named_parameters())
    if "W1" not in params:
        raise ValueError("model must have a first layer named W1 (a flatlab model)")
    return [params["W1"]] + ([params["b1"]] if "b1" in params else [])


def first_layer_norm(model: nn.Module) -> float:
    """Frobenius norm of the concatenation (W1, b1) (just W1 without bias)."""
    return math.sqrt(sum(float(p.detach().pow(2).sum()) for p in _first_layer(model)))


@torch.no_grad()
def project_first_layer(model: nn.Module, norm: float) -> nn.Module:
    """Rescale (W1, b1) in place so that its Frobenius norm is ``norm`` (Fig. 6b). Returns the model."""
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not math.isfinite(norm) or norm <= 0:
        raise ValueError(f"norm must be a positive finite number, got {norm!r}")
    current = first_layer_norm(model)
    if current == 0:
        raise ValueError("cannot project a first layer that is exactly zero")
    for p in _first_layer(model):
        p.mul_(norm / current)
    return model


def _check_rates(lr, rho, weight_decay):
    for name, value, lo in (("lr", lr, 0.0), ("rho", rho, 0.0), ("weight_decay", weight_decay, 0.0)):
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or not math.isfinite(value) or value < lo:
            raise ValueError(f"{name} must be a finite number >= {lo}, got {value!r}")


def _sam_update(model, params, loss_fn, Xb, yb, lr, rho, weight_decay):
    """One (SAM if rho > 0, else plain) gradient step on the batch (Xb, yb), in place."""
    if rho > 0:
        grads = torch.autograd.grad(loss_fn(model(Xb), yb), params)
        gnorm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
        if gnorm > 0:  # g = 0: skip the ascent (see module docstring)
            old = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p.add_(g, alpha=float(rho / gnorm))
            grads = torch.autograd.grad(loss_fn(model(Xb), yb), params)
            with torch.no_grad():
                for p, o in zip(params, old):
                    p.copy_(o)
    else:
        grads = torch.autograd.grad(loss_fn(model(Xb), yb), params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * (g + weight_decay * p))


def minibatch_epoch(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, lr: float, rho: float, order, loss="mse",
    *, batch_size: int = 1, weight_decay: float = 0.0, project_norm: float | None = None,
) -> nn.Module:
    """One epoch of minibatch SAM (rho > 0) or SGD (rho = 0) over ``order``, in place.

    X: (n, d); y: (n,); order: a permutation of range(n) (sequence or int tensor), cut into
    consecutive batches of ``batch_size`` (the last one may be smaller). The batch loss is
    the mean over the batch. After each step (W1, b1) is rescaled to ``project_norm`` if given.
    """
    check_xy(X, y)
    _check_rates(lr, rho, weight_decay)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    order = torch.as_tensor(order, dtype=torch.int64)
    if order.ndim != 1 or (order.numel() and (order.min() < 0 or order.max() >= X.shape[0])):
        raise ValueError(f"order must be a 1-D sequence of indices in [0, {X.shape[0]}), got {order!r}")
    loss_fn = get_loss(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    for start in range(0, order.numel(), batch_size):
        idx = order[start : start + batch_size]
        _sam_update(model, params, loss_fn, X[idx], y[idx], lr, rho, weight_decay)
        if project_norm is not None:
            project_first_layer(model, project_norm)
    return model


def one_sam_epoch(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, lr: float, rho: float, order, loss="mse",
    project_norm: float | None = None, *, weight_decay: float = 0.0,
) -> nn.Module:
    """One epoch of 1-SAM over the examples in ``order`` (a permutation of range(n)), in place.

    For each i in order: g = ∇ℓ_i(θ); θ̃ = θ + ρ·g/‖g‖ (skipped if g = 0);
    θ ← θ − lr·(∇ℓ_i(θ̃) + weight_decay·θ); then (W1, b1) is rescaled to
    ``project_norm`` if given. ℓ_i = loss(f(x_i), y_i) on the single example.
    X: (n, d), y: (n,).
    """
    return minibatch_epoch(
        model, X, y, lr, rho, order, loss, batch_size=1, weight_decay=weight_decay, project_norm=project_norm
    )


def gd_step(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, lr: float, loss="mse",
    weight_decay: float = 0.0, project_norm: float | None = None,
) -> nn.Module:
    """One full-batch gradient step θ ← θ − lr·(∇L(θ) + weight_decay·θ), in place.

    L is the mean loss over all n examples; X: (n, d), y: (n,).
    """
    check_xy(X, y)
    _check_rates(lr, 0.0, weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    _sam_update(model, params, get_loss(loss), X, y, lr, 0.0, weight_decay)
    if project_norm is not None:
        project_first_layer(model, project_norm)
    return model
