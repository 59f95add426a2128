"""Spec -> `torch.nn.Module`, from the layer descriptors of `effscale.models.layers`."""

from __future__ import annotations

import torch
from torch import nn

from effscale.models.layers import Block, Conv, Head, Layer, MaxPool, SqueezeExcite, network_layers
from effscale.models.spec import NetworkSpec

_ACTIVATIONS: dict[str, type[nn.Module]] = {"swish": nn.SiLU, "relu": nn.ReLU, "relu6": nn.ReLU6}


class SqueezeExciteGate(nn.Module):
    """Channel attention: x * sigmoid(fc2(act(fc1(mean(x))))).

    fc1 and fc2 are the official 1x1 convolutions with bias, held as `nn.Linear` on the pooled (N, C) vector:
    the same parameters, initialisation and multiply-adds, but a plain matmul instead of a convolution on 1x1
    maps, which oneDNN runs several times slower.
    """

    def __init__(self, channels: int, squeeze: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.act = act()
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean((2, 3)))[:, :, None, None]

    def gate(self, pooled: torch.Tensor) -> torch.Tensor:
        """The per-channel factors in (0, 1), (N, C), from the pooled input."""
        return torch.sigmoid(self.fc2(self.act(self.fc1(pooled))))


class ResidualBlock(nn.Module):
    """body(x) (+ shortcut(x), with per-sample drop-connect on the body while training) (-> activation)."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, post_act: nn.Module | None, drop_rate: float):
        super().__init__()
        self.body, self.shortcut, self.post_act, self.drop_rate = body, shortcut, post_act, drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            if self.training and self.drop_rate > 0:
                keep = 1.0 - self.drop_rate
                mask = torch.empty((out.shape[0], 1, 1, 1), dtype=out.dtype, device=out.device).bernoulli_(keep)
                out = out * mask / keep
            out = out + self.shortcut(x)
        return self.post_act(out) if self.post_act is not None else out


def _layer(layer: Layer, act: type[nn.Module]) -> nn.Module:
    if isinstance(layer, Conv):
        conv = nn.Conv2d(layer.cin, layer.cout, layer.kernel, layer.stride, layer.kernel // 2, groups=layer.groups, bias=False)
        parts = [conv, nn.BatchNorm2d(layer.cout)] + ([act()] if layer.act else [])
        return nn.Sequential(*parts)
    if isinstance(layer, SqueezeExcite):
        return SqueezeExciteGate(layer.channels, layer.squeeze, act)
    assert isinstance(layer, MaxPool)
    return nn.MaxPool2d(3, 2, 1)


def _block(block: Block, act: type[nn.Module]) -> ResidualBlock:
    body = nn.Sequential(*(_layer(layer, act) for layer in block.body))
    shortcut = None
    if block.shortcut is not None:
        shortcut = nn.Sequential(*(_layer(layer, act) for layer in block.shortcut)) if block.shortcut else nn.Identity()
    return ResidualBlock(body, shortcut, act() if block.post_act else None, block.drop_rate)


def _head(head: Head, act: type[nn.Module]) -> nn.Sequential:
    conv = [_layer(head.conv, act)] if head.conv is not None else []
    pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(head.dropout)]
    return nn.Sequential(*conv, *pool, nn.Linear(head.features, head.num_classes))


def _init_weights(model: nn.Module) -> None:
    """EfficientNet's initialisation: He-normal (fan out) convs, the squeeze-excite layers included (the same
    draws as for their 1x1 convolutions), uniform classifier, unit batch norm."""
    gates = [m for m in model.modules() if isinstance(m, SqueezeExciteGate)]
    convolutions = {id(layer) for gate in gates for layer in (gate.fc1, gate.fc2)}
    for module in model.modules():
        if isinstance(module, nn.Conv2d) or id(module) in convolutions:
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / module.out_features**0.5
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


def zero_init_residual(model: nn.Module) -> None:
    """Zero the scale of the last batch norm on every block body that has a shortcut, so that each such
    block starts as its shortcut (Goyal et al., 2017). Deep stacks then train from the first step."""
    for module in model.modules():
        if isinstance(module, ResidualBlock) and module.shortcut is not None:
            norms = [m for m in module.body.modules() if isinstance(m, nn.BatchNorm2d)]
            nn.init.zeros_(norms[-1].weight)


def build(spec: NetworkSpec) -> nn.Sequential:
    """A freshly initialised module for `spec`: children `stem`, `blocks`, `head`."""
    act = _ACTIVATIONS[spec.activation]
    stem, blocks, head = network_layers(spec)
    model = nn.Sequential()
    model.add_module("stem", nn.Sequential(*(_layer(layer, act) for layer in stem)))
    model.add_module("blocks", nn.Sequential(*(_block(block, act) for block in blocks)))
    model.add_module("head", _head(head, act))
    _init_weights(model)
    return model
