"""Training a fixed list of scaled points of one baseline, resumably, on Optuna or Ray Tune.

Step 1 (the constrained alpha, beta, gamma grid at phi = 1), Step 2's family training and the
figure experiments are all such lists: each point is a row with a `label`, a `series` and the
(d, w, r) coefficients applied to the baseline; each point is one trial of the backend, which calls
`GridObjective.evaluate_point`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from effscale.models.spec import NetworkSpec
from effscale.scaling.rules import Coefficients, apply, compound
from effscale.search.best import best_rows, seed_summary
from effscale.search.objective import Evaluation
from effscale.search.optuna_runner import PointGridSampler, StudySetup, finished, optimize, queued, started
from effscale.search.rundir import RunDir
from effscale.search.trainer import Report

POINT = "point"


@dataclass(frozen=True)
class GridObjective:
    """Point index -> baseline scaled by the point's (d, w, r) -> proxy-trained metrics; picklable."""

    points: tuple[dict[str, Any], ...]
    baseline: NetworkSpec
    evaluation: Evaluation
    prune: bool = False

    def spec_of(self, index: int) -> NetworkSpec:
        point = self.points[index]
        return apply(self.baseline, Coefficients(point["d"], point["w"], point["r"]))

    def evaluate_point(self, index: int, report: Report | None = None) -> dict[str, Any]:
        return self.evaluation.evaluate(self.spec_of(index), report)

    def __call__(self, trial: optuna.Trial) -> float:
        index = trial.suggest_categorical(POINT, list(range(len(self.points))))
        report = _pruning_hook(trial) if self.prune else None
        outcome = self.evaluate_point(index, report)
        trial.set_user_attr("outcome", outcome)
        if outcome["pruned"]:
            raise optuna.TrialPruned()
        return outcome["accuracy"]


def _pruning_hook(trial: optuna.Trial) -> Report:
    def report(epoch: int, accuracy: float) -> bool:
        trial.report(accuracy, epoch)
        return trial.should_prune()

    return report


@dataclass(frozen=True)
class AllPointsStarted:
    """The study is done when every point has a live or finished trial and nothing is queued."""

    num_points: int

    def __call__(self, trials: list[FrozenTrial]) -> bool:
        return not queued(trials) and {point_of(t) for t in started(trials)} >= set(range(self.num_points))


def point_of(trial: FrozenTrial) -> int | None:
    """The point a trial trains, known from the moment `ask` hands it out (before the objective suggests it):
    the GridSampler's grid id (the grid is `range(n)`, so id = point), or a re-queued trial's fixed value."""
    if POINT in trial.params:
        return trial.params[POINT]
    fixed = trial.system_attrs.get("fixed_params", {})
    return fixed.get(POINT, trial.system_attrs.get("grid_id"))


def point_rows(point: dict[str, Any], outcome: dict[str, Any] | None, state: str, reason: str | None) -> list[dict]:
    """results.csv rows of one point: one per trained seed, or one row saying why nothing was trained."""
    base = {key: value for key, value in point.items() if key != "index"}
    base.update(series=point.get("series", "grid"), state=state, reason=reason)
    if not outcome:
        return [{**base, "seed": None, "accuracy": math.nan, "val_loss": math.nan, "epochs": 0.0, "seconds": 0.0}]
    return [{**base, "seed": run["seed"], "accuracy": run["val_accuracy"], "val_loss": run["val_loss"],
             "epochs": run["epochs"], "seconds": run["train_seconds"]} for run in outcome["runs"]]


def optuna_results(study: optuna.Study, objective: GridObjective, skipped: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per point and seed from the study's trials (interrupted attempts left out), plus skipped points."""
    rows = []
    for trial in finished(study.get_trials(deepcopy=False)):
        if POINT not in trial.params:
            continue
        point = objective.points[trial.params[POINT]]
        rows += point_rows(point, trial.user_attrs.get("outcome"), trial.state.name, trial.user_attrs.get("reason"))
    return pd.DataFrame(rows + skipped_rows(skipped))


def skipped_rows(skipped: Sequence[dict[str, Any]]) -> list[dict]:
    """results.csv rows of the points screened out before training, each with its reason."""
    return [row for point in skipped for row in point_rows(point, None, "SKIPPED", point["reason"])]


@dataclass(frozen=True)
class GridRun:
    """One grid search: the screened points, how they train, where, and on which backend."""

    run_dir: Path
    objective: GridObjective
    skipped: tuple[dict[str, Any], ...]
    backend: str = "optuna"
    jobs: int = 1
    storage_url: str | None = None
    address: str | None = None
    asha: bool = False
    name: str = "grid"

    def run(self) -> pd.DataFrame:
        """Train every point not yet finished (resuming), then write and return results.csv."""
        if self.backend == "ray":
            from effscale.search.ray_runner import run_ray_grid

            results = run_ray_grid(self)
        else:
            results = self._run_optuna()
        results.to_csv(RunDir(self.run_dir).results, index=False)
        return results

    def _run_optuna(self) -> pd.DataFrame:
        grid = {POINT: list(range(len(self.objective.points)))}
        pruner = optuna.pruners.SuccessiveHalvingPruner() if self.objective.prune else None
        setup = StudySetup(self.run_dir, self.name, PointGridSampler(grid, seed=0), pruner=pruner,
                           storage_url=self.storage_url)
        study = optimize(setup, self.objective, AllPointsStarted(len(self.objective.points)),
                         total=len(self.objective.points), jobs=self.jobs)
        return optuna_results(study, self.objective, list(self.skipped))


def write_best(run_dir: RunDir, results: pd.DataFrame, baseline: NetworkSpec) -> None:
    """Step 1's best.json: the best point's alpha, beta, gamma and accuracy, the baseline, the spec at phi = 1."""
    rows = best_rows(results, "accuracy")
    if rows is None:
        return
    row = rows.iloc[0]
    alpha, beta, gamma = float(row["alpha"]), float(row["beta"]), float(row["gamma"])
    run_dir.write_json(run_dir.best, {
        "alpha": alpha, "beta": beta, "gamma": gamma, "label": row["label"], **seed_summary(rows),
        "macs": int(row["macs"]), "params": int(row["params"]),
        "baseline": baseline.to_dict(),
        "spec": apply(baseline, compound(alpha, beta, gamma, 1.0)).to_dict(),
    })
