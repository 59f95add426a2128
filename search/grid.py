"""The constrained compound-coefficient grid (Step 1), enumerated before any trial runs.

Points are (alpha, beta, gamma) >= 1 on a grid with |alpha * beta^2 * gamma^2 - target| <= tolerance,
or, in "solve gamma" mode, a grid over (alpha, beta) with gamma = sqrt(target / (alpha * beta^2)).
Each point scales the baseline at phi = 1; points whose analytic MACs ratio to the baseline falls
outside `macs_band`, or that build the same network as another point, are reported and skipped before training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.scaling.matching import point
from effscale.scaling.rules import apply, compound


@dataclass(frozen=True)
class GridConfig:
    step: float = 0.05
    alpha: tuple[float, float] = (1.0, 2.0)
    beta: tuple[float, float] = (1.0, 1.5)
    gamma: tuple[float, float] = (1.0, 1.5)
    target: float = 2.0
    tolerance: float = 0.1
    solve_gamma: bool = False
    macs_band: tuple[float, float] = (1.5, 2.5)

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            low, high = getattr(self, name)
            if low < 1:
                raise EffscaleError(f"the {name} range must start at >= 1 (got {low:g}): coefficients below 1 shrink")
            if high < low:
                raise EffscaleError(f"the {name} range is empty: {low:g} > {high:g}")
        if not all(math.isfinite(value) for value in (self.step, self.tolerance, self.target,
                                                       *self.alpha, *self.beta, *self.gamma, *self.macs_band)):
            raise EffscaleError("grid step, tolerance, target, ranges and MACs band must be finite numbers")
        if self.step <= 0 or self.tolerance < 0 or self.target <= 1:
            raise EffscaleError("step must be > 0, tolerance >= 0 and the constraint target > 1")


@dataclass(frozen=True)
class GridPoint:
    index: int
    alpha: float
    beta: float
    gamma: float

    @property
    def label(self) -> str:
        return f"a={self.alpha:g} b={self.beta:g} g={self.gamma:g}"

    @property
    def constraint(self) -> float:
        """alpha * beta^2 * gamma^2."""
        return self.alpha * self.beta**2 * self.gamma**2


def _axis(bounds: tuple[float, float], step: float) -> list[float]:
    count_ = int(math.floor((bounds[1] - bounds[0]) / step + 1e-9)) + 1
    return [round(bounds[0] + i * step, 10) for i in range(count_)]


def enumerate_points(config: GridConfig) -> list[GridPoint]:
    """Every grid point that satisfies the constraint, in a fixed order."""
    triples = []
    for alpha in _axis(config.alpha, config.step):
        for beta in _axis(config.beta, config.step):
            if config.solve_gamma:
                gamma = math.sqrt(config.target / (alpha * beta**2))
                if config.gamma[0] <= gamma <= config.gamma[1]:
                    triples.append((alpha, beta, round(gamma, 4)))
                continue
            for gamma in _axis(config.gamma, config.step):
                if abs(alpha * beta**2 * gamma**2 - config.target) <= config.tolerance:
                    triples.append((alpha, beta, gamma))
    if not triples:
        raise EffscaleError(
            f"no grid point satisfies |alpha * beta^2 * gamma^2 - {config.target:g}| <= {config.tolerance:g}"
            f" with step {config.step:g}: widen the ranges or the tolerance")
    return [GridPoint(i, *triple) for i, triple in enumerate(triples)]


OUTSIDE_BAND = "MACs ratio outside the band"  # how a skipped row's reason starts when its MACs ratio is out of band


def screen(points: list[GridPoint], baseline: NetworkSpec, config: GridConfig) -> tuple[list[dict], list[dict]]:
    """Scale the baseline at phi = 1 for each point and count it: (kept, skipped) rows with d, w, r and counts,
    each skipped row with its `reason`.

    Skipped: a MACs ratio outside `config.macs_band`, or the same network as a kept point. Rounding repeats
    up and channels and resolution to multiples makes nearby coefficients build identical networks at phi = 1
    (on the 32 px proxy gamma 1.1 and 1.15 both give 36 px); of each such set only the point closest to the
    constraint target is trained.
    """
    low, high = config.macs_band
    by_network: dict[NetworkSpec, list[tuple[GridPoint, dict]]] = {}
    skipped = []
    for grid_point in points:
        coefficients = compound(grid_point.alpha, grid_point.beta, grid_point.gamma, 1.0)
        row = point(baseline, coefficients, grid_point.label, "grid", **asdict(grid_point))
        if low <= row["macs_ratio"] <= high:
            by_network.setdefault(apply(baseline, coefficients), []).append((grid_point, row))
        else:
            skipped.append({**row, "reason": f"{OUTSIDE_BAND} {low:g}..{high:g}"})
    if not by_network:
        raise EffscaleError(f"every grid point's MACs ratio falls outside the band {low:g}..{high:g}")
    kept = []
    for same in by_network.values():
        chosen_point, chosen = min(same, key=lambda pair: abs(pair[0].constraint - config.target))
        kept.append(chosen)
        skipped += [{**row, "reason": f"the same network as {chosen_point.label}"} for _, row in same if row is not chosen]
    return sorted(kept, key=lambda row: row["index"]), sorted(skipped, key=lambda row: row["index"])


def constraint_values(points: list[GridPoint]) -> np.ndarray:
    """alpha * beta^2 * gamma^2 of each point."""
    return np.array([p.constraint for p in points])
