"""Launching a list of scaled points in a run directory: execution options, identity check, lock, backend."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from effscale.experiments.training_options import identity_of, launch_config_from_args
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.search.grid_search import GridObjective, GridRun
from effscale.search.objective import Evaluation
from effscale.search.rundir import RunDir
from effscale.search.train_config import TrainConfig

BACKENDS = ("optuna", "ray")
SWEEP_DEFAULTS = TrainConfig(epochs=2.0, subset=10000)  # grid and family training: per point, not one long run


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """--seeds, --backend, --jobs, --storage, --address, --prune, --asha."""
    group = parser.add_argument_group("execution")
    group.add_argument("--seeds", type=int, default=1, help="training seeds per point (default 1)")
    group.add_argument("--backend", choices=BACKENDS, default="optuna", help="optuna (default) or ray")
    group.add_argument("--jobs", type=int, default=1, help="trials in parallel (each gets cores / jobs threads)")
    group.add_argument("--storage", help="Optuna RDB URL (e.g. postgresql://...) instead of the run's journal file")
    group.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    group.add_argument("--prune", action="store_true", help="multi-fidelity: Optuna successive halving on per-epoch accuracy")
    group.add_argument("--asha", action="store_true", help="multi-fidelity on Ray: ASHA early stopping")


def checked_training(args: argparse.Namespace) -> TrainConfig:
    """The recipe of each point, once the execution options fit together and the data loads and fits it:
    what a launcher checks before it writes anything or starts workers that would each fail on it."""
    if args.seeds < 1 or args.jobs < 1:
        raise EffscaleError("--seeds and --jobs must be >= 1")
    if args.backend != "ray" and (args.address or args.asha):
        raise EffscaleError("--address and --asha need --backend ray")
    if args.backend == "ray" and (args.storage or args.prune):
        raise EffscaleError("--storage and --prune are Optuna options (with --backend ray use --asha)")
    return launch_config_from_args(args)


def run_points(args: argparse.Namespace, train: TrainConfig, kind: str, out: Path, baseline: NetworkSpec,
               points: list[dict[str, Any]], skipped: list[dict[str, Any]] = (),
               identity: dict[str, Any] | None = None) -> pd.DataFrame:
    """Train `points` (rows with label, series, d, w, r) of `baseline` with the recipe `train` (from
    `checked_training`) in run directory `out`, resuming; results."""
    run_dir = RunDir(out)
    full_identity = {"baseline": baseline.to_dict(), "dataset": args.dataset, "points": [p["label"] for p in points],
                     "train": identity_of(train), "seeds": args.seeds, "backend": args.backend,
                     "multi_fidelity": args.prune or args.asha, **(identity or {})}
    objective = GridObjective(tuple(points), baseline, Evaluation(args.dataset, train, seeds=args.seeds),
                              prune=args.prune or args.asha)
    with run_dir.claim(kind, full_identity, {"jobs": args.jobs, "threads": args.threads}) as resuming:
        print(f"{len(points)} points to train in {run_dir.path}" + (" (resuming)" if resuming else ""))
        return GridRun(run_dir.path, objective, tuple(skipped), args.backend, args.jobs, args.storage,
                       args.address, args.asha, name=kind).run()
