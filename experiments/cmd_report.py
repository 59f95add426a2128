"""`effscale report RUN_DIR`: (re)write the plots and report.md of any run directory from its results.csv."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from effscale.experiments.cmd_figure import EXPERIMENT_FILE, write_experiment_report
from effscale.experiments.named import load_experiment
from effscale.experiments.options import nonempty_path
from effscale.experiments.output import print_table
from effscale.models.errors import EffscaleError
from effscale.reports.nas_report import write_nas_report
from effscale.reports.sweep_report import write_sweep_report
from effscale.search.rundir import RunDir

EXAMPLES = """\
examples:
  effscale report runs/grid            # a grid search (Step 1)
  effscale report runs/grid/family     # Step 2's family training
  effscale report runs/fig3            # a figure or table experiment
  effscale report runs/nas             # a baseline search
"""
TITLES = {"grid": "Compound-coefficient grid search (Step 1)", "family": "Scaling the baseline: compound vs one dimension"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write plots (PNG, SVG) and report.md for a run directory",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", type=nonempty_path, help="a run directory with a results.csv")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    run_dir = RunDir(args.run_dir)
    if not run_dir.results.is_file():
        raise EffscaleError(f"{run_dir.path} has no results.csv: not a finished effscale run directory")
    try:
        results = pd.read_csv(run_dir.results)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        raise EffscaleError(f"{run_dir.results} is corrupt") from None
    check_results(results, run_dir.results)
    experiment_file = run_dir.path / EXPERIMENT_FILE
    if experiment_file.is_file():
        recorded = _json(experiment_file)
        experiment = load_experiment(recorded["config"], recorded["budget"])
        table = write_experiment_report(run_dir.path, experiment, results, recorded["command"])
    else:
        config = _json(run_dir.config)
        kind = config.get("kind")
        if kind == "nas":
            table = write_nas_report(run_dir.path, results, config["identity"]["reward"])
        elif kind in TITLES:
            table = write_sweep_report(run_dir.path, results, TITLES[kind], by_point=kind == "grid")
        else:
            raise EffscaleError(f"{run_dir.path} was made by an unknown command {kind!r}")
    print_table(table.head(20))
    print(f"report: {run_dir.path / 'report.md'}")
    return 0


def check_results(results: pd.DataFrame, path: Path) -> None:
    """Raise unless `results` has the columns every report reads, the numeric ones numeric."""
    missing = [column for column in ("label", "state", "accuracy", "macs") if column not in results]
    if missing:
        raise EffscaleError(f"{path} is corrupt: no column {', '.join(missing)}")
    for column in ("accuracy", "macs"):
        if not pd.api.types.is_numeric_dtype(results[column]):
            raise EffscaleError(f"{path} is corrupt: column {column} holds non-numbers")


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EffscaleError(f"{path.parent} has no {path.name}: not an effscale run directory") from None
    except json.JSONDecodeError:
        raise EffscaleError(f"{path} is corrupt") from None
