"""Benchmark of flatlab.sharpness on the paper's workload, against PyHessian-style baselines.

Workload: XOR parity, d = 30, n = 100, 2-MLP-Bias of width 500 (16,000 parameters), float64,
seeded model and data. Baselines, re-implemented here as PyHessian 0.1 does them (autograd
double backward on the module's parameters, one graph kept for all products):
  - Hutchinson: Rademacher probes until the running mean changes by < 1e-3 relative, at most 100;
  - power iteration: stop when the eigenvalue changes by < 1e-3 relative, at most 100 steps.
Everything is measured in the same run; the table reports median wall time over ``--repeats``
runs (new seed each run for random methods), median and worst relative error, and the speed
ratio to the baseline of the same kind.

Reference values: the trace is the autograd per-example-gradient form of Lemma 4.1, which is
the exact trace for ReLU nets without normalization (checked here against the full autograd
Hessian of a width-20 model; ``--full-hessian`` also computes the exact trace from all 16,000
rows of the autograd Hessian: minutes, ~1.1 GB). The top eigenvalue is ARPACK at tol 1e-14 on
the baseline's autograd products, independent of flatlab's closed-form products.

Sim-LN (scenario III, same d, n and width): the Gauss-Newton trace that training logs at every
log point, by the closed form of ``flatlab._closed_form`` against its previous path, per-example
gradients by ``torch.func.vmap`` (the reference value; ``--sim-ln-only`` runs just this part).

    python bench/bench_sharpness.py [--repeats 20] [--seed 0] [--full-hessian] [--sim-ln-only]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: E402

from flatlab.data import xor_parity  # noqa: E402
from flatlab.losses import mse  # noqa: E402
from flatlab.models import make_model  # noqa: E402
from flatlab.sharpness import hessian_trace, per_example_grad_sq_norms, top_eigenvalue  # noqa: E402


# ----------------------------------------------------------------------------- PyHessian-style baselines
def _graph(model, X, y):
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(mse(model(X), y), params, create_graph=True)
    return params, grads


def _hv(params, grads, v):
    return torch.autograd.grad(grads, params, grad_outputs=v, only_inputs=True, retain_graph=True)


def _dot(a, b):
    return sum((x * y).sum() for x, y in zip(a, b))


def baseline_hutchinson(model, X, y, gen, max_iter=100, tol=1e-3):
    """PyHessian's ``trace()``: stop when the running mean moves by < tol relative."""
    params, grads = _graph(model, X, y)
    vhv, trace = [], 0.0
    for _ in range(max_iter):
        v = [torch.randint(0, 2, p.shape, generator=gen).to(p.dtype) * 2 - 1 for p in params]
        vhv.append(float(_dot(_hv(params, grads, v), v)))
        if abs(np.mean(vhv) - trace) / (abs(trace) + 1e-6) < tol:
            break
        trace = np.mean(vhv)
    return float(np.mean(vhv)), len(vhv)


def baseline_power(model, X, y, gen, max_iter=100, tol=1e-3):
    """PyHessian's ``eigenvalues(top_n=1)``: returns the previous estimate when it stops."""
    params, grads = _graph(model, X, y)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    norm = float(_dot(v, v)) ** 0.5
    v = [x / norm for x in v]
    eig, it = None, 0
    for it in range(1, max_iter + 1):
        Hv = _hv(params, grads, v)
        tmp = float(_dot(Hv, v))
        norm = float(_dot(Hv, Hv)) ** 0.5
        v = [x / norm for x in Hv]
        if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < tol:
            break
        eig = tmp
    return eig, it


def reference_top_eigenvalue(model, X, y):
    """ARPACK at tol 1e-14 on the baseline's autograd products (independent of flatlab's)."""
    params, grads = _graph(model, X, y)
    sizes = [p.numel() for p in params]

    def mv(x):
        parts = torch.from_numpy(np.asarray(x, dtype=np.float64).ravel()).split(sizes)
        Hv = _hv(params, grads, [t.view_as(p) for t, p in zip(parts, params)])
        return torch.cat([h.reshape(-1) for h in Hv]).detach().numpy()

    p = sum(sizes)
    v0 = np.random.default_rng(12345).standard_normal(p)
    vals = eigsh(LinearOperator((p, p), matvec=mv, dtype=np.float64), k=1, which="LA", tol=1e-14, v0=v0)[0]
    return float(vals[0])


# ----------------------------------------------------------------------------- measurement
def measure_interleaved(methods, repeats):
    """methods: {name: (fn(run_index) -> (value, extra), reference)}. The methods take turns in
    every round, so a load change on the shared machine hits them alike. Returns per method the
    median time (s), median and max relative error, and the extras."""
    for fn, _ in methods.values():
        fn(10_000)  # warm-up
    times = {k: [] for k in methods}
    errs = {k: [] for k in methods}
    extras = {k: [] for k in methods}
    for r in range(repeats):
        for name, (fn, ref) in methods.items():
            t0 = time.perf_counter()
            value, extra = fn(r)
            times[name].append(time.perf_counter() - t0)
            errs[name].append(abs(value - ref) / abs(ref))
            extras[name].append(extra)
    return {k: (statistics.median(times[k]), statistics.median(errs[k]), max(errs[k]), extras[k])
            for k in methods}


def bench_sim_ln(X, y, args):
    """Sim-LN Gauss-Newton trace: closed form vs torch.func vmap per-example gradients. Prints the
    table and returns it (to repeat it under the main table)."""
    ln = make_model("sim_ln", args.d, args.width, seed=args.seed)
    p = sum(q.numel() for q in ln.parameters())

    def vmap_trace(r):
        return float(2 * per_example_grad_sq_norms(ln, X, method="autograd").mean()), None

    ref = vmap_trace(0)[0]
    B_LN = "baseline: torch.func vmap per-example grads"
    methods = {
        B_LN: (vmap_trace, ref),
        "flatlab gauss_newton (auto: closed form)":
            (lambda r: (hessian_trace(ln, X, y, method="gauss_newton"), None), ref),
        "flatlab per_example_grad_sq_norms closed_form":
            (lambda r: (float(2 * per_example_grad_sq_norms(ln, X, method="closed_form").mean()), None), ref),
    }
    res = measure_interleaved(methods, args.repeats)
    lines = [f"Sim-LN GN trace, width {args.width} ({p} params), n={args.n}, d={args.d}: reference {ref:.15g} "
             "(vmap)",
             f"{'method':48} {'median ms':>10} {'max rel err':>12} {'speedup':>8}"]
    for name, (t, _, e_max, _) in res.items():
        lines.append(f"{name:48} {t * 1e3:10.3f} {e_max:12.1e} {res[B_LN][0] / t:7.1f}x")
    table = "\n".join(lines)
    print(table + "\n")
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and the model")
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per method")
    ap.add_argument("--d", type=int, default=30, help="input dimension")
    ap.add_argument("--width", type=int, default=500, help="hidden width")
    ap.add_argument("--n", type=int, default=100, help="training points")
    ap.add_argument("--full-hessian", action=argparse.BooleanOptionalAction, default=False,
                    help="also compute the exact trace from the full autograd Hessian (minutes, ~1 GB)")
    ap.add_argument("--sim-ln-only", action=argparse.BooleanOptionalAction, default=False,
                    help="only time the Sim-LN Gauss-Newton trace (closed form vs torch.func vmap)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    X, y = xor_parity(args.n, args.d, seed=args.seed)
    sim_ln_table = bench_sim_ln(X, y, args)
    if args.sim_ln_only:
        return
    model = make_model("bias", args.d, args.width, seed=args.seed)
    p = sum(q.numel() for q in model.parameters())
    print(f"workload: xor d={args.d} n={args.n}, bias net width {args.width} ({p} params), float64, "
          f"seed {args.seed}, {args.repeats} repeats, torch threads 1")

    # --- references
    small = make_model("bias", args.d, 20, seed=args.seed)
    small_exact = hessian_trace(small, X, y, method="exact")
    small_closed = hessian_trace(small, X, y, method="gauss_newton")
    print(f"check on width 20 ({sum(q.numel() for q in small.parameters())} params): closed form vs full "
          f"autograd Hessian trace: rel. diff {abs(small_closed - small_exact) / small_exact:.1e}")
    ref_trace = float(2 * per_example_grad_sq_norms(model, X, method="autograd").mean())
    ref_name = "autograd per-example gradients (Lemma 4.1)"
    if args.full_hessian:
        t0 = time.perf_counter()
        full = hessian_trace(model, X, y, method="exact", max_params=None)
        print(f"full autograd Hessian trace: {full:.15g} in {time.perf_counter() - t0:.1f} s; "
              f"vs per-example form: rel. diff {abs(full - ref_trace) / full:.1e}")
        ref_trace, ref_name = full, "full autograd Hessian"
    ref_eig = reference_top_eigenvalue(model, X, y)
    print(f"reference trace {ref_trace:.15g} ({ref_name}); reference top eigenvalue {ref_eig:.15g}\n")

    def gen(r):
        return torch.Generator().manual_seed(1000 + r)

    def hutch(r):
        est = hessian_trace(model, X, y, method="hutchinson", n_probes=100, seed=r)
        return est.value, abs(est.value - ref_trace) / est.stderr

    def eig(method, tol):
        def run(r):
            res = top_eigenvalue(model, X, y, tol=tol, method=method, seed=r)
            return res.value, (res.converged, res.n_iter)
        return run, ref_eig

    B_TR, B_EV = "baseline: Hutchinson, PyHessian defaults", "baseline: power iteration, tol 1e-3"
    CLOSED, LANCZOS = "flatlab gauss_newton (closed form, exact here)", "flatlab lanczos, tol 1e-08"
    trace_methods = {
        B_TR: (lambda r: baseline_hutchinson(model, X, y, gen(r)), ref_trace),
        CLOSED: (lambda r: (hessian_trace(model, X, y, method="gauss_newton"), None), ref_trace),
        "flatlab per-example grads (torch.func)":
            (lambda r: (float(2 * per_example_grad_sq_norms(model, X, method="autograd").mean()), None),
             ref_trace),
        "flatlab hutchinson, 100 probes": (hutch, ref_trace),
    }
    eig_methods = {B_EV: (lambda r: baseline_power(model, X, y, gen(r)), ref_eig)}
    for method, tol in (("lanczos", 1e-8), ("lanczos", 1e-12), ("arpack", 1e-8), ("power", 1e-8)):
        eig_methods[f"flatlab {method}, tol {tol:g}"] = eig(method, tol)
    res = measure_interleaved(trace_methods, args.repeats)
    res.update(measure_interleaved(eig_methods, args.repeats))

    def note(name, extras):
        if name == B_TR:
            return f"probes {min(extras)}-{max(extras)}"
        if name == B_EV:
            return f"iterations {min(extras)}-{max(extras)}"
        if "hutchinson" in name:
            return f"|err|/stderr <= {max(extras):.1f}"
        if "tol" in name:
            its = [k for _, k in extras]
            return f"converged {all(c for c, _ in extras)}, HVPs {min(its)}-{max(its)}"
        return ""

    print(f"{'quantity':8} {'method':48} {'median ms':>10} {'med rel err':>12} {'max rel err':>12} "
          f"{'speedup':>8}  notes")
    for name, (t, e_med, e_max, extras) in res.items():
        kind = "trace" if name in trace_methods else "top eig"
        base = res[B_TR if kind == "trace" else B_EV][0]
        print(f"{kind:8} {name:48} {t * 1e3:10.3f} {e_med:12.1e} {e_max:12.1e} {base / t:7.1f}x  "
              f"{note(name, extras)}")

    (tb, tc, tl, te) = (res[B_TR][0], res[CLOSED][0], res[LANCZOS][0], res[B_EV][0])
    print()
    print(sim_ln_table)
    print()
    print(f"target trace: closed form >= 100x faster than baseline at <= 1e-12 rel. error: "
          f"{tb / tc:.0f}x at {res[CLOSED][2]:.1e} -> "
          f"{'PASS' if tb / tc >= 100 and res[CLOSED][2] <= 1e-12 else 'FAIL'}")
    print(f"target top eigenvalue: lanczos tol 1e-8 no slower than baseline power (tol 1e-3): "
          f"{te / tl:.2f}x at {res[LANCZOS][2]:.1e} -> "
          f"{'PASS' if tl <= te and res[LANCZOS][2] <= 1e-8 else 'FAIL'}")


if __name__ == "__main__":
    main()
