"""The official rounding rules that turn real coefficients into a buildable spec."""

from __future__ import annotations

import math

from effscale.models.errors import EffscaleError
from effscale.models.layers import make_divisible
from effscale.models.spec import NetworkSpec

RESOLUTION_DIVISOR = 4  # every released EfficientNet resolution (224 .. 600) is a multiple of 4


def round_filters(channels: int, width: float) -> int:
    """Official `round_filters`: channels * width to a multiple of 8, never below 90% of it."""
    return make_divisible(channels * width, 8)


def round_repeats(repeats: int, depth: float) -> int:
    """Official `round_repeats`: ceil(depth * repeats), per stage."""
    return int(math.ceil(depth * repeats))


def round_resolution(resolution: int, factor: float, divisor: int = RESOLUTION_DIVISOR) -> int:
    """resolution * factor to the nearest multiple of `divisor` (4 by default, like all released sizes), at least 8."""
    return max(8, int(round(resolution * factor / divisor)) * divisor)


def check_coefficient(name: str, value: float, minimum: float = 0.0) -> None:
    """Reject non-positive (or below `minimum`) coefficients with one clear line."""
    if not math.isfinite(value) or value <= 0 or value < minimum:
        bound = f">= {minimum:g}" if minimum else "> 0"
        raise EffscaleError(f"{name} must be a finite number {bound}, got {value:g}")


def scaled(spec: NetworkSpec, depth: float = 1.0, width: float = 1.0, resolution: int | None = None,
           dropout: float | None = None) -> NetworkSpec:
    """`spec` with repeats scaled by `depth`, channels (stem, stages, head) by `width`, at `resolution` pixels."""
    check_coefficient("depth", depth)
    check_coefficient("width", width)
    stages = tuple(
        stage.__class__(**{**stage.__dict__, "repeats": round_repeats(stage.repeats, depth),
                           "out_channels": round_filters(stage.out_channels, width)})
        for stage in spec.stages
    )
    return spec.with_(
        stages=stages,
        stem_channels=round_filters(spec.stem_channels, width),
        head_channels=round_filters(spec.head_channels, width) if spec.head_channels else 0,
        resolution=spec.resolution if resolution is None else resolution,
        dropout=spec.dropout if dropout is None else dropout,
    )
