"""A seeded corpus for the similarity check: independently written solutions of hw1 and hw4,
and plagiarized copies of some of them.

Every task has several hand-written implementations (different algorithms and structure:
loops or vectorized, autograd or torch.func, numpy or torch, helpers or inline); each
solution picks one and then makes seeded choices of its own: names, how a square, a row sum,
a mean or a float is written, intermediate variables or none, comments. The transforms
(:data:`TRANSFORMS`) are what a copier does without understanding the code.
"""
from __future__ import annotations

import ast
import copy
import io
import random
import re
import tokenize
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
TASKS = {
    "hw1": ["hw1.trace_exact", "hw1.hutchinson", "hw1.gn_trace", "hw1.top_eig", "hw1.sam_sharpness",
            "hw1.flattest_rescaling"],
    "hw4": ["hw4.lower_bound", "hw4.memorizing", "hw4.generalizing", "hw4.memorization_index", "hw4.x1x2_share"],
}
SIGNATURES = {
    "hw1.trace_exact": "hessian_trace_exact(model, X, y)", "hw1.hutchinson": "hutchinson_trace(model, X, y, n_probes, seed)",
    "hw1.gn_trace": "gauss_newton_trace(model, X)", "hw1.top_eig": "top_eigenvalue_power(model, X, y, n_iter, seed)",
    "hw1.sam_sharpness": "sam_sharpness(model, X, y, rho)", "hw1.flattest_rescaling": "flattest_rescaling(model, X)",
    "hw4.lower_bound": "trace_lower_bound(X, y)", "hw4.memorizing": "memorizing_solution(X, y, eps=0.1)",
    "hw4.generalizing": "generalizing_solution(d, width=4)",
    "hw4.memorization_index": "memorization_index(W1, b1, W2, X, threshold=3)", "hw4.x1x2_share": "x1x2_share(W1)",
}
_COMMENTS = ["# compute it", "# vectorized", "# see the lemma", "# TODO clean up", "# per example", "# the trace",
             "# careful with shapes", "# from the notes", "# works", "# this is the main step", "# normalize"]


def _a(e: str) -> str:
    """``e`` as an operand of ``.method()``: parenthesized unless a name, call, attribute or subscript."""
    node = ast.parse(e, mode="eval").body
    return e if isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)) else f"({e})"


class _S:
    """Seeded style choices of one student."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.used: set[str] = set()

    def pick(self, *xs):
        return self.r.choice(xs)

    def name(self, *pool):
        left = [p for p in pool if p not in self.used] or [pool[0] + str(len(self.used))]
        n = self.r.choice(left)
        self.used.add(n)
        return n

    def sq(self, e):
        return self.pick(f"{_a(e)}.pow(2)", f"({_a(e)} ** 2)", f"torch.square({e})", f"({_a(e)} * {_a(e)})")

    def rowsum(self, e):
        return self.pick(f"{_a(e)}.sum(1)", f"{_a(e)}.sum(dim=1)", f"torch.sum({e}, dim=1)", f"{_a(e)}.sum(-1)")

    def mean(self, e):
        return self.pick(f"{_a(e)}.mean()", f"torch.mean({e})", f"({_a(e)}.sum() / len({e}))")

    def flt(self, e):
        return self.pick(f"float({e})", f"{_a(e)}.item()")

    def norm(self, e):
        return self.pick(f"{_a(e)}.norm()", f"torch.linalg.norm({e})", f"torch.norm({e})", f"{_a(e)}.pow(2).sum().sqrt()")

    def sqrt(self, e):
        return self.pick(f"torch.sqrt({e})", f"{_a(e)}.sqrt()", f"({_a(e)} ** 0.5)")

    def abs(self, e):
        return self.pick(f"{_a(e)}.abs()", f"torch.abs({e})", f"abs({e})")

    def c(self):
        return ("  " + self.pick(*_COMMENTS)) if self.r.random() < 0.3 else ""

    def theta(self, grad=False):
        base = self.pick("flatten_params(model).detach().clone()", "flatten_params(model).clone().detach()",
                         "flatten_params(model).detach()")
        return base + (".requires_grad_(True)" if grad else "")

    def gen(self, seed):
        return self.pick(f"torch.Generator().manual_seed(int({seed}))", f"torch.Generator().manual_seed({seed})")


def _head(s: _S, task: str, doc: str | None = None) -> str:
    sig = SIGNATURES[task]
    out = f"def {sig}:\n"
    if s.r.random() < 0.6:
        out += f'    """{doc or "my solution"}"""\n'
    return out


def _indent(body: str) -> str:
    return "".join(("    " + ln if ln.strip() else ln) + "\n" for ln in body.strip("\n").split("\n"))


# ---------------------------------------------------------------- hw1
def _trace_exact(s: _S) -> str:
    th, H, L = s.name("theta", "params", "p", "w", "flat"), s.name("H", "hess", "hessian", "Hm"), s.name("L", "loss_fn", "f", "lossf")
    v = s.r.randrange(4)
    if v == 0:
        tr = s.pick(f"torch.diagonal({H}).sum()", f"torch.trace({H})", f"{H}.diag().sum()")
        body = f"{th} = {s.theta()}\n{L} = loss_of_theta(model, X, y)\n{H} = torch.func.hessian({L})({th}){s.c()}\nreturn {s.flt(tr)}"
    elif v == 1:
        tr = s.pick(f"torch.trace({H})", f"{H}.diagonal().sum()")
        body = (f"{th} = {s.theta()}\n{H} = torch.autograd.functional.hessian(lambda t: mse(functional_forward(model, t, X), y), {th})\n"
                f"return {s.flt(tr)}")
    elif v == 2:
        g, tot, i = s.name("g", "grad", "grads"), s.name("total", "tr", "acc", "s"), s.name("i", "j", "k")
        body = (f"{th} = {s.theta(True)}\n{L} = mse(functional_forward(model, {th}, X), y)\n"
                f"{g} = torch.autograd.grad({L}, {th}, create_graph=True)[0]{s.c()}\n{tot} = 0.0\n"
                f"for {i} in range({th}.numel()):\n"
                f"    row = torch.autograd.grad({g}[{i}], {th}, retain_graph=True)[0]\n"
                f"    {tot} += {s.flt(f'row[{i}]')}\nreturn {tot}")
    else:
        g, e, diag = s.name("g", "gr", "dL"), s.name("e", "unit", "basis"), s.name("diag", "vals", "entries")
        body = (f"{th} = {s.theta(True)}\n{g} = torch.autograd.grad(loss_of_theta(model, X, y)({th}), {th}, create_graph=True)[0]\n"
                f"{diag} = []\nfor idx in range(len({th})):\n    {e} = torch.zeros_like({th})\n    {e}[idx] = 1.0\n"
                f"    Hv = torch.autograd.grad({g} @ {e}, {th}, retain_graph=True)[0]\n    {diag}.append(Hv[idx])\n"
                f"return {s.flt(f'torch.stack({diag}).sum()')}")
    return _head(s, "hw1.trace_exact", "Tr of the Hessian") + _indent(body)


def _probe(s: _S, shape, gen):
    return s.pick(f"torch.randint(0, 2, {shape}, generator={gen}).to(torch.float64) * 2 - 1",
                  f"torch.where(torch.rand({shape}, generator={gen}) < 0.5, -1.0, 1.0)",
                  f"torch.sign(torch.randn({shape}, generator={gen}))",
                  f"2.0 * torch.bernoulli(torch.full({shape}, 0.5), generator={gen}) - 1.0")


def _hutchinson(s: _S) -> str:
    th, g, gen, z = s.name("theta", "params", "w"), s.name("grad", "g", "gr"), s.name("gen", "rng", "generator"), s.name("z", "v", "probe")
    v = s.r.randrange(3)
    sd = s.pick("{x}.std()", "torch.std({x})", "{x}.std(unbiased=True)")
    if v == 0:
        vals = s.name("vals", "samples", "ests", "out")
        body = (f"{gen} = {s.gen('seed')}\n{th} = {s.theta(True)}\n"
                f"{g} = torch.autograd.grad(loss_of_theta(model, X, y)({th}), {th}, create_graph=True)[0]\n{vals} = []\n"
                f"for _ in range(int(n_probes)):\n    {z} = {_probe(s, f'{th}.shape', gen)}\n"
                f"    Hz = torch.autograd.grad({g}, {th}, {z}, retain_graph=True)[0]{s.c()}\n    {vals}.append({s.flt(f'{z} @ Hz')})\n"
                f"{vals} = torch.tensor({vals})\n"
                f"return {s.flt(f'{vals}.mean()')}, {s.flt(sd.format(x=vals) + f' / math.sqrt(len({vals}))')}")
    elif v == 1:
        Z, q = s.name("Z", "probes", "V"), s.name("q", "quad", "est")
        body = (f"{gen} = {s.gen('seed')}\n{th} = {s.theta(True)}\n{g} = torch.autograd.grad(mse(functional_forward(model, {th}, X), y), {th}, create_graph=True)[0]\n"
                f"{Z} = {_probe(s, f'(int(n_probes), {th}.numel())', gen)}\n"
                f"{q} = torch.stack([torch.dot(torch.autograd.grad({g}, {th}, row, retain_graph=True)[0], row) for row in {Z}])\n"
                f"return {s.flt(f'{q}.mean()')}, {s.flt(sd.format(x=q))} / math.sqrt(n_probes)")
    else:
        f, xs = s.name("f", "L", "lossf"), s.name("xs", "results", "vals")
        body = (f"{f} = loss_of_theta(model, X, y)\n{th} = {s.theta()}\n{gen} = {s.gen('seed')}\n{xs} = np.zeros(int(n_probes))\n"
                f"for k in range(int(n_probes)):\n    {z} = {_probe(s, f'{th}.shape', gen)}\n"
                f"    _, hv = torch.autograd.functional.hvp({f}, {th}, {z})\n    {xs}[k] = {s.flt(f'(hv * {z}).sum()')}\n"
                f"return float({xs}.mean()), float({xs}.std(ddof=1) / np.sqrt(len({xs})))")
    return _head(s, "hw1.hutchinson") + _indent(body)


def _gn_trace(s: _S) -> str:
    th, J = s.name("theta", "params", "w"), s.name("J", "jac", "grads", "G")
    v = s.r.randrange(4)
    if v == 0:
        fo = s.name("f_one", "single", "f_i", "out_one")
        body = (f"{th} = {s.theta()}\n{fo} = lambda t, x: functional_forward(model, t, x[None])[0]\n"
                f"{J} = torch.func.vmap(torch.func.grad({fo}), in_dims=(None, 0))({th}, X){s.c()}\n"
                f"return {s.flt('2.0 * ' + s.mean(s.rowsum(s.sq(J))))}")
    elif v == 1:
        tot, i = s.name("total", "acc", "s2"), s.name("i", "n_i", "row")
        body = (f"{th} = {s.theta(True)}\n{tot} = 0.0\nfor {i} in range(X.shape[0]):\n"
                f"    out = functional_forward(model, {th}, X[{i}:{i} + 1])[0]\n"
                f"    gi = torch.autograd.grad(out, {th})[0]{s.c()}\n    {tot} += {s.flt('gi @ gi')}\n"
                f"return 2 * {tot} / X.shape[0]")
    elif v == 2:
        body = (f"{th} = {s.theta()}\n{J} = torch.autograd.functional.jacobian(lambda t: functional_forward(model, t, X), {th})\n"
                f"return {s.flt(f'2 * ' + s.sq(J) + '.sum() / X.shape[0]')}")
    else:
        ps, sqn = s.name("params", "ps", "weights"), s.name("sq", "norms", "per")
        body = (f"{ps} = list(model.parameters())\n{sqn} = []\nfor x in X:\n"
                f"    gs = torch.autograd.grad(model(x[None])[0], {ps})\n"
                f"    {sqn}.append(sum({s.flt(s.sq('g_') + '.sum()')} for g_ in gs)){s.c()}\n"
                f"return 2.0 * sum({sqn}) / len({sqn})")
    return _head(s, "hw1.gn_trace", "Lemma 4.1") + _indent(body)


def _top_eig(s: _S) -> str:
    th, g, v_, lam = s.name("theta", "params", "w"), s.name("grad", "g", "gr"), s.name("v", "vec", "u", "b"), s.name("rayleigh", "lam", "ev", "r")
    v = s.r.randrange(3)
    start = f"{v_} = torch.randn({th}.shape, generator={s.gen('seed')})\n{v_} = {v_} / {v_}.norm()\n"
    if v == 0:
        body = (f"{th} = {s.theta(True)}\n{g} = torch.autograd.grad(loss_of_theta(model, X, y)({th}), {th}, create_graph=True)[0]\n"
                + start + f"{lam} = 0.0\nfor _ in range(int(n_iter)):\n"
                f"    Hv = torch.autograd.grad({g}, {th}, {v_}, retain_graph=True)[0]\n    {lam} = {s.flt(f'{v_} @ Hv')}\n"
                f"    if {s.flt('Hv.norm()')} == 0.0:\n        break\n    {v_} = Hv / Hv.norm(){s.c()}\nreturn {lam}")
    elif v == 1:
        f = s.name("f", "L", "lossf")
        body = (f"{f} = loss_of_theta(model, X, y)\n{th} = {s.theta()}\n" + start
                + f"for it in range(n_iter):\n    _, Hv = torch.autograd.functional.hvp({f}, {th}, {v_})\n"
                f"    {lam} = torch.dot({v_}, Hv)\n    {v_} = Hv / torch.linalg.norm(Hv)\nreturn {s.flt(lam)}")
    else:
        hvp = s.name("hvp", "apply_H", "H_times")
        body = (f"{th} = {s.theta(True)}\n{g} = torch.autograd.grad(mse(functional_forward(model, {th}, X), y), {th}, create_graph=True)[0]\n\n"
                f"def {hvp}(vv):\n    return torch.autograd.grad({g}, {th}, vv, retain_graph=True)[0]\n\n"
                + start + f"hv = {hvp}({v_})\nfor _ in range(int(n_iter) - 1):\n    {v_} = hv / hv.norm()\n    hv = {hvp}({v_}){s.c()}\n"
                f"return {s.flt(f'torch.dot({v_}, hv)')}")
    return _head(s, "hw1.top_eig", "power iteration") + _indent(body)


def _sam(s: _S) -> str:
    th, g, L0 = s.name("theta", "params", "w"), s.name("g", "grad", "gr"), s.name("L0", "base", "loss0", "l0")
    v = s.r.randrange(3)
    if v == 0:
        f = s.name("L", "f", "lossf")
        body = (f"{f} = loss_of_theta(model, X, y)\n{th} = {s.theta(True)}\n{L0} = {f}({th})\n{g} = torch.autograd.grad({L0}, {th})[0]\n"
                f"with torch.no_grad():\n    return {s.flt(f'{f}({th} + rho * {g} / {s.norm(g)}) - {L0}')}")
    elif v == 1:
        d = s.name("delta", "step", "eps")
        body = (f"{th} = {s.theta()}\n{g} = torch.func.grad(lambda t: mse(functional_forward(model, t, X), y))({th})\n"
                f"{d} = {s.pick('rho * ' + g + ' / ' + s.norm(g), 'rho * (' + g + ' / ' + s.norm(g) + ')', '(rho / ' + s.norm(g) + ') * ' + g)}{s.c()}\n"
                f"before = mse(functional_forward(model, {th}, X), y)\nafter = mse(functional_forward(model, {th} + {d}, X), y)\n"
                f"return {s.flt('after - before')}")
    else:
        ps = s.name("ps", "params", "weights")
        body = (f"{ps} = list(model.parameters())\n{L0} = mse(model(X), y)\ngs = torch.autograd.grad({L0}, {ps})\n"
                f"{g} = torch.cat([t.{s.pick('reshape(-1)', 'flatten()', 'ravel()')} for t in gs])\n"
                f"{th} = torch.cat([p.detach().{s.pick('reshape(-1)', 'flatten()', 'view(-1)')} for p in {ps}]) + rho * {g} / {s.norm(g)}\n"
                f"return {s.flt(f'mse(functional_forward(model, {th}, X), y) - {L0}.detach()')}")
    return _head(s, "hw1.sam_sharpness") + _indent(body)


def _flattest(s: _S) -> str:
    H, A, B, sq = s.name("H", "h", "act", "hid"), s.name("A", "a", "coef_a"), s.name("B", "b", "coef_b"), s.name("sq", "xx", "xn", "r2")
    bias = s.pick('(1.0 if model.config.arch == "bias" else 0.0)', '(model.config.arch == "bias")',
                  '(1 if "b1" in dict(model.named_parameters()) else 0)')
    fin = s.pick(f"return c, float(2 * ({A} * {B}).sqrt())", f"return c, float({A} * c ** 2 + {B} / c ** 2)")
    v = s.r.randrange(3)
    w2sq = s.sq("model.W2")
    if v == 0:
        body = (f"with torch.no_grad():\n    {H} = model.hidden(X)\n    {sq} = {s.rowsum(s.sq('X'))} + {bias}\n"
                f"    {A} = 2.0 * {s.mean(s.rowsum(s.sq(H)))}\n    {B} = 2.0 * {s.mean(f'{sq} * (({H} > 0).double() @ {w2sq})')}\n"
                f"c = float(({B} / {A}) ** 0.25){s.c()}\n{fin}")
    elif v == 1:
        pre = s.pick("X @ model.W1.T", "torch.matmul(X, model.W1.t())")
        body = (f"W1, W2 = model.W1.detach(), model.W2.detach()\n{H} = torch.relu({pre.replace('model.W1', 'W1')} + "
                f"(model.b1.detach() if {bias} else 0.0))\n"
                f"n = X.shape[0]\n{A} = 2 * {s.sq(H)}.sum() / n\n{sq} = {s.rowsum(s.sq('X'))} + {bias}\n"
                f"{B} = 2 * ({sq}[:, None] * ({H} > 0) * {s.sq('W2')}[None, :]).sum() / n\n"
                f"c = {s.flt(f'({B} / {A}) ** 0.25')}\n{fin}")
    else:
        body = (f"{A} = 0.0\n{B} = 0.0\nwith torch.no_grad():\n    for x in X:\n        hx = model.hidden(x[None])[0]\n"
                f"        {A} += {s.flt(s.sq('hx') + '.sum()')}\n"
                f"        {B} += {s.flt(f'(x @ x + {bias}) * (model.W2[hx > 0] ** 2).sum()')}\n"
                f"{A}, {B} = 2 * {A} / len(X), 2 * {B} / len(X)\nc = ({B} / {A}) ** 0.25\n"
                + fin.replace(f"float(2 * ({A} * {B}).sqrt())", f"2 * math.sqrt({A} * {B})"))
    return _head(s, "hw1.flattest_rescaling") + _indent(body)


# ---------------------------------------------------------------- hw4
def _lower_bound(s: _S) -> str:
    r = s.name("r", "norms", "rad", "lengths")
    v = s.r.randrange(4)
    if v == 0:
        body = f"{r} = {s.sqrt(s.rowsum(s.sq('X')) + ' + 1')}\nreturn {s.flt(s.pick('4', '4.0') + ' * ' + s.mean(r + ' * ' + s.abs('y')))}"
    elif v == 1:
        Xb = s.name("Xb", "Xa", "X1", "aug")
        body = (f"{Xb} = torch.cat([X, {s.pick('torch.ones(X.shape[0], 1)', 'torch.ones(len(X), 1)', 'torch.ones_like(X[:, :1])')}], dim=1)\n{r} = {s.pick(Xb + '.norm(dim=1)', 'torch.linalg.norm(' + Xb + ', dim=1)', s.sqrt(s.rowsum(s.sq(Xb))))}{s.c()}\n"
                f"return {s.flt(f'4.0 * ({r} * torch.abs(y)).sum() / len(y)')}")
    elif v == 2:
        tot = s.name("total", "acc", "s")
        body = (f"{tot} = 0.0\nfor xi, yi in zip(X, y):\n    {tot} += math.sqrt({s.flt('xi @ xi')} + 1) * abs({s.flt('yi')})\n"
                f"return 4 * {tot} / len(X)")
    else:
        xn = s.name("Xn", "xs", "arr")
        body = (f"{xn}, yn = X.numpy(), y.numpy()\n{r} = np.sqrt(({xn} ** 2).sum(axis=1) + 1.0)\n"
                f"return float(4 * np.mean({r} * np.abs(yn)))")
    return _head(s, "hw4.lower_bound") + _indent(body)


def _memorizing(s: _S) -> str:
    nrm, w, r, a = s.name("norms", "nx", "lens"), s.name("w", "dirs", "u"), s.name("r", "rad", "rr"), s.name("a", "scale", "amp", "k")
    v = s.r.randrange(4)
    if v == 0:
        body = (f"{nrm} = {s.pick('X.norm(dim=1)', s.sqrt(s.rowsum(s.sq('X'))), 'torch.linalg.norm(X, dim=1)')}\n"
                f"{w} = X / {s.pick(nrm + '[:, None]', nrm + '.unsqueeze(1)', nrm + '.reshape(-1, 1)')}\n"
                f"{r} = {s.sqrt(s.sq(nrm) + ' + 1')}\n{a} = {s.sqrt(r + ' * ' + s.abs('y'))}\n"
                f'return {{"W1": {a}[:, None] * {w} / eps, "b1": {a} * (eps - {s.rowsum(w + " * X")}) / eps,\n'
                f'        "W2": {s.pick("torch.sign(y)", "y.sign()")} * {s.sqrt(s.abs("y") + " / " + r)}}}')
    elif v == 1:
        n, d = s.name("n", "N", "npts"), s.name("d", "D", "ncols")
        body = (f"{n}, {d} = X.shape\nW1, b1, W2 = torch.zeros({n}, {d}), torch.zeros({n}), torch.zeros({n})\n"
                f"for i in range({n}):\n    {nrm} = {s.norm('X[i]')}\n    {r} = {s.sqrt(s.sq(nrm) + ' + 1')}\n"
                f"    {a} = {s.sqrt(r + ' * ' + s.abs('y[i]'))}\n    W1[i] = {a} * X[i] / {nrm} / eps{s.c()}\n"
                f"    b1[i] = {a} * (eps - {nrm}) / eps\n    W2[i] = torch.sign(y[i]) * torch.sqrt(abs(y[i]) / {r})\n"
                f'return {{"W1": W1, "b1": b1, "W2": W2}}')
    elif v == 2:
        nr = s.name("neuron", "one", "unit_for")
        body = (f"def {nr}(x, t):\n    L = {s.norm('x')}\n    R = {s.sqrt(s.sq('L') + ' + 1')}\n    s_ = {s.sqrt('R * ' + s.abs('t'))}\n"
                f"    return s_ * x / (L * eps), s_ * (eps - L) / eps, torch.sign(t) * torch.sqrt(t.abs() / R)\n\n"
                f"rows = [{nr}(X[i], y[i]) for i in range(len(y))]\n"
                f'return {{"W1": torch.stack([q[0] for q in rows]), "b1": torch.stack([q[1] for q in rows]),\n'
                f'        "W2": torch.stack([q[2] for q in rows])}}')
    else:
        body = (f"{nrm} = {s.pick('torch.linalg.norm(X, dim=1, keepdim=True)', 'X.norm(dim=1, keepdim=True)')}\n{r} = {s.sqrt('1 + ' + s.sq(nrm))}\n"
                f"{a} = {s.sqrt(r + '[:, 0] * ' + s.abs('y'))}\nW1 = {a}.unsqueeze(1) * X / ({nrm} * eps)\n"
                f"b1 = {a} * (eps - {nrm}[:, 0]) / eps\nW2 = y.sign() * (y.abs() / {r}[:, 0]).sqrt()\n"
                f'return dict(W1=W1, b1=b1, W2=W2)')
    return _head(s, "hw4.memorizing") + _indent(body)


def _generalizing(s: _S) -> str:
    r = s.name("r", "rad", "radius", "R")
    rr = s.pick(f"{r} = (d + 1) ** 0.25", f"{r} = math.pow(d + 1, 0.25)", f"{r} = float(np.sqrt(np.sqrt(d + 1)))")
    v = s.r.randrange(4)
    if v == 0:
        body = (f"{rr}\n" + s.pick("W1, b1, W2 = torch.zeros(width, d), -torch.ones(width), torch.zeros(width)\n",
                                   "W1 = torch.zeros((width, d))\nb1 = torch.full((width,), -1.0)\nW2 = torch.zeros(width)\n",
                                   "W1 = torch.zeros(width, d)\nb1 = -1.0 * torch.ones(width)\nW2 = torch.zeros_like(b1)\n")
                + f"for j, (s1, s2) in enumerate([(1, 1), (1, -1), (-1, 1), (-1, -1)]):\n"
                f"    W1[j, 0], W1[j, 1], b1[j], W2[j] = {r} * s1, {r} * s2, -{r}, s1 * s2 / {r}\n"
                f'return {{"W1": W1, "b1": b1, "W2": W2}}')
    elif v == 1:
        sg = s.name("signs", "S", "pm")
        body = (f"{rr}\n{sg} = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])\n"
                f"W1 = torch.zeros(width, d)\nW1[:4, :2] = {r} * {sg}\nb1 = {s.pick('torch.full((width,), -1.0)', '-torch.ones(width)')}\nb1[:4] = -{r}\n"
                f"W2 = torch.zeros(width)\nW2[:4] = {s.pick(sg + '[:, 0] * ' + sg + '[:, 1] / ' + r, sg + '.prod(dim=1) / ' + r, 'torch.prod(' + sg + ', 1) / ' + r)}{s.c()}\n"
                f'return {{"W1": W1, "b1": b1, "W2": W2}}')
    elif v == 2:
        rows = s.name("rows", "ws", "first")
        body = (f"import itertools\n\n{rr}\n{rows}, outs = [], []\nfor a, b in itertools.product([1, -1], repeat=2):\n"
                f"    w = {s.pick('torch.zeros(d)', 'torch.zeros(d, dtype=torch.float64)')}\n    w[0], w[1] = a * {r}, b * {r}\n    {rows}.append(w)\n    outs.append({s.pick('a * b / ' + r, 'float(a * b) / ' + r, 'a * b * ' + r + ' ** -1')})\n"
                f"for _ in range(width - 4):\n    {rows}.append(torch.zeros(d))\n    outs.append(0.0)\n"
                f'return {{"W1": torch.stack({rows}), "b1": torch.tensor([-{r}] * 4 + [-1.0] * (width - 4)), "W2": torch.tensor(outs)}}')
    else:
        body = (f"{rr}\nW1 = np.zeros((width, d))\nb1 = -np.ones(width)\nW2 = np.zeros(width)\n"
                f"for j in range(4):\n    s1 = {s.pick('1 if j < 2 else -1', '[1, 1, -1, -1][j]', '1 - 2 * (j // 2)')}\n    s2 = {s.pick('1 if j % 2 == 0 else -1', '[1, -1, 1, -1][j]', '(-1) ** j')}\n"
                f"    W1[j, :2] = [s1 * {r}, s2 * {r}]\n    b1[j] = -{r}\n    W2[j] = s1 * s2 / {r}\n"
                f'return {{k: torch.from_numpy(v) for k, v in (("W1", W1), ("b1", b1), ("W2", W2))}}')
    return _head(s, "hw4.generalizing") + _indent(body)


def _mem_index(s: _S) -> str:
    H, ct, tot = s.name("H", "h", "act", "acts"), s.name("contrib", "per", "mass", "c"), s.name("total", "tot", "whole", "z")
    pre = s.pick("X @ W1.T + b1", "torch.matmul(X, W1.t()) + b1", "X @ W1.t() + b1[None, :]")
    act = s.pick(f"torch.relu({pre})", f"torch.clamp({pre}, min=0)", f"({pre}).clamp_min(0.0)")
    v = s.r.randrange(3)
    if v == 0:
        body = (f"{H} = {act}\n{ct} = ({H} * W2).abs().sum(0)\n{tot} = {s.flt(f'{ct}.sum()')}\nif {tot} == 0.0:\n    return 0.0\n"
                f"return {s.flt(f'{ct}[({H} > 0).sum(0) <= threshold].sum()')} / {tot}")
    elif v == 1:
        m = s.name("mem", "few", "rare")
        body = (f"{H} = {act}\n{tot}, {m} = 0.0, 0.0\nfor j in range(W1.shape[0]):\n"
                f"    part = {s.flt(f'(W2[j] * {H}[:, j]).abs().sum()')}\n    {tot} += part\n"
                f"    if int(({H}[:, j] > 0).sum()) <= threshold:{s.c()}\n        {m} += part\n"
                f"return {m} / {tot} if {tot} > 0 else 0.0")
    else:
        fires, mask = s.name("fires", "counts", "nfire"), s.name("mask", "keep", "small")
        body = (f"{H} = {act}\n{fires} = ({H} > 0).sum(dim=0)\n{mask} = ({fires} <= threshold).to(X.dtype)\n"
                f"out = torch.abs({H} * W2[None, :])\n{tot} = out.sum()\nif {tot} <= 0:\n    return 0.0\n"
                f"return {s.flt(f'(out * {mask}).sum() / {tot}')}")
    return _head(s, "hw4.memorization_index") + _indent(body)


def _x1x2(s: _S) -> str:
    tot = s.name("total", "tot", "fro", "all_")
    v = s.r.randrange(4)
    if v == 0:
        body = f"{tot} = {s.flt(s.sq('W1') + '.sum()')}\nreturn {s.flt(s.sq('W1[:, :2]') + '.sum()')} / {tot} if {tot} > 0 else 0.0"
    elif v == 1:
        body = (f"{tot} = {s.norm('W1')} ** 2\nif {tot} == 0:\n    return 0.0\n"
                f"return {s.flt(s.norm('W1[:, :2]') + f' ** 2 / {tot}')}")
    elif v == 2:
        a, b = s.name("top", "num", "first_two"), s.name("rest", "den", "every")
        body = (f"{a} = {b} = 0.0\nfor row in W1:\n    {a} += {s.flt('row[0] ** 2 + row[1] ** 2')}\n    {b} += {s.flt('(row ** 2).sum()')}\n"
                f"return 0.0 if {b} == 0 else {a} / {b}")
    else:
        col = s.name("col", "cols", "per_col")
        body = (f"{col} = {s.pick('(W1 * W1).sum(dim=0)', 'torch.sum(W1 ** 2, dim=0)', 'W1.pow(2).sum(0)', 'torch.square(W1).sum(axis=0)')}{s.c()}\n{tot} = {s.pick(col + '.sum()', 'torch.sum(' + col + ')')}\n"
                f"return {s.flt(f'{col}[:2].sum() / {tot}')} if {tot} != 0 else 0.0")
    return _head(s, "hw4.x1x2_share") + _indent(body)


WRITERS = {"hw1.trace_exact": _trace_exact, "hw1.hutchinson": _hutchinson, "hw1.gn_trace": _gn_trace,
           "hw1.top_eig": _top_eig, "hw1.sam_sharpness": _sam, "hw1.flattest_rescaling": _flattest,
           "hw4.lower_bound": _lower_bound, "hw4.memorizing": _memorizing, "hw4.generalizing": _generalizing,
           "hw4.memorization_index": _mem_index, "hw4.x1x2_share": _x1x2}


# habits of a student that change no result: argument checks and conversions, imports
_CHECKS = {"X": ["assert X.dim() == 2, 'X must be (n, d)'", "assert X.shape[0] > 0", "X = torch.as_tensor(X)"],
           "y": ["assert len(y) == len(X)", "y = y.reshape(-1)"],
           "n_probes": ["assert n_probes > 1, 'need two probes for a stderr'", "n_probes = int(n_probes)"],
           "n_iter": ["n_iter = int(n_iter)", "assert n_iter >= 1"], "seed": ["seed = int(seed)"],
           "rho": ["rho = float(rho)", "assert rho > 0"], "eps": ["eps = float(eps)", "assert eps > 0"],
           "d": ["d = int(d)", "assert d >= 2, 'XOR needs two coordinates'"],
           "width": ["width = int(width)", "assert width >= 4"], "W1": ["W1 = torch.as_tensor(W1)"],
           "threshold": ["threshold = int(threshold)"]}


def _habits(code: str, task: str, rng: random.Random) -> str:
    params = [p.split("=")[0].strip() for p in SIGNATURES[task].split("(")[1][:-1].split(",")]
    pool = [c for p in params for c in _CHECKS.get(p, [])]
    checks = rng.sample(pool, min(len(pool), rng.choice([0, 1, 1, 2, 3])))
    if "torch.autograd.grad(" in code and not re.search(r"\bgrad\b(?!\()", code) and rng.random() < 0.4:
        checks.append("from torch.autograd import grad")
        code = code.replace("torch.autograd.grad(", "grad(")
    for n in ("n_probes", "n_iter"):
        if rng.random() < 0.5:
            code = code.replace(f"range(int({n}))", f"range({n})")
    if not checks:
        return code
    lines = code.split("\n")
    at = 2 if lines[1].lstrip().startswith('"""') else 1
    return "\n".join(lines[:at] + ["    " + c for c in checks] + lines[at:])


def solution(task: str, rng: random.Random) -> str:
    """One student's independently written solution of a task."""
    code = _habits(WRITERS[task](_S(rng)), task, rng)
    if task.startswith("hw4") and "math." in code:  # hw4's notebook does not import math
        code = "import math\n\n\n" + code
    return code


def independent_class(assignment: str, n: int, seed: int) -> dict[str, dict[str, str]]:
    """``n`` students, each with an independent solution of every task: {student: {task: code}}."""
    rng = random.Random(f"{assignment}:{seed}")
    return {f"s{i:03d}": {t: solution(t, random.Random(rng.getrandbits(64))) for t in TASKS[assignment]}
            for i in range(n)}


# ---------------------------------------------------------------- transforms
def _locals(code: str) -> list[str]:
    tree = ast.parse(code)
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    top = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef) and node.name not in top:
            names.add(node.name)
    task_fns = {sig.split("(")[0] for sig in SIGNATURES.values()}
    return sorted(names - task_fns - {"_"} | (funcs - task_fns))


def rename(code: str, rng: random.Random) -> str:
    """Every local name, parameter and helper renamed (the task's own function and its
    keyword parameters keep theirs: the grader calls them)."""
    keep = {p.split("=")[0].strip() for sig in SIGNATURES.values() for p in sig.split("(")[1][:-1].split(",")}
    names = [n for n in _locals(code) if n not in keep]
    mapping = {n: f"{rng.choice(['my', 'tmp', 'the', 'var', 'q'])}_{n.strip('_')}{rng.randrange(100)}" for n in names}
    toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    lines = code.split("\n")
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        if t.type == tokenize.NAME and t.string in mapping and not (i and toks[i - 1].string == "."):
            (r, c0), (_, c1) = t.start, t.end
            lines[r - 1] = lines[r - 1][:c0] + mapping[t.string] + lines[r - 1][c1:]
    return "\n".join(lines)


def recomment(code: str, rng: random.Random) -> str:
    """Comments and docstrings removed, others written in."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr) and isinstance(
                getattr(node.body[0], "value", None), ast.Constant) and len(node.body) > 1:
            node.body = node.body[1:]
    out = []
    for ln in ast.unparse(tree).split("\n"):
        if rng.random() < 0.4 and ln.strip():
            out.append(re.match(r"\s*", ln).group(0) + f"# {rng.choice(['step', 'here we go', 'as in class', 'ok'])}")
        out.append(ln)
    return "\n".join(out) + "\n"


def reformat(code: str, rng: random.Random) -> str:
    """Layout changed: re-printed from the syntax tree, two-space indents, spaces inside brackets."""
    out = []
    for ln in ast.unparse(ast.parse(code)).split("\n"):
        ind = len(ln) - len(ln.lstrip(" "))
        body = ln.lstrip(" ").replace("(", "( ").replace(")", " )") if "'" not in ln and '"' not in ln else ln.lstrip(" ")
        out.append(" " * (ind // 2) + body)
    return "\n".join(out) + "\n"


def _reads_writes(node) -> tuple[set, set]:
    reads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    writes = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return reads, writes


def reorder(code: str, rng: random.Random) -> str:
    """Top-level functions in the opposite order, nested helper functions moved to the top of
    their function, and adjacent independent statements swapped."""
    tree = ast.parse(code)
    tree.body = tree.body[::-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = node.body
            doc = body[:1] if body and isinstance(body[0], ast.Expr) else []
            rest = body[len(doc):]
            defs = [b for b in rest if isinstance(b, ast.FunctionDef)]
            rest = [b for b in rest if not isinstance(b, ast.FunctionDef)]
            for i in range(len(rest) - 1):
                a, b = rest[i], rest[i + 1]
                if isinstance(a, ast.Assign) and isinstance(b, ast.Assign):
                    (ra, wa), (rb, wb) = _reads_writes(a), _reads_writes(b)
                    if not (wa & rb or wb & ra or wa & wb):
                        rest[i], rest[i + 1] = b, a
            node.body = doc + defs + rest
    return ast.unparse(tree) + "\n"


def dead_code(code: str, rng: random.Random) -> str:
    """Unused statements inserted at the start of every function and an unused helper added."""
    tree = ast.parse(code)
    junk = ast.parse("unused_a = 0\nif False:\n    print('debug')\ncounter = [i for i in range(3)]").body
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            k = rng.randrange(len(node.body))
            node.body[k:k] = copy.deepcopy(junk)
    tree.body.insert(0, ast.parse("def _debug_print(*a):\n    for x in a:\n        print('>>', x)\n").body[0])
    return ast.unparse(tree) + "\n"


def everything(code: str, rng: random.Random) -> str:
    return reformat(dead_code(recomment(rename(code, rng), rng), rng), rng)


TRANSFORMS = {"rename": rename, "recomment": recomment, "reformat": reformat, "reorder": reorder,
              "dead_code": dead_code, "everything": everything}


def _own_code(assignment: str, task: str, code: str, others: list[str]) -> int:
    """How many of a solution's fingerprints are neither the reference solution's nor any other's."""
    from autograder.notebook import cell_meta, read_source
    from autograder.similarity import SimilarityConfig, _all_hashes, part_fingerprints
    config = SimilarityConfig()
    ref = [c.source for c in read_source(REPO / "solutions" / f"{assignment}.py").cells
           if cell_meta(c).get("id") == task and cell_meta(c).get("role") == "task"]
    seen = _all_hashes(ref[0], config)
    for c in others:
        seen |= set(part_fingerprints(c, config))
    return len(set(part_fingerprints(code, config)) - seen)


def plagiarized_class(assignment: str, n: int, seed: int) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, str]]]:
    """The independent class plus copies: for each transform one student copying every task of
    another (through that transform), and one partial copy (one task copied, the rest the
    copier's own). Returns (class, [(original, copy, transform)])."""
    rng = random.Random(f"copies:{assignment}:{seed}")
    subs = independent_class(assignment, n, seed)
    originals = rng.sample(sorted(subs), len(TRANSFORMS) + 1)
    pairs = []
    for (name, fn), orig in zip(TRANSFORMS.items(), originals):
        cp = f"c_{name}"
        subs[cp] = {t: fn(code, random.Random(rng.getrandbits(64))) for t, code in subs[orig].items()}
        pairs.append((orig, cp, name))
    # partial: one task of one student, renamed, in an otherwise independent submission; the task
    # where that student wrote the most code nobody else wrote (a task written like the reference
    # solution, or like many others, leaves nothing to find: both are discounted)
    orig = originals[-1]
    others = [c for s_, c in subs.items() if s_ != orig and not s_.startswith("c_")]
    task = max(TASKS[assignment], key=lambda t: _own_code(assignment, t, subs[orig][t], [c[t] for c in others]))
    own = {t: solution(t, random.Random(rng.getrandbits(64))) for t in TASKS[assignment]}
    own[task] = rename(subs[orig][task], random.Random(rng.getrandbits(64)))
    subs["c_partial"] = own
    pairs.append((orig, "c_partial", f"partial ({task})"))
    return subs, pairs


def planted_class(assignment: str, n: int, seed: int) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """A class of ``n`` with 5% of it replaced by renamed copies of a random classmate (the
    copier's own code gone). Returns (class, sorted (copier, original) pairs)."""
    rng = random.Random(seed)
    subs = independent_class(assignment, n, seed)
    names = sorted(subs)
    victims = rng.sample(names, n // 20)
    planted = []
    for victim in victims:
        src = rng.choice([s for s in names if s not in victims])
        subs[victim] = {t: rename(c, random.Random(rng.getrandbits(64))) for t, c in subs[src].items()}
        planted.append(tuple(sorted((victim, src))))
    return subs, planted


def write_class(subs: dict[str, dict[str, str]], assignment: str, folder: Path) -> Path:
    """One notebook per student: the student notebook with its task cells replaced."""
    starter = nbformat.read(str(REPO / "assignments" / f"{assignment}.ipynb"), as_version=4)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for student, tasks in subs.items():
        nb = copy.deepcopy(starter)
        for cell in nb.cells:
            m = cell.metadata.get("flatlab", {})
            if m.get("role") == "task" and m.get("id") in tasks:
                cell.source = tasks[m["id"]]
        nbformat.write(nb, str(folder / f"{student}.ipynb"))
    return folder
