"""Benchmark: wall-clock milliseconds per kind of layer in a training step of the default proxy, forward and
backward, from timestamps at each layer's input and output.

    python -m effscale.experiments.benchmarks.layer_times [--resolution 64] [--batch-size 128] [--steps 10]

`step_profile` shares a step out by torch.profiler's times per operator, which can land on the wrong operator (on
2026-12-04, at 64 px, it gave the backward pass of the stride-2 3x3 depthwise convolution 20 ms a step, timestamps
around that layer 3 ms); `step_ablation` takes a kind of layer out, which also changes what its neighbours find in cache.
Here every layer of the proxy's training step (`proxy_step`: channels_last, effscale's CPU kernels with the SiLUs
fused into their batch norms, and the squeeze-excite gates into the depthwise convolutions' batch norms, fused AdamW)
is timed in place: forward from its call to its return, backward from
the moment its output's gradient arrives to the moment its input's gradient leaves, each side marked by a
pass-through autograd function. A layer whose input needs no gradient (the stem's convolution) has no backward
time of its own: it falls in "rest of the step", with the loss, the optimiser, the autograd engine and the marks'
own work. The last line compares the marked step with the unmarked one, taken in turns.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step, step_arguments
from effscale.experiments.benchmarks.turns import in_turns, seconds_per_call
from effscale.experiments.output import print_table
from effscale.models.builder import SqueezeExciteGate
from effscale.search.cpu_kernels import GatedSequential, use_cpu_kernels

REST = "rest of the step"
GATED = "batch norm + SiLU + squeeze-excite"  # a depthwise convolution's, in effscale's kernels


def layer_kind(module: nn.Module) -> str | None:
    """The kind a layer is timed under, or None for modules that are not timed layers (containers, identities,
    activations outside a batch norm)."""
    if isinstance(module, nn.Conv2d):
        side = module.kernel_size[0]
        if module.groups > 1:
            return f"depthwise {side}x{side} convolution"
        return "1x1 convolution" if side == 1 else f"{side}x{side} convolution"
    if isinstance(module, nn.BatchNorm2d):
        return "batch norm + SiLU" if getattr(module, "silu", False) else "batch norm"
    if isinstance(module, SqueezeExciteGate):
        return "squeeze-excite"
    if isinstance(module, nn.Linear):
        return "linear"
    return None


class LayerClock:
    """Forward and backward seconds of each timed layer kind, summed over the steps run while `running`."""

    def __init__(self) -> None:
        self.forward: defaultdict[str, float] = defaultdict(float)
        self.backward: defaultdict[str, float] = defaultdict(float)
        self.layers: defaultdict[str, int] = defaultdict(int)
        self.arrived: dict[int, float] = {}
        self.running = False


class _Mark(torch.autograd.Function):
    """Passes x through; backward, notes when the gradient passes (at a layer's output: arrived; at its input: left)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, layer: "TimedLayer", at_output: bool) -> torch.Tensor:
        ctx.layer, ctx.at_output = layer, at_output
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        now, layer = time.perf_counter(), ctx.layer
        clock = layer.clock
        if ctx.at_output:
            clock.arrived[id(layer)] = now
        elif clock.running and id(layer) in clock.arrived:
            clock.backward[layer.kind] += now - clock.arrived.pop(id(layer))
        return grad, None, None


class TimedLayer(nn.Module):
    """A layer with its forward time noted in `clock` and marks at both sides for its backward time."""

    def __init__(self, layer: nn.Module, kind: str, clock: LayerClock) -> None:
        super().__init__()
        self.layer, self.kind, self.clock = layer, kind, clock
        clock.layers[kind] += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._timed(self.layer, x)

    def gated(self, x: torch.Tensor, gate: nn.Module) -> torch.Tensor:
        """A `BatchNormSiLU2d`'s `gated` (in a `GatedSequential`): the gate is timed with the batch norm."""
        return self._timed(lambda inner: self.layer.gated(inner, gate), x)

    def _timed(self, layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        if x.requires_grad:
            x = _Mark.apply(x, self, False)
        y = layer(x)
        if self.clock.running:
            self.clock.forward[self.kind] += time.perf_counter() - start
        return _Mark.apply(y, self, True) if y.requires_grad else y


def time_layers(model: nn.Module, clock: LayerClock) -> None:
    """Switch `model` to effscale's kernels, then wrap each of its timed layers in a `TimedLayer`, in place (the
    layers inside a squeeze-excite gate are timed as part of it, and a gate that runs with the batch norm before it,
    in a `GatedSequential`, as part of that batch norm)."""
    use_cpu_kernels(model)
    gated = [(sequence[index][-2], sequence[index + 1]) for sequence in model.modules()
             if isinstance(sequence, GatedSequential) for index in sequence.gated_at]
    gated_norms, gates = {id(norm) for norm, _ in gated}, {id(gate) for _, gate in gated}
    for parent in [m for m in model.modules() if not isinstance(m, (SqueezeExciteGate, TimedLayer))]:
        for name, child in list(parent.named_children()):
            kind = GATED if id(child) in gated_norms else None if id(child) in gates else layer_kind(child)
            if kind is not None:
                setattr(parent, name, TimedLayer(child, kind, clock))


def layer_times(resolution: int, batch_size: int, steps: int) -> tuple[float, float, pd.DataFrame]:
    """Median seconds of the unmarked and the marked step over `steps` rounds in turns, and per layer kind the
    number of layers and the forward and backward ms of one marked step, then the rest of it."""
    clock = LayerClock()
    plain = proxy_step(resolution, batch_size)
    marked = proxy_step(resolution, batch_size, edit=lambda model: time_layers(model, clock))
    plain(), marked()
    clock.running = True
    plain_seconds, marked_seconds = in_turns([seconds_per_call(plain), seconds_per_call(marked)], steps)
    clock.running = False
    step_ms = 1e3 * statistics.fmean(marked_seconds)
    rows = sorted(({"layers": kind, "count": count, "forward ms": 1e3 * clock.forward[kind] / steps,
                    "backward ms": 1e3 * clock.backward[kind] / steps} for kind, count in clock.layers.items()),
                  key=lambda row: -(row["forward ms"] + row["backward ms"]))
    timed_ms = sum(row["forward ms"] + row["backward ms"] for row in rows)
    rows.append({"layers": REST, "count": 0, "forward ms": step_ms - timed_ms, "backward ms": 0.0})
    table = pd.DataFrame(rows)
    table["share of the step"] = (table["forward ms"] + table["backward ms"]) / step_ms
    return statistics.median(plain_seconds), statistics.median(marked_seconds), table


def main() -> None:
    args = step_arguments(__doc__, "--steps", 10, "steps of each, the marked and the unmarked, in turns")
    plain, marked, table = layer_times(args.resolution, args.batch_size, args.steps)
    print(f"default proxy at {args.resolution} px, batch {args.batch_size}, channels_last, {torch.get_num_threads()} "
          f"threads, mean over {args.steps} steps")
    print_table(table)
    print(f"step {1e3 * plain:.1f} ms unmarked, {1e3 * marked:.1f} ms marked (medians, taken in turns)")


if __name__ == "__main__":
    main()
