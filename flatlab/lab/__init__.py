"""The lab: what to run (specs, scenarios, appendix, beyond, sweeps), the runner, executors, figures.

Rooms, lowest first: ``spec`` (ScenarioConfig, MethodSpec, presets, seeding), ``results``
(the atomic writer, statistics), ``executors`` (local processes, Dask), ``plotting``,
``scenarios`` and ``appendix`` (configs and checks), ``runner`` (jobs -> executor ->
results.json, resumable), ``beyond`` and ``sweep`` (studies built on the runner).
"""
from __future__ import annotations

from .executors import DaskExecutor, LocalExecutor, make_executor
from .runner import SCENARIOS, get_config, run_scenario, run_scenarios, run_studies
from .spec import INIT_SEED_OFFSET, PRESETS, MethodSpec, ScenarioConfig

__all__ = ["SCENARIOS", "PRESETS", "INIT_SEED_OFFSET", "MethodSpec", "ScenarioConfig", "get_config",
           "run_scenario", "run_scenarios", "run_studies", "LocalExecutor", "DaskExecutor", "make_executor"]
