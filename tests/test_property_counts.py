"""Property: for random width/depth/resolution, the analytic count equals the built module and FlopCounterMode."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from effscale.models.builder import build
from effscale.models.complexity import count
from effscale.models.measure import torch_macs
from effscale.models.zoo import BASELINES
from effscale.scaling.rounding import scaled


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(sorted(BASELINES)),
    width=st.floats(0.25, 3.0),
    depth=st.floats(0.25, 3.0),
    resolution=st.integers(32, 640),
)
def test_analytic_equals_measured(name: str, width: float, depth: float, resolution: int) -> None:
    spec = scaled(BASELINES[name], depth, width, resolution)
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        model = build(spec).eval()
        x = torch.zeros(1, spec.in_channels, resolution, resolution)
    expected = count(spec)
    assert sum(p.numel() for p in model.parameters()) == expected.params
    assert torch_macs(model, x) == expected.macs


def test_real_forward_pass_of_a_small_scaled_model() -> None:
    spec = scaled(BASELINES["efficientnet-b0"], 0.5, 0.5, 64).with_(num_classes=10, in_channels=1)
    model = build(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
