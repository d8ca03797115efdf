"""The fast engine: numba kernels for 1-SAM and full-batch GD on two-layer ReLU nets (MSE).

Same algorithms as the torch reference in ``flatlab.train.reference`` (``one_sam_epoch``,
``gd_step``, ``project_first_layer``), float64, single thread, matched to it to 1e-10
over thousands of steps (``tests/test_engine.py``). Supported: ``no_bias``, ``bias``,
``sim_ln`` (1-SAM and GD) and ``sim_bn`` (1-SAM), relu, MSE.

Why it is fast: for one example x with pre-activation
z = W1 x + b1 (m,), output f and r = 2(f − y), the loss gradient w.r.t. the first layer
is rank one, ∇W1 = g_z xᵀ, ∇b1 = g_z, where g_z (m,) is the gradient w.r.t. z. So

- ‖∇ℓ‖² = r²‖a‖² + ‖g_z‖²(‖x‖² + 1)   (a = relu(z), or the normalized features for
  Sim-LN; no "+ 1" without bias),
- the SAM-perturbed pre-activation is z̃ = z + c(‖x‖² + 1) g_z with c = ρ/‖∇ℓ‖, and
  W̃2 = W2 + c·r·a: no perturbed weight matrix is ever built,
- the descent is one rank-1 update of W1. A step costs one mat-vec and one rank-1
  update, O(m·d).

Sim-LN: u = a / max(‖a‖, ε) couples the neurons of the current example only; with
g_u = r·W2 the backward pass is g_a = (g_u − (g_u·u)u)/‖a‖ (g_u/ε when ‖a‖ < ε), still O(m).

Sim-BN: the statistic s_j = sqrt(mean_i h_j(x_i)² + ε²) over the reference inputs couples
every example, but the parameters of neuron j only enter f through φ_j = W2_j γ_j h_j(x)/s_j.
So the step is fused per neuron and neurons inactive on the current example (h_j(x) = 0:
zero gradient, zero perturbation, zero update, exactly) are skipped:
∂φ_j/∂w_j = (W2_j γ_j / s_j)·(x − h_j(x)/(n s_j²)·Σ_i h_j(x_i) x_i), O(n·d) per active neuron.

Zero gradient: if ‖∇ℓ‖ = 0 the ascent is skipped (θ̃ = θ), exactly as in ``flatlab.train.reference``.
Weight decay (if any) is applied at θ: θ ← θ − lr(∇ℓ(θ̃) + wd·θ).

Arrays: W1 (m, d), b1 (m,), W2 (m,), gamma (m,), X (n, d), y (n,), all float64; the
kernels work on the transpose W1ᵀ (d, m) so that the inner loops run over neurons and
vectorize without reordering sums (``fastmath=False``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["ENGINE_ARCHS", "supports", "one_sam", "gd", "label_noise_epoch", "warmup"]

ENGINE_ARCHS = {"one_sam": ("no_bias", "bias", "sim_ln", "sim_bn"), "gd": ("no_bias", "bias", "sim_ln")}


def supports(arch: str, method: str, *, activation: str = "relu", loss: str = "mse") -> bool:
    """Whether the engine runs ``method`` ("one_sam" or "gd") for this model and loss."""
    return activation == "relu" and loss == "mse" and arch in ENGINE_ARCHS.get(method, ())


@njit(cache=True, fastmath=False)
def _project(W1T, b1, has_bias, norm):
    d, m = W1T.shape
    tot = 0.0
    for l in range(d):
        for j in range(m):
            tot += W1T[l, j] * W1T[l, j]
    if has_bias:
        for j in range(m):
            tot += b1[j] * b1[j]
    scale = norm / math.sqrt(tot)
    for l in range(d):
        for j in range(m):
            W1T[l, j] *= scale
    if has_bias:
        for j in range(m):
            b1[j] *= scale


@njit(cache=True, fastmath=False)
def _dot(a, b):
    """Σ a_j b_j with 8 independent partial sums (not latency-bound; order fixed, no fastmath)."""
    m = a.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    m8 = m - m % 8
    for j in range(0, m8, 8):
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
        s4 += a[j + 4] * b[j + 4]
        s5 += a[j + 5] * b[j + 5]
        s6 += a[j + 6] * b[j + 6]
        s7 += a[j + 7] * b[j + 7]
    for j in range(m8, m):
        s0 += a[j] * b[j]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, fastmath=False)
def _features(z, a, ln, eps):
    """a = relu(z), or relu(z)/max(‖relu(z)‖, ε) for Sim-LN; returns the divisor N (1 if not ln)."""
    m = z.shape[0]
    for j in range(m):
        a[j] = z[j] if z[j] > 0.0 else 0.0
    if not ln:
        return 1.0
    nrm = math.sqrt(_dot(a, a))
    N = nrm if nrm >= eps else eps
    for j in range(m):
        a[j] = a[j] / N
    return N


@njit(cache=True, fastmath=False)
def _backward(z, u, W2, r, N, ln, eps, gz):
    """g_z for one example given r = ∂ℓ/∂f; u the features, N the Sim-LN divisor."""
    m = z.shape[0]
    if ln:
        su = r * _dot(W2, u)
        through = N > eps  # ‖a‖ > ε: gradient through the norm (N = ε: clamped, direct path only)
        for j in range(m):
            g = r * W2[j]
            ga = (g - su * u[j]) / N if through else g / eps
            gz[j] = ga if z[j] > 0.0 else 0.0
    else:
        for j in range(m):
            gz[j] = r * W2[j] if z[j] > 0.0 else 0.0


@njit(cache=True, fastmath=False)
def _preact(W1T, b1, has_bias, x, z):
    d, m = W1T.shape
    for j in range(m):
        z[j] = b1[j] if has_bias else 0.0
    for l in range(d):
        xl = x[l]
        for j in range(m):
            z[j] += W1T[l, j] * xl


@njit(cache=True, fastmath=False, error_model="numpy")
def _update_preact(W1T, b1, gz, lr, x, xn, z):
    """W1ᵀ ← W1ᵀ − lr·x g_zᵀ fused with z = W1 xn + b1 (at the updated W1); W1T (d, m).

    Five rows of W1ᵀ per pass over the neurons, so z is loaded and stored d/5 times instead
    of d times (the loop is store-bound); each z_j still sums over l = 0..d−1 in order, so
    the rounding is that of the plain loop. (Four rows vectorize badly here: measured.)
    """
    d, m = W1T.shape
    for j in range(m):
        z[j] = b1[j]
    d5 = d - d % 5
    for l in range(0, d5, 5):
        a0, a1, a2, a3, a4 = lr * x[l], lr * x[l + 1], lr * x[l + 2], lr * x[l + 3], lr * x[l + 4]
        c0, c1, c2, c3, c4 = xn[l], xn[l + 1], xn[l + 2], xn[l + 3], xn[l + 4]
        for j in range(m):
            g = gz[j]
            w0 = W1T[l, j] - a0 * g
            w1 = W1T[l + 1, j] - a1 * g
            w2 = W1T[l + 2, j] - a2 * g
            w3 = W1T[l + 3, j] - a3 * g
            w4 = W1T[l + 4, j] - a4 * g
            W1T[l, j] = w0
            W1T[l + 1, j] = w1
            W1T[l + 2, j] = w2
            W1T[l + 3, j] = w3
            W1T[l + 4, j] = w4
            z[j] = ((((z[j] + w0 * c0) + w1 * c1) + w2 * c2) + w3 * c3) + w4 * c4
    for l in range(d5, d):
        lx = lr * x[l]
        xl = xn[l]
        for j in range(m):
            w = W1T[l, j] - lx * gz[j]
            W1T[l, j] = w
            z[j] += w * xl


@njit(cache=True, fastmath=False)
def _one_sam_kernel(W1T, b1, W2, X, y, order, lr, rho, wd, proj, has_bias, ln, eps):
    d, m = W1T.shape
    T = order.shape[0]
    z = np.empty(m)
    u = np.empty(m)
    gz = np.empty(m)
    zt = np.empty(m)
    ut = np.empty(m)
    W2t = np.empty(m)
    colsq = np.empty(m)
    ones = np.ones(m)
    if T > 0:
        _preact(W1T, b1, has_bias, X[order[0]], z)
    for t in range(T):
        k = order[t]
        x = X[k]
        xn = X[order[t + 1]] if t + 1 < T else x
        xsq = 1.0 if has_bias else 0.0
        for l in range(d):
            xsq += x[l] * x[l]
        # forward at θ (z = W1 x + b1 was computed at the end of the previous step)
        N = _features(z, u, ln, eps)
        r = 2.0 * (_dot(W2, u) - y[k])
        _backward(z, u, W2, r, N, ln, eps, gz)
        gn2 = r * r * _dot(u, u) + xsq * _dot(gz, gz)
        # ascent: θ̃ = θ + ρ g/‖g‖ (skipped when g = 0), seen only through z̃ and W̃2
        c = rho / math.sqrt(gn2) if gn2 > 0.0 else 0.0
        for j in range(m):
            zt[j] = z[j] + c * xsq * gz[j]
            W2t[j] = W2[j] + c * r * u[j]
        Nt = _features(zt, ut, ln, eps)
        rt = 2.0 * (_dot(W2t, ut) - y[k])
        _backward(zt, ut, W2t, rt, Nt, ln, eps, gz)
        # descent at θ with the gradient taken at θ̃ (gz now holds g̃_z)
        for j in range(m):
            W2[j] -= lr * (rt * ut[j] + wd * W2[j])
        if has_bias:
            for j in range(m):
                b1[j] -= lr * (gz[j] + wd * b1[j])
        if proj <= 0.0:
            # rank-1 update fused with the next example's mat-vec: one pass over W1
            if wd == 0.0:
                _update_preact(W1T, b1, gz, lr, x, xn, z)
            else:
                for j in range(m):
                    z[j] = b1[j]
                for l in range(d):
                    xl = xn[l]
                    for j in range(m):
                        w = W1T[l, j] - lr * (gz[j] * x[l] + wd * W1T[l, j])
                        W1T[l, j] = w
                        z[j] += w * xl
        else:
            # update and accumulate the squared norm, then rescale fused with the next mat-vec
            for j in range(m):
                colsq[j] = b1[j] * b1[j] if has_bias else 0.0
            for l in range(d):
                lx = lr * x[l]
                for j in range(m):
                    w = W1T[l, j] - lx * gz[j] - lr * wd * W1T[l, j]
                    W1T[l, j] = w
                    colsq[j] += w * w
            scale = proj / math.sqrt(_dot(colsq, ones))
            for j in range(m):
                if has_bias:
                    b1[j] *= scale
                z[j] = b1[j] if has_bias else 0.0
            for l in range(d):
                xl = xn[l]
                for j in range(m):
                    w = W1T[l, j] * scale
                    W1T[l, j] = w
                    z[j] += w * xl


@njit(cache=True, fastmath=False)
def _gd_kernel(W1T, b1, W2, X, y, steps, lr, wd, proj, has_bias, ln, eps):
    d, m = W1T.shape
    n = X.shape[0]
    Z = np.empty((n, m))
    U = np.empty((n, m))
    GZ = np.empty((n, m))
    Nn = np.empty(n)
    R = np.empty(n)
    gW1T = np.empty((d, m))
    gb = np.empty(m)
    gW2 = np.empty(m)
    for _ in range(steps):
        for i in range(n):
            for j in range(m):
                Z[i, j] = b1[j] if has_bias else 0.0
            for l in range(d):
                xl = X[i, l]
                for j in range(m):
                    Z[i, j] += W1T[l, j] * xl
            Nn[i] = _features(Z[i], U[i], ln, eps)
            f = 0.0
            for j in range(m):
                f += W2[j] * U[i, j]
            R[i] = 2.0 * (f - y[i]) / n
            _backward(Z[i], U[i], W2, R[i], Nn[i], ln, eps, GZ[i])
        gW1T[:, :] = 0.0
        gb[:] = 0.0
        gW2[:] = 0.0
        for i in range(n):
            ri = R[i]
            for j in range(m):
                gW2[j] += ri * U[i, j]
                gb[j] += GZ[i, j]
            for l in range(d):
                xl = X[i, l]
                for j in range(m):
                    gW1T[l, j] += GZ[i, j] * xl
        for j in range(m):
            W2[j] -= lr * (gW2[j] + wd * W2[j])
            if has_bias:
                b1[j] -= lr * (gb[j] + wd * b1[j])
        for l in range(d):
            for j in range(m):
                W1T[l, j] -= lr * (gW1T[l, j] + wd * W1T[l, j])
        if proj > 0.0:
            _project(W1T, b1, has_bias, proj)


@njit(cache=True, fastmath=False)
def _bn_neuron(w, b, XrT, Xr, zr, v):
    """One Sim-BN neuron on the reference set: fills v = Σ_i h_i x_i, returns (Σ_i h_i², Σ_i h_i)."""
    d, nr = XrT.shape
    for i in range(nr):
        zr[i] = b
    for l in range(d):
        wl = w[l]
        for i in range(nr):
            zr[i] += XrT[l, i] * wl
    v[:] = 0.0
    S, vb = 0.0, 0.0
    for i in range(nr):
        h = zr[i]
        if h > 0.0:
            S += h * h
            vb += h
            for l in range(d):
                v[l] += h * Xr[i, l]
    return S, vb


@njit(cache=True, fastmath=False)
def _one_sam_bn_kernel(W1, b1, gamma, W2, X, y, Xr, order, lr, rho, wd, proj, eps, sub):
    m, d = W1.shape
    nr = Xr.shape[0]
    XrT = np.ascontiguousarray(Xr.T)
    zr = np.empty(nr)
    V = np.empty((m, d))  # Σ_i h_ij x_i per active neuron (then at θ̃)
    vb = np.empty(m)
    al = np.empty(m)  # ∂φ_j/∂w_j = al_j·x − be_j·V_j ; ∂φ_j/∂b_j = al_j − be_j·vb_j
    be = np.empty(m)
    dg = np.empty(m)  # ∂φ_j/∂γ_j
    da = np.empty(m)  # ∂φ_j/∂W2_j
    act = np.empty(m, np.int64)
    live = np.zeros(m, np.bool_)
    wt = np.empty(d)  # sub: 1/n_ref for the mean statistic, 1 for the sum
    for t in range(order.shape[0]):
        k = order[t]
        x = X[k]
        na = 0
        for j in range(m):
            zx = b1[j]
            for l in range(d):
                zx += W1[j, l] * x[l]
            if zx > 0.0:
                act[na] = j
                na += 1
                al[j] = zx  # keep h_j(x) here for the moment
        f, g2 = 0.0, 0.0
        for q in range(na):
            j = act[q]
            hx = al[j]
            S, vb[j] = _bn_neuron(W1[j], b1[j], XrT, Xr, zr, V[j])
            s = math.sqrt(S * sub + eps * eps)
            A = W2[j] * gamma[j] / s
            f += A * hx
            al[j] = A
            be[j] = A * hx * sub / (s * s)
            dg[j] = W2[j] * hx / s
            da[j] = gamma[j] * hx / s
            gw = 0.0
            for l in range(d):
                e = A * x[l] - be[j] * V[j, l]
                gw += e * e
            eb = A - be[j] * vb[j]
            g2 += gw + eb * eb + dg[j] * dg[j] + da[j] * da[j]
        r = 2.0 * (f - y[k])
        gn2 = r * r * g2
        c = rho * r / math.sqrt(gn2) if gn2 > 0.0 else 0.0
        ft = 0.0
        for q in range(na):
            j = act[q]
            for l in range(d):
                wt[l] = W1[j, l] + c * (al[j] * x[l] - be[j] * V[j, l])
            bt = b1[j] + c * (al[j] - be[j] * vb[j])
            gt = gamma[j] + c * dg[j]
            at = W2[j] + c * da[j]
            zx = bt
            for l in range(d):
                zx += wt[l] * x[l]
            live[j] = zx > 0.0
            if not live[j]:
                continue
            S, vb[j] = _bn_neuron(wt, bt, XrT, Xr, zr, V[j])
            s = math.sqrt(S * sub + eps * eps)
            A = at * gt / s
            ft += A * zx
            al[j] = A
            be[j] = A * zx * sub / (s * s)
            dg[j] = at * zx / s
            da[j] = gt * zx / s
        rt = 2.0 * (ft - y[k])
        if wd != 0.0:
            for j in range(m):
                for l in range(d):
                    W1[j, l] -= lr * wd * W1[j, l]
                b1[j] -= lr * wd * b1[j]
                gamma[j] -= lr * wd * gamma[j]
                W2[j] -= lr * wd * W2[j]
        for q in range(na):
            j = act[q]
            if not live[j]:
                continue
            live[j] = False
            for l in range(d):
                W1[j, l] -= lr * (rt * (al[j] * x[l] - be[j] * V[j, l]))
            b1[j] -= lr * (rt * (al[j] - be[j] * vb[j]))
            gamma[j] -= lr * (rt * dg[j])
            W2[j] -= lr * (rt * da[j])
        if proj > 0.0:
            tot = 0.0
            for j in range(m):
                tot += b1[j] * b1[j]
                for l in range(d):
                    tot += W1[j, l] * W1[j, l]
            scale = proj / math.sqrt(tot)
            for j in range(m):
                b1[j] *= scale
                for l in range(d):
                    W1[j, l] *= scale


def _as_f64(a, name, shape=None):
    if not isinstance(a, np.ndarray) or a.dtype != np.float64 or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous float64 numpy array")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def _check(params, arch, X, y, method):
    if arch not in ENGINE_ARCHS[method]:
        raise ValueError(f"arch must be one of {ENGINE_ARCHS[method]} for engine {method}, got {arch!r}")
    W1 = _as_f64(params.get("W1"), "params['W1']")
    if W1.ndim != 2:
        raise ValueError(f"params['W1'] must have shape (m, d), got {W1.shape}")
    m, d = W1.shape
    W2 = _as_f64(params.get("W2"), "params['W2']", (m,))
    has_bias = arch != "no_bias"
    b1 = _as_f64(params["b1"], "params['b1']", (m,)) if has_bias else np.zeros(m)
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X must have shape (n, {d}), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    return W1, b1, W2, X, y, has_bias


def _rates(lr, rho, weight_decay, project_norm):
    for name, v in (("lr", lr), ("rho", rho), ("weight_decay", weight_decay)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if project_norm is not None and not (math.isfinite(project_norm) and project_norm > 0):
        raise ValueError(f"project_norm must be None or a positive number, got {project_norm!r}")
    return -1.0 if project_norm is None else float(project_norm)


def one_sam(
    params: dict, arch: str, X, y, order, lr: float, rho: float, *,
    weight_decay: float = 0.0, project_norm: float | None = None, eps: float = 1e-6, X_ref=None,
    bn_stat: str = "mean",
) -> dict:
    """Run 1-SAM over the example indices ``order`` (flat, any length), updating ``params`` in place.

    params: {"W1": (m, d), "b1": (m,) unless no_bias, "gamma": (m,) for sim_bn, "W2": (m,)},
    C-contiguous float64 numpy arrays. X: (n, d), y: (n,). ``X_ref`` (n_ref, d): the
    Sim-BN reference inputs (default X). ``eps``, ``bn_stat``: the model's ``config.eps`` and
    ``config.bn_stat`` (Sim-BN: ``"mean"`` or ``"sum"`` over the reference inputs).
    Returns ``params``.
    """
    W1, b1, W2, X, y, has_bias = _check(params, arch, X, y, "one_sam")
    proj = _rates(lr, rho, weight_decay, project_norm)
    order = np.ascontiguousarray(order, dtype=np.int64).reshape(-1)
    if order.size and (order.min() < 0 or order.max() >= X.shape[0]):
        raise ValueError(f"order must hold example indices in [0, {X.shape[0]})")
    if arch == "sim_bn":
        gamma = _as_f64(params.get("gamma"), "params['gamma']", b1.shape)
        Xr = X if X_ref is None else np.ascontiguousarray(X_ref, dtype=np.float64)
        if Xr.ndim != 2 or Xr.shape[1] != X.shape[1]:
            raise ValueError(f"X_ref must have shape (n_ref, {X.shape[1]}), got {Xr.shape}")
        if bn_stat not in ("mean", "sum"):
            raise ValueError(f"bn_stat must be 'mean' or 'sum', got {bn_stat!r}")
        sub = 1.0 if bn_stat == "sum" else 1.0 / Xr.shape[0]
        _one_sam_bn_kernel(W1, b1, gamma, W2, X, y, Xr, order, lr, rho, weight_decay, proj, eps, sub)
        return params
    W1T = np.ascontiguousarray(W1.T)
    _one_sam_kernel(W1T, b1, W2, X, y, order, lr, rho, weight_decay, proj, has_bias, arch == "sim_ln", eps)
    W1[...] = W1T.T
    return params


def gd(
    params: dict, arch: str, X, y, steps: int, lr: float, *,
    weight_decay: float = 0.0, project_norm: float | None = None, eps: float = 1e-6,
) -> dict:
    """``steps`` full-batch GD steps θ ← θ − lr(∇L + wd·θ) on the mean MSE, ``params`` in place.

    Same array conventions as ``one_sam``. Returns ``params``.
    """
    W1, b1, W2, X, y, has_bias = _check(params, arch, X, y, "gd")
    proj = _rates(lr, 0.0, weight_decay, project_norm)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    W1T = np.ascontiguousarray(W1.T)
    _gd_kernel(W1T, b1, W2, X, y, int(steps), lr, weight_decay, proj, has_bias, arch == "sim_ln", eps)
    W1[...] = W1T.T
    return params


@njit(cache=True, fastmath=False)
def _label_noise_kernel(W1, b1, W2, X, order, target, lr, wd, batch, has_bias):  # pragma: no cover - compiled
    """One epoch of minibatch SGD on targets (in visiting order) for relu no_bias / bias nets."""
    m, d = W1.shape
    n = order.shape[0]
    gW1 = np.zeros((m, d))
    gb1 = np.zeros(m)
    gW2 = np.zeros(m)
    z = np.zeros(m)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        scale = 2.0 / (stop - start)
        gW1[:] = 0.0
        gb1[:] = 0.0
        gW2[:] = 0.0
        for k in range(start, stop):
            x = X[order[k]]
            f = 0.0
            for j in range(m):
                s = b1[j] if has_bias else 0.0
                for c in range(d):
                    s += W1[j, c] * x[c]
                z[j] = s
                if s > 0.0:
                    f += s * W2[j]
            r = scale * (f - target[k])
            for j in range(m):
                if z[j] > 0.0:
                    gW2[j] += r * z[j]
                    gz = r * W2[j]
                    gb1[j] += gz
                    for c in range(d):
                        gW1[j, c] += gz * x[c]
        for j in range(m):
            W2[j] -= lr * (gW2[j] + wd * W2[j])
            if has_bias:
                b1[j] -= lr * (gb1[j] + wd * b1[j])
            for c in range(d):
                W1[j, c] -= lr * (gW1[j, c] + wd * W1[j, c])



def label_noise_epoch(W1, b1, W2, X, order, target, lr, wd, batch, has_bias) -> None:
    """One epoch of label-noise SGD in place on numpy views of (W1 (m, d), b1 (m,), W2 (m,)).

    Visits X[order] in batches of ``batch``, regressing on ``target`` (the noisy labels in
    visiting order); weight decay wd is added to the gradient. Matches the torch path of
    ``flatlab.train.penalty.label_noise_segments``.
    """
    _label_noise_kernel(W1, b1, W2, X, order.astype(np.int64), target, float(lr), float(wd), int(batch),
                        bool(has_bias))


def warmup() -> None:
    """Compile (or load from the numba cache) every kernel on a tiny problem."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2))
    y = np.ones(3)
    for arch in ("bias", "sim_ln"):
        p = {"W1": rng.standard_normal((4, 2)), "b1": np.zeros(4), "W2": np.ones(4)}
        one_sam(p, arch, X, y, [0, 1], 0.01, 0.05)
        gd(p, arch, X, y, 1, 0.01)
    p["gamma"] = np.ones(4)
    one_sam(p, "sim_bn", X, y, [0, 1], 0.01, 0.05)
