"""The one training loop: segments of epochs, one ``History``, Ctrl-C and logging.

``run_loop`` drives every method of ``flatlab.train`` (GD, SGD, SAM, 1-SAM on either
backend, the sharpness penalty, label-noise SGD). A method is a list of segments
``(epochs, advance)``, where ``advance(epoch, k)`` trains the k epochs that start at the
global ``epoch``; the loop cuts them into chunks of at most ``chunk`` epochs, stopping
at every ``log_every`` boundary.

Every ``log_every`` epochs (and at epoch 0, at the end and, with ``log_per_decade``, on a
log-spaced grid of epochs) the history records the
training loss, the test accuracy on ``data.X_test``, the trace of the training loss's Hessian
``trace`` (``hessian_trace(..., method="closed_form")``, exact at any width; Hutchinson with 64
probes for a model without a closed form) and its Gauss-Newton term ``gn_trace`` (for the MSE
S = (2/n) Σ‖∇θ f(x_i)‖²: equal to the trace at an interpolator, and everywhere for ReLU nets
without normalization; for Sim-LN / Sim-BN near interpolation the two differ). One record costs about
as much as 3,000-10,000 engine 1-SAM steps at width 500 with 10,000 test points (the test
forward pass dominates), so keep ``log_every`` >= 100 epochs for engine runs.

Ctrl-C stops the run at the next chunk boundary: the current state is recorded as the
last entry and ``history.interrupted`` is set; a second Ctrl-C raises at once.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field

import torch

from ..data import Dataset
from ..losses import accuracy, get_loss
from ..sharpness import hessian_trace, trace_parts

__all__ = ["History", "run_loop", "log_epochs"]

_TEST_CHUNK = 512  # rows of X_test per forward pass when logging


@dataclass
class History:
    """What ``train`` logged; one entry per logged epoch."""

    epoch: list = field(default_factory=list)  # global epoch (0 = before training)
    train_loss: list = field(default_factory=list)  # loss on the training set
    test_acc: list = field(default_factory=list)  # accuracy on data.X_test
    trace: list = field(default_factory=list)  # Tr ∇²L of the training loss (the true trace)
    gn_trace: list = field(default_factory=list)  # its Gauss-Newton term (Lemma 4.1's S for MSE)
    interrupted: bool = False  # True if Ctrl-C stopped the run (the last entry is the state then)

    def to_dict(self) -> dict:
        return {"epoch": list(self.epoch), "train_loss": list(self.train_loss),
                "test_acc": list(self.test_acc), "trace": list(self.trace), "gn_trace": list(self.gn_trace)}

    def __len__(self) -> int:
        return len(self.epoch)


class _Interrupt:
    """Turn Ctrl-C into a flag checked between chunks, so the state is always consistent.

    A second Ctrl-C raises KeyboardInterrupt at once. Only installed in the main thread.
    """

    def __init__(self):
        self.flag = False
        self._old = None

    def _handler(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _record(history: History, model, data, X, y, loss_fn, loss_name, epoch):
    """Append the training loss, test accuracy, trace and Gauss-Newton term at ``epoch`` (once per epoch)."""
    if history.epoch and history.epoch[-1] == epoch:
        return
    with torch.no_grad():
        train_loss = float(loss_fn(model(X), y))
        Xt = data.X_test.to(X.dtype)
        # chunks of 512 rows keep the (rows, m) activations in cache: ~2-3x faster than one pass
        f_test = torch.cat([model(Xt[i : i + _TEST_CHUNK]) for i in range(0, Xt.shape[0], _TEST_CHUNK)])
        test_acc = accuracy(f_test, data.y_test.to(X.dtype))
    try:
        trace, gn = trace_parts(model, X, y, loss=loss_name)
    except ValueError:  # no closed form (a deep softplus net): estimate the trace
        gn = hessian_trace(model, X, y, loss=loss_name, method="gauss_newton")
        trace = float(hessian_trace(model, X, y, loss=loss_name, method="hutchinson", n_probes=64, seed=epoch))
    history.gn_trace.append(gn)
    history.epoch.append(epoch)
    history.train_loss.append(train_loss)
    history.test_acc.append(test_acc)
    history.trace.append(trace)


def log_epochs(total: int, log_every: int, per_decade: int = 0) -> list[int]:
    """The epochs a run of ``total`` epochs logs at: 0, every ``log_every``, the last and, with
    ``per_decade`` > 0, the log-spaced grid round(10^(j / per_decade)) (so that a learning phase
    that is over in the first 1% of a long run is still seen)."""
    out = set(range(0, total + 1, log_every)) | {0, total}
    if per_decade > 0:
        j = 0
        while (e := round(10 ** (j / per_decade))) <= total:
            out.add(e)
            j += 1
    return sorted(out)


def run_loop(model, data: Dataset, segments, *, log_every: int, loss: str = "mse", chunk: int = 1,
             progress: bool = False, desc: str = "train", log_per_decade: int = 0) -> History:
    """Run ``segments`` [(epochs, advance(epoch, k))] in order on ``model``; return the History.

    ``chunk`` bounds the epochs per ``advance`` call (and so the Ctrl-C latency). The history is
    recorded at :func:`log_epochs` (total, log_every, log_per_decade).
    """
    from tqdm import tqdm

    dtype = next(model.parameters()).dtype
    X, y = data.X_train.to(dtype), data.y_train.to(dtype)
    loss_fn = get_loss(loss)
    history = History()
    total = sum(e for e, _ in segments)
    grid = log_epochs(total, log_every, log_per_decade)
    at = set(grid)
    bar = tqdm(total=total, disable=not progress, unit="epoch", desc=desc)
    epoch, nxt = 0, 1  # grid[nxt]: the next epoch to log at
    try:
        with _Interrupt() as stop:
            _record(history, model, data, X, y, loss_fn, loss, 0)
            for epochs, advance in segments:
                done = 0
                while done < epochs:
                    while grid[nxt] <= epoch:
                        nxt += 1
                    k = min(epochs - done, grid[nxt] - epoch, chunk)
                    advance(epoch, k)
                    done += k
                    epoch += k
                    bar.update(k)
                    if epoch in at:
                        _record(history, model, data, X, y, loss_fn, loss, epoch)
                        bar.set_postfix(loss=f"{history.train_loss[-1]:.3g}",
                                        acc=f"{history.test_acc[-1]:.3f}", trace=f"{history.trace[-1]:.3g}")
                    if stop.flag:
                        raise KeyboardInterrupt
            _record(history, model, data, X, y, loss_fn, loss, epoch)
    except KeyboardInterrupt:
        history.interrupted = True
        _record(history, model, data, X, y, loss_fn, loss, epoch)
    finally:
        bar.close()
    return history
