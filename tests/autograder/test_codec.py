"""The wire format: plain data round-trips; anything else is refused; nothing is unpickled."""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest
import torch

import flatlab
from autograder import codec


def roundtrip(x, **kw):
    return codec.decode(json.loads(json.dumps(codec.encode(x))), **kw)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int64", "uint16", "float16", "float32", "float64", "complex128"])
def test_arrays_roundtrip_bit_exact(dtype):
    a = (np.random.default_rng(0).normal(size=(3, 4)) * 10).astype(dtype)
    b = roundtrip(a)
    assert b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes()
    assert roundtrip(a[:, ::2]).tobytes() == np.ascontiguousarray(a[:, ::2]).tobytes()


def test_nested_plain_data_roundtrips():
    x = {"a": [1, 2.5, None, True, "s", (1, 2)], 3: {"n": float("nan"), "c": 1 + 2j}, "e": np.zeros((0, 2))}
    y = roundtrip(x)
    assert y["a"] == [1, 2.5, None, True, "s", (1, 2)] and math.isnan(y[3]["n"]) and y[3]["c"] == 1 + 2j
    assert y["e"].shape == (0, 2)
    assert type(roundtrip(np.float32(1.5))) is float and type(roundtrip(np.int64(3))) is int


def test_tensors_come_back_as_arrays_or_tensors():
    t = torch.arange(6.0).reshape(2, 3).requires_grad_()
    assert isinstance(roundtrip(t), np.ndarray) and np.array_equal(roundtrip(t), t.detach().numpy())
    back = roundtrip([t], tensors=True)[0]
    assert isinstance(back, torch.Tensor) and torch.equal(back, t.detach())


@pytest.mark.parametrize("arch", ["bias", "sim_bn", "sim_ln", "no_bias"])
def test_models_roundtrip_with_weights_and_reference(arch):
    X, _ = flatlab.xor_parity(9, 4, seed=1)
    model = flatlab.make_model(arch, 4, 5, seed=3, X_ref=X if arch == "sim_bn" else None)
    back = roundtrip(model, models=True)
    assert type(back) is type(model) and back.config == model.config
    assert torch.equal(back(X), model(X))
    plain = roundtrip(model)
    assert set(plain["params"]) == set(dict(model.named_parameters()))


def test_the_codec_knows_every_model_config_field():
    """The codec lists ModelConfig's fields itself (the fork server never imports flatlab): keep them equal."""
    import dataclasses

    from autograder.codec import _MODEL_KEYS
    assert _MODEL_KEYS == {f.name for f in dataclasses.fields(flatlab.models.ModelConfig)}
    X, _ = flatlab.xor_parity(9, 4, seed=1)
    model = flatlab.make_model("sim_bn", 4, 5, seed=3, X_ref=X, bn_stat="sum")
    back = roundtrip(model, models=True)
    assert back.config.bn_stat == "sum" and torch.equal(back(X), model(X))


class Liar:
    def __eq__(self, other):
        return True


class LiarInt(int):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("bad", [Liar(), LiarInt(3), np.array([Liar()], dtype=object), {1, 2}, b"bytes",
                                 torch.nn.Linear(2, 2), lambda: 1])
def test_non_plain_objects_are_refused(bad):
    with pytest.raises(codec.EncodeError, match="returned an object of type|dtype object"):
        codec.encode(bad)


@pytest.mark.parametrize("msg", [
    {"__nd__": ["|O", [1], "AAAAAAAAAAA="]},
    {"__nd__": ["<f8", [2], "AAAAAAAAAAA="]},  # 8 bytes for 2 float64
    {"__nd__": ["<f8", [-1], ""]},
    {"__pickle__": "gASVAAAAAAAAAAB9lC4="},
    {"a": 1, "b": 2},
    {"__dict__": [[{"__nd__": ["<f8", [0], ""]}, 1]]},
    {"__model__": {"config": {"arch": "bias", "evil": 1}, "params": {}}},
])
def test_malformed_or_dangerous_values_are_rejected(msg):
    with pytest.raises(codec.ProtocolError):
        codec.decode(msg)


def test_framing_over_a_pipe():
    r, w = os.pipe()
    try:
        codec.send(w, {"x": codec.encode(np.arange(5.0))})
        assert np.array_equal(codec.decode(codec.recv(r)["x"]), np.arange(5.0))
        os.write(w, struct.pack(">Q", codec.MAX_MESSAGE + 1))
        with pytest.raises(codec.ProtocolError, match="exceeds"):
            codec.recv(r)
        os.write(w, struct.pack(">Q", 3) + b"{{{")
        with pytest.raises(codec.ProtocolError, match="bad JSON"):
            codec.recv(r)
        os.write(w, struct.pack(">Q", 2) + b"[]")
        with pytest.raises(codec.ProtocolError, match="object"):
            codec.recv(r)
        os.close(w)
        w = None
        with pytest.raises(EOFError):
            codec.recv(r)
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
