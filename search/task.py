"""A dataset prepared for proxy training at one resolution: held-out split, subset, resized once.

`load_task` loads the TRAIN split only (the test split is never touched), carves the seeded
held-out "minival", takes the training subset and resizes both parts once per process per
(resolution, channels) into uint8 channels_last tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.search.datasets import ImageData, load_dataset
from effscale.search.memory import reported_out_of_memory
from effscale.search.resize import ResizeCache
from effscale.search.splits import holdout_split, subset
from effscale.search.train_config import TrainConfig

_CACHE = ResizeCache(maxsize=4)  # train and val parts at two resolutions


@dataclass(frozen=True)
class ProxyTask:
    """Training and held-out images (uint8, (N, C, R, R), channels_last), labels, normalisation."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # per channel, in uint8 units, of the training images
    std: tuple[float, ...]
    name: str

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the images."""
        return sum(t.untyped_storage().nbytes() for t in (self.train_images, self.val_images))


def load_task(dataset: str, resolution: int, config: TrainConfig = TrainConfig(), channels: int | None = None) -> ProxyTask:
    """`dataset` (a name or path, see `load_dataset`) at `resolution`, split by `config`'s
    val_size / subset / data_seed; `channels` None keeps the data's (1 or 3; 1 -> 3 replicates)."""
    data, train, val = _split(dataset, config)
    channels = channels or int(data.images.shape[1])
    with reported_out_of_memory(f"resizing {data.name} to {resolution} px"):
        train_images = _CACHE(train, resolution, channels)
        val_images = _CACHE(val, resolution, channels)
    mean, std = _channel_stats(train_images)
    name = f"{data.name}@{resolution}px,{channels}ch,val={config.val_size},subset={config.subset},seed={config.data_seed}"
    return ProxyTask(train_images, train.labels, val_images, val.labels, data.num_classes, mean, std, name)


def check_data(dataset: str, config: TrainConfig) -> None:
    """Raise `EffscaleError` (one line) unless `dataset` loads and `config`'s held-out split and subset fit
    it: what a launcher checks before it starts workers that would each fail on it."""
    _split(dataset, config)


def _split(dataset: str, config: TrainConfig) -> tuple[ImageData, ImageData, ImageData]:
    """The TRAIN split of `dataset`, its training part (subset taken) and its held-out part."""
    data = load_dataset(dataset, "train")
    train, val = holdout_split(data, config.val_size, config.data_seed)
    train = subset(train, config.subset, config.data_seed)
    check_batch(config, len(train.labels))
    return data, train, val


def adapt(spec: NetworkSpec, task: ProxyTask) -> NetworkSpec:
    """`spec` with the task's classes and input channels (the resolution is the caller's choice)."""
    return spec.with_(num_classes=task.num_classes, in_channels=task.channels)


def check_fits(spec: NetworkSpec, task: ProxyTask) -> None:
    """Raise unless `spec` takes the task's images and predicts its classes."""
    got = (spec.resolution, spec.in_channels, spec.num_classes)
    want = (task.resolution, task.channels, task.num_classes)
    if got != want:
        raise EffscaleError(
            f"spec (resolution, in_channels, num_classes) = {got} does not fit task {task.name} {want}; use adapt()"
        )


def check_batch(config: TrainConfig, train_images: int) -> None:
    """Raise unless one batch fits in the training images (an epoch drops its last incomplete batch)."""
    if config.batch_size > train_images:
        raise EffscaleError(f"batch size {config.batch_size} is larger than the {train_images} training images "
                            "(lower --batch-size or raise --subset)")


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std from 256-bin histograms (no float copy of the images)."""
    levels = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        p = hist / hist.sum()
        mean = float((p * levels).sum())
        var = float((p * (levels - mean) ** 2).sum())
        means.append(mean)
        stds.append(max(var**0.5, 1.0))
    return tuple(means), tuple(stds)
