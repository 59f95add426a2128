"""Named models: the baselines as data, and EfficientNet-B1..B7 from the released coefficient table."""

from __future__ import annotations

from effscale.models.errors import EffscaleError
from effscale.models.notation import parse_stage
from effscale.models.spec import NetworkSpec


def _spec(name: str, stages: str, **fields: object) -> NetworkSpec:
    return NetworkSpec(name=name, stages=tuple(parse_stage(s) for s in stages.split()), **fields)  # type: ignore[arg-type]


BASELINES: dict[str, NetworkSpec] = {
    # Table 1 of the paper.
    "efficientnet-b0": _spec(
        "efficientnet-b0",
        "mb_r1_k3_s1_e1_o16_se0.25 mb_r2_k3_s2_e6_o24_se0.25 mb_r2_k5_s2_e6_o40_se0.25 mb_r3_k3_s2_e6_o80_se0.25 "
        "mb_r3_k5_s1_e6_o112_se0.25 mb_r4_k5_s2_e6_o192_se0.25 mb_r1_k3_s1_e6_o320_se0.25",
    ),
    "mobilenet-v1": _spec(
        "mobilenet-v1",
        "ds_r1_k3_s1_e1_o64_noskip_pw ds_r2_k3_s2_e1_o128_noskip_pw ds_r2_k3_s2_e1_o256_noskip_pw "
        "ds_r6_k3_s2_e1_o512_noskip_pw ds_r2_k3_s2_e1_o1024_noskip_pw",
        head_channels=0, activation="relu", drop_connect=0.0,
    ),
    "mobilenet-v2": _spec(
        "mobilenet-v2",
        "mb_r1_k3_s1_e1_o16 mb_r2_k3_s2_e6_o24 mb_r3_k3_s2_e6_o32 mb_r4_k3_s2_e6_o64 mb_r3_k3_s1_e6_o96 "
        "mb_r3_k3_s2_e6_o160 mb_r1_k3_s1_e6_o320",
        activation="relu6", drop_connect=0.0,
    ),
    # The common variant with the stride on each bottleneck's 3x3 conv.
    "resnet-50": _spec(
        "resnet-50",
        "bn_r3_k3_s1_e0.25_o256 bn_r4_k3_s2_e0.25_o512 bn_r6_k3_s2_e0.25_o1024 bn_r3_k3_s2_e0.25_o2048",
        stem_channels=64, stem_kernel=7, stem_pool=True, head_channels=0, activation="relu", dropout=0.0,
        drop_connect=0.0,
    ),
    # The released MnasNet-A1 block list.
    "mnasnet-a1": _spec(
        "mnasnet-a1",
        "ds_r1_k3_s1_e1_o16_noskip mb_r2_k3_s2_e6_o24 mb_r3_k5_s2_e3_o40_se0.25 mb_r4_k3_s2_e6_o80 "
        "mb_r2_k3_s1_e6_o112_se0.25 mb_r3_k5_s2_e6_o160_se0.25 mb_r1_k3_s1_e6_o320",
        activation="relu",
    ),
}

# Released (width, depth, resolution, dropout) of efficientnet-b0 .. b7.
EFFICIENTNET_COEFFICIENTS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-b0": (1.0, 1.0, 224, 0.2),
    "efficientnet-b1": (1.0, 1.1, 240, 0.2),
    "efficientnet-b2": (1.1, 1.2, 260, 0.3),
    "efficientnet-b3": (1.2, 1.4, 300, 0.3),
    "efficientnet-b4": (1.4, 1.8, 380, 0.4),
    "efficientnet-b5": (1.6, 2.2, 456, 0.4),
    "efficientnet-b6": (1.8, 2.6, 528, 0.5),
    "efficientnet-b7": (2.0, 3.1, 600, 0.5),
}

MODEL_NAMES: tuple[str, ...] = tuple(dict.fromkeys([*EFFICIENTNET_COEFFICIENTS, *BASELINES]))


def baseline_of(name: str) -> str:
    """The baseline a named model is scaled from (efficientnet-bN -> efficientnet-b0; others: themselves)."""
    return "efficientnet-b0" if name in EFFICIENTNET_COEFFICIENTS else name


def get_model(name: str) -> NetworkSpec:
    """The spec of a named model; unknown names raise `EffscaleError` listing the known ones."""
    if name in EFFICIENTNET_COEFFICIENTS and name not in BASELINES:
        from effscale.scaling.rounding import scaled  # the family members are B0 under the official rules

        width, depth, resolution, dropout = EFFICIENTNET_COEFFICIENTS[name]
        return scaled(BASELINES["efficientnet-b0"], depth, width, resolution, dropout).with_(name=name)
    if name not in BASELINES:
        raise EffscaleError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return BASELINES[name]
