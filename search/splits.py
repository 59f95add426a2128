"""Seeded, process-independent subsets of an ImageData: the held-out "minival" and random subsets."""

from __future__ import annotations

import torch

from effscale.models.errors import SettingError
from effscale.search.datasets import ImageData


def holdout_split(data: ImageData, val_size: int, seed: int = 0) -> tuple[ImageData, ImageData]:
    """Split a training set into (train, val) with `val_size` held-out images, stratified by label.

    Classes are represented in val in proportion to their frequency; the same seed gives the
    same split in every process. Both parts keep the original order of the images.
    """
    n = len(data)
    if not 0 < val_size < n:
        raise SettingError("val_size", f"must be between 1 and {n - 1} for {data.name} ({n} images)", val_size)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    labels = data.labels[perm]
    # Rank of each shuffled sample within its class, as a fraction of the class size: taking the
    # smallest fractions first draws every class at the same rate.
    by_class = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=data.num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.int64)
    rank[by_class] = torch.arange(n) - starts[labels[by_class]]
    fraction = (rank.double() + 0.5) / counts[labels].double()
    order = perm[torch.argsort(fraction, stable=True)]
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    tag = f"seed={seed},val={val_size}"
    return _take(data, train_idx, f"minival-train:{tag}"), _take(data, val_idx, f"minival-val:{tag}")


def subset(data: ImageData, n: int | None, seed: int = 0) -> ImageData:
    """A seeded random subset of `n` images in original order (n=None: the data itself)."""
    if n is None:
        return data
    if not 0 < n <= len(data):
        raise SettingError("subset", f"must be between 1 and {len(data)} (the training images left after the held-out ones)", n)
    if n == len(data):
        return data
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return _take(data, idx, f"subset:n={n},seed={seed}")


def _take(data: ImageData, idx: torch.Tensor, tag: str) -> ImageData:
    images, labels = data.images[idx].contiguous(), data.labels[idx].contiguous()
    return ImageData(images, labels, data.num_classes, f"{data.name}[{tag}]")
