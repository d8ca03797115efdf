"""The model zoo: two-layer ReLU networks of the paper and their variants.

Architectures (``d`` inputs, ``m`` = width hidden units, scalar output):

- ``no_bias``:  f(x) = W2 · relu(W1 x)
- ``bias``:     f(x) = W2 · relu(W1 x + b1)
- ``sim_bn``:   f(x) = W2 · (γ ⊙ h(x) / s),  s[j] = sqrt(mean_i h(x_i)[j]²) over the
  *training* inputs (``reference``), gradients flowing through s; h = relu(W1 x + b1)
- ``sim_ln``:   f(x) = W2 · h(x) / max(‖h(x)‖₂, eps)
- ``deep_bias``: f(x) = W_D relu(… W2 relu(W1 x + b1)), bias in the first layer only

``activation="softplus"`` replaces relu in any of them (Fig. 5).

Parameter shapes: W1 (m, d); b1 (m,); gamma (m,); W2 (m,) for two-layer nets. For
``deep_bias`` with depth D: W1 (m, d), b1 (m,), W2 … W{D-1} (m, m), W{D} (m,).
Forward: X (n, d) -> f (n,).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.func import functional_call

from .data import as_generator, check_xy

__all__ = [
    "ARCHS",
    "ModelConfig",
    "TwoLayerNet",
    "DeepBiasNet",
    "make_model",
    "build_model",
    "model_from_config",
    "param_names",
    "flatten_params",
    "unflatten_params",
    "functional_forward",
    "get_params",
    "set_params",
]

ARCHS = ("no_bias", "bias", "sim_bn", "sim_ln", "deep_bias")
ACTIVATIONS = ("relu", "softplus")
BN_STATS = ("mean", "sum")  # Sim-BN's statistic over the reference inputs


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (weights are separate)."""

    arch: str  # one of ARCHS
    d: int  # input dimension
    width: int  # hidden width m
    activation: str = "relu"  # "relu" or "softplus" (Fig. 5)
    eps: float = 1e-6  # sim_ln: floor of ‖h‖; sim_bn: floor of the statistic s
    depth: int = 2  # number of weight layers; > 2 only for deep_bias
    init_scale: float = 1.0  # multiplies the first layer (W1, b1) at init (Fig. 6a: 0.01)
    gamma_init: float = 1.0  # sim_bn: initial γ (0.447 keeps width 500 stable in probe runs)
    bn_stat: str = "mean"  # sim_bn: s_j = sqrt(mean_i h_ij² + eps²) ("mean") or sqrt(Σ_i h_ij² + eps²) ("sum")

    def to_dict(self) -> dict:
        return asdict(self)


def _act(name: str):
    return torch.relu if name == "relu" else nn.functional.softplus


class TwoLayerNet(nn.Module):
    """A two-layer network of one of the four paper architectures (see module docstring)."""

    def __init__(self, config: ModelConfig, generator: torch.Generator, dtype=torch.float64):
        super().__init__()
        self.config = config
        d, m, s = config.d, config.width, config.init_scale
        a1, a2 = 1.0 / math.sqrt(d), 1.0 / math.sqrt(m)

        def uniform(shape, bound):
            return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)

        self.W1 = nn.Parameter(uniform((m, d), a1) * s)
        if config.arch != "no_bias":
            self.b1 = nn.Parameter(uniform((m,), a1) * s)
        if config.arch == "sim_bn":
            self.gamma = nn.Parameter(torch.full((m,), float(config.gamma_init), dtype=dtype))
        self.W2 = nn.Parameter(uniform((m,), a2))
        self.register_buffer("reference", None)
        self._act = _act(config.activation)

    @property
    def arch(self) -> str:
        return self.config.arch

    def set_reference(self, X_ref: torch.Tensor) -> "TwoLayerNet":
        """Sim-BN: the training inputs (n, d) whose statistic normalizes every forward pass."""
        check_xy(X_ref, d=self.config.d, name_x="X_ref")
        self.reference = X_ref.detach().to(self.W1.dtype)
        return self

    def hidden(self, X: torch.Tensor) -> torch.Tensor:
        """Post-activation features h(X) before any normalization: (n, m)."""
        pre = X @ self.W1.T
        if self.config.arch != "no_bias":
            pre = pre + self.b1
        return self._act(pre)

    def bn_statistic(self) -> torch.Tensor:
        """Sim-BN statistic s (m,): sqrt(mean (``bn_stat="mean"``) or sum (``"sum"``) over the
        reference inputs of h², + eps²). The two differ by sqrt(n): at a fixed learning rate and
        ρ they are different training problems (the sum makes every f_i, hence every step, smaller).

        The eps² keeps a neuron that is dead on every training point finite.
        """
        if self.reference is None:
            raise ValueError(
                "sim_bn needs its training inputs: pass X_ref to make_model or call model.set_reference(X_train)"
            )
        h = self.hidden(self.reference)
        sq = h.pow(2).sum(0) if self.config.bn_stat == "sum" else h.pow(2).mean(0)
        return sq.add(self.config.eps**2).sqrt()

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """The vector the output layer reads: (n, m)."""
        h = self.hidden(X)
        arch = self.config.arch
        if arch == "sim_bn":
            return h * (self.gamma / self.bn_statistic())
        if arch == "sim_ln":
            return h / h.norm(dim=1, keepdim=True).clamp_min(self.config.eps)
        return h

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: (n, d) -> f(X): (n,)."""
        return self.features(X) @ self.W2


class DeepBiasNet(nn.Module):
    """MLP-Bias of depth D (Fig. 11): bias in the first layer only."""

    def __init__(self, config: ModelConfig, generator: torch.Generator, dtype=torch.float64):
        super().__init__()
        self.config = config
        d, m, s = config.d, config.width, config.init_scale
        self._act = _act(config.activation)

        def uniform(shape, fan_in):
            b = 1.0 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).mul_(b).to(dtype)

        self.W1 = nn.Parameter(uniform((m, d), d) * s)
        self.b1 = nn.Parameter(uniform((m,), d) * s)
        for k in range(2, config.depth):
            setattr(self, f"W{k}", nn.Parameter(uniform((m, m), m)))
        setattr(self, f"W{config.depth}", nn.Parameter(uniform((m,), m)))
        self.register_buffer("reference", None)

    @property
    def arch(self) -> str:
        return self.config.arch

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: (n, d) -> f(X): (n,)."""
        h = self._act(X @ self.W1.T + self.b1)
        for k in range(2, self.config.depth):
            h = self._act(h @ getattr(self, f"W{k}").T)
        return h @ getattr(self, f"W{self.config.depth}")


def make_model(
    arch: str,
    d: int,
    width: int,
    *,
    seed: int | torch.Generator,
    init_scale: float = 1.0,
    activation: str = "relu",
    eps: float = 1e-6,
    depth: int | None = None,
    gamma_init: float = 1.0,
    bn_stat: str = "mean",
    X_ref: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
) -> nn.Module:
    """Build a seeded model of the zoo.

    arch: one of ``no_bias``, ``bias``, ``sim_bn``, ``sim_ln``, ``deep_bias``.
    Weights: W1, b1 ~ U(±1/sqrt(d))·init_scale, W2 ~ U(±1/sqrt(width)) (PyTorch's
    default ``nn.Linear`` ranges), γ = gamma_init. ``X_ref`` (n, d) are the training
    inputs whose statistic Sim-BN uses; it is required for ``sim_bn``; ``bn_stat`` (``"mean"``
    or ``"sum"``) is that statistic's reduction over them.

    >>> model = make_model("bias", d=30, width=500, seed=0)
    >>> model(torch.zeros(2, 30)).shape
    torch.Size([2])
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    for name, value in (("d", d), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    for name, value in (("init_scale", init_scale), ("eps", eps), ("gamma_init", gamma_init)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if depth is None:
        depth = 3 if arch == "deep_bias" else 2
    if arch == "deep_bias" and (not isinstance(depth, int) or depth < 3):
        raise ValueError(f"depth must be an int >= 3 for deep_bias, got {depth!r}")
    if arch != "deep_bias" and depth != 2:
        raise ValueError(f"depth must be 2 for arch {arch!r} (use arch='deep_bias' for deeper nets), got {depth!r}")
    if bn_stat not in BN_STATS:
        raise ValueError(f"bn_stat must be one of {BN_STATS}, got {bn_stat!r}")
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    config = ModelConfig(arch, d, width, activation, float(eps), depth, float(init_scale), float(gamma_init), bn_stat)
    g = as_generator(seed)
    model = (DeepBiasNet if arch == "deep_bias" else TwoLayerNet)(config, g, dtype)
    if arch == "sim_bn":
        if X_ref is None:
            raise ValueError("X_ref must be given for arch 'sim_bn': the training inputs (n, d) of its statistic")
        model.set_reference(X_ref)
    elif X_ref is not None:
        raise ValueError(f"X_ref is only used by arch 'sim_bn', not {arch!r}")
    return model


def build_model(config: ModelConfig | dict, *, seed: int | torch.Generator, X_ref: torch.Tensor | None = None,
                dtype: torch.dtype = torch.float64) -> nn.Module:
    """A seeded model of ``config`` (a ModelConfig or its dict): ``make_model`` with its fields."""
    if isinstance(config, dict):
        config = ModelConfig(**config)
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig or its dict, got {type(config).__name__}")
    return make_model(
        config.arch, config.d, config.width, seed=seed, init_scale=config.init_scale,
        activation=config.activation, eps=config.eps, depth=config.depth,
        gamma_init=config.gamma_init, bn_stat=config.bn_stat, X_ref=X_ref, dtype=dtype,
    )


def model_from_config(config: ModelConfig | dict, params: dict, X_ref: torch.Tensor | None = None) -> nn.Module:
    """Rebuild a model from its config and a dict of parameter arrays/tensors."""
    model = build_model(config, seed=0, X_ref=X_ref)
    set_params(model, params)
    return model


def param_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters in flattening order."""
    return [name for name, _ in model.named_parameters()]


def get_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters, by name."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def set_params(model: nn.Module, params: dict) -> nn.Module:
    """Copy parameter values (tensors or numpy arrays) into the model, checking names and shapes."""
    own = dict(model.named_parameters())
    if set(params) != set(own):
        raise ValueError(f"params must have exactly the keys {sorted(own)}, got {sorted(params)}")
    with torch.no_grad():
        for k, p in own.items():
            v = torch.as_tensor(params[k], dtype=p.dtype)
            if v.shape != p.shape:
                raise ValueError(f"params[{k!r}] must have shape {tuple(p.shape)}, got {tuple(v.shape)}")
            p.copy_(v)
    return model


def flatten_params(model: nn.Module, params: dict | None = None) -> torch.Tensor:
    """All parameters as one vector θ of shape (p,), in ``param_names`` order."""
    src = dict(model.named_parameters()) if params is None else params
    return torch.cat([src[k].reshape(-1) for k in param_names(model)])


def unflatten_params(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split a vector θ (p,) into a dict of tensors shaped like the model's parameters.

    The pieces are views of θ, so autograd flows from them back to θ.
    """
    shapes = [(k, p.shape, p.numel()) for k, p in model.named_parameters()]
    total = sum(n for _, _, n in shapes)
    if not isinstance(theta, torch.Tensor) or theta.ndim != 1 or theta.numel() != total:
        got = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"theta must be a 1-D tensor of length {total}, got {got}")
    out, i = {}, 0
    for k, shape, n in shapes:
        out[k] = theta[i : i + n].view(shape)
        i += n
    return out


def functional_forward(model: nn.Module, params: dict | torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """f(X) with the given parameters (a dict or a flat vector θ) instead of the model's own."""
    if isinstance(params, torch.Tensor):
        params = unflatten_params(model, params)
    return functional_call(model, params, (X,))
