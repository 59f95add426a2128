"""Reading what Step 1 found: the coefficients and baseline in a grid run directory's best.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.search.rundir import RunDir


@dataclass(frozen=True)
class FoundCoefficients:
    alpha: float
    beta: float
    gamma: float
    baseline: NetworkSpec
    accuracy: float


def read_found(run_dir: str | Path) -> FoundCoefficients:
    """alpha, beta, gamma, the baseline and the accuracy of a finished grid run; one clear line otherwise."""
    path = RunDir(run_dir).best
    if not path.is_file():
        raise EffscaleError(f"{run_dir} has no best.json: run `effscale grid --out {run_dir}` to the end first")
    try:
        best = json.loads(path.read_text())
        return FoundCoefficients(float(best["alpha"]), float(best["beta"]), float(best["gamma"]),
                                 NetworkSpec.from_dict(best["baseline"]), float(best["accuracy_mean"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise EffscaleError(f"{path} is not a grid search's best.json (corrupt, or from another command)") from None
