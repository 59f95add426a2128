"""`effscale grid`: Step 1, the compound-coefficient grid search at phi = 1 on a proxy-trained baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from effscale.experiments.options import load_model
from effscale.experiments.output import print_table
from effscale.experiments.training_options import add_training_arguments, identity_of, train_config_from_args
from effscale.models.errors import EffscaleError
from effscale.reports.grid_report import write_grid_report
from effscale.search.grid import GridConfig, enumerate_points, screen
from effscale.search.grid_search import GridObjective, GridRun
from effscale.search.objective import Evaluation
from effscale.search.proxy import proxy_spec
from effscale.search.rundir import RunDir
from effscale.search.train_config import TrainConfig, available_cores

BACKENDS = ("optuna", "ray")
DEFAULTS = TrainConfig(epochs=2.0, subset=10000)

EXAMPLES = """\
Each grid point (alpha, beta, gamma >= 1 with |alpha * beta^2 * gamma^2 - 2| <= tolerance) scales the
baseline at phi = 1; points whose analytic MACs ratio falls outside --macs-band are skipped before
training. Rerunning the same command on the same --out resumes: no finished point is trained again.

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
    parser.add_argument("--out", required=True, type=Path, help="run directory (created, or resumed)")
    parser.add_argument("--baseline", default="proxy",
                        help="proxy (default: B0 at width 0.5, depth 0.5, 32 px), a named model or a spec JSON file")
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
    add_training_arguments(parser, DEFAULTS)
    run_ = parser.add_argument_group("execution")
    run_.add_argument("--seeds", type=int, default=1, help="training seeds per point (default 1)")
    run_.add_argument("--backend", choices=BACKENDS, default="optuna", help="optuna (default) or ray")
    run_.add_argument("--jobs", type=int, default=1, help="trials in parallel (each gets cores / jobs threads)")
    run_.add_argument("--storage", help="Optuna RDB URL (e.g. postgresql://...) instead of the run's journal file")
    run_.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    run_.add_argument("--prune", action="store_true", help="multi-fidelity: Optuna successive halving on per-epoch accuracy")
    run_.add_argument("--asha", action="store_true", help="multi-fidelity on Ray: ASHA early stopping")
    parser.set_defaults(run=run)


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    return low, high


def baseline_from_args(name: str, resolution: int | None):
    spec = proxy_spec() if name == "proxy" else load_model(name)
    return spec.with_(resolution=resolution) if resolution else spec


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.jobs < 1:
        raise EffscaleError("--seeds and --jobs must be >= 1")
    if args.backend != "ray" and (args.address or args.asha):
        raise EffscaleError("--address and --asha need --backend ray")
    baseline = baseline_from_args(args.baseline, args.resolution)
    config = GridConfig(step=args.step, alpha=args.alpha_range, beta=args.beta_range, gamma=args.gamma_range,
                        tolerance=args.tolerance, solve_gamma=args.solve_gamma, macs_band=args.macs_band)
    train = train_config_from_args(args, threads=max(1, available_cores() // args.jobs))
    points = enumerate_points(config)
    kept, skipped = screen(points, baseline, config.macs_band)
    run_dir = RunDir(args.out)
    identity = {"baseline": baseline.to_dict(), "dataset": args.dataset, "grid": config.__dict__,
                "train": identity_of(train), "seeds": args.seeds, "backend": args.backend,
                "prune": args.prune, "asha": args.asha}
    resuming = run_dir.prepare("grid", identity, {"jobs": args.jobs, "threads": args.threads})
    with run_dir.lock():
        print(f"{len(points)} grid points satisfy the constraint; {len(kept)} kept, {len(skipped)} skipped "
              f"(MACs ratio outside {config.macs_band[0]:g}..{config.macs_band[1]:g})"
              + ("; resuming" if resuming else ""))
        evaluation = Evaluation(args.dataset, train, seeds=args.seeds)
        objective = GridObjective(tuple(kept), baseline, evaluation, prune=args.prune or args.asha)
        grid_run = GridRun(run_dir.path, objective, tuple(skipped), args.backend, args.jobs, args.storage,
                           args.address, args.asha)
        results = grid_run.run()
        ranking = write_grid_report(run_dir.path, results)
    print_table(ranking.head(10))
    print(f"results: {run_dir.results}\nbest:    {run_dir.best}\nreport:  {run_dir.path / 'report.md'}")
    return 0

