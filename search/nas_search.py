"""MNAS-style baseline search: sample a spec from the space, reject it over the cost cap, proxy-train, reward.

Each trial of the backend calls `NasObjective`: single objective, it returns the reward
ACC * (COST / T)^w; multi-objective (NSGA-II), the pair (accuracy, cost) and the Pareto front is
the study's `best_trials` (the same set the report draws from the results: the candidates no other
beats on both accuracy and cost). The results table has one row per trial and training seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from effscale.models.complexity import count
from effscale.models.notation import format_stage
from effscale.models.spec import NetworkSpec
from effscale.search.best import best_rows, seed_summary
from effscale.search.cost import cost_of
from effscale.search.objective import Evaluation
from effscale.search.optuna_runner import StudySetup, finished, optimize, queued, started
from effscale.search.reward import RewardSpec
from effscale.search.rundir import RunDir
from effscale.search.space import SearchSpace

COLUMNS = ["trial", "label", "series", "params", "macs", "acts", "cost", "accuracy", "reward", "seed", "seconds",
           "state", "reason", "stages"]


@dataclass(frozen=True)
class NasObjective:
    """Trial -> spec -> COST -> proxy-trained outcome (rejected over the MACs cap before training) -> value(s).

    Records on the trial: "spec" (its dict), "cost", and after training "outcome" and "reward".
    Picklable for worker processes.
    """

    space: SearchSpace
    evaluation: Evaluation
    reward: RewardSpec
    multi_objective: bool = False

    @property
    def directions(self) -> tuple[str, ...]:
        return ("maximize", "minimize") if self.multi_objective else ("maximize",)

    def score(self, spec: NetworkSpec, cost: float) -> tuple[dict[str, Any], float]:
        """(outcome, reward) of a sampled spec; raises Rejected over the MACs cap (before training) or Diverged."""
        outcome = self.evaluation.evaluate(spec)
        return outcome, self.reward(outcome["accuracy"], cost)

    def values(self, outcome: dict[str, Any], cost: float, reward: float) -> float | tuple[float, float]:
        """What the searcher optimises: the reward, or (accuracy, cost) for a multi-objective searcher."""
        return (outcome["accuracy"], cost) if self.multi_objective else reward

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        spec = self.space.sample(trial)
        cost = cost_of(spec, self.reward.cost)
        trial.set_user_attr("spec", spec.to_dict())
        trial.set_user_attr("cost", cost)
        outcome, reward = self.score(spec, cost)
        trial.set_user_attr("outcome", outcome)
        trial.set_user_attr("reward", reward)
        return self.values(outcome, cost, reward)


@dataclass(frozen=True)
class TrialsStarted:
    """Done when `trials` trials are running or finished (interrupted attempts aside) and none is queued."""

    trials: int

    def __call__(self, trials: list[FrozenTrial]) -> bool:
        return not queued(trials) and len(started(trials)) >= self.trials


def trial_rows(trial: FrozenTrial, reward: RewardSpec) -> list[dict[str, Any]]:
    """results.csv rows of one Optuna trial."""
    attrs = trial.user_attrs
    return candidate_rows(trial.number, attrs["spec"], float(attrs["cost"]), attrs.get("outcome"), trial.state.name,
                          attrs.get("reason"), reward)


def candidate_rows(number: int, spec_dict: dict[str, Any], cost: float, outcome: dict[str, Any] | None, state: str,
                   reason: str | None, reward: RewardSpec) -> list[dict[str, Any]]:
    """results.csv rows of one candidate: one per trained seed, or one row saying why nothing was trained."""
    spec = NetworkSpec.from_dict(spec_dict)
    counts = count(spec)
    base = {"trial": number, "label": spec.name, "series": "nas", "params": counts.params,
            "macs": counts.macs, "acts": counts.acts, "cost": cost, "state": state, "reason": reason,
            "stages": " ".join(format_stage(stage) for stage in spec.stages)}
    if not outcome:
        return [{**base, "seed": None, "accuracy": math.nan, "reward": math.nan, "seconds": 0.0}]
    return [{**base, "seed": run["seed"], "accuracy": run["val_accuracy"], "reward": reward(run["val_accuracy"], cost),
             "seconds": run["train_seconds"]} for run in outcome["runs"]]


def nas_results(study: optuna.Study, reward: RewardSpec) -> pd.DataFrame:
    """One row per trial and seed (interrupted attempts and unfinished trials left out)."""
    trials = [t for t in finished(study.get_trials(deepcopy=False)) if "spec" in t.user_attrs]
    return pd.DataFrame([row for t in trials for row in trial_rows(t, reward)], columns=COLUMNS)


def write_best(run_dir: RunDir, results: pd.DataFrame, specs: dict[int, dict[str, Any]], reward: RewardSpec) -> None:
    """best.json: the candidate with the highest mean reward, its scores and its spec (under "spec")."""
    rows = best_rows(results, "reward")
    if rows is None:
        return
    first = rows.iloc[0]
    run_dir.write_json(run_dir.best, {
        "label": first["label"], "trial": int(first["trial"]), "reward": float(rows["reward"].mean()),
        **seed_summary(rows), "cost": float(first["cost"]), "reward_settings": reward.__dict__,
        "params": int(first["params"]), "macs": int(first["macs"]), "stages": first["stages"],
        "spec": specs[int(first["trial"])],
    })


@dataclass(frozen=True)
class NasRun:
    """One search: the objective, the sampler (`samplers.make_sampler`), the trial budget, where, how many workers."""

    run_dir: Path
    objective: NasObjective
    sampler: optuna.samplers.BaseSampler
    trials: int
    jobs: int = 1
    storage_url: str | None = None
    backend: str = "optuna"
    address: str | None = None

    def run(self) -> pd.DataFrame:
        """Run trials until `trials` have started (resuming), then write results.csv and best.json."""
        if self.backend == "ray":
            from effscale.search.ray_nas import run_ray_nas

            results, specs = run_ray_nas(self)
        else:
            setup = StudySetup(self.run_dir, "nas", self.sampler, self.objective.directions, storage_url=self.storage_url)
            study = optimize(setup, self.objective, TrialsStarted(self.trials), total=self.trials, jobs=self.jobs)
            results = nas_results(study, self.objective.reward)
            specs = {t.number: t.user_attrs["spec"] for t in study.get_trials(deepcopy=False) if "spec" in t.user_attrs}
        run_dir = RunDir(self.run_dir)
        results.to_csv(run_dir.results, index=False)
        write_best(run_dir, results, specs, self.objective.reward)
        return results
