"""`effscale count`: params, MACs (paper FLOPS) and activations of a model."""

from __future__ import annotations

import argparse

from effscale.experiments.options import add_model_arguments, model_from_args
from effscale.experiments.output import print_record
from effscale.models.measure import COUNTERS, measure

EXAMPLES = """\
examples:
  effscale count efficientnet-b0                       # 5,288,548 params, 385,814,752 MACs
  effscale count efficientnet-b3 --counter torch       # measured by FlopCounterMode
  effscale count efficientnet-b0 --width 2 --depth 3.1 --resolution 600 --json
  effscale count runs/nas/best.json --num-classes 10 --in-channels 1 --resolution 32
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("count", help="count params, MACs (paper FLOPS) and activations",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--counter", choices=COUNTERS, default="analytic",
                        help="analytic (from the spec, default), torch (FlopCounterMode) or fvcore")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = model_from_args(args)
    complexity = measure(spec, args.counter)
    record = {
        "model": args.model,
        "width": 1.0 if args.width is None else args.width,
        "depth": 1.0 if args.depth is None else args.depth,
        "resolution": spec.resolution,
        "num_classes": spec.num_classes,
        "in_channels": spec.in_channels,
        "counter": args.counter,
        "params": complexity.params,
        "macs": complexity.macs,
        "acts": complexity.acts,
    }
    print_record(record, args.json)
    return 0
