"""`effscale grid`: Step 1, the compound-coefficient grid search at phi = 1 on a proxy-trained baseline."""

from __future__ import annotations

import argparse

from effscale.experiments.options import finite_float, load_model, nonempty_path
from effscale.experiments.output import print_table
from effscale.experiments.sweep import SWEEP_DEFAULTS, add_execution_arguments, checked_training, run_points
from effscale.experiments.training_options import add_training_arguments
from effscale.models.spec import NetworkSpec
from effscale.reports.sweep_report import write_sweep_report
from effscale.search.grid import OUTSIDE_BAND, GridConfig, enumerate_points, screen
from effscale.search.grid_search import write_best
from effscale.search.rundir import RunDir

EXAMPLES = """\
Each grid point (alpha, beta, gamma >= 1 with |alpha * beta^2 * gamma^2 - 2| <= tolerance) scales the
baseline at phi = 1; points whose analytic MACs ratio falls outside --macs-band, and points that round to
the same network as another (the one closest to the constraint is kept), are skipped before training.
Rerunning the same command on the same --out resumes: no finished point is trained again.

examples:
  effscale grid --out runs/grid                                       # default proxy on Fashion-MNIST
  effscale grid --out runs/grid --step 0.1 --epochs 1 --subset 5000 --jobs 2
  effscale grid --out runs/grid-ray --backend ray --asha
  effscale grid --baseline runs/nas/best.json --out runs/grid-nas --solve-gamma
  effscale scale proxy --from runs/grid --phi 0,1,2,3                 # Step 2
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("grid", help="Step 1: grid search alpha, beta, gamma under alpha*beta^2*gamma^2 ~ 2",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=nonempty_path, help="run directory (created, or resumed)")
    parser.add_argument("--baseline", default="proxy",
                        help="proxy (default: see search/proxy.py), a named model or a spec JSON file")
    parser.add_argument("--resolution", type=int, help="baseline resolution in pixels (default: the baseline's)")
    grid = parser.add_argument_group("grid")
    grid.add_argument("--step", type=float, default=0.05, help="grid step of alpha, beta, gamma (default 0.05)")
    grid.add_argument("--tolerance", type=float, default=0.1, help="|alpha*beta^2*gamma^2 - 2| allowed (default 0.1)")
    grid.add_argument("--alpha-range", type=_range, default=(1.0, 2.0), help="LOW,HIGH (default 1,2)")
    grid.add_argument("--beta-range", type=_range, default=(1.0, 1.5), help="LOW,HIGH (default 1,1.5)")
    grid.add_argument("--gamma-range", type=_range, default=(1.0, 1.5), help="LOW,HIGH (default 1,1.5)")
    grid.add_argument("--solve-gamma", action="store_true", help="grid over alpha, beta; gamma = sqrt(2 / (alpha beta^2))")
    grid.add_argument("--macs-band", type=_range, default=(1.5, 2.5),
                      help="keep points whose MACs ratio to the baseline lies in LOW,HIGH (default 1.5,2.5)")
    add_training_arguments(parser, SWEEP_DEFAULTS)
    add_execution_arguments(parser)
    parser.set_defaults(run=run)


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (finite_float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (finite numbers), got {text!r}") from None
    return low, high


def baseline_from_args(name: str, resolution: int | None) -> NetworkSpec:
    spec = load_model(name)
    return spec if resolution is None else spec.with_(resolution=resolution)


def run(args: argparse.Namespace) -> int:
    baseline = baseline_from_args(args.baseline, args.resolution)
    config = GridConfig(step=args.step, alpha=args.alpha_range, beta=args.beta_range, gamma=args.gamma_range,
                        tolerance=args.tolerance, solve_gamma=args.solve_gamma, macs_band=args.macs_band)
    points = enumerate_points(config)
    train = checked_training(args)  # bad input is refused before the grid's summary is printed
    kept, skipped = screen(points, baseline, config)
    outside = sum(row["reason"].startswith(OUTSIDE_BAND) for row in skipped)
    print(f"{len(points)} grid points satisfy the constraint; {len(kept)} distinct networks kept, skipped: {outside} "
          f"with a MACs ratio outside {config.macs_band[0]:g}..{config.macs_band[1]:g}, "
          f"{len(skipped) - outside} the same network as a kept point")
    results = run_points(args, train, "grid", args.out, baseline, kept, skipped, {"grid": config.__dict__})
    run_dir = RunDir(args.out)
    write_best(run_dir, results, baseline)
    ranking = write_sweep_report(run_dir.path, results, "Compound-coefficient grid search (Step 1)", by_point=True)
    print_table(ranking.head(10))
    print(f"results: {run_dir.results}\nbest:    {run_dir.best}\nreport:  {run_dir.path / 'report.md'}")
    return 0
