"""The search reward ACC(m) * [COST(m) / T]^w (MnasNet; EfficientNet used COST = FLOPS, T = 400M, w = -0.07)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from effscale.models.errors import EffscaleError
from effscale.search.cost import check_cost_name

# The most negative exponent w accepted: far beyond MnasNet's -1 (its hard constraint) and the paper's -0.07.
W_MIN = -10.0
# The largest target T: with a cost >= 1 and w >= W_MIN, (COST / T)^w stays below 1e180, far from overflowing.
T_MAX = 1e18


def check_target(target: float, w: float) -> None:
    """0 < T <= T_MAX and W_MIN <= w <= 0 (a larger cost never raises the reward)."""
    if not 0 < target <= T_MAX:
        raise EffscaleError(f"target T must be > 0 and at most {T_MAX:g}, got {target:g}")
    if not W_MIN <= w <= 0:
        raise EffscaleError(f"w must lie in [{W_MIN:g}, 0] (a larger cost cannot raise the reward; the paper uses "
                            f"-0.07, MnasNet's hard constraint -1), got {w:g}")


def reward(accuracy: float, cost: float, target: float, w: float = -0.07, hard: bool = False) -> float:
    """ACC * (COST / T)^w. Soft: exponent `w` on both sides of T. Hard (MnasNet): exponent 0 at or
    under T and -1 above it, whatever `w` is."""
    check_target(target, w)
    if not math.isfinite(cost) or cost <= 0:
        raise EffscaleError(f"cost must be > 0, got {cost:g}")
    exponent = (0.0 if cost <= target else -1.0) if hard else w
    return accuracy * (cost / target) ** exponent


@dataclass(frozen=True)
class RewardSpec:
    """The reward settings of a search: target T, exponent w, hard or soft, and the COST measure's name."""

    target: float
    w: float = -0.07
    hard: bool = False
    cost: str = "macs"

    def __post_init__(self) -> None:
        check_target(self.target, self.w)
        check_cost_name(self.cost)

    def __call__(self, accuracy: float, cost: float) -> float:
        """The reward of a candidate with this accuracy and cost (measured by `self.cost`)."""
        return reward(accuracy, cost, self.target, self.w, self.hard)
