"""The inverse of compound scaling: the phi whose scaled network reaches a MACs budget."""

from __future__ import annotations

from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.scaling.rules import apply, compound


def phi_for_macs(spec: NetworkSpec, alpha: float, beta: float, gamma: float, target_macs: float,
                 low: float = -8.0, high: float = 16.0, iterations: int = 60) -> float:
    """The largest phi in [low, high] whose rounded network stays within `target_macs` (bisection on analytic counts)."""
    if target_macs <= 0:
        raise EffscaleError(f"target MACs must be > 0, got {target_macs:g}")
    if alpha * beta * gamma == 1:
        raise EffscaleError("alpha = beta = gamma = 1 does not scale: no phi reaches another budget")

    def macs(phi: float) -> int:
        return count(apply(spec, compound(alpha, beta, gamma, phi))).macs

    if macs(low) > target_macs or macs(high) < target_macs:
        raise EffscaleError(f"target {target_macs:g} MACs is out of reach for phi in [{low:g}, {high:g}]")
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (middle, high) if macs(middle) <= target_macs else (low, middle)
    return low
