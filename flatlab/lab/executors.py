"""Where the runs of a study execute: local worker processes or a Dask cluster.

An executor runs independent tasks ``(key, fn, args)`` (``fn`` a module-level function, so
it pickles) and calls ``report(key, record, seconds)`` as each one finishes, in completion
order. ``run`` returns True when it was interrupted (Ctrl-C): running tasks stop early and
return what they have, queued tasks are skipped. Every task runs with one torch thread, so
a task computes the same bits wherever it runs: a local run and a Dask run of the same
seeds give identical records (only the clocks differ).

- :class:`LocalExecutor` (the default): ``workers`` forked processes, longest task first;
  ``workers=1`` runs in this process.
- :class:`DaskExecutor`: a running ``dask.distributed`` scheduler, given by its address
  (``tcp://host:8786``) or a scheduler file. Workers must be able to import ``flatlab``
  (the same version: records are compared across machines).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import torch

__all__ = ["LocalExecutor", "DaskExecutor", "make_executor", "run_task"]


def run_task(fn, args):
    """Run ``fn(*args)`` with one torch thread; return (record, seconds). Ctrl-C: record None."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        record = fn(*args)
    except KeyboardInterrupt:
        record = None
    return record, time.perf_counter() - t0


_STOP = None  # multiprocessing.Event shared with the local workers


def _worker_init(stop_event) -> None:
    global _STOP
    _STOP = stop_event
    try:  # own process group: a terminal Ctrl-C reaches the parent only, which forwards one SIGINT
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # idle workers ignore Ctrl-C; tasks re-enable it


def _entry(task):
    key, fn, args = task
    if _STOP is not None and _STOP.is_set():
        return key, None, 0.0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        record, seconds = run_task(fn, args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return key, record, seconds


def _interrupted(record) -> bool:
    return record is None or bool(isinstance(record, dict) and record.get("interrupted"))


class LocalExecutor:
    """Tasks in ``workers`` local processes (fork where available); 1 = in this process."""

    def __init__(self, workers: int = 2):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.workers = workers

    def describe(self) -> str:
        return f"{self.workers} local worker(s)"

    def run(self, tasks, report, on_start=lambda: None) -> bool:
        """Run ``tasks``; ``on_start`` is called once the workers exist (no thread alive at fork)."""
        tasks = list(tasks)
        if self.workers <= 1 or len(tasks) <= 1:
            on_start()
            for key, fn, args in tasks:
                try:
                    record, seconds = run_task(fn, args)
                except KeyboardInterrupt:
                    return True
                if record is None:
                    return True
                report(key, record, seconds)
                if _interrupted(record):
                    return True
            return False
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        stop = ctx.Event()
        pool = ctx.Pool(min(self.workers, len(tasks)), initializer=_worker_init, initargs=(stop,))
        interrupted = False
        on_start()
        try:
            results = pool.imap_unordered(_entry, tasks)
            while True:
                try:
                    key, record, seconds = next(results)
                except StopIteration:
                    break
                except KeyboardInterrupt:
                    interrupted = True
                    stop.set()
                    for proc in list(getattr(pool, "_pool", [])):  # ask running tasks to stop early
                        try:
                            os.kill(proc.pid, signal.SIGINT)
                        except (ProcessLookupError, AttributeError):
                            pass
                    continue
                if record is None:
                    interrupted = True
                    continue
                report(key, record, seconds)
                interrupted |= _interrupted(record)
            pool.close()
        except KeyboardInterrupt:  # a second Ctrl-C while draining: give up on running tasks
            interrupted = True
            pool.terminate()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
        return interrupted


class DaskExecutor:
    """Tasks on a ``dask.distributed`` cluster: ``address`` ("tcp://host:8786") or ``scheduler_file``."""

    def __init__(self, address: str | None = None, scheduler_file: str | None = None, timeout: float = 30.0):
        if (address is None) == (scheduler_file is None):
            raise ValueError("give exactly one of address (tcp://host:port) and scheduler_file")
        if address is not None and (not isinstance(address, str) or "://" not in address):
            raise ValueError(f"address must look like tcp://host:port, got {address!r}")
        self.address, self.scheduler_file, self.timeout = address, scheduler_file, timeout

    def describe(self) -> str:
        return f"Dask scheduler {self.address or self.scheduler_file}"

    def run(self, tasks, report, on_start=lambda: None) -> bool:
        try:
            from distributed import Client, as_completed
        except ImportError as err:  # pragma: no cover - part of the dev extra
            raise ValueError("the Dask executor needs the 'distributed' package "
                             "(pip install -e '.[dev]')") from err
        tasks = list(tasks)
        kw = {"scheduler_file": self.scheduler_file} if self.scheduler_file else {"address": self.address}
        interrupted = False
        with Client(timeout=self.timeout, **kw) as client:
            on_start()
            futures = {client.submit(run_task, fn, args, pure=False): key for key, fn, args in tasks}
            try:
                for fut in as_completed(futures):
                    record, seconds = fut.result()
                    if record is None:
                        interrupted = True
                        continue
                    report(futures[fut], record, seconds)
                    interrupted |= _interrupted(record)
            except KeyboardInterrupt:
                interrupted = True
                client.cancel(list(futures))
        return interrupted


def make_executor(workers: int = 2, scheduler: str | None = None, scheduler_file: str | None = None):
    """The executor the command line asks for: Dask when a scheduler is given, else local processes."""
    if scheduler or scheduler_file:
        return DaskExecutor(scheduler, scheduler_file)
    return LocalExecutor(workers)
