"""Proxy-training options shared by `train`, `grid`, `family train`, `figure` and `nas`, and the recipe a launcher checks."""

from __future__ import annotations

import argparse

from effscale.search.optuna_runner import open_rdb_storage
from effscale.search.task import check_data
from effscale.search.train_config import AUGMENTATIONS, DEVICES, OPTIMIZERS, TrainConfig, threads_per_job


def add_training_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig = TrainConfig()) -> None:
    """--dataset, the budget, the recipe, seed, threads and device."""
    group = parser.add_argument_group("proxy training")
    group.add_argument("--dataset", default="fashion-mnist",
                       help="fashion-mnist (default), synthetic[:N], or a CIFAR-10 / IDX / ImageFolder directory")
    group.add_argument("--epochs", type=float, default=defaults.epochs, help=f"default {defaults.epochs:g}")
    group.add_argument("--max-seconds", type=float, help="stop each training after this many seconds")
    group.add_argument("--subset", type=int, default=defaults.subset,
                       help="training images used (default: " + (f"{defaults.subset}" if defaults.subset else "all but the held-out ones") + ")")
    group.add_argument("--val-size", type=int, default=defaults.val_size, help=f"held-out images (default {defaults.val_size})")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"default {defaults.batch_size}")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer, help=f"default {defaults.optimizer}")
    group.add_argument("--lr", type=float, default=defaults.lr, help=f"peak learning rate (default {defaults.lr:g})")
    group.add_argument("--augment", choices=AUGMENTATIONS, default=defaults.augment, help=f"default {defaults.augment}")
    group.add_argument("--zero-init-residual", action=argparse.BooleanOptionalAction, default=defaults.zero_init_residual,
                       help="start every block with a shortcut as its shortcut: last batch-norm scale 0 (default: on)")
    group.add_argument("--seed", type=int, default=defaults.seed, help=f"first training seed (default {defaults.seed})")
    group.add_argument("--threads", type=int, help="torch threads per training (default: cores / jobs)")
    group.add_argument("--device", choices=DEVICES, default=defaults.device, help="auto (default): CUDA when present")


def train_config_from_args(args: argparse.Namespace, threads: int | None = None) -> TrainConfig:
    """The TrainConfig the training options describe; `threads` fills in when --threads is not given."""
    return TrainConfig(
        epochs=args.epochs, max_seconds=args.max_seconds, subset=args.subset, val_size=args.val_size,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, augment=args.augment,
        zero_init_residual=args.zero_init_residual, seed=args.seed, device=args.device,
        threads=threads if args.threads is None else args.threads,
    )


def launch_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The recipe of each trial of a launcher (--jobs, --storage): the cores shared out among the jobs, once the
    data loads and fits it and the storage opens, so that bad input is refused before anything is written or a
    worker starts."""
    train = train_config_from_args(args, threads=threads_per_job(args.jobs))
    check_data(args.dataset, train)
    if args.storage:
        open_rdb_storage(args.storage)
    return train


def identity_of(config: TrainConfig) -> dict:
    """What of a recipe defines a run's results (threads and device only change its speed)."""
    fields = dict(config.__dict__)
    for key in ("threads", "device", "eval_batch_size"):
        fields.pop(key)
    return fields
