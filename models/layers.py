"""A network spec expanded into its layers, as plain data.

`network_layers(spec)` is the one structural definition of every network: the builder turns
these descriptors into modules and the analytic counter counts them, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from effscale.models.spec import NetworkSpec, StageSpec


def make_divisible(value: float, divisor: int = 8) -> int:
    """The official rounding: nearest multiple of `divisor`, at least `divisor`, never below 90% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class Conv:
    """kxk convolution (padding k // 2, no bias), batch norm, optional activation."""

    cin: int
    cout: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    act: bool = True


@dataclass(frozen=True)
class SqueezeExcite:
    """Global pool, 1x1 conv to `squeeze` (bias), activation, 1x1 conv back (bias), sigmoid gate."""

    channels: int
    squeeze: int


@dataclass(frozen=True)
class MaxPool:
    """3x3 max pooling, stride 2, padding 1 (the ResNet stem)."""


Layer = Conv | SqueezeExcite | MaxPool


@dataclass(frozen=True)
class Block:
    """A residual unit: `body`, a shortcut (None, identity, or projection layers), optional activation after the sum."""

    body: tuple[Layer, ...]
    shortcut: tuple[Layer, ...] | None
    post_act: bool
    drop_rate: float


@dataclass(frozen=True)
class Head:
    """Optional 1x1 conv, global average pool, dropout, linear classifier."""

    conv: Conv | None
    features: int
    num_classes: int
    dropout: float


def _squeeze(stage: StageSpec, cin: int, channels: int) -> tuple[SqueezeExcite, ...]:
    """SE on `channels`, squeezed to a ratio of the block's INPUT channels `cin` (none when the ratio is 0)."""
    return (SqueezeExcite(channels, max(1, int(cin * stage.se_ratio))),) if stage.se_ratio > 0 else ()


def block_layers(stage: StageSpec, cin: int, stride: int, drop_rate: float) -> Block:
    """The layers of one block of `stage` with `cin` input channels and the given stride."""
    cout = stage.out_channels
    identity = () if stage.skip and stride == 1 and cin == cout else None
    if stage.block == "mb":
        hidden = cin if stage.expansion == 1 else make_divisible(cin * stage.expansion)
        expand = (Conv(cin, hidden),) if stage.expansion != 1 else ()
        depthwise = Conv(hidden, hidden, stage.kernel, stride, groups=hidden)
        body = (*expand, depthwise, *_squeeze(stage, cin, hidden), Conv(hidden, cout, act=False))
        return Block(body, identity, post_act=False, drop_rate=drop_rate)
    if stage.block == "ds":
        depthwise = Conv(cin, cin, stage.kernel, stride, groups=cin)
        body = (depthwise, *_squeeze(stage, cin, cin), Conv(cin, cout, act=stage.pw_act))
        return Block(body, identity, post_act=False, drop_rate=drop_rate)
    if stage.block == "cn":
        body = (Conv(cin, cout, stage.kernel, stride), *_squeeze(stage, cin, cout))
        return Block(body, identity, post_act=False, drop_rate=drop_rate)
    hidden = max(1, int(cout * stage.expansion))
    body = (Conv(cin, hidden), Conv(hidden, hidden, stage.kernel, stride), Conv(hidden, cout, act=False))
    projection = (Conv(cin, cout, 1, stride, act=False),) if stride != 1 or cin != cout else ()
    return Block(body, projection if stage.skip else None, post_act=True, drop_rate=drop_rate)


def network_layers(spec: NetworkSpec) -> tuple[tuple[Layer, ...], tuple[Block, ...], Head]:
    """Stem layers, the blocks of every stage in order (with the linear drop-connect schedule), and the head."""
    stem: tuple[Layer, ...] = (Conv(spec.in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride),)
    if spec.stem_pool:
        stem += (MaxPool(),)
    blocks = []
    cin, total = spec.stem_channels, spec.num_blocks
    for stage in spec.stages:
        for i in range(stage.repeats):
            rate = spec.drop_connect * len(blocks) / total
            blocks.append(block_layers(stage, cin, stage.stride if i == 0 else 1, rate))
            cin = stage.out_channels
    head_conv = Conv(cin, spec.head_channels) if spec.head_channels else None
    features = spec.head_channels or cin
    return stem, tuple(blocks), Head(head_conv, features, spec.num_classes, spec.dropout)
