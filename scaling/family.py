"""A model family: one baseline expanded over several phi by a rule, as a table."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from effscale.models.complexity import count
from effscale.models.spec import NetworkSpec
from effscale.scaling.rules import Coefficients, apply

Rule = Callable[[float], Coefficients]


def family(spec: NetworkSpec, rule: Rule, phis: Iterable[float]) -> list[tuple[float, Coefficients, NetworkSpec]]:
    """(phi, coefficients, scaled spec) for each phi."""
    members = []
    for phi in phis:
        coefficients = rule(phi)
        members.append((phi, coefficients, apply(spec, coefficients)))
    return members


def family_table(spec: NetworkSpec, rule: Rule, phis: Iterable[float]) -> pd.DataFrame:
    """One row per phi: coefficients, resolution, per-stage channels and repeats, params, MACs, acts, MACs ratio."""
    base_macs = count(apply(spec, rule(0))).macs
    rows = []
    for phi, coefficients, member in family(spec, rule, phis):
        complexity = count(member)
        rows.append({
            "phi": phi,
            "depth": coefficients.depth,
            "width": coefficients.width,
            "resolution": member.resolution,
            "stem": member.stem_channels,
            "channels": "/".join(str(stage.out_channels) for stage in member.stages),
            "repeats": "/".join(str(stage.repeats) for stage in member.stages),
            "head": member.head_channels,
            "params": complexity.params,
            "macs": complexity.macs,
            "acts": complexity.acts,
            "macs_ratio": complexity.macs / base_macs,
        })
    return pd.DataFrame(rows)
