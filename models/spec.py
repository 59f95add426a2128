"""Networks as plain, immutable, serialisable data.

A `NetworkSpec` is everything needed to count, build, scale and print a network; it never
holds modules. It round-trips through JSON (`to_dict` / `from_dict`, `to_json` / `from_json`);
stages are stored in the block-string notation of `effscale.models.notation`.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, replace
from pathlib import Path
from typing import Any

from effscale.models.errors import EffscaleError

BLOCK_TYPES = {
    "mb": "MBConv / inverted residual: 1x1 expansion, depthwise kxk, optional SE, linear 1x1 projection",
    "ds": "depthwise-separable: depthwise kxk, 1x1 pointwise (MobileNetV1 and MnasNet's first block)",
    "cn": "regular kxk convolution",
    "bn": "ResNet bottleneck: 1x1 reduce, kxk (carries the stride), 1x1 expand; projection shortcut",
}
ACTIVATIONS = ("swish", "relu", "relu6")


@dataclass(frozen=True)
class StageSpec:
    """A run of `repeats` identical blocks; only the first one has `stride` and changes channels.

    `expansion`: for mb, hidden channels = in * expansion rounded to a multiple of 8
    (the input itself when expansion is 1); for bn, hidden = out * expansion
    (0.25 in ResNet-50); ignored by ds and cn. `se_ratio`: squeeze channels = max(1, int(in * se_ratio))
    of the block's INPUT channels, 0 for none. `skip`: identity shortcut where shapes allow
    (bn blocks: a shortcut always, projected where shapes differ; `skip=False` removes it). `pw_act`: ds blocks only,
    activation after the pointwise conv (MobileNetV1) or not (MnasNet).
    """

    block: str
    repeats: int
    kernel: int
    stride: int
    out_channels: int
    expansion: float = 1.0
    se_ratio: float = 0.0
    skip: bool = True
    pw_act: bool = False

    def __post_init__(self) -> None:
        if self.block not in BLOCK_TYPES:
            raise EffscaleError(f"unknown block type {self.block!r}; known: {', '.join(BLOCK_TYPES)}")
        for name in ("repeats", "kernel", "stride", "out_channels"):
            if getattr(self, name) < 1:
                raise EffscaleError(f"stage {name} must be >= 1, got {getattr(self, name)}")
        if self.kernel % 2 == 0:
            raise EffscaleError(f"kernel must be odd, got {self.kernel}")
        if self.expansion <= 0 or not 0 <= self.se_ratio <= 1:
            raise EffscaleError(f"expansion must be > 0 and se ratio in [0, 1], got {self.expansion}, {self.se_ratio}")


MAX_BLOCKS = 100_000
"""Blocks a network may have: about 1 s to count (EfficientNet-B7 has 55; depth 1.2^100 would give 10^9)."""


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network: stem conv, stages, optional 1x1 head conv, global pooling, dropout, linear classifier."""

    name: str
    stages: tuple[StageSpec, ...]
    stem_channels: int = 32
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False
    head_channels: int = 1280
    activation: str = "swish"
    dropout: float = 0.2
    drop_connect: float = 0.2
    resolution: int = 224
    num_classes: int = 1000
    in_channels: int = 3

    def __post_init__(self) -> None:
        if not self.stages:
            raise EffscaleError("a network needs at least one stage")
        if self.activation not in ACTIVATIONS:
            raise EffscaleError(f"unknown activation {self.activation!r}; known: {', '.join(ACTIVATIONS)}")
        if self.resolution < 8:
            raise EffscaleError(f"resolution must be >= 8 pixels, got {self.resolution}")
        if self.num_classes < 1 or self.in_channels < 1 or self.stem_channels < 1 or self.head_channels < 0:
            raise EffscaleError("classes, input channels and stem channels must be >= 1, head channels >= 0")
        if self.stem_stride < 1 or self.stem_kernel < 1 or self.stem_kernel % 2 == 0:
            raise EffscaleError(f"stem stride must be >= 1 and stem kernel odd, got {self.stem_stride}, {self.stem_kernel}")
        if not 0 <= self.dropout < 1 or not 0 <= self.drop_connect < 1:
            raise EffscaleError("dropout and drop-connect rates must lie in [0, 1)")
        if self.num_blocks > MAX_BLOCKS:
            raise EffscaleError(f"{self.name}: {self.num_blocks:,} blocks is more than the {MAX_BLOCKS:,} a spec may have "
                                "(counting and building go block by block)")

    @property
    def num_blocks(self) -> int:
        return sum(stage.repeats for stage in self.stages)

    def with_(self, **changes: Any) -> NetworkSpec:
        """A copy with some fields changed (specs are immutable)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        from effscale.models.notation import format_stage

        data = asdict(self)
        data["stages"] = [format_stage(stage) for stage in self.stages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        from effscale.models.notation import parse_stage

        if not isinstance(data, dict):
            raise EffscaleError(f"a spec must be a JSON object, got {data!r}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise EffscaleError(f"unknown spec field(s): {', '.join(sorted(unknown))}")
        if "name" not in data or "stages" not in data:
            raise EffscaleError("a spec needs at least 'name' and 'stages'")
        if not isinstance(data["stages"], list):
            raise EffscaleError("spec field 'stages' must be a list of block strings or stage objects")
        _check_types(cls, {key: value for key, value in data.items() if key != "stages"})
        stages = tuple(parse_stage(s) if isinstance(s, str) else _stage_from_dict(s) for s in data["stages"])
        return cls(**{**data, "stages": stages})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> NetworkSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise EffscaleError(f"not a valid spec JSON: {err}") from None
        # A run's best.json wraps the spec; accept it directly.
        return cls.from_dict(data.get("spec", data) if isinstance(data, dict) else data)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> NetworkSpec:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise EffscaleError(f"cannot read spec file {path}: {err.strerror}") from None
        return cls.from_json(text)


_JSON_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _check_types(cls: type, data: dict[str, Any]) -> None:
    """Raise `EffscaleError` unless each value has its field's type (JSON true is not a number)."""
    for name, value in data.items():
        expected = _JSON_TYPES[cls.__dataclass_fields__[name].type]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise EffscaleError(f"spec field {name!r} must be {cls.__dataclass_fields__[name].type}, got {value!r}")


def _stage_from_dict(data: object) -> StageSpec:
    if not isinstance(data, dict):
        raise EffscaleError(f"a stage must be a block string or an object, got {data!r}")
    missing = [name for name, field in StageSpec.__dataclass_fields__.items()
               if field.default is MISSING and name not in data]
    unknown = set(data) - set(StageSpec.__dataclass_fields__)
    problems = [f"{label} field(s) {', '.join(names)}" for label, names in (("missing", missing), ("unknown", sorted(unknown)))
                if names]
    if problems:
        raise EffscaleError(f"stage {data}: {'; '.join(problems)}")
    _check_types(StageSpec, data)
    return StageSpec(**data)
