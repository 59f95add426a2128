"""Benchmark: where a channels_last training step of the default proxy spends its time, and how close its
element-wise work runs to this machine's memory speed.

    python -m effscale.experiments.benchmarks.step_profile [--resolution 64] [--compile]

Part 1 profiles a few steps (torch.profiler) and prints the share of time per kind of operator (depthwise
convolutions apart from the others; effscale's batch norm kernels take in the SiLU after a batch norm and, after a
depthwise convolution, the squeeze-excite gate, so there "batch norm" includes those; "matmul" is the 1x1
convolutions' on small maps and the gates') and the share spent on the largest activation shape. The profiler's own work
around each call inflates the shares of short element-wise operators; `step_ablation` measures what a kind of
layer costs in wall-clock time by taking it out. Part 2 times PyTorch's batch norm and SiLU, forward and backward,
alone on a tensor of that shape and divides the bytes their eager passes must move by the time: the GB/s they
reach, next to a plain copy's GB/s measured in turns with them. Part 3 times the step's depthwise convolutions
apart, per kernel size: the forward pass, the input gradient and the weight gradient by PyTorch (oneDNN), the two
gradients by effscale's kernels too, with the GFLOP/s each reaches (2 x the kernel's multiply-adds at every output position). With
--compile it also times the batch norm + SiLU pair compiled by torch.compile against eager (only fusing them can
move fewer bytes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step, step_arguments
from effscale.experiments.benchmarks.turns import in_turns, medians, seconds_per_call
from effscale.experiments.output import print_table
from effscale.models.builder import build
from effscale.search.cpu_kernels import PROFILER_PREFIX, extension
from effscale.search.proxy import proxy_spec

KINDS = {PROFILER_PREFIX + "depthwise_weight_grad": "depthwise convolution backward",
         PROFILER_PREFIX + "depthwise_input_grad": "depthwise convolution backward",
         "convolution_backward": "convolution backward", "convolution": "convolution forward",
         "batch_norm": "batch norm", "silu": "SiLU", "AdamW": "optimiser", "mm": "matmul"}
"""Operator kinds by a part of their name, tried in this order; the rest is "other"."""
FLOAT_BYTES = 4
BATCH_NORM_PASSES = 8  # forward: statistics and normalise (read 2, write 1); backward: 2 reductions, then dx (5)
SILU_PASSES = 5  # forward: read 1, write 1; backward: read x and dy, write dx
COPY_ELEMENTS = 50_000_000  # 200 MB each way: far beyond the caches


def operator_kind(name: str, shapes: list[list[int]]) -> str:
    """The kind of an operator from its name; convolutions whose weight has one input channel per group and one
    group per input channel are depthwise."""
    kind = next((kind for part, kind in KINDS.items() if part in name), "other")
    if kind.startswith("convolution"):
        x, weight = shapes[1:3] if kind == "convolution backward" else shapes[:2]
        if len(weight) == 4 and weight[1] == 1 and x[1] == weight[0] > 1:
            return f"depthwise {kind}"
    return kind


Shapes = tuple[tuple[int, ...], ...]


def profile_step(step: Callable[[], None], steps: int) -> tuple[pd.DataFrame, tuple[int, ...], float]:
    """Share of self CPU time per operator kind; the largest 4-d input shape seen and its share of the time."""
    step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    by_kind: Counter[str] = Counter()
    by_shape: Counter[tuple[int, ...]] = Counter()
    for event in prof.key_averages(group_by_input_shape=True):
        by_kind[operator_kind(event.key, event.input_shapes)] += event.self_cpu_time_total
        shape = next((tuple(s) for s in event.input_shapes if len(s) == 4), None)
        if shape is not None:
            by_shape[shape] += event.self_cpu_time_total
    total = sum(by_kind.values())
    table = pd.DataFrame([{"operators": kind, "share of step": time_ / total} for kind, time_ in by_kind.most_common()])
    largest = max(by_shape, key=lambda shape: shape[0] * shape[1] * shape[2] * shape[3])
    return table, largest, by_shape[largest] / total


def depthwise_layers(resolution: int, batch_size: int) -> Counter[tuple[Shapes, int]]:
    """The default proxy's depthwise convolutions at `resolution`: ((output, input, weight) shapes, stride), with
    how many layers have each."""
    spec = proxy_spec(resolution)
    model = build(spec)
    layers: Counter[tuple[Shapes, int]] = Counter()
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1):
        conv.register_forward_hook(lambda conv, inputs, output: layers.update(
            [((tuple(output.shape), tuple(inputs[0].shape), tuple(conv.weight.shape)), conv.stride[0])]))
    with torch.no_grad():
        model(torch.randn(batch_size, spec.in_channels, resolution, resolution))
    return layers


def nhwc(shape: tuple[int, ...]) -> torch.Tensor:
    """A random tensor of NCHW `shape` with NHWC strides, even on 1x1 maps (where `.contiguous(channels_last)`
    keeps NCHW strides, and oneDNN then takes another kernel)."""
    n, c, h, w = shape
    return torch.randn(n, h, w, c).permute(0, 3, 1, 2)


def depthwise_passes(layers: Counter[tuple[Shapes, int]]) -> pd.DataFrame:
    """Per kernel size: ms per step of the forward passes, input gradients and weight gradients of `layers` (see
    `depthwise_layers`) by PyTorch (oneDNN) and, where they are built, of the gradients by effscale's kernels, timed
    apart in turns, and the GFLOP/s of each."""
    kernels = extension()
    rows = []
    for ((out_shape, x_shape, weight_shape), stride), count_ in layers.items():
        grad, x, weight = nhwc(out_shape), nhwc(x_shape), nhwc(weight_shape)  # a channels_last model's weight
        kernel, padding = weight_shape[-1], weight_shape[-1] // 2
        options = {"stride": stride, "padding": padding, "groups": x_shape[1]}
        contenders = {"forward": lambda: F.conv2d(x, weight, **options),
                      "input gradient": lambda: torch.nn.grad.conv2d_input(x.shape, weight, grad, **options),
                      "weight gradient": lambda: torch.nn.grad.conv2d_weight(x, weight.shape, grad, **options)}
        if kernels is not None:
            contenders |= {
                "effscale input gradient": lambda: kernels.depthwise_input_grad(grad, weight, x_shape[2], x_shape[3],
                                                                                stride, padding),
                "effscale weight gradient": lambda: kernels.depthwise_weight_grad(x, grad, kernel, stride, padding)}
        seconds = median_seconds(list(contenders.values()))
        rows.append({"kernel": f"{kernel}x{kernel}", "layers": count_,
                     **{f"{name} ms": count_ * 1e3 * taken for name, taken in zip(contenders, seconds)},
                     "flop": count_ * 2 * grad.numel() * kernel**2})
    table = pd.DataFrame(rows).groupby("kernel", as_index=False).sum()
    for name in [column.removesuffix(" ms") for column in table.columns if column.endswith(" ms")]:
        table[f"{name} GFLOP/s"] = table["flop"] / table[f"{name} ms"] / 1e6
    return table.drop(columns="flop")


def median_seconds(functions: list[Callable[[], object]], rounds: int = 7, repeats: int = 5) -> list[float]:
    """Seconds per call of each function: the median over `rounds` rounds taken in turns, after one warm-up call."""
    for function in functions:
        function()
    return medians(in_turns([seconds_per_call(function, repeats) for function in functions], rounds))


def forward_backward(module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
    """Forward and backward (to the input) of `module` on a random NHWC-strided tensor of `shape`."""
    x, grad = nhwc(shape).requires_grad_(), nhwc(shape)
    return lambda: torch.autograd.grad(module(x), x, grad)


class BatchNormSiLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(x))


def plain_copy(elements: int) -> Callable[[], object]:
    """A copy of `elements` floats into a tensor allocated once: 2 x `elements` x 4 bytes moved per call."""
    source = torch.randn(elements)
    target = torch.empty_like(source)
    return lambda: target.copy_(source)


def main() -> None:
    args = step_arguments(__doc__, "--steps", 5, "profiled training steps",
                          ("--compile", {"action": "store_true",
                                         "help": "also time the batch norm + SiLU pair under torch.compile"}))
    table, shape, share = profile_step(proxy_step(args.resolution, args.batch_size), args.steps)
    print(f"default proxy at {args.resolution} px, batch {args.batch_size}, channels_last, "
          f"{torch.get_num_threads()} threads, {args.steps} profiled steps")
    print_table(table)
    print(f"operators on the largest activation, {list(shape)}: {share:.0%} of the step\n")
    elements = shape[0] * shape[1] * shape[2] * shape[3]
    operators = {"batch norm": (nn.BatchNorm2d(shape[1]), BATCH_NORM_PASSES), "SiLU": (nn.SiLU(), SILU_PASSES)}
    *seconds, copy_seconds = median_seconds([*(forward_backward(module, shape) for module, _ in operators.values()),
                                             plain_copy(COPY_ELEMENTS)])
    copy = 2 * COPY_ELEMENTS * FLOAT_BYTES / copy_seconds / 1e9
    rows = []
    for (name, (_, passes)), taken in zip(operators.items(), seconds):
        moved = passes * elements * FLOAT_BYTES
        rows.append({"forward + backward": name, "ms": 1e3 * taken, "MB moved": moved / 1e6,
                     "GB/s": moved / taken / 1e9, "of a copy's GB/s": moved / taken / 1e9 / copy})
    print(f"alone on {list(shape)}, taking turns with a plain copy of 200 MB (median of 7 rounds): "
          f"the copy moves {copy:.1f} GB/s")
    print_table(pd.DataFrame(rows))
    print("\ndepthwise convolutions of a step, forward and gradients timed apart (median of 7 rounds, in turns)")
    print_table(depthwise_passes(depthwise_layers(args.resolution, args.batch_size)))
    if args.compile:
        pair = BatchNormSiLU(shape[1])
        eager, compiled = median_seconds([forward_backward(pair, shape), forward_backward(torch.compile(pair), shape)])
        print(f"\nbatch norm + SiLU, forward + backward (median of 7 rounds, taking turns): eager {1e3 * eager:.2f} ms, "
              f"compiled {1e3 * compiled:.2f} ms ({eager / compiled:.2f}x)")


if __name__ == "__main__":
    main()
