"""Scaling rules: real (depth, width, resolution) coefficients, and how a spec takes them."""

from __future__ import annotations

from dataclasses import dataclass

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.models.zoo import EFFICIENTNET_COEFFICIENTS
from effscale.scaling.rounding import check_coefficient, round_resolution, scaled

PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA = 1.2, 1.1, 1.15
_B0_RESOLUTION = EFFICIENTNET_COEFFICIENTS["efficientnet-b0"][2]


@dataclass(frozen=True)
class Coefficients:
    """Multipliers of depth (repeats), width (channels) and resolution (pixels); dropout if the rule sets it."""

    depth: float = 1.0
    width: float = 1.0
    resolution: float = 1.0
    dropout: float | None = None

    def __post_init__(self) -> None:
        for name in ("depth", "width", "resolution"):
            check_coefficient(name, getattr(self, name))


def compound(alpha: float, beta: float, gamma: float, phi: float) -> Coefficients:
    """The paper's rule: d = alpha^phi, w = beta^phi, r = gamma^phi, for any real phi (negative too)."""
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_coefficient(name, value, minimum=1.0)
    try:
        return Coefficients(alpha**phi, beta**phi, gamma**phi)
    except OverflowError:
        raise EffscaleError(f"phi {phi:g} is too large: alpha^phi, beta^phi or gamma^phi overflows") from None


def official(phi: float) -> Coefficients:
    """The released B0..B7 table as a rule: phi = N gives efficientnet-bN's coefficients."""
    if phi != int(phi) or not 0 <= phi < len(EFFICIENTNET_COEFFICIENTS):
        raise EffscaleError(f"--official takes whole phi from 0 to {len(EFFICIENTNET_COEFFICIENTS) - 1}, got {phi:g}")
    width, depth, pixels, dropout = EFFICIENTNET_COEFFICIENTS[f"efficientnet-b{int(phi)}"]
    return Coefficients(depth, width, pixels / _B0_RESOLUTION, dropout)


def single(dimension: str, value: float) -> Coefficients:
    """Scale one dimension ("depth", "width" or "resolution") by `value`, the others not at all."""
    if dimension not in ("depth", "width", "resolution"):
        raise EffscaleError(f"unknown dimension {dimension!r}; known: depth, width, resolution")
    return Coefficients(**{dimension: value})


def apply(spec: NetworkSpec, coefficients: Coefficients) -> NetworkSpec:
    """`spec` scaled by `coefficients` under the official rounding rules (a resolution factor of 1 keeps the
    baseline's resolution, also one that is not a multiple of 4)."""
    resolution = spec.resolution if coefficients.resolution == 1 else round_resolution(spec.resolution, coefficients.resolution)
    return scaled(spec, coefficients.depth, coefficients.width, resolution, coefficients.dropout)
