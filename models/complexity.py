"""Analytic complexity from the spec alone: parameters, MACs (the paper's FLOPS) and activations.

Nothing is built or run. MACs are the multiply-adds of conv and linear layers; activations are
the output elements of conv and linear layers (as pycls counts them); parameters are the
trainable ones (conv and linear weights and biases, batch-norm scale and shift).
"""

from __future__ import annotations

from dataclasses import dataclass

from effscale.models.layers import Block, Conv, Layer, MaxPool, SqueezeExcite, network_layers
from effscale.models.spec import NetworkSpec


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    acts: int


class _Tally:
    """Running totals while walking the layers; `size` is the current square feature-map side."""

    def __init__(self, size: int) -> None:
        self.size, self.params, self.macs, self.acts = size, 0, 0, 0

    def conv(self, cin: int, cout: int, kernel: int, stride: int, groups: int, bias: bool) -> None:
        self.size = (self.size + 2 * (kernel // 2) - kernel) // stride + 1
        weights = cout * (cin // groups) * kernel * kernel
        self.params += weights + (cout if bias else 0)
        self.macs += weights * self.size * self.size
        self.acts += cout * self.size * self.size

    def layer(self, layer: Layer) -> None:
        if isinstance(layer, Conv):
            self.conv(layer.cin, layer.cout, layer.kernel, layer.stride, layer.groups, bias=False)
            self.params += 2 * layer.cout  # batch norm
        elif isinstance(layer, SqueezeExcite):
            size = self.size
            self.size = 1  # both 1x1 convs act on the pooled vector
            self.conv(layer.channels, layer.squeeze, 1, 1, 1, bias=True)
            self.conv(layer.squeeze, layer.channels, 1, 1, 1, bias=True)
            self.size = size
        elif isinstance(layer, MaxPool):
            self.size = (self.size + 2 - 3) // 2 + 1

    def block(self, block: Block) -> None:
        size = self.size
        for layer in block.body:
            self.layer(layer)
        if block.shortcut:
            out_size, self.size = self.size, size
            for layer in block.shortcut:
                self.layer(layer)
            assert self.size == out_size, "projection shortcut must match the body's output size"


def count(spec: NetworkSpec) -> Complexity:
    """Exact params, MACs and activations of `spec` at its resolution, batch 1."""
    stem, blocks, head = network_layers(spec)
    tally = _Tally(spec.resolution)
    for layer in stem:
        tally.layer(layer)
    for block in blocks:
        tally.block(block)
    if head.conv is not None:
        tally.layer(head.conv)
    tally.params += head.features * head.num_classes + head.num_classes
    tally.macs += head.features * head.num_classes
    tally.acts += head.num_classes
    return Complexity(tally.params, tally.macs, tally.acts)
