"""`effscale figure 3|4|8` and `effscale table 3`: the paper's scaling experiments at proxy scale, with a report."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from effscale.experiments.config_check import BUDGETS
from effscale.experiments.named import TRAINING_KEYS, Experiment, load_experiment
from effscale.experiments.options import nonempty, nonempty_path
from effscale.experiments.output import print_table
from effscale.experiments.sweep import add_execution_arguments, checked_training, run_points
from effscale.experiments.training_options import add_training_arguments
from effscale.reports import findings
from effscale.reports.sweep_report import write_sweep_report
from effscale.search.rundir import RunDir
from effscale.search.train_config import TrainConfig, available_cores

EXAMPLES = """\
budgets: tiny (a minute or two, for tests), cpu (15 to 45 minutes per figure on 2 cores), gpu (closer to the
paper). Options given on the command line (--epochs, --subset, --val-size, --seeds) override the budget's.
To change an experiment, copy experiments/configs/{name}.yaml, edit it and pass --config FILE.
Rerunning the same command resumes; finished points are not trained again.

examples:
  effscale {command} {number} --budget tiny --out runs/{name}-tiny
  effscale {command} {number} --budget cpu --out runs/{name} --jobs 2
  effscale report runs/{name}
"""
COMMANDS = {"figure": ("3", "4", "8"), "table": ("3",)}
EXPERIMENT_FILE = "experiment.json"
FALLBACKS = {"epochs": 1.0, "val_size": 5000, "seeds": 1}  # set by neither the command line nor the budget


def register(subparsers: argparse._SubParsersAction) -> None:
    for command, numbers in COMMANDS.items():
        name = "fig" if command == "figure" else "table"
        parser = subparsers.add_parser(
            command, help=f"reproduce the paper's {command} {'|'.join(numbers)} at proxy scale", description=__doc__,
            epilog=EXAMPLES.format(command=command, number=numbers[0], name=f"{name}{numbers[0]}"),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("number", choices=numbers, help=f"which {command}")
        parser.add_argument("--out", type=nonempty_path, help=f"run directory (default runs/{name}N-BUDGET)")
        parser.add_argument("--budget", choices=BUDGETS, default="gpu" if torch.cuda.is_available() else "cpu",
                            help="tiny, cpu or gpu (default: gpu when CUDA is present, else cpu)")
        parser.add_argument("--config", type=nonempty, help="a YAML experiment config to use instead of the packaged one")
        add_training_arguments(parser)
        add_execution_arguments(parser)
        parser.set_defaults(run=run, prefix=name, **{key: None for key in TRAINING_KEYS})


def run(args: argparse.Namespace) -> int:
    config = args.config or f"{args.prefix}{args.number}"
    experiment = load_experiment(config, args.budget)
    fill_training_options(args, experiment.budget)
    out = args.out or Path("runs") / f"{experiment.name}-{args.budget}"
    train = checked_training(args)
    with _claim(out, experiment, args.budget):
        results = _train(args, train, experiment, out)
        RunDir(out).write_json(out / EXPERIMENT_FILE, {"config": config, "budget": args.budget,
                                                       "command": command_line()})
        results.to_csv(out / "results.csv", index=False)
        ranking = write_experiment_report(out, experiment, results, command_line())
    print_table(ranking)
    print(f"report: {out / 'report.md'}")
    return 0


def _train(args: argparse.Namespace, train: TrainConfig, experiment: Experiment, out: Path) -> pd.DataFrame:
    """Train every baseline's points (in `out`, or with several baselines in `out`/NAME); all results."""
    frames = []
    for name, points in experiment.points.items():
        run_dir = out if len(experiment.points) == 1 else out / name
        results = run_points(args, train, experiment.name, run_dir, experiment.baselines[name], points,
                             identity={"experiment": experiment.name, "budget": args.budget})
        frames.append(results.assign(baseline=name))
    return pd.concat(frames, ignore_index=True)


def fill_training_options(args: argparse.Namespace, budget: dict[str, Any]) -> None:
    """Set the training options not given on the command line from the budget, else from FALLBACKS (a 0 given
    on the command line stays, for TrainConfig to refuse)."""
    for key in TRAINING_KEYS:
        if getattr(args, key) is None:
            value = budget.get(key)
            setattr(args, key, FALLBACKS.get(key) if value is None else value)


def _claim(out: Path, experiment: Experiment, budget: str) -> AbstractContextManager[object]:
    """With several baselines, claim `out` (which holds one run directory per baseline) for this experiment;
    with one, run_points claims `out` itself. Either way nothing is written before the identity check."""
    if len(experiment.points) == 1:
        return nullcontext()
    return RunDir(out).claim(experiment.name, {"experiment": experiment.name, "budget": budget,
                                               "baselines": list(experiment.points)})


def _as_run(out: Path, experiment: Experiment) -> str:
    """The training settings that were used (from the first run directory's config.json), budget overrides included."""
    run_dir = out if len(experiment.points) == 1 else out / next(iter(experiment.points))
    identity = json.loads((run_dir / "config.json").read_text())["identity"]
    train = identity["train"]
    return (f"{train['epochs']:g} epochs, subset {train['subset']}, {train['val_size']} held out, batch "
            f"{train['batch_size']}, {train['optimizer']} lr {train['lr']:g}, "
            f"{'zero-init residual branches, ' if train.get('zero_init_residual') else ''}{identity['seeds']} seed(s), "
            f"dataset {identity['dataset']}")


def command_line() -> str:
    """The effscale command that is running, quoted for a shell."""
    return " ".join(shlex.quote(a) for a in ["effscale", *sys.argv[1:]])


def write_experiment_report(out: Path, experiment: Experiment, results: pd.DataFrame, command: str) -> pd.DataFrame:
    """report.md with the finding checked, the plots and the tables, and how the run was made."""
    verdict = {"saturation": lambda: findings.saturation(results),
               "baselines": lambda: findings.baselines(results, experiment.reference_series or ""),
               "compound": lambda: findings.compound(results)}[experiment.finding]()
    shown = results
    if len(experiment.points) > 1:  # one line per network and rule
        shown = results.assign(series=results["baseline"] + ": " + results["series"])
    provenance = (f"Command: `{command}`\n\n"
                  f"Machine: {platform.machine()}, {available_cores()} cores, torch {torch.__version__}, "
                  f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}.\n\n"
                  f"Training as run: {_as_run(out, experiment)}.")
    panels = experiment.panels or (tuple(experiment.points) if len(experiment.points) > 1 else None)
    return write_sweep_report(out, shown, experiment.title, panels=panels,
                              findings=f"{verdict}\n\n{provenance}")
