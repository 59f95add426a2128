"""Benchmark: grid-search throughput of 2 concurrent 1-thread trials vs 1 trial at a time, and the training
saved by multi-fidelity (Optuna successive halving), both through `effscale grid` on Fashion-MNIST.

    python -m effscale.experiments.benchmarks.grid_speed [--step 0.1] [--epochs 3] [--subset 3000]

Part 1 trains the same grid points with --jobs 1 (one 2-thread trial at a time) and --jobs 2 (two 1-thread
trials) and prints the images trained per second, over the whole command's wall time and over the span in
which trials ran (first trial start to last trial end, from the Optuna journal: start-up left out), and the
ratios (goal >= 1.7x on 2 cores).
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

from effscale.experiments.cli import main as effscale


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
        runs = {jobs: _grid(Path(tmp) / f"jobs{jobs}", args, "--jobs", str(jobs)) for jobs in (1, 2)}
        spans = {jobs: _trial_span(Path(tmp) / f"jobs{jobs}") for jobs in (1, 2)}
        full_seconds, full = runs[1]
        pruned_seconds, pruned = _grid(Path(tmp) / "pruned", args, "--prune", "--jobs", "2")
        best = {name: json.loads((Path(tmp) / name / "best.json").read_text())["label"] for name in ("jobs1", "pruned")}
    images = args.subset * args.epochs * (full["state"] == "COMPLETE").sum()
    print(f"\n{(full['state'] == 'COMPLETE').sum()} grid points, {args.epochs:g} epochs of {args.subset} images each")
    for jobs, (seconds, _) in runs.items():
        print(f"--jobs {jobs} ({2 // jobs} thread(s) per trial): {seconds:6.1f} s wall, {images / seconds:6.1f} images/s; "
              f"trials ran {spans[jobs]:6.1f} s, {images / spans[jobs]:6.1f} images/s")
    print(f"throughput ratio, 2 concurrent 1-thread trials vs 1 at a time: {runs[1][0] / runs[2][0]:.2f}x by wall time, "
          f"{spans[1] / spans[2]:.2f}x over the span the trials ran")
    full_epochs, pruned_epochs = full["epochs"].sum(), pruned["epochs"].sum()
    print(f"\nmulti-fidelity (--prune): {pruned_epochs:g} of {full_epochs:g} epochs trained "
          f"({1 - pruned_epochs / full_epochs:.0%} saved), {pruned_seconds:.1f} s vs {runs[2][0]:.1f} s wall at --jobs 2; "
          f"pruned points: {(pruned['state'] == 'PRUNED').sum()}")
    print(f"best point: full grid {best['jobs1']!r}, multi-fidelity {best['pruned']!r}: "
          + ("same" if best["jobs1"] == best["pruned"] else "DIFFERENT"))


if __name__ == "__main__":
    main()
