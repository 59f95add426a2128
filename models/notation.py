"""The block-string notation for stages, in the spirit of the official `r2_k3_s22_e6_i16_o24_se0.25`.

Grammar (one stage per string; options separated by `_`, in any order, each at most once)::

    stage  := type ("_" option)*
    type   := "mb"            MBConv / inverted residual (EfficientNet, MobileNetV2, MnasNet)
            | "ds"            depthwise-separable conv (MobileNetV1, MnasNet's first block)
            | "cn"            regular conv
            | "bn"            ResNet bottleneck
    option := "r" INT         repeats (default 1)
            | "k" INT         kernel size, odd (default 3)
            | "s" INT         stride of the first block; "s22" / "s11" are read as 2 / 1 (default 1)
            | "e" NUMBER      expansion (default 1): mb hidden = in * e; bn hidden = out * e
            | "o" INT         output channels (required)
            | "se" NUMBER     squeeze-and-excitation ratio of the block's input channels (default 0)
            | "noskip"        no identity shortcut
            | "pw"            ds only: activation after the pointwise conv

Example: ``mb_r2_k3_s2_e6_o24_se0.25`` is EfficientNet-B0's third stage. `format_stage` prints
the canonical form (r, k, s, e, o, then se, noskip, pw when set) and `parse_stage` reads it back:
``parse_stage(format_stage(s)) == s`` for every stage.
"""

from __future__ import annotations

import re
from decimal import Decimal

from effscale.models.errors import EffscaleError
from effscale.models.spec import BLOCK_TYPES, StageSpec

_OPTION = re.compile(r"^(?:(?P<key>se|r|k|s|e|o)(?P<value>\d+(?:\.\d+)?)|(?P<flag>noskip|pw))$")
_FIELDS = {"r": "repeats", "k": "kernel", "s": "stride", "e": "expansion", "o": "out_channels", "se": "se_ratio"}
_INTEGER_KEYS = {"r", "k", "s", "o"}


def _number(text: str) -> str:
    """Shortest exact text for a number, never in exponent form: 6.0 -> '6', 0.25 -> '0.25', 1e-05 -> '0.00001'."""
    value = float(text)
    return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")


def _stride(value: str, source: str) -> int:
    if len(value) == 2 and value[0] == value[1]:
        return int(value[0])
    if "." in value:
        raise EffscaleError(f"malformed block string {source!r}: stride must be an integer")
    return int(value)


def parse_stage(text: str) -> StageSpec:
    """Parse one block string into a `StageSpec`; a malformed string raises `EffscaleError`."""
    parts = text.strip().split("_")
    block, options = parts[0], parts[1:]
    if block not in BLOCK_TYPES:
        raise EffscaleError(f"malformed block string {text!r}: type must be one of {', '.join(BLOCK_TYPES)}")
    fields: dict[str, object] = {"block": block}
    for option in options:
        match = _OPTION.match(option)
        if match is None:
            raise EffscaleError(f"malformed block string {text!r}: cannot read option {option!r}")
        key = match["key"] or match["flag"]
        name = {"noskip": "skip", "pw": "pw_act"}.get(key, _FIELDS.get(key))
        if name in fields:
            raise EffscaleError(f"malformed block string {text!r}: option {key!r} given twice")
        value = match["value"]
        if key == "noskip":
            fields[name] = False
        elif key == "pw":
            fields[name] = True
        elif key == "s":
            fields[name] = _stride(value, text)
        elif key in _INTEGER_KEYS:
            if "." in value:
                raise EffscaleError(f"malformed block string {text!r}: {key} must be an integer")
            fields[name] = int(value)
        else:
            fields[name] = float(value)
    if "out_channels" not in fields:
        raise EffscaleError(f"malformed block string {text!r}: output channels 'o<int>' are required")
    fields.setdefault("repeats", 1)
    fields.setdefault("kernel", 3)
    fields.setdefault("stride", 1)
    return StageSpec(**fields)  # type: ignore[arg-type]


def format_stage(stage: StageSpec) -> str:
    """The canonical block string of a stage."""
    parts = [
        stage.block,
        f"r{stage.repeats}",
        f"k{stage.kernel}",
        f"s{stage.stride}",
        f"e{_number(str(stage.expansion))}",
        f"o{stage.out_channels}",
    ]
    if stage.se_ratio:
        parts.append(f"se{_number(str(stage.se_ratio))}")
    if not stage.skip:
        parts.append("noskip")
    if stage.pw_act:
        parts.append("pw")
    return "_".join(parts)
