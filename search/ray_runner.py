"""Running the grid search on Ray Tune: one trial per point, state under the run directory, resume.

Scheduling, ASHA early stopping, storage, resume and progress output are Ray Tune's. Each trial
trains one point with `GridObjective.evaluate_point`; its last report carries the outcome as JSON,
so the results table is rebuilt from the ResultGrid alone (also after `Tuner.restore`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from effscale.models.errors import EffscaleError
from effscale.search.grid_search import POINT, GridObjective, GridRun, point_rows, skipped_rows
from effscale.search.objective import TRIAL_FAILURES, Evaluation
from effscale.search.train_config import TrainConfig, available_cores, threads_per_job

CONNECT_TIMEOUT_S = 3.0
SNAPSHOT_PERIOD_S = "1"  # Tune's default ("auto", >= 10 s) can lose trials that finished just before a kill


def run_ray_grid(grid_run: GridRun) -> pd.DataFrame:
    """Train every point not yet finished on Ray Tune (resuming from run_dir/ray/NAME) and return the results table."""
    objective = replace(grid_run.objective, evaluation=with_trial_threads(grid_run.objective.evaluation, grid_run.jobs))
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", SNAPSHOT_PERIOD_S)  # read when `fit` starts; the user's value wins
    with ray_session(grid_run.address):
        trainable = tune.with_resources(tune.with_parameters(_trial, objective=objective, per_epoch=grid_run.asha),
                                        trial_resources(objective.evaluation.train))
        results = restored_or_new(Path(grid_run.run_dir), grid_run.name, trainable, lambda path: tune.Tuner(
            trainable, param_space={POINT: tune.grid_search(list(range(len(objective.points))))},
            tune_config=_tune_config(grid_run), run_config=tune.RunConfig(
                name=grid_run.name, storage_path=str(path), verbose=1))).fit()
        return ray_results(results, objective, grid_run.skipped)


def with_trial_threads(evaluation: Evaluation, jobs: int) -> Evaluation:
    """`evaluation` with an explicit torch thread count: the user's, or this machine's cores / `jobs`."""
    threads = evaluation.train.threads or threads_per_job(jobs)
    return replace(evaluation, train=evaluation.train.with_(threads=threads))


def trial_resources(train: TrainConfig) -> dict[str, int]:
    """What Ray reserves for one trial (inside `ray_session`): its threads as CPUs, and a GPU when the recipe
    may use one and the cluster has one (Ray hides GPUs from trials that do not ask for them)."""
    gpu = train.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
    return {"cpu": train.num_threads, "gpu": 1 if gpu else 0}


def restored_or_new(run_dir: Path, name: str, trainable: Any, new: Callable[[Path], tune.Tuner]) -> tune.Tuner:
    """The Tune experiment under run_dir/ray/NAME, restored when it exists (errored trials run again), else `new(path)`."""
    path = (run_dir / "ray").resolve()
    if tune.Tuner.can_restore(path / name):
        print("resuming the Ray Tune experiment in", path / name)
        return tune.Tuner.restore(str(path / name), trainable, resume_errored=True)
    return new(path)


def error_line(error: BaseException) -> str:
    """The last line of a Ray trial's error (the exception itself, after Ray's traceback)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _tune_config(grid_run: GridRun) -> tune.TuneConfig:
    scheduler = None
    if grid_run.asha:
        # stop_last_trials=False: a trial reaching max_t still sends its final report with the outcome
        scheduler = ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max", grace_period=1,
                                  max_t=max(1, math.ceil(grid_run.objective.evaluation.train.epochs)),
                                  stop_last_trials=False)
    return tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=grid_run.jobs, reuse_actors=True)


def _trial(config: dict[str, Any], objective: GridObjective, per_epoch: bool) -> None:
    """One grid point on a Ray worker: per-epoch accuracy for ASHA, then the outcome (or why it failed)."""
    last_epoch = 0.0

    def report(epoch: int, accuracy: float) -> bool:
        nonlocal last_epoch
        last_epoch = float(epoch)
        tune.report({"epoch": last_epoch, "accuracy": accuracy})
        return False  # ASHA stops the trial itself, from inside tune.report

    try:
        outcome = objective.evaluate_point(config[POINT], report if per_epoch else None)
    except TRIAL_FAILURES as reason:
        tune.report({"epoch": last_epoch, "accuracy": math.nan, "state": "FAIL", "reason": str(reason)})
        return
    tune.report({"epoch": max(last_epoch, outcome["runs"][0]["epochs"]), "accuracy": outcome["accuracy"],
                 "state": "COMPLETE", "outcome": json.dumps(outcome)})


def ray_results(results: tune.ResultGrid, objective: GridObjective, skipped: tuple[dict[str, Any], ...]) -> pd.DataFrame:
    """One row per point and seed from the trials (same columns and states as the Optuna path), plus skipped points."""
    rows = []
    for result in sorted(results, key=lambda result: result.config[POINT]):
        point, metrics = objective.points[result.config[POINT]], result.metrics or {}
        if result.error is not None:
            rows += point_rows(point, None, "FAIL", error_line(result.error))
        elif "state" in metrics:
            outcome = json.loads(metrics["outcome"]) if "outcome" in metrics else None
            rows += point_rows(point, outcome, metrics["state"], metrics.get("reason"))
        elif "accuracy" in metrics:  # stopped by ASHA after its last epoch report
            run = {"seed": objective.evaluation.train.seed, "val_accuracy": metrics["accuracy"], "val_loss": math.nan,
                   "epochs": metrics["epoch"], "train_seconds": metrics.get("time_total_s", 0.0)}
            rows += point_rows(point, {"runs": [run]}, "PRUNED", None)
    return pd.DataFrame(rows + skipped_rows(skipped))


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """A quiet local Ray on this machine's cores, or the cluster at `address` (checked first); shut down after."""
    if address:
        _check_reachable(address)
        options: dict[str, Any] = {"address": address}
    else:
        options = {"num_cpus": available_cores(), "include_dashboard": False}
    try:
        ray.init(**options, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise EffscaleError(f"cannot start Ray{f' at {address}' if address else ''}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast, with one line, when a host:port address does not accept connections ("auto" is left to Ray)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep:
        return
    if not port.isdigit():
        raise EffscaleError(f"bad Ray address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise EffscaleError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}") from None
