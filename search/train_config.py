"""How a candidate is proxy-trained: budget, optimiser, schedule, regularisation, data and hardware.

The defaults are the measured proxy recipe (see `effscale.search.proxy`). A run stops at the
first budget reached among `epochs`, `max_steps`, `max_images` and `max_seconds`; the learning-rate
schedule follows whichever of them is closest to its end (a seconds budget therefore makes the
schedule, and the result, depend on the machine's speed).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

from effscale.models.errors import SettingError

OPTIMIZERS = ("adamw", "sgd-nesterov", "rmsprop")
SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("none", "flip", "crop-flip")
DEVICES = ("auto", "cpu", "cuda")
MAX_THREADS = 1024  # torch starts each thread at once: 100,000 exhausted the memory


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of `jobs` concurrent trials: this machine's cores shared out, at least 1."""
    return max(1, available_cores() // jobs)


@dataclass(frozen=True)
class TrainConfig:
    """One proxy-training recipe; an invalid value raises `SettingError` naming its field."""

    epochs: float = 5.0
    max_steps: int | None = None
    max_images: int | None = None
    max_seconds: float | None = None
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 4e-3
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup: float = 0.05  # fraction of the budget with a linear warmup (cosine schedule only)
    label_smoothing: float = 0.1
    augment: str = "flip"
    seed: int = 0  # initialisation, shuffling, augmentation, dropout
    data_seed: int = 0  # the held-out split and the subset: fixed across trials so they compare
    threads: int | None = None  # None: every core for one trial
    device: str = "auto"  # auto: CUDA with mixed precision when present, else CPU
    channels_last: bool = True
    zero_init_residual: bool = True  # blocks with a shortcut start as it: deep networks learn in few steps
    val_size: int = 5000  # the "minival" carved from the TRAIN split
    subset: int | None = None  # training images used; None: all left after the holdout
    eval_batch_size: int = 256  # small enough for the caches: 1000 made a 1-thread evaluation 26% slower

    def __post_init__(self) -> None:
        _check(math.isfinite(self.epochs) and self.epochs > 0, "epochs", "must be a finite number > 0", self.epochs)
        for name in ("max_steps", "max_images", "subset"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, "must be >= 1", value)
        _check(self.max_seconds is None or self.max_seconds > 0, "max_seconds", "must be > 0", self.max_seconds)
        _check(self.batch_size >= 2, "batch_size", "must be >= 2 (batch norm needs two samples)", self.batch_size)
        _check(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}", self.optimizer)
        _check(math.isfinite(self.lr) and self.lr > 0, "lr", "must be a finite number > 0", self.lr)
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0", self.weight_decay)
        _check(self.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}", self.schedule)
        _check(0 <= self.warmup < 1, "warmup", "must lie in [0, 1)", self.warmup)
        _check(0 <= self.label_smoothing < 1, "label_smoothing", "must lie in [0, 1)", self.label_smoothing)
        _check(self.augment in AUGMENTATIONS, "augment", f"must be one of {', '.join(AUGMENTATIONS)}", self.augment)
        _check(self.threads is None or 1 <= self.threads <= MAX_THREADS, "threads", f"must be from 1 to {MAX_THREADS}",
               self.threads)
        for name in ("seed", "data_seed"):
            _check(0 <= getattr(self, name) < 2**63, name, "must be from 0 to 2^63 - 1", getattr(self, name))
        _check(self.device in DEVICES, "device", f"must be one of {', '.join(DEVICES)}", self.device)
        _check(self.val_size >= 1, "val_size", "must be >= 1", self.val_size)
        _check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1", self.eval_batch_size)

    @property
    def num_threads(self) -> int:
        return self.threads or available_cores()

    def with_(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _check(ok: bool, setting: str, requirement: str, value: object) -> None:
    if not ok:
        raise SettingError(setting, requirement, value)
