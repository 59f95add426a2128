"""The default proxy: the B0-shaped network that searches and `effscale train` use unless told otherwise.

EfficientNet-B0 scaled to width 0.5 at depth 1.0 (B0's stages of 1,2,2,3,3,4,1 blocks, 8..160 channels,
head 640) at 32 px with 1 input channel and 10 classes: 1.08 M params, 2.52 M MACs per image.
No dropout or drop-connect: they regularise B0's 350-epoch ImageNet training, and in a few proxy epochs they
only slow learning (2 epochs of 5,000 images, before zero-init: 0.46 held-out accuracy with B0's 0.2 and 0.2,
0.63 without).
The last batch norm of every block with a shortcut starts at scale 0 (`TrainConfig.zero_init_residual`), so
deep scaled members learn from the first step; 1 epoch of 5,000 images, 1 thread:

    effscale train proxy [--depth 3.67] --epochs 1 --subset 5000 --val-size 2000 --threads 1 [--no-zero-init-residual]
    -> depth 1: 0.666 (0.503 without); depth 3.67: 0.673 (0.1245 without)

Depth stays 1.0 because the official ceil rounding of repeats would turn any alpha > 1 into a doubling
of every one-block stage of a shallower proxy, and the grid search could not tell alphas apart.

Measured on the 2-core CPU (AMD EPYC, avx512) with the `TrainConfig()` defaults (AdamW lr 4e-3, weight decay
0.05, batch 128, cosine with 5% warmup, label smoothing 0.1, flips, zero-init; 55,000 training images, 5,000 held
out), 2 threads, the machine otherwise quiet:

    effscale train --epochs 5 --json
    -> val_accuracy 0.9066 after 143.7 s of training (1,911 images/s)
"""

from __future__ import annotations

from effscale.models.spec import NetworkSpec
from effscale.models.zoo import get_model
from effscale.scaling.rounding import scaled

DEFAULT_PROXY = {"model": "efficientnet-b0", "width": 0.5, "depth": 1.0, "resolution": 32}


def proxy_spec(resolution: int = DEFAULT_PROXY["resolution"], in_channels: int = 1, num_classes: int = 10) -> NetworkSpec:
    """The default proxy's spec (at another resolution or for other data when asked)."""
    base = get_model(DEFAULT_PROXY["model"])
    spec = scaled(base, DEFAULT_PROXY["depth"], DEFAULT_PROXY["width"], resolution)
    return spec.with_(name="effscale-proxy", in_channels=in_channels, num_classes=num_classes, dropout=0.0,
                      drop_connect=0.0)
