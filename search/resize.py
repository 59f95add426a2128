"""Resize a uint8 image tensor once per (resolution, channels), in chunks, to channels_last memory."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from effscale.models.errors import EffscaleError
from effscale.search.datasets import ImageData

MIN_RESOLUTION = 8
_CHUNK_ELEMENTS = 1 << 24  # float elements per chunk (64 MB): 4096 images of 1x64x64
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for RGB -> grayscale


def resized(images: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, channels, R, R), contiguous in channels_last format.

    Bilinear with antialias on float chunks, rounded back to uint8. Grayscale becomes RGB by
    replication (channels=3, C=1) and RGB becomes grayscale by BT.601 luma (channels=1, C=3).
    """
    if resolution < MIN_RESOLUTION:
        raise EffscaleError(f"resolution must be >= {MIN_RESOLUTION}, got {resolution}")
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise EffscaleError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    if (c, channels) not in ((1, 1), (3, 3), (1, 3), (3, 1)):
        raise EffscaleError(f"cannot turn {c}-channel images into {channels} channels (1 and 3 are supported)")
    out = torch.empty((n, channels, resolution, resolution), dtype=torch.uint8, memory_format=torch.channels_last)
    chunk = max(1, _CHUNK_ELEMENTS // (max(c, channels) * max(resolution * resolution, h * w)))
    for start in range(0, n, chunk):
        block = images[start : start + chunk].float()
        if c == 3 and channels == 1:
            block = (block * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if (h, w) != (resolution, resolution):
            block = F.interpolate(block, size=(resolution, resolution), mode="bilinear", antialias=True)
        out[start : start + chunk].copy_(block.round_().clamp_(0, 255).to(torch.uint8).expand(-1, channels, -1, -1))
    return out


class ResizeCache:
    """Keeps the last `maxsize` resized image tensors, keyed by (data name, shape, resolution, channels).

    `ImageData.name` identifies content (split and subset included), so a search that trains
    many candidates at one resolution resizes once.
    """

    def __init__(self, maxsize: int = 2) -> None:
        if maxsize < 1:
            raise EffscaleError(f"ResizeCache maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def __call__(self, data: ImageData, resolution: int, channels: int) -> torch.Tensor:
        key = (data.name, tuple(data.images.shape), resolution, channels)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        while len(self._entries) >= self.maxsize:
            self._entries.popitem(last=False)  # free memory before allocating the new tensor
        self._entries[key] = resized(data.images, resolution, channels)
        return self._entries[key]
