"""Running the baseline search on Ray Tune: the same sampler inside Ray's OptunaSearch, the same objective.

Ray Tune schedules the trials (one CPU, or one GPU, per trial; `--jobs` at a time), keeps its state under
run_dir/ray/nas and resumes with `Tuner.restore`; each trial decodes its choices into a spec and scores it
with `NasObjective.score`, so the results table has the same rows as the Optuna path.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from effscale.search.cost import cost_of
from effscale.search.nas_search import COLUMNS, NasObjective, NasRun, candidate_rows
from effscale.search.objective import Diverged, Rejected
from effscale.search.ray_runner import ray_session
from effscale.search.space import SearchSpace
from effscale.search.train_config import available_cores

METRICS = {"maximize": "max", "minimize": "min"}


def _suggest(space: SearchSpace, trial: optuna.Trial) -> None:
    """Ray's define-by-run search space: every choice of the space, suggested on Ray's own Optuna study."""
    space.sample(trial)


def _candidate(config: dict[str, Any], objective: NasObjective) -> None:
    """One candidate on a Ray worker: its spec and cost, then the outcome and reward (or why it failed)."""
    spec = objective.space.decode(config)
    cost = cost_of(spec, objective.reward.cost)
    report = {"spec": json.dumps(spec.to_dict()), "cost": cost}
    try:
        outcome, reward = objective.score(spec, cost)
    except (Rejected, Diverged) as reason:
        tune.report({**report, "reward": math.nan, "accuracy": math.nan, "state": "FAIL", "reason": str(reason)})
        return
    tune.report({**report, "reward": reward, "accuracy": outcome["accuracy"], "state": "COMPLETE",
                 "outcome": json.dumps(outcome)})


def run_ray_nas(run: NasRun) -> tuple[pd.DataFrame, dict[int, dict[str, Any]]]:
    """Search on Ray Tune until `run.trials` trials ran (resuming); the results table and each trial's spec."""
    threads = run.objective.evaluation.train.threads or max(1, available_cores() // run.jobs)
    evaluation = run.objective.evaluation
    objective = replace(run.objective, evaluation=replace(evaluation, train=evaluation.train.with_(threads=threads)))
    metrics = ["accuracy", "cost"] if objective.multi_objective else "reward"
    modes = [METRICS[d] for d in objective.directions] if objective.multi_objective else "max"
    with ray_session(run.address):
        trainable = tune.with_resources(tune.with_parameters(_candidate, objective=objective), {"cpu": threads})
        path = (Path(run.run_dir) / "ray").resolve()
        if tune.Tuner.can_restore(path / "nas"):
            print("resuming the Ray Tune experiment in", path / "nas")
            tuner = tune.Tuner.restore(str(path / "nas"), trainable, resume_errored=True)
        else:
            search = OptunaSearch(space=partial(_suggest, objective.space), metric=metrics, mode=modes,
                                  sampler=run.sampler)
            tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=search, num_samples=run.trials,
                                                                      max_concurrent_trials=run.jobs),
                               run_config=tune.RunConfig(name="nas", storage_path=str(path), verbose=1))
        grid = tuner.fit()
    rows, specs = [], {}
    for number, result in enumerate(sorted(grid, key=lambda result: str(result.path))):
        found = result.metrics or {}
        if "spec" not in found:
            continue  # crashed before its report: nothing to record
        specs[number] = json.loads(found["spec"])
        outcome = json.loads(found["outcome"]) if "outcome" in found else None
        rows += candidate_rows(number, specs[number], float(found["cost"]), outcome, found["state"],
                               found.get("reason"), objective.reward)
    return pd.DataFrame(rows, columns=COLUMNS), specs
