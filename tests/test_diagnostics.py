"""flatlab.diagnostics on the two flattest bias constructions, hand-built nets and bad input."""
import pytest
import torch

from flatlab.constructions import generalizing_bias, memorizing_bias
from flatlab.data import xor_parity
from flatlab.diagnostics import (
    column_norms,
    diagnose,
    firing_counts,
    median_firing,
    memorization_index,
    neuron_table,
    x1x2_share,
)
from flatlab.models import make_model, set_params

D, N = 30, 100


@pytest.fixture(scope="module")
def xor():
    return xor_parity(N, D, seed=0)


def test_memorizing_construction(xor):
    X, y = xor
    model = memorizing_bias(X, y)
    assert float((model(X) - y).abs().max().detach()) < 1e-10  # it interpolates
    assert memorization_index(model, X) == pytest.approx(1.0)
    assert median_firing(model, X) == 1.0
    assert torch.equal(firing_counts(model, X), torch.ones(N, dtype=torch.int64))
    assert x1x2_share(model) == pytest.approx(2 / D, rel=1e-12)  # rows ∝ x_i: every coordinate equal
    d = diagnose(model, X)
    assert d["n_active"] == N and d["memorization_index"] == pytest.approx(1.0)


@pytest.mark.parametrize("width", [None, 12])
def test_generalizing_construction(xor, width):
    X, y = xor
    model = generalizing_bias(D, width=width)
    assert float((model(X) - y).abs().max().detach()) < 1e-10
    quadrant = torch.stack([((X[:, 0] == s1) & (X[:, 1] == s2)).sum() for s1, s2 in
                            [(1, 1), (1, -1), (-1, 1), (-1, -1)]]).to(torch.float64)
    assert memorization_index(model, X) == 0.0
    assert median_firing(model, X) == pytest.approx(float(quadrant.quantile(0.5)))  # ~ n/4
    assert abs(median_firing(model, X) - N / 4) <= 8
    assert x1x2_share(model) == pytest.approx(1.0)
    table = neuron_table(model, k=4, X=X)
    assert sorted(r["firing"] for r in table) == sorted(int(q) for q in quadrant)
    for r in table:
        assert r["x1x2_share"] == pytest.approx(1.0) and r["rest_norm"] == 0.0
        assert abs(r["w_x1"]) == pytest.approx(abs(r["w_x2"]))
        assert r["w2"] == pytest.approx(r["w_x1"] * r["w_x2"] / abs(r["w_x1"] * r["w_x2"]) / (D + 1) ** 0.25)
    assert diagnose(model, X)["n_active"] == 4


def hand_net():
    """A 3-neuron bias net on 6 points in d = 3, weights chosen so every quantity is known."""
    X = torch.tensor([[1, 1, 1], [1, -1, 1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1], [-1, -1, -1]],
                     dtype=torch.float64)
    model = make_model("bias", 3, 3, seed=0)
    set_params(model, {
        "W1": torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]),
        "b1": torch.tensor([0.0, 0.0, -2.5]),  # fires on x0 > 0 (3 pts), x2 > 0 (3 pts), all ones (1 pt)
        "W2": torch.tensor([1.0, -2.0, 4.0]),
    })
    return model, X


def test_hand_built_net_values():
    model, X = hand_net()
    assert firing_counts(model, X).tolist() == [3, 3, 1]
    # |W2_j| Σ_i h_ij: neuron 0: 1·(2+2+2) = 6, neuron 1: 2·(3+3+3) = 18, neuron 2: 4·0.5 = 2
    assert memorization_index(model, X, threshold=1) == pytest.approx(2 / 26)
    assert memorization_index(model, X, threshold=3) == pytest.approx(1.0)
    assert memorization_index(model, X, threshold=0) == 0.0
    assert median_firing(model, X) == 3.0
    assert x1x2_share(model) == pytest.approx((4 + 1 + 1) / (4 + 9 + 3))
    torch.testing.assert_close(column_norms(model), torch.tensor([5.0, 1.0, 10.0]).sqrt())
    by_product = [r["neuron"] for r in neuron_table(model, k=3)]
    by_norm = [r["neuron"] for r in neuron_table(model, k=3, by="norm")]
    assert by_product == [2, 1, 0]  # scores sqrt(3)·4, 3·2, 2·1
    assert by_norm == [1, 0, 2]  # norms 3, 2, sqrt(3)
    assert neuron_table(model, k=1)[0]["bias"] == -2.5


def test_sim_archs_and_gamma():
    X, _ = xor_parity(16, 5, seed=1)
    bn = make_model("sim_bn", 5, 6, seed=2, X_ref=X)
    with torch.no_grad():
        bn.gamma.copy_(torch.arange(1.0, 7.0))
    table = neuron_table(bn, k=6)
    scores = [r["score"] for r in table]
    assert scores == sorted(scores, reverse=True)
    for r in table:
        j = r["neuron"]
        assert r["gamma"] == j + 1.0
        assert r["score"] == pytest.approx(float((bn.W1[j].norm() * bn.W2[j].abs() * bn.gamma[j]).detach()))
    ln = make_model("sim_ln", 5, 6, seed=3)
    d = diagnose(ln, X, k=3)
    assert 0.0 <= d["memorization_index"] <= 1.0 and len(d["top_neurons"]) == 3
    assert neuron_table(make_model("no_bias", 5, 6, seed=0), k=2)[0]["bias"] is None


def test_invariances():
    """Permuting neurons or training points, and rescaling a neuron (W1_j, b1_j)·c, W2_j/c,
    leave the indices unchanged."""
    X, y = xor_parity(40, 6, seed=4)
    model = make_model("bias", 6, 20, seed=5)
    base = (memorization_index(model, X, threshold=10), median_firing(model, X), x1x2_share(model))
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    p = {k: v.detach()[perm] for k, v in model.named_parameters()}
    permuted = set_params(make_model("bias", 6, 20, seed=0), p)
    X_perm = X[torch.randperm(40, generator=torch.Generator().manual_seed(1))]
    got = (memorization_index(permuted, X_perm, threshold=10), median_firing(permuted, X),
           x1x2_share(permuted))
    assert got == pytest.approx(base)
    with torch.no_grad():
        model.W1[3] *= 5.0
        model.b1[3] *= 5.0
        model.W2[3] /= 5.0
    assert memorization_index(model, X, threshold=10) == pytest.approx(base[0])
    assert median_firing(model, X) == base[1]


def test_zero_output_and_bad_input():
    X, y = xor_parity(10, 4, seed=0)
    model = make_model("bias", 4, 5, seed=0)
    with torch.no_grad():
        model.W2.zero_()
    assert memorization_index(model, X) == 0.0
    with pytest.raises(ValueError, match="model"):
        memorization_index(make_model("deep_bias", 4, 5, seed=0), X)
    with pytest.raises(ValueError, match="model"):
        x1x2_share(torch.nn.Linear(4, 1))
    with pytest.raises(ValueError, match="X"):
        firing_counts(model, X[:, :3])
    with pytest.raises(ValueError, match="threshold"):
        memorization_index(model, X, threshold=-1)
    with pytest.raises(ValueError, match="k"):
        neuron_table(model, k=0)
    with pytest.raises(ValueError, match="k"):
        neuron_table(model, k=6)
    with pytest.raises(ValueError, match="by"):
        neuron_table(model, by="size")
