"""`effscale train`: proxy-train one model on a dataset's training split and print the held-out metrics."""

from __future__ import annotations

import argparse

from effscale.experiments.options import PROXY, add_model_arguments, model_from_args
from effscale.experiments.output import print_record
from effscale.experiments.training_options import add_training_arguments, train_config_from_args
from effscale.models.errors import EffscaleError
from effscale.search.proxy import DEFAULT_PROXY
from effscale.search.task import adapt, load_task
from effscale.search.trainer import proxy_train

EXAMPLES = f"""\
MODEL `{PROXY}` (the default) is {DEFAULT_PROXY['model']} at width {DEFAULT_PROXY['width']}, depth \
{DEFAULT_PROXY['depth']} and {DEFAULT_PROXY['resolution']} px without dropout (see search/proxy.py);
--width/--depth scale it further and --resolution overrides its resolution.
Grayscale data trains with 1 input channel unless --in-channels 3 (replication) is given.
The test split is never used: accuracy is measured on a held-out part of the training split.

examples:
  effscale train --epochs 5                                  # the default proxy on Fashion-MNIST
  effscale train --dataset synthetic --epochs 1 --json
  effscale train efficientnet-b0 --width 0.25 --depth 0.5 --resolution 64 --subset 10000 --epochs 2
  effscale train mobilenet-v2 --resolution 32 --dataset ~/data/cifar-10-batches-py --in-channels 3
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="proxy-train a model and print held-out accuracy and speed",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, model_default=PROXY)
    add_training_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = train_config_from_args(args)
    spec = model_from_args(args)
    task = load_task(args.dataset, spec.resolution, config, channels=args.in_channels)
    if args.num_classes is not None and args.num_classes != task.num_classes:
        raise EffscaleError(f"--num-classes {args.num_classes} does not match the {task.num_classes} classes of {args.dataset}")
    metrics = proxy_train(adapt(spec, task), task, config, progress=True)
    record = {"model": args.model, "width": args.width, "depth": args.depth, "resolution": spec.resolution,
              "in_channels": task.channels, "dataset": args.dataset, **metrics}
    print_record(record, args.json)
    return 0

