"""The default proxy: the B0-shaped network that searches and `effscale train` use unless told otherwise.

EfficientNet-B0 scaled to width 0.5 and depth 0.5 (stages of 1,1,1,2,2,2,1 blocks, 16..160 channels,
head 640) at 32 px with 1 input channel and 10 classes: 0.66 M params, 1.5 M MACs per image.

Measured on the 2-core CPU with the `TrainConfig()` defaults (AdamW lr 4e-3, weight decay 0.05,
batch 128, cosine with 5% warmup, label smoothing 0.1, flips; 55,000 training images, 5,000 held out),
while other jobs shared the machine (load average about 5):

    effscale train --epochs 5 --threads 1
    -> val_accuracy 0.8958 after 287 s of training (955 images/s)

With 2 threads (library call, same recipe) it reached 0.8916 in 256 s; its first epoch, run alone,
took 33 s (0.827 after one epoch).
"""

from __future__ import annotations

from effscale.models.spec import NetworkSpec
from effscale.models.zoo import get_model
from effscale.scaling.rounding import scaled

DEFAULT_PROXY = {"model": "efficientnet-b0", "width": 0.5, "depth": 0.5, "resolution": 32}


def proxy_spec(resolution: int = DEFAULT_PROXY["resolution"], in_channels: int = 1, num_classes: int = 10) -> NetworkSpec:
    """The default proxy's spec (at another resolution or for other data when asked)."""
    base = get_model(DEFAULT_PROXY["model"])
    spec = scaled(base, DEFAULT_PROXY["depth"], DEFAULT_PROXY["width"], resolution)
    return spec.with_(name="effscale-proxy", in_channels=in_channels, num_classes=num_classes)
