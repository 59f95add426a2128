"""Batch augmentation as whole-tensor ops on uint8 (B, C, R, R) batches: random flips and shifts."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(images: torch.Tensor, level: str, generator: torch.Generator) -> torch.Tensor:
    """`none`; `flip`: horizontal flip of a random half; `crop-flip`: also a random shift of up to
    R/8 pixels (zero-padded crop), drawn per image. Random draws happen on the generator's device."""
    if level == "none":
        return images
    if level == "crop-flip":
        images = _random_crop(images, max(1, images.shape[-1] // 8), generator)
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(3), images)


def _random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """A per-image random RxR window of the zero-padded batch, by one gather per axis."""
    b, _, r, _ = images.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=generator.device).to(images.device)
    padded = F.pad(images, (pad, pad, pad, pad))
    steps = torch.arange(r, device=images.device)
    rows = (offsets[0, :, None] + steps).view(b, 1, r, 1).expand(-1, padded.shape[1], -1, padded.shape[3])
    padded = padded.gather(2, rows)
    cols = (offsets[1, :, None] + steps).view(b, 1, 1, r).expand(-1, padded.shape[1], r, -1)
    return padded.gather(3, cols)
