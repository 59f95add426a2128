"""Training throughput of the proxy harness against a plain PyTorch loop, and against matmul FLOP/s.

Both train the default proxy with the same batch size, optimiser and number of steps on the same
images: the harness (uint8 in memory, channels_last, explicit threads, no DataLoader, freed memory kept
for reuse, effscale's CPU kernels, a fused optimiser) and a plain loop (DataLoader over a
TensorDataset of float NCHW tensors, eager, default threads, glibc's default allocator, PyTorch's kernels, the
optimiser's default per-parameter loop). To show where the speedup comes from, the harness also runs in NCHW
("of it channels_last"), with glibc's defaults, EFFSCALE_KEEP_FREED_MEMORY=0 ("of it memory kept"), with
PyTorch's kernels only, EFFSCALE_CPU_KERNELS=0 ("of it CPU kernels"), and with the per-parameter optimiser
("of it fused optimiser"). Each loop runs in a process of its own, as these settings hold for a whole process.
Each first runs a few untimed steps (oneDNN builds its kernels for each new shape and layout on first use),
then the loops take turns for a few rounds, the harness right after the plain loop: the table gives the median
images/s of each and the median and range of the ratios measured within a round.
Achieved training FLOP/s count 3 x forward MACs x 2 per image; the matmul reference is a float32 torch.mm.

    python -m effscale.experiments.benchmarks.train_speed [--steps 40] [--rounds 3] [--resolutions 32,64]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import time
from multiprocessing.connection import Connection

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from effscale.experiments.benchmarks.turns import in_turns
from effscale.experiments.output import print_table
from effscale.models.builder import build
from effscale.models.complexity import count
from effscale.models.spec import NetworkSpec
from effscale.search import allocator, cpu_kernels, optim, trainer
from effscale.search.proxy import proxy_spec
from effscale.search.task import ProxyTask, adapt, load_task
from effscale.search.train_config import TrainConfig


def plain_images_per_second(spec: NetworkSpec, task: ProxyTask, config: TrainConfig) -> float:
    """The textbook loop over the same images, standardised to float NCHW up front."""
    mean = torch.tensor(task.mean).view(1, -1, 1, 1)
    std = torch.tensor(task.std).view(1, -1, 1, 1)
    images = ((task.train_images.float() - mean) / std).contiguous()
    loader = DataLoader(TensorDataset(images, task.train_labels), batch_size=config.batch_size, shuffle=True, drop_last=True)
    torch.manual_seed(config.seed)
    model = build(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, seen = time.perf_counter(), 0
    for step, (x, y) in enumerate(loader):
        if step == config.max_steps:
            break
        loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


# The harness right after the plain loop: the speedup's two measurements are neighbours in every round, so a burst
# of a neighbour's work on the machine is more likely to hit both.
LOOPS = ("plain", "harness", "harness NCHW", "harness, memory returned", "harness, PyTorch's kernels",
         "harness, per-parameter optimiser")
OPT_OUTS = {"harness, memory returned": allocator.OPT_OUT, "harness, PyTorch's kernels": cpu_kernels.OPT_OUT}


def images_per_second(loop: str, spec: NetworkSpec, task: ProxyTask, config: TrainConfig) -> float:
    """One measurement of `loop` (one of `LOOPS`)."""
    if loop == "plain":
        return plain_images_per_second(spec, task, config)
    return trainer.proxy_train(spec, task, config.with_(channels_last=loop != "harness NCHW"))["images_per_second"]


def serve(loop: str, dataset: str, resolution: int, config: TrainConfig, connection: Connection) -> None:
    """A worker process: measures `loop` for each number of steps it receives, until it receives None."""
    if loop in OPT_OUTS:
        os.environ[OPT_OUTS[loop]] = "0"
    if loop == "harness, per-parameter optimiser":  # this process's trainer builds its optimisers unfused
        trainer.make_optimizer = functools.partial(optim.make_optimizer, fused=False)
    task = load_task(dataset, resolution, config)
    spec = adapt(proxy_spec(resolution), task)
    connection.send((spec.name, count(spec).macs))
    while (steps := connection.recv()) is not None:
        connection.send(images_per_second(loop, spec, task, config.with_(max_steps=steps)))


class Worker:
    """One loop in a process of its own, with the name and MACs of the spec it trains; `measure(steps)`
    runs there and returns its images/s."""

    def __init__(self, loop: str, dataset: str, resolution: int, config: TrainConfig) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.connection, theirs = spawn.Pipe()
        self.process = spawn.Process(target=serve, args=(loop, dataset, resolution, config, theirs), daemon=True)
        self.process.start()
        self.spec_name, self.macs = self.connection.recv()

    def measure(self, steps: int) -> float:
        self.connection.send(steps)
        return self.connection.recv()

    def close(self) -> None:
        self.connection.send(None)
        self.process.join()


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    """float32 FLOP/s of an n x n matmul at the default thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def ratios(numerators: list[float], denominators: list[float]) -> tuple[float, str]:
    """The median and the range of per-round ratios."""
    within = sorted(n / d for n, d in zip(numerators, denominators))
    return statistics.median(within), f"{within[0]:.2f}-{within[-1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--steps", type=int, default=40, help="training steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps each loop runs first")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each loop, taken in turns")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--resolutions", default="32,64")
    args = parser.parse_args()
    config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, augment="none",
                         subset=args.steps * args.batch_size, val_size=500)
    peak = matmul_flops()
    rows = []
    for resolution in (int(r) for r in args.resolutions.split(",")):
        workers = [Worker(loop, args.dataset, resolution, config) for loop in LOOPS]
        for worker in workers:
            worker.measure(args.warmup)
        readings = in_turns([lambda worker=worker: worker.measure(args.steps) for worker in workers], args.rounds)
        for worker in workers:
            worker.close()
        plain, harness, nchw, returned, pytorch_kernels, per_parameter = readings
        speedup, speedup_range = ratios(harness, plain)
        train_flops = 3 * 2 * workers[0].macs * statistics.median(harness)
        rows.append({"resolution": resolution, **{f"{loop} img/s": statistics.median(taken)
                                                   for loop, taken in zip(LOOPS, readings)},
                     "speedup": speedup, "speedup range": speedup_range, "of it memory kept": ratios(harness, returned)[0],
                     "of it CPU kernels": ratios(harness, pytorch_kernels)[0],
                     "of it fused optimiser": ratios(harness, per_parameter)[0],
                     "of it channels_last": ratios(harness, nchw)[0], "harness GFLOP/s": train_flops / 1e9,
                     "fraction of matmul": train_flops / peak})
    print(f"{workers[0].spec_name} on {args.dataset}, batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps "
          f"after {args.warmup} untimed, {torch.get_num_threads()} threads; "
          f"matmul 2048x2048 float32: {peak / 1e9:.1f} GFLOP/s")
    print_table(pd.DataFrame(rows))


if __name__ == "__main__":
    main()
