"""Measured complexity of a built module: PyTorch's FlopCounterMode, or fvcore, as second opinions."""

from __future__ import annotations

import logging
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from effscale.models.builder import build
from effscale.models.complexity import Complexity, count
from effscale.models.spec import NetworkSpec

Counter = Literal["analytic", "torch", "fvcore"]
COUNTERS: tuple[str, ...] = ("analytic", "torch", "fvcore")
_FVCORE_MAC_OPS = {"conv", "linear", "addmm", "matmul", "mm", "bmm"}


def _activations(model: nn.Module, x: torch.Tensor) -> int:
    """Output elements of every conv and linear layer, seen through forward hooks."""
    total = 0

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output[0].numel()  # batch 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


def torch_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds by FlopCounterMode (its FLOPs count a multiply-add as 2)."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of conv and linear ops by fvcore (which counts one per multiply-add)."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return sum(v for op, v in analysis.by_operator().items() if op in _FVCORE_MAC_OPS)


def measure(spec: NetworkSpec, counter: Counter = "analytic") -> Complexity:
    """Params, MACs and activations of `spec`: analytic from the spec, or measured on the built module."""
    if counter == "analytic":
        return count(spec)
    # FlopCounterMode works on shapes alone, so it runs on the meta device; fvcore traces real tensors.
    with torch.device("meta" if counter == "torch" else "cpu"):
        model = build(spec).eval()
        x = torch.zeros(1, spec.in_channels, spec.resolution, spec.resolution)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        macs = torch_macs(model, x) if counter == "torch" else fvcore_macs(model, x)
        acts = _activations(model, x)
    return Complexity(params, macs, acts)
