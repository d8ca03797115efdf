"""Executors, resumable runs and sweeps: a run computes the same record wherever it runs."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flatlab.cli import main
from flatlab.lab import runner as E
from flatlab.lab import sweep as S
from flatlab.lab.executors import DaskExecutor, LocalExecutor, make_executor

from cases import QUIET, SMOKE_SCENARIO, SWEEP_ARGS, SWEEP_GRID


def _strip_clocks(res: dict) -> dict:
    """A results dict without its wall-clock fields (the only non-deterministic ones)."""
    res = json.loads(json.dumps(res))
    res.pop("timing", None)
    res.pop("figures", None)
    for row in res.get("table", []):
        row.pop("seconds", None)
    return res


def test_executor_bad_input():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="workers"):
            LocalExecutor(bad)
    with pytest.raises(ValueError, match="exactly one"):
        DaskExecutor()
    with pytest.raises(ValueError, match="exactly one"):
        DaskExecutor("tcp://127.0.0.1:1", scheduler_file="x.json")
    with pytest.raises(ValueError, match="address"):
        DaskExecutor("127.0.0.1:8786")
    assert isinstance(make_executor(3), LocalExecutor) and make_executor(3).workers == 3
    assert isinstance(make_executor(1, scheduler="tcp://h:1"), DaskExecutor)


def test_cli_rejects_two_schedulers(tmp_path, capsys):
    code = main(["reproduce", "scenario3", "--smoke", "--out", str(tmp_path), "--scheduler", "tcp://h:1",
                 "--scheduler-file", "s.json"])
    assert code == 2 and "--scheduler" in capsys.readouterr().err


def test_sweep_bad_grid(tmp_path):
    for grid, word in (({"depth": [1]}, "setting"), ({"lr": []}, "lr"), ({"lr": [0.0]}, "lr"),
                       ({"width": [10.5]}, "width"), ({"seed": [-1]}, "seed"), ({"rho": "0.1"}, "rho")):
        with pytest.raises(ValueError, match=word):
            S.run_sweep("scenario3", "one_sam", grid, preset="smoke", out_dir=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="method"):
        S.run_sweep("scenario3", "gd_wd", {"seed": [0]}, preset="smoke", out_dir=tmp_path, **QUIET)


def test_resume_keeps_finished_runs_and_reruns_changed_ones(tmp_path, monkeypatch):
    first = E.run_scenario(*SMOKE_SCENARIO, seeds=[0], out_dir=tmp_path, workers=1, **QUIET)
    saved = sorted(p.name for p in (tmp_path / "scenario3" / "runs").iterdir())
    assert saved == ["one_sam-0.json", "one_sam_projected-0.json"]

    def no_training(*args):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(E, "run_job", no_training)  # ScenarioStudy.jobs looks run_job up here
    again = E.run_scenario(*SMOKE_SCENARIO, seeds=[0], out_dir=tmp_path, workers=1, **QUIET)
    assert _strip_clocks(again) == _strip_clocks(first)
    with pytest.raises(AssertionError, match="trained again"):  # a new seed is a new job
        E.run_scenario(*SMOKE_SCENARIO, seeds=[0, 1], out_dir=tmp_path, workers=1, **QUIET)
    with pytest.raises(AssertionError, match="trained again"):  # resume=False reruns everything
        E.run_scenario(*SMOKE_SCENARIO, seeds=[0], out_dir=tmp_path, workers=1, resume=False, **QUIET)
    # a saved run whose settings differ (another fingerprint) is not reused
    path = tmp_path / "scenario3" / "runs" / "one_sam-0.json"
    saved = json.loads(path.read_text())
    saved["fingerprint"]["model"]["width"] += 1
    path.write_text(json.dumps(saved))
    with pytest.raises(AssertionError, match="trained again"):
        E.run_scenario(*SMOKE_SCENARIO, seeds=[0], out_dir=tmp_path, workers=1, **QUIET)


def test_sweep_writes_table_csv_and_plot(tmp_path):
    res = S.run_sweep("scenario3", "one_sam", SWEEP_GRID, preset="smoke", out_dir=tmp_path, workers=1,
                      **{**QUIET, "figures": True})
    folder = tmp_path / "sweep"
    assert res["varying"] == ["lr"] and len(res["table"]) == 4 and not res["interrupted"]
    lines = (folder / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["lr", "seed", "final_test_acc"] and len(lines) == 5
    on_disk = json.loads((folder / "results.json").read_text())
    assert on_disk["table"] == res["table"] and (folder / "sweep.png").stat().st_size > 1000
    # each row is the run of that point: its lr is the one in every phase of the recorded config
    for row, run in zip(res["table"], res["runs"]):
        assert run["point"] == {"lr": row["lr"], "seed": row["seed"]}
        assert row["final_test_acc"] == run["final"]["test_acc"] == run["history"]["test_acc"][-1]
    a, b = (r["history"]["train_loss"] for r in res["runs"][:2])  # lr 0.1 vs 0.05, seed 0
    assert a != b


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, log: Path) -> subprocess.Popen:
    """A process in its own session (so that it and its children can be stopped together)."""
    fh = open(log, "w")
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@pytest.mark.slow  # starts a scheduler and two workers (~30 s on 2 busy cores)
@pytest.mark.dask
def test_dask_sweep_equals_local_sweep(tmp_path):
    pytest.importorskip("distributed", reason="the dev extra installs distributed")
    from distributed import Client

    dask = Path(sys.executable).with_name("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    try:
        scheduler_file = tmp_path / "scheduler.json"
        procs.append(_start([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                             "--no-dashboard", "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log"))
        for i in range(2):
            procs.append(_start([str(dask), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                 "--no-dashboard", "--local-directory", str(tmp_path / f"w{i}")],
                                tmp_path / f"worker{i}.log"))
        deadline = time.monotonic() + 90
        while True:  # the scheduler may take a moment to listen
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
                    workers = client.scheduler_info()["workers"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers.values())

        code = main(["sweep", *SWEEP_ARGS, "--out", str(tmp_path / "dask"), "--scheduler", address,
                     "--no-progress"])
        assert code == 0
        code = main(["reproduce", "scenario3", "--smoke", "--seeds", "0", "--out", str(tmp_path / "dask"),
                     "--scheduler-file", str(scheduler_file), "--no-progress", "--no-figures"])
        assert code == 0
    finally:
        for proc in reversed(procs):
            _stop(proc)
    assert all(p.poll() is not None for p in procs)
    assert main(["sweep", *SWEEP_ARGS, "--out", str(tmp_path / "local"), "--workers", "1", "--no-progress"]) == 0
    dask_res, local_res = (json.loads((tmp_path / d / "sweep" / "results.json").read_text())
                           for d in ("dask", "local"))
    assert len(dask_res["table"]) == 4 and not dask_res["interrupted"]
    assert _strip_clocks(dask_res) == _strip_clocks(local_res)  # bit-identical records
    assert (tmp_path / "dask" / "sweep" / "results.csv").read_text().splitlines()[1:] != []
    assert main(["reproduce", "scenario3", "--smoke", "--seeds", "0", "--out", str(tmp_path / "local"),
                 "--workers", "1", "--no-progress", "--no-figures"]) == 0
    dask_res, local_res = (json.loads((tmp_path / d / "scenario3" / "results.json").read_text())
                           for d in ("dask", "local"))
    assert len(dask_res["runs"]) == 2 and _strip_clocks(dask_res) == _strip_clocks(local_res)
