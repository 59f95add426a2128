"""The one objective of every search: spec -> (reject early by cost) -> proxy-train over seeds -> metrics.

Backends (Optuna, Ray Tune) differ only in how they schedule `evaluate`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from effscale.models.complexity import count
from effscale.models.spec import NetworkSpec
from effscale.search.memory import OutOfMemory
from effscale.search.task import adapt, load_task
from effscale.search.train_config import TrainConfig
from effscale.search.trainer import Report, proxy_train


class Rejected(Exception):
    """The candidate was not trained (over the cost cap); the message says why."""


class Diverged(Exception):
    """Training produced a non-finite loss; the trial is recorded as failed with this reason."""


TRIAL_FAILURES = (Rejected, Diverged, OutOfMemory)
"""What makes one trial FAIL, with the message as its reason, while the search goes on."""


@dataclass(frozen=True)
class Evaluation:
    """How candidates are trained: the data, the recipe, the number of seeds and an optional MACs cap."""

    dataset: str
    train: TrainConfig
    seeds: int = 1
    max_macs: float | None = None
    channels: int | None = None

    def evaluate(self, spec: NetworkSpec, report: Report | None = None) -> dict[str, Any]:
        """Train `spec` once per seed; `report(epoch, accuracy) -> stop?` sees the first seed only.

        Returns accuracy mean and std over seeds, the per-seed metrics under "runs", and the counts.
        Raises `Rejected` over the MACs cap, `Diverged` when any seed diverges and `OutOfMemory` when the data
        or the training does not fit: each fails the trial only (`TRIAL_FAILURES`).
        """
        task = load_task(self.dataset, spec.resolution, self.train, self.channels)
        spec = adapt(spec, task)
        macs = count(spec).macs
        if self.max_macs is not None and macs > self.max_macs:
            raise Rejected(f"{macs:,} MACs is over the cap of {self.max_macs:,.0f}")
        runs = []
        for k in range(self.seeds):
            metrics = proxy_train(spec, task, self.train.with_(seed=self.train.seed + k), report=report if k == 0 else None)
            if metrics["diverged"]:
                raise Diverged(f"seed {self.train.seed + k}: {metrics['reason']}")
            runs.append(metrics)
            if metrics["pruned"]:
                break  # the scheduler stopped the first seed: the others would be wasted
        accuracies = [run["val_accuracy"] for run in runs]
        return {
            "accuracy": statistics.fmean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "params": runs[0]["params"], "macs": runs[0]["macs"], "acts": runs[0]["acts"],
            "seconds": math.fsum(run["train_seconds"] for run in runs),
            "epochs": math.fsum(run["epochs"] for run in runs),
            "pruned": runs[0]["pruned"],
            "runs": [{"seed": self.train.seed + k, **run} for k, run in enumerate(runs)],
        }
