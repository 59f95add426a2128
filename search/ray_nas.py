"""Running the baseline search on Ray Tune: the same sampler inside Ray's OptunaSearch, the same objective.

Ray Tune schedules the trials (cores / `--jobs` CPUs each, and a GPU when there is one; `--jobs` at a time), keeps its state under
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
from effscale.search.objective import TRIAL_FAILURES
from effscale.search.ray_runner import error_line, ray_session, restored_or_new, trial_resources, with_trial_threads
from effscale.search.space import SearchSpace

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
    except TRIAL_FAILURES as reason:
        tune.report({**report, "reward": math.nan, "accuracy": math.nan, "state": "FAIL", "reason": str(reason)})
        return
    tune.report({**report, "reward": reward, "accuracy": outcome["accuracy"], "state": "COMPLETE",
                 "outcome": json.dumps(outcome)})


def run_ray_nas(run: NasRun) -> tuple[pd.DataFrame, dict[int, dict[str, Any]]]:
    """Search on Ray Tune until `run.trials` trials ran (resuming); the results table and each trial's spec."""
    objective = replace(run.objective, evaluation=with_trial_threads(run.objective.evaluation, run.jobs))
    metrics = ["accuracy", "cost"] if objective.multi_objective else "reward"
    modes = [METRICS[d] for d in objective.directions] if objective.multi_objective else "max"
    with ray_session(run.address):
        trainable = tune.with_resources(tune.with_parameters(_candidate, objective=objective),
                                        trial_resources(objective.evaluation.train))
        search = OptunaSearch(space=partial(_suggest, objective.space), metric=metrics, mode=modes, sampler=run.sampler)
        grid = restored_or_new(Path(run.run_dir), "nas", trainable, lambda path: tune.Tuner(
            trainable, tune_config=tune.TuneConfig(search_alg=search, num_samples=run.trials,
                                                   max_concurrent_trials=run.jobs),
            run_config=tune.RunConfig(name="nas", storage_path=str(path), verbose=1))).fit()
    rows, specs = [], {}
    for number, result in enumerate(sorted(grid, key=lambda result: str(result.path))):
        found = result.metrics or {}
        if "spec" in found:
            specs[number], cost = json.loads(found["spec"]), float(found["cost"])
        else:  # crashed before its report: the spec from the sampled choices
            spec = objective.space.decode(result.config)
            specs[number], cost = spec.to_dict(), cost_of(spec, objective.reward.cost)
        outcome = json.loads(found["outcome"]) if "outcome" in found else None
        state, reason = ("FAIL", error_line(result.error)) if result.error is not None else (found["state"], found.get("reason"))
        rows += candidate_rows(number, specs[number], cost, outcome, state, reason, objective.reward)
    return pd.DataFrame(rows, columns=COLUMNS), specs
