"""Benchmark: what each kind of layer costs a training step of the default proxy in wall-clock time, found by
taking it out.

    python -m effscale.experiments.benchmarks.step_ablation [--resolution 64] [--batch-size 128] [--rounds 30]

`step_profile` shares a step out by torch.profiler's times per operator, which include the profiler's own work
around every call. Here the proxy's training step (`proxy_step`: channels_last, memory kept, effscale's kernels,
fused AdamW) takes turns, in one process, with copies of it in which one kind of layer is an identity (for the
optimiser: its step is left out). Each runs once untimed first. A kind's share is 1 - (step without it) / (full
step), the median over rounds, with the range of the per-round shares. Taking a layer out also changes what the
next one finds in cache, and without batch norm the values drift, so the shares need not add up to 1.
"""

from __future__ import annotations

import statistics

import pandas as pd
import torch
from torch import nn

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step, step_arguments
from effscale.experiments.benchmarks.turns import in_turns, seconds_per_call
from effscale.experiments.output import print_table
from effscale.models.builder import SqueezeExciteGate

KINDS: dict[str, type[nn.Module]] = {"batch norm": nn.BatchNorm2d, "SiLU": nn.SiLU,
                                     "squeeze-excite": SqueezeExciteGate}
"""Layers taken out by replacing them with `nn.Identity` (SiLU includes the one inside each squeeze-excite)."""
OPTIMISER = "optimiser step"


def replace_with_identity(model: nn.Module, kind: type[nn.Module]) -> int:
    """Replace every submodule of `model` that is a `kind` by `nn.Identity`, in place; returns how many."""
    replaced = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, kind):
                setattr(module, name, nn.Identity())
                replaced += 1
    return replaced


def ablation(resolution: int, batch_size: int, rounds: int) -> tuple[float, pd.DataFrame]:
    """The full step's median seconds, and per kind taken out (`KINDS`, then the optimiser step): the median step
    ms without it, its median share of the full step and the range of that share over rounds."""
    steps = {"full": proxy_step(resolution, batch_size)}
    for name, kind in KINDS.items():
        steps[name] = proxy_step(resolution, batch_size, edit=lambda model, kind=kind: replace_with_identity(model, kind))
    steps[OPTIMISER] = proxy_step(resolution, batch_size, optimise=False)
    for step in steps.values():
        step()
    full, *others = in_turns([seconds_per_call(step) for step in steps.values()], rounds)
    rows = []
    for name, taken in zip(list(steps)[1:], others):
        shares = sorted(1 - without / whole for without, whole in zip(taken, full))
        rows.append({"taken out": name, "step ms": 1e3 * statistics.median(taken),
                     "share of the step": statistics.median(shares), "share range": f"{shares[0]:.2f}-{shares[-1]:.2f}"})
    return statistics.median(full), pd.DataFrame(rows)


def main() -> None:
    args = step_arguments(__doc__, "--rounds", 30, "steps of each model, taken in turns")
    full, table = ablation(args.resolution, args.batch_size, args.rounds)
    print(f"default proxy at {args.resolution} px, batch {args.batch_size}, channels_last, {torch.get_num_threads()} "
          f"threads: full step {1e3 * full:.1f} ms (median of {args.rounds} rounds, taken in turns)")
    print_table(table)


if __name__ == "__main__":
    main()
