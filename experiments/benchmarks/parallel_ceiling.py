"""Benchmark: how much faster two 1-thread processes finish two units of the same work than one process
finishes them one after the other, on this machine, with no Optuna, start-up or data loading involved.

    python -m effscale.experiments.benchmarks.parallel_ceiling [--steps 30] [--rounds 3]

Two workloads: training steps of the default proxy on a random batch (the kernel mix of a grid trial) and
a matmul that fits in each core's cache (compute only). 2.0x means the cores do not slow each other.
Each round times one unit alone twice and two units together; the median round is printed, since
neighbours on a shared machine move single rounds by 10% or more.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn

from effscale.models.builder import build
from effscale.search.allocator import keep_freed_memory
from effscale.search.cpu_kernels import use_cpu_kernels
from effscale.search.optim import make_optimizer
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import TrainConfig


def step_arguments(doc: str | None, count: str, default: int, count_help: str,
                   *extra: tuple[str, dict]) -> argparse.Namespace:
    """The command line of a benchmark of `proxy_step`: --resolution, --batch-size, the repetition flag `count`
    (at least 1) and any `extra` (flag, add_argument keywords); a batch below 2 is bad input (batch norm needs two
    images)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(count, type=int, default=default, help=count_help)
    for flag, keywords in extra:
        parser.add_argument(flag, **keywords)
    args = parser.parse_args()
    if getattr(args, count.lstrip("-").replace("-", "_")) < 1 or args.batch_size < 2:
        parser.error(f"{count} must be at least 1 and --batch-size at least 2 (batch norm needs two images)")
    return args


def proxy_step(resolution: int = 32, batch_size: int = 128, edit: Callable[[nn.Module], object] | None = None,
               optimise: bool = True) -> Callable[[], None]:
    """One training step of the default proxy on a fixed random channels_last batch, as a function; as in proxy
    training, the process keeps the memory a step frees, the model uses effscale's CPU kernels and the
    optimiser is the default recipe's (`make_optimizer`: fused AdamW, weight decay on weights only). `edit`
    changes the model in place before the kernels and the optimiser see it (so that a SiLU it takes out is not
    fused into a batch norm first); `optimise=False` leaves out the optimiser's step."""
    keep_freed_memory()
    torch.manual_seed(0)
    spec = proxy_spec(resolution)
    model = build(spec).to(memory_format=torch.channels_last)
    if edit is not None:
        edit(model)
    use_cpu_kernels(model)
    optimizer = make_optimizer(model, TrainConfig())
    images = torch.randn(batch_size, spec.in_channels, resolution, resolution)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, spec.num_classes, (batch_size,))

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        if optimise:
            optimizer.step()

    return step


def training_steps(steps: int) -> float:
    """Seconds for `steps` 1-thread proxy training steps (`proxy_step`), after one warm-up step."""
    torch.set_num_threads(1)
    step = proxy_step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def cached_matmul(steps: int, size: int = 256) -> float:
    """Seconds for 40 x `steps` 1-thread float32 matmuls of `size` x `size` (256: 768 KiB, inside L2)."""
    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(40 * steps):
        torch.mm(a, b)
    return time.perf_counter() - start


WORKLOADS: dict[str, Callable[[int], float]] = {"proxy training steps": training_steps,
                                                 "in-cache matmul": cached_matmul}


def concurrency_ratios(steps: int, rounds: int = 3) -> dict[str, tuple[float, float]]:
    """Per workload, the median of `rounds` rounds: (throughput of 2 concurrent units / 1 unit at a time,
    seconds of one unit alone)."""
    ratios = {}
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name, work in WORKLOADS.items():
            list(pool.map(work, [1, 1]))  # start both workers and import torch in each
            measured = []
            for _ in range(rounds):
                alone = sum(pool.submit(work, steps).result() for _ in range(2)) / 2
                together = max(pool.map(work, [steps, steps]))
                measured.append((2 * alone / together, alone))
            ratios[name] = statistics.median_low(measured)
    return ratios


def print_ratios(steps: int, rounds: int = 3) -> None:
    for name, (ratio, alone) in concurrency_ratios(steps, rounds).items():
        print(f"{name:22} {alone:6.2f} s alone; 2 concurrent 1-thread processes: {ratio:.2f}x the throughput "
              f"(median of {rounds} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="units of work per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements; the median is printed")
    args = parser.parse_args()
    print_ratios(args.steps, args.rounds)


if __name__ == "__main__":
    main()
