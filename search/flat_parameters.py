"""A parameter group in one contiguous buffer, so that a fused optimiser updates it in one parallel loop.

PyTorch's fused AdamW and SGD on the CPU run one parallel loop per parameter: for the default proxy's 213
parameters, 213 fork-joins of the thread pool every step, most of its optimiser step on 2 cores.
`flatten(parameters)` moves the parameters' values into one buffer and their gradients into another, as views in
each parameter's own shape and strides, and returns one flat parameter that carries both; an optimiser over it
takes the same steps element by element. What it is worth: `python -m effscale.experiments.benchmarks.train_speed`,
column "of it fused optimiser" (per-parameter loop against fused kernels on flat buffers).

Backward passes then add the gradients into the buffer in place: clear it with `zero_grad(set_to_none=False)`,
and never assign a parameter's `.grad`, which would detach it from the buffer. `zero_grad(set_to_none=True)`
would detach the whole buffer; `require_gradient_buffers` makes the optimiser's step fail then with one clear
error instead of stepping on stale gradients.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def flatten(parameters: list[nn.Parameter]) -> nn.Parameter:
    """Move `parameters` (one dtype and device) into one buffer, their gradients into another (zeros), in place;
    returns the flat parameter over the buffer, whose `.grad` is the gradient buffer. Each parameter keeps its strides
    (contiguous or channels_last: a convolution follows its weight's memory format)."""
    first = parameters[0]
    if any(p.dtype != first.dtype or p.device != first.device for p in parameters):
        raise ValueError("flatten: the parameters of one group must share a dtype and a device")
    values = torch.empty(sum(p.numel() for p in parameters), dtype=first.dtype, device=first.device)
    gradients = torch.zeros_like(values)
    offset = 0
    for p in parameters:
        dense = p.is_contiguous() or (p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last))
        strides = p.stride() if dense else torch.empty(p.shape, device="meta").stride()
        view = values.as_strided(p.shape, strides, offset)
        view.copy_(p.detach())
        p.data = view
        p.grad = gradients.as_strided(p.shape, strides, offset)
        offset += p.numel()
    flat = nn.Parameter(values)
    flat.grad = gradients
    return flat


def require_gradient_buffers(optimizer: torch.optim.Optimizer, flats: list[nn.Parameter]) -> None:
    """Make `optimizer.step()` raise when a flat parameter's gradient buffer was set to None
    (`zero_grad(set_to_none=True)`): the model's gradients would no longer reach it."""
    buffers = [flat.grad for flat in flats]

    def check(_optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if any(flat.grad is not buffer for flat, buffer in zip(flats, buffers)):
            raise RuntimeError("flat parameters: clear gradients with zero_grad(set_to_none=False); "
                               "the gradient buffer was replaced")

    optimizer.register_step_pre_hook(check)
