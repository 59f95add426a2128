"""`effscale family train`: Step 2, train the family found by a grid run and single-dimension rivals at matching MACs."""

from __future__ import annotations

import argparse

from effscale.experiments.options import nonempty_path, parse_float_list
from effscale.experiments.output import print_table
from effscale.experiments.sweep import SWEEP_DEFAULTS, add_execution_arguments, checked_training, run_points
from effscale.experiments.training_options import add_training_arguments
from effscale.models.errors import EffscaleError
from effscale.reports.sweep_report import write_sweep_report
from effscale.scaling.matching import matched_family
from effscale.search.step_one import read_found

EXAMPLES = """\
For each phi, the compound member (alpha^phi, beta^phi, gamma^phi) and the depth-only, width-only and
resolution-only networks with the closest MACs are trained, so accuracy-vs-MACs curves compare the rules.
Results go to RUN_DIR/family/ (or --out); rerunning the same command resumes.

examples:
  effscale family train runs/grid --phi 1,2
  effscale family train runs/grid --phi 1,2,3 --seeds 3 --epochs 3 --jobs 2 --out runs/family-3seeds
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    family = subparsers.add_parser("family", help="Step 2: train a model family from a grid run's coefficients",
                                   description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = family.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=type(family))
    parser = actions.add_parser("train", help="train family members and single-dimension rivals at matching MACs",
                                description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", type=nonempty_path, help="a finished `effscale grid` run directory")
    parser.add_argument("--phi", type=parse_float_list, default=(1.0, 2.0), help="compound phi values > 0 (default 1,2)")
    parser.add_argument("--out", type=nonempty_path, help="run directory of this training (default RUN_DIR/family)")
    add_training_arguments(parser, SWEEP_DEFAULTS)
    add_execution_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if any(phi <= 0 for phi in args.phi):
        raise EffscaleError(f"--phi values must be > 0 (the baseline, phi = 0, is always trained), got {list(args.phi)}")
    found = read_found(args.run_dir)
    points = matched_family(found.baseline, found.alpha, found.beta, found.gamma, args.phi)
    out = args.out or args.run_dir / "family"
    identity = {"alpha": found.alpha, "beta": found.beta, "gamma": found.gamma, "phi": list(args.phi)}
    results = run_points(args, checked_training(args), "family", out, found.baseline, points, identity=identity)
    title = f"Scaling the baseline: compound (alpha={found.alpha:g}, beta={found.beta:g}, gamma={found.gamma:g}) vs one dimension"
    ranking = write_sweep_report(out, results, title)
    print_table(ranking)
    print(f"results: {out / 'results.csv'}\nreport:  {out / 'report.md'}")
    return 0
