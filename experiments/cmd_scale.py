"""`effscale scale`: expand a baseline into a family, one row per phi."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from effscale.experiments.options import load_model, nonempty_path, parse_float_list
from effscale.experiments.output import print_table
from effscale.models.errors import EffscaleError
from effscale.models.zoo import baseline_of
from effscale.scaling.family import family_table
from effscale.scaling.rules import compound, official
from effscale.search.step_one import read_found

EXAMPLES = """\
examples:
  effscale scale efficientnet-b0 --official --phi 0,1,2,3,4,5,6,7     # the released B0..B7
  effscale scale efficientnet-b0 --alpha 1.2 --beta 1.1 --gamma 1.15 --phi 0,1,2,3 --csv
  effscale scale efficientnet-b0 --from runs/grid --phi 0,1,2,3       # coefficients found by `effscale grid`
  effscale scale proxy --from runs/grid --phi 0,1,2                   # the grid's own baseline
  effscale scale mobilenet-v2 --alpha 1.2 --beta 1.1 --gamma 1.15 --phi=-1,0,1 --json   # negative phi: use --phi=
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scale", help="expand a baseline into a model family (B0..B7 style)",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL",
                        help="a named model, a spec JSON file, or proxy (efficientnet-bN: its B0)")
    rule = parser.add_mutually_exclusive_group(required=True)
    rule.add_argument("--official", action="store_true", help="the released B0..B7 coefficient table (phi = N -> bN)")
    rule.add_argument("--alpha", type=float, help="depth base: d = alpha^phi (>= 1)")
    rule.add_argument("--from", dest="run_dir", metavar="RUN_DIR", type=nonempty_path,
                      help="alpha, beta, gamma found by a grid run")
    parser.add_argument("--beta", type=float, help="width base: w = beta^phi (>= 1)")
    parser.add_argument("--gamma", type=float, help="resolution base: r = gamma^phi (>= 1)")
    parser.add_argument("--phi", type=parse_float_list, required=True, help="comma-separated phi values, e.g. 0,1,2")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", dest="format", action="store_const", const="json", help="print JSON records")
    form.add_argument("--csv", dest="format", action="store_const", const="csv", help="print CSV")
    parser.set_defaults(run=run, format="text")


def run(args: argparse.Namespace) -> int:
    if args.alpha is not None and (args.beta is None or args.gamma is None):
        raise EffscaleError("--alpha needs --beta and --gamma (or use --official)")
    if args.alpha is None and (args.beta is not None or args.gamma is not None):
        raise EffscaleError("--beta and --gamma go with --alpha, not with --official or --from")
    spec = load_model(baseline_of(args.model))
    if args.run_dir is not None:
        found = read_found(args.run_dir)
        args.alpha, args.beta, args.gamma = found.alpha, found.beta, found.gamma
        print(f"# from {args.run_dir}: alpha={found.alpha:g} beta={found.beta:g} gamma={found.gamma:g}", file=sys.stderr)
    rule = official if args.official else partial(compound, args.alpha, args.beta, args.gamma)
    print_table(family_table(spec, rule, args.phi), args.format)
    return 0
