"""The optimiser of a `TrainConfig` and its learning-rate schedule as a function of budget progress."""

from __future__ import annotations

import math

import torch
from torch import nn

from effscale.search.flat_parameters import flatten, require_gradient_buffers
from effscale.search.train_config import TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig, fused: bool = True) -> torch.optim.Optimizer:
    """AdamW, SGD with Nesterov momentum 0.9, or RMSprop as in EfficientNet (decay 0.9, momentum 0.9,
    eps 1e-3); weight decay on conv and linear weights only (not on biases nor batch norm).

    `fused`: each group's parameters move into one flat buffer (`effscale.search.flat_parameters`), which AdamW
    and SGD update in one fused kernel, RMSprop (which has none) in a multi-tensor (foreach) kernel; gradients are
    then cleared with `zero_grad(set_to_none=False)`. False: a Python loop of small operators per parameter, a few
    percent slower in a proxy step on the CPU (`python -m effscale.experiments.benchmarks.train_speed`, "of it
    fused optimiser")."""
    decayed = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}]
    if fused:
        groups = [{**group, "params": [flatten(group["params"])]} for group in groups if group["params"]]
    optimizer = _optimizer(groups, config, fused)
    if fused:
        require_gradient_buffers(optimizer, [group["params"][0] for group in groups])
    return optimizer


def _optimizer(groups: list[dict], config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, fused=fused)
    if config.optimizer == "sgd-nesterov":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True, fused=fused)
    return torch.optim.RMSprop(groups, lr=config.lr, alpha=0.9, momentum=0.9, eps=1e-3, foreach=fused)


def lr_factor(progress: float, config: TrainConfig) -> float:
    """Multiplier of the base lr for a step that ends at `progress` in (0, 1] of the budget:
    constant, or a linear warmup then a cosine to 0."""
    if config.schedule == "constant":
        return 1.0
    if progress < config.warmup:
        return progress / config.warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - config.warmup) / (1.0 - config.warmup))))
