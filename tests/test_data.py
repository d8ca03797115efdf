import pytest
import torch

from flatlab.data import ball_data, make_dataset, sparse_parity, xor_parity


def test_xor_labels_are_product_of_first_two_coordinates():
    X, y = xor_parity(500, 7, seed=3)
    assert X.shape == (500, 7) and y.shape == (500,)
    assert X.dtype == torch.float64
    assert set(X.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(y, X[:, 0] * X[:, 1])


def test_xor_coordinates_are_balanced():
    X, _ = xor_parity(20_000, 5, seed=0)
    assert X.mean(0).abs().max() < 0.03  # each coordinate ±1 with probability 1/2


def test_same_seed_same_data_other_seed_other_data():
    a = xor_parity(50, 10, seed=1)
    b = xor_parity(50, 10, seed=1)
    c = xor_parity(50, 10, seed=2)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


def test_generator_is_accepted_and_global_state_untouched():
    state = torch.get_rng_state()
    g = torch.Generator().manual_seed(5)
    X1, _ = xor_parity(10, 4, seed=g)
    X2, _ = xor_parity(10, 4, seed=torch.Generator().manual_seed(5))
    assert torch.equal(X1, X2)
    assert torch.equal(state, torch.get_rng_state())


def test_sparse_parity_k3():
    X, y = sparse_parity(100, 6, 3, seed=0)
    assert torch.equal(y, X[:, 0] * X[:, 1] * X[:, 2])


def test_ball_data_inside_ball_and_label():
    X, y = ball_data(2000, 10, seed=0)
    r = X.norm(dim=1)
    assert (r <= 10**0.5 + 1e-12).all()
    # uniform in the ball: P(r <= R/2) = 2^-d
    assert (r < 10**0.5 / 2).float().mean() < 0.01
    assert torch.allclose(y, X[:, 0].abs() - X[:, 1].abs())


def test_float32_opt_in():
    X, y = xor_parity(4, 3, seed=0, dtype=torch.float32)
    assert X.dtype == torch.float32 and y.dtype == torch.float32


def test_dataset_test_set_is_fresh():
    ds = make_dataset("xor", n=100, d=30, n_test=1000, seed=0)
    assert ds.X_test.shape == (1000, 30)
    # with d=30 a collision between train and test points is astronomically unlikely
    same = (ds.X_test[:, None, :] == ds.X_train[None, :, :]).all(-1).any()
    assert not same
    ds2 = make_dataset("xor", n=100, d=30, n_test=1000, seed=0)
    assert torch.equal(ds.X_test, ds2.X_test)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: xor_parity(0, 5, seed=0), "n must be"),
        (lambda: xor_parity(5, 1, seed=0), "d must be"),
        (lambda: xor_parity(5, 5, seed=-1), "seed"),
        (lambda: xor_parity(5, 5, seed="a"), "seed"),
        (lambda: sparse_parity(5, 3, 4, seed=0), "k must be"),
        (lambda: xor_parity(5, 5, seed=0, dtype=torch.int64), "dtype"),
        (lambda: make_dataset("spiral", seed=0), "name must be"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
