"""Datasets of the paper: XOR parity on the hypercube, k-sparse parity, ball data.

Every sampler takes an explicit ``seed`` (an int or a ``torch.Generator``) and never
touches the global random state. Tensors are float64 unless ``dtype`` says otherwise.

Shapes: ``X`` is ``(n, d)``, ``y`` is ``(n,)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "Dataset",
    "xor_parity",
    "sparse_parity",
    "ball_data",
    "make_dataset",
    "as_generator",
    "check_xy",
]


@dataclass(frozen=True)
class Dataset:
    """A training set and an independently drawn test set.

    X_train: (n, d); y_train: (n,); X_test: (n_test, d); y_test: (n_test,).
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    name: str
    seed: int

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    @property
    def n(self) -> int:
        return self.X_train.shape[0]


def as_generator(seed: int | torch.Generator, name: str = "seed") -> torch.Generator:
    """Return a CPU ``torch.Generator``: a given generator as is, an int seeds a new one."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{name} must be an int or a torch.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed}")
    return torch.Generator().manual_seed(seed)


def _check_size(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype!r}")
    return dtype


def sparse_parity(
    n: int,
    d: int,
    k: int = 2,
    *,
    seed: int | torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-sparse parity: x uniform on {-1,+1}^d, y = x[0]·x[1]·…·x[k-1].

    Returns X: (n, d), y: (n,) with entries in {-1, +1}.
    """
    _check_size(n, "n")
    _check_size(d, "d")
    _check_size(k, "k")
    if k > d:
        raise ValueError(f"k must be <= d (got k={k}, d={d})")
    _check_dtype(dtype)
    g = as_generator(seed)
    X = torch.randint(0, 2, (n, d), generator=g).to(dtype).mul_(2).sub_(1)
    y = X[:, :k].prod(dim=1)
    return X, y


def xor_parity(
    n: int, d: int, *, seed: int | torch.Generator, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's P_xor: x uniform on {-1,+1}^d, y = x[0]·x[1] (the 2-sparse parity).

    Returns X: (n, d), y: (n,).

    >>> X, y = xor_parity(4, 3, seed=0)
    >>> X.shape, y.shape
    (torch.Size([4, 3]), torch.Size([4]))
    """
    if isinstance(d, int) and not isinstance(d, bool) and d < 2:
        raise ValueError(f"d must be an int >= 2 for XOR parity, got {d}")
    return sparse_parity(n, d, 2, seed=seed, dtype=dtype)


def ball_data(
    n: int, d: int = 10, *, seed: int | torch.Generator, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Appendix B.2: x uniform in the ball of radius sqrt(d) in R^d, y = |x[0]| - |x[1]|.

    Returns X: (n, d), y: (n,).
    """
    _check_size(n, "n")
    _check_size(d, "d", minimum=2)
    _check_dtype(dtype)
    g = as_generator(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    direction = z / z.norm(dim=1, keepdim=True)
    radius = torch.rand(n, 1, generator=g, dtype=torch.float64).pow(1.0 / d) * d**0.5
    X = (direction * radius).to(dtype)
    y = X[:, 0].abs() - X[:, 1].abs()
    return X, y


_SAMPLERS = {"xor": xor_parity, "ball": ball_data}


def make_dataset(
    name: str = "xor",
    n: int = 100,
    d: int = 30,
    *,
    n_test: int = 10_000,
    seed: int,
    k: int = 2,
    dtype: torch.dtype = torch.float64,
) -> Dataset:
    """Training and test sets drawn from independent streams of one seed.

    ``name`` is ``"xor"``, ``"parity"`` (k-sparse) or ``"ball"``. The test set is fresh:
    drawn from a generator seeded differently from the training one, so it never
    shares the training stream.
    """
    if name not in ("xor", "parity", "ball"):
        raise ValueError(f"name must be one of 'xor', 'parity', 'ball', got {name!r}")
    _check_size(n_test, "n_test")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    g_train = torch.Generator().manual_seed(2 * seed)
    g_test = torch.Generator().manual_seed(2 * seed + 1)
    if name == "parity":
        Xtr, ytr = sparse_parity(n, d, k, seed=g_train, dtype=dtype)
        Xte, yte = sparse_parity(n_test, d, k, seed=g_test, dtype=dtype)
    else:
        sampler = _SAMPLERS[name]
        Xtr, ytr = sampler(n, d, seed=g_train, dtype=dtype)
        Xte, yte = sampler(n_test, d, seed=g_test, dtype=dtype)
    return Dataset(Xtr, ytr, Xte, yte, name=name, seed=seed)


def check_xy(X, y=None, *, d: int | None = None, name_x: str = "X", name_y: str = "y"):
    """Validate inputs: X a finite float tensor (n, d); y a finite tensor (n,).

    Raises ValueError naming the argument and what was expected.
    """
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"{name_x} must be a torch.Tensor of shape (n, d), got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name_x} must have shape (n, d), got shape {tuple(X.shape)}")
    if not X.is_floating_point():
        raise ValueError(f"{name_x} must be a floating-point tensor, got dtype {X.dtype}")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"{name_x} must have {d} columns (the model's input dimension), got {X.shape[1]}")
    if not torch.isfinite(X).all():
        raise ValueError(f"{name_x} must be finite (found NaN or inf)")
    if y is None:
        return
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name_y} must be a torch.Tensor of shape (n,), got {type(y).__name__}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name_y} must have shape ({X.shape[0]},) to match {name_x}, got shape {tuple(y.shape)}"
        )
    if not torch.isfinite(y).all():
        raise ValueError(f"{name_y} must be finite (found NaN or inf)")
