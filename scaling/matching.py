"""Points to compare scaling rules at matching MACs: compound members and single-dimension alternatives."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from effscale.models.complexity import count
from effscale.models.spec import NetworkSpec
from effscale.scaling.inverse import DIMENSIONS, coefficient_for_macs
from effscale.scaling.rules import Coefficients, apply, compound


def point(baseline: NetworkSpec, coefficients: Coefficients, label: str, series: str, **extra: Any) -> dict[str, Any]:
    """One row describing `baseline` scaled by `coefficients`: label, series, d, w, r, resolution, counts, MACs ratio."""
    spec = apply(baseline, coefficients)
    complexity = count(spec)
    return {"label": label, "series": series, **extra, "d": coefficients.depth, "w": coefficients.width,
            "r": coefficients.resolution, "resolution": spec.resolution, "params": complexity.params,
            "macs": complexity.macs, "acts": complexity.acts, "macs_ratio": complexity.macs / count(baseline).macs}


def matched_family(baseline: NetworkSpec, alpha: float, beta: float, gamma: float, phis: Iterable[float],
                   dimensions: Iterable[str] = DIMENSIONS) -> list[dict[str, Any]]:
    """The baseline, the compound member at each phi > 0, and for each, depth-, width- and resolution-only
    networks with the closest MACs (series "baseline", "compound", "depth", "width", "resolution")."""
    rows = [point(baseline, Coefficients(), "baseline", "baseline", phi=0.0, group="phi=0")]
    for phi in (phi for phi in phis if phi > 0):
        group = f"phi={phi:g}"
        member = point(baseline, compound(alpha, beta, gamma, phi), f"compound phi={phi:g}", "compound", phi=phi,
                       group=group)
        rows.append(member)
        for dimension in dimensions:
            coefficients = coefficient_for_macs(baseline, dimension, member["macs"])
            value = getattr(coefficients, dimension)
            rows.append(point(baseline, coefficients, f"{dimension} x{value:.3g} (phi={phi:g})", dimension, phi=phi,
                              group=group))
    return rows
