"""The wire format between the trusted grader and the sandboxed worker.

Messages are length-prefixed UTF-8 JSON on a dedicated pipe. Values are plain data:
``None``, bools, ints, floats (NaN/inf allowed), strings, and tagged objects

- ``{"__nd__": [dtype, shape, base64]}``: a numeric numpy array (raw bytes, C order),
  decoded with ``numpy.frombuffer``; ``{"__tensor__": nd}`` marks a torch tensor;
- ``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}``, ``{"__complex__": [re, im]}``;
- ``{"__model__": {"config": {...}, "params": {name: nd}, "reference": nd | None}}``: a
  flatlab model, rebuilt with ``flatlab.models.model_from_config``.

Nothing is ever unpickled; dtypes are checked against a whitelist, sizes are bounded.
"""
from __future__ import annotations

import base64
import json
import os
import struct
import sys

import numpy as np

__all__ = ["encode", "decode", "send", "recv", "EncodeError", "ProtocolError", "MAX_MESSAGE"]

MAX_MESSAGE = 256 * 2**20  # bytes: a reply larger than this is a protocol error
_DTYPES = {np.dtype(t).str for t in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}
_MODEL_KEYS = {"arch", "d", "width", "activation", "eps", "depth", "init_scale", "gamma_init", "bn_stat"}


class EncodeError(TypeError):
    """A value that is not plain data."""


class ProtocolError(ValueError):
    """A malformed message (bad framing, JSON, tag or dtype)."""


def _is_torch(x, attr):
    mod = type(x).__module__ or ""
    return mod.startswith("torch") and hasattr(x, attr)


def _nd(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    if a.dtype.str not in _DTYPES:
        raise EncodeError(f"an array of dtype {a.dtype}; expected a numeric array")
    return {"__nd__": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode("ascii")]}


def encode(x, expected: str = "a number/array", _depth: int = 0):
    """Plain-data form of ``x``; raises ``EncodeError`` naming the offending type."""
    if _depth > 20:
        raise EncodeError("a structure nested more than 20 levels deep")
    t = type(x)
    if x is None or t in (bool, int, str):
        return x
    if t is float:
        return x
    if t is complex:
        return {"__complex__": [x.real, x.imag]}
    if t in (list, tuple):
        items = [encode(v, expected, _depth + 1) for v in x]
        return items if t is list else {"__tuple__": items}
    if t is dict:
        return {"__dict__": [[encode(k, expected, _depth + 1), encode(v, expected, _depth + 1)]
                             for k, v in x.items()]}
    if isinstance(x, np.generic) and t.__module__ == "numpy":
        return encode(x.item(), expected, _depth + 1) if x.dtype.kind in "biufc" else _fail(x, expected)
    if t is np.ndarray:
        return _nd(x)
    if _is_torch(x, "detach") and t.__name__ in ("Tensor", "Parameter"):
        return {"__tensor__": _nd(x.detach().cpu().resolve_conj().resolve_neg().numpy())}
    torch = sys.modules.get("torch")
    if (torch is not None and isinstance(x, torch.nn.Module) and hasattr(x, "config")
            and hasattr(x.config, "to_dict")):
        ref = getattr(x, "reference", None)
        return {"__model__": {
            "config": x.config.to_dict(),
            "params": {k: _nd(v.detach().cpu().numpy()) for k, v in x.named_parameters()},
            "reference": None if ref is None else _nd(ref.detach().cpu().numpy()),
        }}
    return _fail(x, expected)


def _fail(x, expected):
    name = f"{type(x).__module__}.{type(x).__qualname__}"
    raise EncodeError(f"returned an object of type {name}; expected {expected}")


def _decode_nd(v) -> np.ndarray:
    if not (isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and isinstance(v[1], list)
            and isinstance(v[2], str)):
        raise ProtocolError("malformed array")
    dtype, shape, data = v
    if dtype not in _DTYPES or not all(type(s) is int and s >= 0 for s in shape):
        raise ProtocolError(f"array with bad dtype/shape {dtype!r} {shape!r}")
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    dt = np.dtype(dtype)
    if len(raw) != dt.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ProtocolError("array byte count does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def decode(x, tensors: bool = False, models: bool = False, _depth: int = 0):
    """Inverse of ``encode``. Tensors and models come back as arrays/dicts unless asked for."""
    if _depth > 22:
        raise ProtocolError("nesting too deep")
    if x is None or type(x) in (bool, int, float, str):
        return x
    if type(x) is list:
        return [decode(v, tensors, models, _depth + 1) for v in x]
    if type(x) is not dict or len(x) != 1:
        raise ProtocolError(f"unexpected value of type {type(x).__name__}")
    (tag, v), = x.items()
    if tag == "__nd__":
        return _decode_nd(v)
    if tag == "__tensor__":
        a = decode(v, _depth=_depth + 1)
        if tensors:
            import torch
            return torch.from_numpy(a)
        return a
    if tag == "__tuple__" and type(v) is list:
        return tuple(decode(e, tensors, models, _depth + 1) for e in v)
    if tag == "__dict__" and type(v) is list:
        out = {}
        for kv in v:
            if type(kv) is not list or len(kv) != 2:
                raise ProtocolError("malformed dict item")
            k = decode(kv[0], _depth=_depth + 1)
            if type(k) not in (str, int, float, bool, tuple) and k is not None:
                raise ProtocolError("dict key must be a scalar")
            out[k] = decode(kv[1], tensors, models, _depth + 1)
        return out
    if tag == "__complex__" and type(v) is list and len(v) == 2:
        return complex(float(v[0]), float(v[1]))
    if tag == "__model__" and type(v) is dict:
        cfg, params, ref = v.get("config"), v.get("params"), v.get("reference")
        if type(cfg) is not dict or set(cfg) - _MODEL_KEYS or type(params) is not dict:
            raise ProtocolError("malformed model")
        params = {str(k): _decode_nd(p["__nd__"]) for k, p in params.items()
                  if type(p) is dict and "__nd__" in p}
        ref = None if ref is None else _decode_nd(ref["__nd__"])
        if not models:
            return {"config": cfg, "params": params, "reference": ref}
        import torch
        from flatlab.models import model_from_config  # lazily: in a worker, the mounted view
        return model_from_config(cfg, {k: torch.from_numpy(a) for k, a in params.items()},
                                 X_ref=None if ref is None else torch.from_numpy(ref))
    raise ProtocolError(f"unknown tag {tag!r}")


def send(fd: int, msg: dict) -> None:
    """Write one message (8-byte big-endian length + JSON) to a file descriptor."""
    data = json.dumps(msg, separators=(",", ":")).encode("utf-8")
    buf = struct.pack(">Q", len(data)) + data
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, wait) -> bytes:
    chunks, got = [], 0
    while got < n:
        wait()
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError("pipe closed")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv(fd: int, wait=lambda: None) -> dict:
    """Read one message; ``wait()`` is called before each read (the parent's deadline check)."""
    (n,) = struct.unpack(">Q", _read_exact(fd, 8, wait))
    if n > MAX_MESSAGE:
        raise ProtocolError(f"message of {n} bytes exceeds the {MAX_MESSAGE}-byte limit")
    try:
        msg = json.loads(_read_exact(fd, n, wait).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(f"bad JSON: {e}") from None
    if type(msg) is not dict:
        raise ProtocolError("a message must be a JSON object")
    return msg
