"""Benchmark: grid-search throughput of 2 concurrent 1-thread trials vs 1 trial at a time, and the training
saved by multi-fidelity (Optuna successive halving), both through `effscale grid` on Fashion-MNIST.

    python -m effscale.experiments.benchmarks.grid_speed [--step 0.1] [--epochs 3] [--subset 3000]

Part 1 trains the same grid points three ways: one 1-thread trial at a time (--jobs 1 --threads 1), one
2-thread trial at a time (--jobs 1, the default) and two concurrent 1-thread trials (--jobs 2). It prints the
images trained per second, over the whole command's wall time and over the span in which trials ran (first
trial start to last trial end, from the Optuna journal: start-up left out), and the ratios of the concurrent
run to each sequential one (goal >= 1.7x on 2 cores), then the most this machine allows: the same ratio for
bare training steps and for an in-cache matmul, measured without Optuna (`parallel_ceiling`).
Part 2 trains the same points to the full budget and with --prune, and prints the epochs each trained,
the fraction saved, and whether both runs found the same best point.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from effscale.experiments.benchmarks.parallel_ceiling import print_ratios
from effscale.experiments.cli import main as effscale

_SEQUENTIAL, _CONCURRENT = "1 trial at a time, 1 thread", "2 concurrent 1-thread trials"
EXECUTIONS = {_SEQUENTIAL: ("--jobs", "1", "--threads", "1"),
              "1 trial at a time, 2 threads": ("--jobs", "1", "--threads", "2"),
              _CONCURRENT: ("--jobs", "2", "--threads", "1")}
"""How part 1 runs the same grid: a name and the flags of `effscale grid`."""


def _trial_span(out: Path) -> float:
    """Seconds from the first trial's start to the last trial's end."""
    study = optuna.load_study(study_name="grid", storage=JournalStorage(JournalFileBackend(str(out / "study.journal"))))
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()


def _grid(out: Path, args: argparse.Namespace, *extra: str) -> tuple[float, pd.DataFrame]:
    """Run one grid search; (wall seconds, results)."""
    start = time.perf_counter()
    status = effscale(["grid", "--out", str(out), "--step", str(args.step), "--macs-band", "1,3",
                       "--epochs", str(args.epochs), "--subset", str(args.subset), "--val-size", "2000", *extra])
    if status != 0:
        raise SystemExit(f"grid run failed with status {status}")
    return time.perf_counter() - start, pd.read_csv(out / "results.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=float, default=0.1, help="grid step (0.1: 8 points of the default proxy)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--subset", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: _grid(Path(tmp) / name, args, *flags) for name, flags in EXECUTIONS.items()}
        spans = {name: _trial_span(Path(tmp) / name) for name in EXECUTIONS}
        pruned_seconds, pruned = _grid(Path(tmp) / "pruned", args, "--prune", "--jobs", "2")
        best = {name: json.loads((Path(tmp) / name / "best.json").read_text())["label"] for name in (_SEQUENTIAL, "pruned")}
    full = runs[_SEQUENTIAL][1]
    images = args.subset * args.epochs * (full["state"] == "COMPLETE").sum()
    print(f"\n{(full['state'] == 'COMPLETE').sum()} grid points, {args.epochs:g} epochs of {args.subset} images each")
    for name, (seconds, _) in runs.items():
        print(f"{name:38} {' '.join(EXECUTIONS[name]):22} {seconds:6.1f} s wall, {images / seconds:6.1f} images/s; "
              f"trials ran {spans[name]:6.1f} s, {images / spans[name]:6.1f} images/s")
    for name in EXECUTIONS:
        if name != _CONCURRENT:
            print(f"throughput ratio, {_CONCURRENT} vs {name}: {runs[name][0] / runs[_CONCURRENT][0]:.2f}x by wall time, "
                  f"{spans[name] / spans[_CONCURRENT]:.2f}x over the span the trials ran")
    print("the same ratio for bare work, without Optuna, start-up, data or evaluation (30 units):")
    print_ratios(30)
    full_epochs, pruned_epochs = full["epochs"].sum(), pruned["epochs"].sum()
    print(f"\nmulti-fidelity (--prune): {pruned_epochs:g} of {full_epochs:g} epochs trained "
          f"({1 - pruned_epochs / full_epochs:.0%} saved), {pruned_seconds:.1f} s vs {runs[_CONCURRENT][0]:.1f} s wall "
          f"at --jobs 2; pruned points: {(pruned['state'] == 'PRUNED').sum()}")
    print(f"best point: full grid {best[_SEQUENTIAL]!r}, multi-fidelity {best['pruned']!r}: "
          + ("same" if best[_SEQUENTIAL] == best["pruned"] else "DIFFERENT"))


if __name__ == "__main__":
    main()
