"""flatlab.sharpness against independent references: autograd Hessians (torch.func) of a flat
vector split here (not with flatlab's helpers), per-example gradients from a plain autograd loop, eigvalsh,
closed forms on a linear model (quadratic loss) and on the paper's flattest construction."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from flatlab.data import xor_parity
from flatlab.losses import logistic, mse
from flatlab.models import make_model
from flatlab.sharpness import (
    EigenResult,
    SharpnessEstimate,
    TraceEstimate,
    average_sharpness,
    bias_trace_lower_bound,
    bias_trace_lower_bound_data,
    gauss_newton_trace,
    hessian_trace,
    hvp,
    per_example_grad_sq_norms,
    sam_sharpness,
    top_eigenvalue,
    trace_parts,
)

CASES = ["no_bias", "bias", "sim_bn", "sim_ln", "deep_bias", "softplus"]
LOSSES = {"mse": mse, "logistic": logistic}


def build(case, d=4, m=6, n=10, seed=0):
    """A small seeded model of each case ('softplus' = bias net with softplus) and XOR data."""
    X, y = xor_parity(n, d, seed=seed + 50)
    arch, kw = (("bias", {"activation": "softplus"}) if case == "softplus" else (case, {}))
    if arch == "sim_bn":
        kw["X_ref"] = X
    return make_model(arch, d, m, seed=seed, **kw), X, y


def interpolate(model, X, y):
    """Make a two-layer model interpolate: W2 = min-norm least squares on its features (m >= n)."""
    with torch.no_grad():
        model.W2.copy_(torch.linalg.lstsq(model.features(X), y[:, None], driver="gelsd").solution[:, 0])
    assert (model(X) - y).abs().max() < 1e-12
    return model


def flat_closure(model, X):
    """theta -> f(X), theta (p,) split by hand in named_parameters order (independent of flatlab)."""
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    buffers = {k: b for k, b in model.named_buffers()}
    theta = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])

    def f(t, Xe=X):
        parts = {k: c.reshape(s) for k, c, s in zip(names, torch.split(t, sizes), shapes)}
        return functional_call(model, {**parts, **buffers}, (Xe,))

    return theta, f, sizes


def hess(fn, theta):
    """Reverse-over-reverse autograd Hessian. torch.func.hessian (forward over reverse) gives the
    same matrix (checked in the slow test below) but its first call costs ~5 s of JIT set-up."""
    return torch.func.jacrev(torch.func.jacrev(fn))(theta)


def ref_hessian(model, X, y, loss="mse"):
    theta, f, _ = flat_closure(model, X)
    return hess(lambda t: LOSSES[loss](f(t), y), theta)


def ref_jacobian(model, X):
    """Per-example gradients of f with a plain autograd loop: (n, p)."""
    params = list(model.parameters())
    rows = []
    for i in range(X.shape[0]):
        g = torch.autograd.grad(model(X[i : i + 1])[0], params, allow_unused=True)
        g = [torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)]
        rows.append(torch.cat([gi.reshape(-1) for gi in g]))
    return torch.stack(rows)


def rel(a, b):
    return abs(a - b) / abs(b)


# ----------------------------------------------------------------------------- exact trace, GN, hvp
@pytest.mark.parametrize("loss", ["mse", "logistic"])
@pytest.mark.parametrize("case", CASES)
def test_exact_trace_equals_independent_hessian_and_eigvalsh_sum(case, loss):
    model, X, y = build(case)
    H = ref_hessian(model, X, y, loss)
    tr = hessian_trace(model, X, y, loss=loss, method="exact")
    scale = float(torch.linalg.matrix_norm(H))
    assert abs(tr - float(H.trace())) <= 1e-12 * scale
    assert abs(tr - float(torch.linalg.eigvalsh(H).sum())) <= 1e-10 * scale
    chunked = hessian_trace(model, X, y, loss=loss, method="exact", chunk_size=7)
    assert abs(chunked - tr) <= 1e-13 * scale


CLOSED = ["no_bias", "bias", "sim_bn", "sim_ln", "softplus", "sim_ln_softplus", "sim_bn_softplus", "sim_bn_sum",
          "deep_bias"]


def build_closed(case, seed=0, perturb=0.3):
    """``build`` plus softplus Sim-LN / Sim-BN, with weights moved off the init (so no symmetry helps)."""
    if case == "sim_bn_sum":
        X, y = xor_parity(10, 4, seed=seed + 50)
        model = make_model("sim_bn", 4, 6, seed=seed, X_ref=X, bn_stat="sum")
    elif case.endswith("_softplus") and case != "softplus":
        X, y = xor_parity(10, 4, seed=seed + 50)
        arch = case[: -len("_softplus")]
        model = make_model(arch, 4, 6, seed=seed, activation="softplus", **({"X_ref": X} if arch == "sim_bn" else {}))
    else:
        model, X, y = build(case, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model, X, y


@pytest.mark.parametrize("loss", ["mse", "logistic"])
@pytest.mark.parametrize("case", CLOSED)
def test_closed_form_trace_equals_independent_hessian(case, loss):
    """The closed form (Gauss-Newton term + Σ_i ∂L/∂f_i Tr ∇²f(x_i)) against the autograd Hessian's trace."""
    model, X, y = build_closed(case)
    H = ref_hessian(model, X, y, loss)
    tr = hessian_trace(model, X, y, loss=loss, method="closed_form")
    assert abs(tr - float(H.trace())) <= 1e-12 * float(torch.linalg.matrix_norm(H))
    gn = hessian_trace(model, X, y, loss=loss, method="gauss_newton")
    assert trace_parts(model, X, y, loss=loss) == (tr, gn)  # both at once, the same numbers
    relu_plain = case in ("no_bias", "bias", "deep_bias")
    assert (abs(tr - gn) <= 1e-12 * abs(tr)) == relu_plain  # the second-order term vanishes exactly there


def test_closed_form_trace_refuses_models_without_one():
    model = make_model("deep_bias", 4, 5, seed=0, depth=3, activation="softplus")
    X, y = xor_parity(6, 4, seed=1)
    with pytest.raises(ValueError, match="closed_form.*'exact' or 'hutchinson'"):
        hessian_trace(model, X, y, method="closed_form")
    with pytest.raises(ValueError, match="closed_form"):
        trace_parts(model, X, y)


@pytest.mark.parametrize("arch", ["sim_ln", "sim_bn"])
def test_the_logged_trace_of_trained_normalized_nets_is_the_hessian_trace(arch):
    """Trained by 1-SAM to a small loss, a Sim-LN / Sim-BN net's logged ``trace`` is the autograd
    Hessian's trace, while its Gauss-Newton term (what the package once reported) is not."""
    from flatlab.data import make_dataset
    from flatlab.train import Phase, TrainConfig, train
    data = make_dataset("xor", n=16, d=5, n_test=64, seed=3)
    kw = {"X_ref": data.X_train} if arch == "sim_bn" else {"init_scale": 0.1}
    model = make_model(arch, 5, 24, seed=4, **kw)
    hist = train(model, data, TrainConfig("one_sam", (Phase(300, 0.05, 0.05),), log_every=100, seed=0))
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    H = ref_hessian(model, data.X_train, data.y_train)
    true = float(H.trace())
    assert abs(hist.trace[-1] - true) <= 1e-10 * abs(true)
    assert abs(hist.gn_trace[-1] - gauss_newton_trace(model, data.X_train)) <= 1e-10 * hist.gn_trace[-1]
    assert abs(hist.gn_trace[-1] - true) > 1e-3 * abs(true)


@pytest.mark.slow  # the first forward-mode call sets up torch's JIT decompositions (~5 s)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["sim_bn", "deep_bias"])
def test_exact_trace_equals_torch_func_hessian(case):
    model, X, y = build(case)
    theta, f, _ = flat_closure(model, X)
    H = torch.func.hessian(lambda t: mse(f(t), y))(theta)
    scale = float(torch.linalg.matrix_norm(H))
    assert torch.allclose(H, ref_hessian(model, X, y), rtol=0, atol=1e-13 * scale)
    assert rel(hessian_trace(model, X, y, method="exact"), float(H.trace())) < 1e-12


@pytest.mark.parametrize("loss", ["mse", "logistic"])
@pytest.mark.parametrize("case", ["no_bias", "bias", "deep_bias"])
def test_gauss_newton_is_exact_for_relu_nets_without_normalization(case, loss):
    model, X, y = build(case)
    assert (model(X) - y).abs().max() > 0.1  # far from interpolation: the GN term alone is exact
    exact = hessian_trace(model, X, y, loss=loss, method="exact")
    assert rel(hessian_trace(model, X, y, loss=loss, method="gauss_newton"), exact) < 1e-8
    assert rel(float(ref_hessian(model, X, y, loss).trace()), exact) < 1e-12


@pytest.mark.parametrize("case", CASES)
def test_gauss_newton_matches_per_example_gradient_loop(case):
    model, X, y = build(case)
    J = ref_jacobian(model, X)
    sq = J.pow(2).sum(1)
    assert torch.allclose(per_example_grad_sq_norms(model, X), sq, rtol=1e-12, atol=1e-14)
    assert rel(hessian_trace(model, X, y, method="gauss_newton"), float(2 * sq.mean())) < 1e-12
    assert rel(gauss_newton_trace(model, X), float(2 * sq.mean())) < 1e-12
    f = model(X).detach()
    w = torch.sigmoid(y * f) * torch.sigmoid(-y * f) / len(y)  # ∂²/∂f² of the logistic loss
    assert rel(hessian_trace(model, X, y, loss="logistic", method="gauss_newton"), float(w @ sq)) < 1e-12


@pytest.mark.parametrize("case", ["no_bias", "bias", "softplus"])
def test_closed_form_grad_norms_equal_autograd(case):
    model, X, _ = build(case, m=9)
    a = per_example_grad_sq_norms(model, X, method="closed_form")
    b = per_example_grad_sq_norms(model, X, method="autograd")
    assert a.shape == (X.shape[0],) and a.dtype == torch.float64
    assert torch.allclose(a, b, rtol=1e-13, atol=0)


def sim_ln_case(seed, m, activation="relu", n=12, d=5, eps_quantile=None):
    """A seeded Sim-LN net; with ``eps_quantile`` q, eps sits between two rows' ‖h‖ so that about a
    fraction q of the rows are clamped (‖h‖ < eps) and the others are not."""
    X, _ = xor_parity(n, d, seed=seed + 50)
    model = make_model("sim_ln", d, m, seed=seed, activation=activation)
    if eps_quantile is not None:
        hn = model.hidden(X).norm(dim=1).detach().sort().values
        k = next(k for k in range(max(1, int(eps_quantile * n)), n) if hn[k] > hn[k - 1])  # rows may repeat
        eps = float(hn[k - 1] + hn[k]) / 2
        assert hn[k - 1] < eps < hn[k]
        model = make_model("sim_ln", d, m, seed=seed, activation=activation, eps=eps)
    return model, X


def closed_vs_autograd(model, X):
    a = per_example_grad_sq_norms(model, X, method="closed_form")
    b = per_example_grad_sq_norms(model, X, method="autograd")  # torch.func.vmap of per-example grads
    c = ref_jacobian(model, X).pow(2).sum(1)  # a plain autograd loop
    return a, b, c


@pytest.mark.parametrize("seed, m, activation, eps_quantile", [
    (0, 6, "relu", None), (1, 40, "relu", None), (2, 200, "relu", None), (3, 9, "softplus", None),
    (4, 8, "relu", 0.5), (5, 30, "relu", 0.25), (6, 8, "softplus", 0.75)])
def test_sim_ln_closed_form_grad_norms_equal_autograd(seed, m, activation, eps_quantile):
    model, X = sim_ln_case(seed, m, activation, eps_quantile=eps_quantile)
    a, b, c = closed_vs_autograd(model, X)
    assert a.shape == (X.shape[0],) and a.dtype == torch.float64
    assert torch.allclose(a, b, rtol=1e-12, atol=0) and torch.allclose(a, c, rtol=1e-12, atol=0)
    assert torch.equal(per_example_grad_sq_norms(model, X), a)  # auto picks the closed form
    hn = model.hidden(X).norm(dim=1).detach()
    free = hn > model.config.eps
    assert (a[free] > 1 - 1e-12).all()  # unclamped: the output layer alone gives ‖u‖² = 1
    if eps_quantile is not None:  # clamped rows: ‖h‖²/eps² + the first layer
        assert (~free).any() and (a[~free] >= (hn[~free] / model.config.eps) ** 2 - 1e-12).all()


@pytest.mark.parametrize("eps, clamped", [(5.0, False), (5.0 * (1 + 1e-9), True), (1e-6, False)])
def test_sim_ln_closed_form_at_the_clamp_boundary(eps, clamped):
    """h = (3, 4, 0, ...) on every input, so ‖h‖ = 5 exactly: at eps = ‖h‖ the normalization's gradient
    passes (autograd's clamp_min rule) and gives 1 + ‖x'‖²‖(I - uuᵀ)W2‖²/25 on the two live neurons;
    just above it the net is f = W2·h/eps. Neurons at z = 0 exactly are dead (relu'(0) = 0)."""
    d, m = 4, 5
    X, _ = xor_parity(8, d, seed=0)
    model = make_model("sim_ln", d, m, seed=1, eps=eps)
    with torch.no_grad():
        model.W1.zero_()
        model.b1.copy_(torch.tensor([3.0, 4.0, 0.0, -1.0, 0.0], dtype=torch.float64))
    a, b, c = closed_vs_autograd(model, X)
    assert torch.allclose(a, b, rtol=1e-12, atol=0) and torch.allclose(a, c, rtol=1e-12, atol=0)
    u, W2, xsq = torch.tensor([0.6, 0.8]), model.W2.detach()[:2], X.pow(2).sum(1) + 1
    if clamped:
        want = 25 / eps**2 + xsq * W2.pow(2).sum() / eps**2
    else:
        want = 1 + xsq * (W2 - (u @ W2) * u).pow(2).sum() / 25
    assert torch.allclose(a, want, rtol=1e-12, atol=0)


def test_sim_ln_closed_form_with_all_hidden_units_dead():
    """h = 0 (every z <= 0, some exactly 0): f = 0 near θ along W2, and every gradient vanishes."""
    X, _ = xor_parity(8, 4, seed=0)
    model = make_model("sim_ln", 4, 5, seed=1)
    with torch.no_grad():
        model.W1.zero_()
        model.b1.copy_(torch.tensor([0.0, -1.0, 0.0, -2.0, -0.5], dtype=torch.float64))
    a, b, c = closed_vs_autograd(model, X)
    assert torch.equal(a, torch.zeros(8, dtype=torch.float64)) and torch.equal(b, a) and torch.equal(c, a)


@pytest.mark.parametrize("case", ["sim_bn", "sim_ln", "softplus"])
def test_gauss_newton_equals_exact_at_interpolation(case):
    model, X, y = build(case, d=4, m=12, n=8)
    interpolate(model, X, y)
    exact = hessian_trace(model, X, y, method="exact")
    assert rel(hessian_trace(model, X, y, method="gauss_newton"), exact) < 1e-8


@pytest.mark.parametrize("case", ["sim_bn", "sim_ln", "softplus"])
def test_gauss_newton_differs_away_from_interpolation_by_the_residual_term(case):
    model, X, y = build(case)
    exact = hessian_trace(model, X, y, method="exact")
    gn = hessian_trace(model, X, y, method="gauss_newton")
    assert abs(exact - gn) > 1e-3 * abs(exact)
    theta, f, _ = flat_closure(model, X)
    r = (model(X) - y).detach()
    tr_f = torch.stack([hess(lambda t: f(t, X[i : i + 1])[0], theta).trace() for i in range(len(y))])
    assert rel(exact - gn, float(2 * (r * tr_f).mean())) < 1e-8  # Tr ∇²L = GN + (2/n) Σ r_i Tr ∇²f_i


@pytest.mark.parametrize("loss", ["mse", "logistic"])
@pytest.mark.parametrize("case", CASES)
def test_hvp_equals_full_hessian_times_v(case, loss):
    model, X, y = build(case)
    H = ref_hessian(model, X, y, loss)
    V = torch.randn(3, H.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tol = 1e-12 * float(torch.linalg.matrix_norm(H, 2))
    assert (hvp(model, X, y, V, loss=loss) - V @ H).abs().max() <= tol
    out = hvp(model, X, y, V[0], loss=loss)
    assert out.shape == V[0].shape and (out - H @ V[0]).abs().max() <= tol


def test_callable_losses_separable_and_coupled():
    model, X, y = build("bias")
    theta, f, _ = flat_closure(model, X)

    def separable(g, t):
        return (g - t).pow(4).mean()

    def coupled(g, t):  # ∂²L/∂f² is not diagonal
        return (g - t).mean() ** 2 + (g - t).pow(2).mean()

    for loss in (separable, coupled):
        H = hess(lambda t: loss(f(t), y), theta)
        exact = hessian_trace(model, X, y, loss=loss, method="exact")
        assert rel(exact, float(H.trace())) < 1e-12
        assert rel(hessian_trace(model, X, y, loss=loss, method="gauss_newton"), exact) < 1e-8  # ReLU net
        assert torch.allclose(hvp(model, X, y, theta, loss=loss), H @ theta, rtol=1e-11, atol=1e-12)


# ----------------------------------------------------------------------------- Hutchinson, eigenvalues
@pytest.mark.parametrize("case", CASES)
def test_hutchinson_within_three_standard_errors(case):
    model, X, y = build(case)
    exact = hessian_trace(model, X, y, method="exact")
    est = hessian_trace(model, X, y, method="hutchinson", n_probes=300, seed=3)
    assert isinstance(est, TraceEstimate) and est.n_probes == 300 and est.stderr > 0
    assert abs(est.value - exact) <= 3 * est.stderr
    again = hessian_trace(model, X, y, method="hutchinson", n_probes=300, seed=3)
    other = hessian_trace(model, X, y, method="hutchinson", n_probes=300, seed=4)
    assert again == est and other.value != est.value and float(est) == est.value


def test_hutchinson_logistic_within_three_standard_errors():
    model, X, y = build("sim_ln")
    exact = float(ref_hessian(model, X, y, "logistic").trace())
    est = hessian_trace(model, X, y, loss="logistic", method="hutchinson", n_probes=300, seed=0)
    assert abs(est.value - exact) <= 3 * est.stderr


@pytest.mark.parametrize("method", ["lanczos", "arpack"])
@pytest.mark.parametrize("case", CASES)
def test_top_eigenvalue_matches_eigvalsh(case, method):
    model, X, y = build(case)
    top = float(torch.linalg.eigvalsh(ref_hessian(model, X, y))[-1])
    res = top_eigenvalue(model, X, y, method=method, tol=1e-10)
    assert isinstance(res, EigenResult) and res.converged
    assert rel(res.value, top) < 1e-6
    assert res.residual <= 2e-10 * abs(res.value) and 0 < res.n_iter <= 1000


@pytest.mark.parametrize("case", ["no_bias", "bias", "softplus"])
def test_warm_start_is_the_top_eigenvector_at_interpolation(case):
    """At interpolation H is the Gauss-Newton matrix, whose top eigenvector the warm start computes
    in closed form: one product confirms it. Away from it, both starts agree."""
    model, X, y = build(case, m=12, n=8)
    random_point = top_eigenvalue(model, X, y, tol=1e-10)
    cold = top_eigenvalue(model, X, y, tol=1e-10, warm_start=False)
    assert random_point.converged and cold.converged and rel(random_point.value, cold.value) < 1e-9
    interpolate(model, X, y)
    top = float(torch.linalg.eigvalsh(ref_hessian(model, X, y))[-1])
    warm = top_eigenvalue(model, X, y, tol=1e-6)
    assert warm.converged and warm.n_iter == 1 and rel(warm.value, top) < 1e-9
    assert top_eigenvalue(model, X, y, tol=1e-6, warm_start=False).n_iter > 1


@pytest.mark.parametrize("case", ["bias", "sim_bn", "softplus"])
def test_power_iteration_matches_eigvalsh(case):
    model, X, y = build(case)
    ev = torch.linalg.eigvalsh(ref_hessian(model, X, y, "logistic"))
    assert ev[-1] > abs(ev[0])  # the dominant eigenvalue is the top one here
    res = top_eigenvalue(model, X, y, loss="logistic", method="power", tol=1e-9, max_iter=5000)
    assert res.converged and rel(res.value, float(ev[-1])) < 1e-6


@pytest.mark.parametrize("method", ["lanczos", "arpack", "power"])
def test_top_eigenvalue_reports_non_convergence(method):
    model, X, y = build("sim_ln", m=12)
    res = top_eigenvalue(model, X, y, method=method, tol=1e-13, max_iter=2)
    assert not res.converged
    assert math.isnan(res.value) or res.residual > 1e-13 * abs(res.value)


# ----------------------------------------------------------------------------- quadratic loss: closed forms
class Linear(nn.Module):
    """f(x) = w·x: MSE is exactly quadratic in w with Hessian (2/n) XᵀX."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, X):
        return X @ self.w


def linear_problem(d=5, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    H = 2 * X.T @ X / n
    grad = 2 * X.T @ (X @ w - y) / n
    return Linear(w), X, y, H, grad


def test_quadratic_traces_and_sam_one_step_closed_form():
    model, X, y, H, g = linear_problem()
    assert rel(hessian_trace(model, X, y), float(H.trace())) < 1e-13
    assert rel(hessian_trace(model, X, y, method="gauss_newton"), float(H.trace())) < 1e-13
    rho = 0.3
    gh = g / g.norm()
    closed = rho * float(g.norm()) + 0.5 * rho**2 * float(gh @ H @ gh)
    assert rel(sam_sharpness(model, X, y, rho), closed) < 1e-12


def test_sam_multi_step_reaches_the_ball_maximum():
    model, X, y, H, g = linear_problem(d=2, n=6, seed=2)
    rho = 0.5
    angles = torch.linspace(0, 2 * math.pi, 200_001, dtype=torch.float64)
    D = rho * torch.stack([angles.cos(), angles.sin()], 1)  # a convex loss peaks on the sphere
    brute = float((D @ g + 0.5 * ((D @ H) * D).sum(1)).max())
    one, many = sam_sharpness(model, X, y, rho), sam_sharpness(model, X, y, rho, steps=60)
    assert one <= many + 1e-15 and one < brute
    assert rel(many, brute) < 1e-6


def test_average_sharpness_quadratic_closed_form():
    model, X, y, H, _ = linear_problem()
    sigma = 0.2
    est = average_sharpness(model, X, y, sigma, n_samples=400, seed=0)
    closed = 0.5 * sigma**2 * float(H.trace())
    assert isinstance(est, SharpnessEstimate) and est.n_samples == 400
    assert abs(est.value - closed) <= 3 * est.stderr and est.stderr < 0.1 * closed
    assert average_sharpness(model, X, y, sigma, n_samples=400, seed=0) == est


def test_logistic_on_linear_model_gauss_newton_is_exact():
    model, X, y, _, _ = linear_problem()
    y = torch.sign(y)
    z = y * (X @ model.w.detach())
    H = X.T @ (X * (torch.sigmoid(z) * torch.sigmoid(-z))[:, None]) / len(y)
    for method in ("exact", "gauss_newton"):
        assert rel(hessian_trace(model, X, y, loss="logistic", method=method), float(H.trace())) < 1e-12
    assert rel(top_eigenvalue(model, X, y, loss="logistic").value, float(torch.linalg.eigvalsh(H)[-1])) < 1e-9


def test_sam_steps_never_lower_the_value_on_a_net():
    model, X, y = build("bias")
    vals = [sam_sharpness(model, X, y, 0.1, steps=s) for s in (1, 3, 10)]
    assert vals[0] > 0 and vals[0] <= vals[1] <= vals[2]


# ----------------------------------------------------------------------------- the lower bound
def hypercube(d):
    rows = [[1.0 if (i >> k) & 1 else -1.0 for k in range(d)] for i in range(2**d)]
    X = torch.tensor(rows, dtype=torch.float64)
    return X, X[:, 0] * X[:, 1]


def test_generalizing_construction_meets_the_bias_bound():
    d = 4
    X, y = hypercube(d)
    r = (d + 1) ** 0.25
    model = make_model("bias", d, 4, seed=0)
    signs = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    with torch.no_grad():
        model.W1.zero_()
        model.W1[:, :2] = r * signs
        model.b1.fill_(-r)
        model.W2.copy_(signs[:, 0] * signs[:, 1] / r)
    assert torch.allclose(model(X), y, atol=1e-14)
    bound = bias_trace_lower_bound(d)
    assert bound == 4 * math.sqrt(d + 1) and rel(bias_trace_lower_bound_data(X, y), bound) < 1e-15
    assert rel(hessian_trace(model, X, y, method="gauss_newton"), bound) < 1e-12
    assert rel(hessian_trace(model, X, y, method="exact"), bound) < 1e-12


def test_random_bias_interpolators_are_above_the_data_bound():
    for seed in range(3):
        model, X, y = build("bias", d=5, m=20, n=12, seed=seed)
        interpolate(model, X, y)
        assert hessian_trace(model, X, y, method="gauss_newton") >= bias_trace_lower_bound_data(X, y)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=20, deadline=None)
@given(case=st.sampled_from(CASES), perm=st.permutations(list(range(10))))
def test_traces_invariant_to_shuffling_the_data(case, perm):
    model, X, y = build(case)
    idx = torch.tensor(perm)
    for method in ("exact", "gauss_newton"):
        a = hessian_trace(model, X, y, method=method)
        assert rel(hessian_trace(model, X[idx], y[idx], method=method), a) < 1e-12


@settings(max_examples=20, deadline=None)
@given(case=st.sampled_from(["no_bias", "bias"]), alpha=st.floats(0.1, 10.0), seed=st.integers(0, 50))
def test_rescaling_keeps_f_and_moves_the_trace_as_computed_by_hand(case, alpha, seed):
    """Dinh et al.: W1→αW1, b1→αb1, W2→W2/α keeps f; the W2 block of the trace scales by α²,
    the first-layer block by 1/α² (blocks read off the independent Hessian at α = 1)."""
    model, X, y = build(case, seed=seed)
    H = ref_hessian(model, X, y)
    diag = torch.diagonal(H)
    m = model.W2.numel()
    first, second = float(diag[:-m].sum()), float(diag[-m:].sum())
    f0 = model(X).detach()
    with torch.no_grad():
        model.W1.mul_(alpha)
        if case == "bias":
            model.b1.mul_(alpha)
        model.W2.div_(alpha)
    assert torch.allclose(model(X), f0, rtol=1e-12, atol=1e-13)
    expected = first / alpha**2 + second * alpha**2
    assert rel(hessian_trace(model, X, y, method="gauss_newton"), expected) < 1e-10


def test_adaptive_sharpness_is_rescaling_invariant_and_plain_is_not():
    model, X, y = build("bias")
    before = [sam_sharpness(model, X, y, 0.05, steps=3, adaptive=a) for a in (True, False)]
    avg = average_sharpness(model, X, y, 0.05, n_samples=20, seed=1, adaptive=True).value
    with torch.no_grad():
        model.W1.mul_(3.0)
        model.b1.mul_(3.0)
        model.W2.div_(3.0)
    assert rel(sam_sharpness(model, X, y, 0.05, steps=3, adaptive=True), before[0]) < 1e-9
    assert rel(average_sharpness(model, X, y, 0.05, n_samples=20, seed=1, adaptive=True).value, avg) < 1e-9
    assert rel(sam_sharpness(model, X, y, 0.05, steps=3), before[1]) > 0.1


# ----------------------------------------------------------------------------- hygiene and bad input
def test_no_side_effects_and_float64_on_a_float32_model():
    X, y = xor_parity(10, 4, seed=1)
    model32 = make_model("sim_bn", 4, 6, seed=0, X_ref=X, dtype=torch.float32)
    model64 = make_model("sim_bn", 4, 6, seed=0, X_ref=X)
    with torch.no_grad():
        for p32, p64 in zip(model32.parameters(), model64.parameters()):
            p64.copy_(p32.double())
    model32.eval()
    params = [p.detach().clone() for p in model32.parameters()]
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    a = hessian_trace(model32, X.float(), y.float(), method="exact")
    b = top_eigenvalue(model32, X, y, method="arpack").value
    sam_sharpness(model32, X, y, 0.1, steps=2)
    average_sharpness(model32, X, y, 0.1, n_samples=4, seed=0)
    hessian_trace(model32, X, y, method="hutchinson", n_probes=4)
    assert not model32.training and all(torch.equal(p, q) for p, q in zip(params, model32.parameters()))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert rel(a, hessian_trace(model64, X, y, method="exact")) < 1e-13
    assert rel(b, top_eigenvalue(model64, X, y, method="arpack").value) < 1e-12
    model64.train()
    hessian_trace(model64, X, y, method="gauss_newton")
    assert model64.training


def test_exact_refuses_large_models_unless_asked():
    model, X, y = build("bias")
    with pytest.raises(ValueError, match="max_params"):
        hessian_trace(model, X, y, method="exact", max_params=10)
    assert hessian_trace(model, X, y, method="exact", max_params=None) > 0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda m, X, y: hessian_trace(m, X[0], y), "X"),
        (lambda m, X, y: hessian_trace(m, X[:, :3], y), "X"),
        (lambda m, X, y: hessian_trace(m, X, y[:-1]), "y"),
        (lambda m, X, y: hessian_trace(m, X.clone().fill_(float("nan")), y), "X"),
        (lambda m, X, y: hessian_trace(m, X, y * float("inf")), "y"),
        (lambda m, X, y: hessian_trace(m, X, y, method="lanczos"), "method"),
        (lambda m, X, y: hessian_trace(m, X, y, loss="hinge"), "loss"),
        (lambda m, X, y: hessian_trace(m, X, y, loss=3), "loss"),
        (lambda m, X, y: hessian_trace(m, X, y, method="hutchinson", n_probes=1), "n_probes"),
        (lambda m, X, y: hessian_trace(m, X, y, method="hutchinson", seed=-1), "seed"),
        (lambda m, X, y: hessian_trace("model", X, y), "model"),
        (lambda m, X, y: hvp(m, X, y, torch.ones(3, dtype=torch.float64)), "v"),
        (lambda m, X, y: hvp(m, X, y, torch.full((32,), float("nan"))), "v"),
        (lambda m, X, y: top_eigenvalue(m, X, y, method="qr"), "method"),
        (lambda m, X, y: top_eigenvalue(m, X, y, tol=-1.0), "tol"),
        (lambda m, X, y: top_eigenvalue(m, X, y, max_iter=0), "max_iter"),
        (lambda m, X, y: sam_sharpness(m, X, y, 0.0), "rho"),
        (lambda m, X, y: sam_sharpness(m, X, y, 0.1, steps=0), "steps"),
        (lambda m, X, y: average_sharpness(m, X, y, float("nan")), "sigma"),
        (lambda m, X, y: average_sharpness(m, X, y, 0.1, n_samples=1), "n_samples"),
        (lambda m, X, y: per_example_grad_sq_norms(m, X, method="fast"), "method"),
        (lambda m, X, y: bias_trace_lower_bound(0), "d"),
        (lambda m, X, y: bias_trace_lower_bound_data(X, y[:3]), "y"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    model, X, y = build("bias")
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(model, X, y)


@pytest.mark.parametrize("case", ["sim_bn", "deep_bias"])
def test_closed_form_refused_for_other_archs(case):
    model, X, _ = build(case)
    with pytest.raises(ValueError, match="closed_form"):
        per_example_grad_sq_norms(model, X, method="closed_form")
