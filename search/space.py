"""The MnasNet factorized hierarchical search space (MnasNet section 4.1) as plain data.

The reference network fixes the stem, the head and, per stage, the stride, the channels and the
repeats. Each of its stages becomes one searched block with its own choices: ConvOp, kernel,
SE ratio, skip, output filters (a multiple of the reference's channels) and layers (added to the
reference's repeats); all layers of a block are the same. A point of the space is a flat dict
like ``{"b0_op": "mb6", "b0_kernel": 5, ...}`` (Optuna's trial params), decoded into a `NetworkSpec`.

MnasNet's pooling skip is left out: the spec has no pooled shortcut to count or build.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec, StageSpec
from effscale.models.zoo import get_model
from effscale.scaling.rounding import round_filters

# ConvOp name -> (block type, expansion).
OPS: dict[str, tuple[str, float]] = {"cn": ("cn", 1.0), "ds": ("ds", 1.0), "mb3": ("mb", 3.0), "mb6": ("mb", 6.0)}
SKIPS: tuple[str, ...] = ("identity", "none")
# Parameter suffix -> the SearchSpace field holding its options.
CHOICE_FIELDS: dict[str, str] = {
    "op": "ops", "kernel": "kernels", "se": "se_ratios", "skip": "skips", "width": "widths", "layers": "layer_deltas",
}
# Fields of the spec that do not change the architecture, left out of its name.
_NOT_ARCHITECTURE = ("name", "resolution", "num_classes", "in_channels")


def _identity_possible(stride: int, cin: int, cout: int, repeats: int) -> bool:
    """Whether any block of the stage can have an identity shortcut (so the skip choice matters)."""
    return repeats > 1 or (stride == 1 and cin == cout)


def _is_integer(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(options: Sequence[Any], valid: Callable[[Any], bool], rule: str) -> None:
    """Raise EffscaleError naming `rule` and the options that are not `valid`."""
    bad = [option for option in options if not valid(option)]
    if bad:
        raise EffscaleError(f"{rule}, got {', '.join(map(repr, bad))}")


def _architecture_name(spec: NetworkSpec) -> str:
    """'nas-' and a short hash of everything that defines the architecture."""
    data = {k: v for k, v in spec.to_dict().items() if k not in _NOT_ARCHITECTURE}
    return "nas-" + hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


MAX_WIDTH = 16.0  # a width choice multiplies the reference's filters: 16x is beyond any useful candidate


@dataclass(frozen=True)
class SearchSpace:
    """One block per reference stage, each choosing from the same option lists.

    `reference`: a model name or spec. `resolution`, `num_classes`, `in_channels`: of the produced
    specs, the reference's when None. Skip "identity" adds the shortcut where shapes allow; in a stage
    where no block can have one, both skip options decode to the same spec.
    """

    reference: str | NetworkSpec = "efficientnet-b0"
    ops: Sequence[str] = tuple(OPS)
    kernels: Sequence[int] = (3, 5)
    se_ratios: Sequence[float] = (0.0, 0.25)
    skips: Sequence[str] = SKIPS
    widths: Sequence[float] = (0.75, 1.0, 1.25)
    layer_deltas: Sequence[int] = (-1, 0, 1)
    resolution: int | None = None
    num_classes: int | None = None
    in_channels: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.reference, str):
            object.__setattr__(self, "reference", get_model(self.reference))
        for field in CHOICE_FIELDS.values():
            options = tuple(getattr(self, field))
            if not options:
                raise EffscaleError(f"the search space is empty: no {field.replace('_', ' ')} to choose from")
            if len(set(options)) != len(options):
                raise EffscaleError(f"repeated {field.replace('_', ' ')} in the search space: {options}")
            object.__setattr__(self, field, options)
        self._check_options()

    def _check_options(self) -> None:
        unknown = [op for op in self.ops if op not in OPS] + [skip for skip in self.skips if skip not in SKIPS]
        if unknown:
            raise EffscaleError(f"unknown choice(s) {unknown}; ops: {', '.join(OPS)}; skips: {', '.join(SKIPS)}")
        _require(self.kernels, lambda k: _is_integer(k) and k >= 1 and k % 2 == 1, "kernels must be odd positive integers")
        _require(self.layer_deltas, _is_integer, "layer deltas must be integers")
        _require(self.se_ratios, lambda se: _is_finite(se) and 0 <= se <= 1, "SE ratios must be finite numbers in [0, 1]")
        _require(self.widths, lambda w: _is_finite(w) and 0 < w <= MAX_WIDTH, f"widths must lie in (0, {MAX_WIDTH:g}]")

    @property
    def base(self) -> NetworkSpec:
        """The reference spec (`reference` after a name was resolved)."""
        assert isinstance(self.reference, NetworkSpec)
        return self.reference

    @property
    def num_blocks(self) -> int:
        return len(self.base.stages)

    def choices(self) -> dict[str, list[Any]]:
        """Parameter name -> options, e.g. {"b0_op": ["cn", "ds", "mb3", "mb6"], ...}; fits Optuna's GridSampler."""
        return {
            f"b{i}_{key}": list(getattr(self, field))
            for i in range(self.num_blocks)
            for key, field in CHOICE_FIELDS.items()
        }

    def decode(self, params: Mapping[str, Any]) -> NetworkSpec:
        """The spec of one point; every parameter of `choices()` is required, other keys are ignored."""
        options = self.choices()
        missing = [name for name in options if name not in params]
        if missing:
            raise EffscaleError(f"missing search parameter(s): {', '.join(missing)}")
        bad = [f"{name}={params[name]!r}" for name in options if params[name] not in options[name]]
        if bad:
            raise EffscaleError(f"value(s) outside the search space: {', '.join(bad)}")
        stages, cin = [], self.base.stem_channels
        for i, ref in enumerate(self.base.stages):
            value = {key: params[f"b{i}_{key}"] for key in CHOICE_FIELDS}
            block, expansion = OPS[value["op"]]
            cout = round_filters(ref.out_channels, value["width"])
            repeats = max(1, ref.repeats + value["layers"])
            skip = value["skip"] == "identity" or not _identity_possible(ref.stride, cin, cout, repeats)
            stages.append(StageSpec(block, repeats, value["kernel"], ref.stride, cout, expansion,
                                    float(value["se"]), skip))
            cin = cout
        spec = self.base.with_(
            stages=tuple(stages),
            resolution=self.base.resolution if self.resolution is None else self.resolution,
            num_classes=self.base.num_classes if self.num_classes is None else self.num_classes,
            in_channels=self.base.in_channels if self.in_channels is None else self.in_channels,
        )
        return spec.with_(name=_architecture_name(spec))

    def sample(self, trial: optuna.Trial) -> NetworkSpec:
        """Suggest every choice categorically on `trial` (any Optuna sampler, grid included) and decode."""
        return self.decode({name: trial.suggest_categorical(name, opts) for name, opts in self.choices().items()})

    def random_params(self, rng: random.Random) -> dict[str, Any]:
        """A uniformly random point of the space."""
        return {name: rng.choice(opts) for name, opts in self.choices().items()}

    def size(self) -> int:
        """The number of distinct specs the space decodes to (equal rounded widths, clipped layers
        and skips that cannot apply collapse)."""
        per_block = len(self.ops) * len(self.kernels) * len(self.se_ratios)
        prefixes = Counter({self.base.stem_channels: 1})  # output channels so far -> distinct prefixes
        for ref in self.base.stages:
            outs = {round_filters(ref.out_channels, w) for w in self.widths}
            repeats = {max(1, ref.repeats + d) for d in self.layer_deltas}
            following: Counter[int] = Counter()
            for cin, n in prefixes.items():
                for cout in outs:
                    skips = sum(len(self.skips) if _identity_possible(ref.stride, cin, cout, r) else 1 for r in repeats)
                    following[cout] += n * per_block * skips
            prefixes = following
        return sum(prefixes.values())
