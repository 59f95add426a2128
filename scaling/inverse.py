"""Inverse scaling: the coefficient whose rounded network reaches a MACs budget."""

from __future__ import annotations

from collections.abc import Callable

from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.scaling.rules import Coefficients, apply, compound, single

DIMENSIONS = ("depth", "width", "resolution")


def largest_within(macs_of: Callable[[float], int], target_macs: float, low: float, high: float,
                   iterations: int = 60) -> float:
    """The largest x in [low, high] with macs_of(x) <= target (bisection; macs_of must be non-decreasing)."""
    if target_macs <= 0:
        raise EffscaleError(f"target MACs must be > 0, got {target_macs:g}")
    if macs_of(low) > target_macs or macs_of(high) < target_macs:
        raise EffscaleError(f"target {target_macs:,.0f} MACs is out of reach for values in [{low:g}, {high:g}]")
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (middle, high) if macs_of(middle) <= target_macs else (low, middle)
    return low


def phi_for_macs(spec: NetworkSpec, alpha: float, beta: float, gamma: float, target_macs: float,
                 low: float = -8.0, high: float = 16.0) -> float:
    """The largest phi whose compound-scaled network stays within `target_macs`."""
    if alpha * beta * gamma == 1:
        raise EffscaleError("alpha = beta = gamma = 1 does not scale: no phi reaches another budget")
    return largest_within(lambda phi: count(apply(spec, compound(alpha, beta, gamma, phi))).macs, target_macs, low, high)


def coefficient_for_macs(spec: NetworkSpec, dimension: str, target_macs: float, high: float = 64.0) -> Coefficients:
    """Single-dimension coefficients (depth, width or resolution only) whose network comes closest to `target_macs`.

    Rounding makes MACs a step function of the coefficient; of the step just under and just over the
    target, the closer one is returned.
    """
    def macs(value: float) -> int:
        return count(apply(spec, single(dimension, value))).macs

    below = largest_within(macs, target_macs, 1e-3, high)
    above = below + 1e-6
    while macs(above) == macs(below) and above < high:
        above *= 1.0001
    best = min((below, above), key=lambda value: abs(macs(value) - target_macs))
    return single(dimension, best)
