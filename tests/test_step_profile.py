"""The step profile benchmark's accounting: which operators are depthwise convolutions, and how many a step runs."""

from __future__ import annotations

import pytest

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step
from effscale.experiments.benchmarks.step_profile import (
    depthwise_layers,
    depthwise_passes,
    operator_kind,
    profile_step,
)
from effscale.search.cpu_kernels import PROFILER_PREFIX, extension


@pytest.mark.parametrize(("name", "shapes", "kind"), [
    ("aten::convolution_backward", [[128, 576, 2, 2], [128, 576, 2, 2], [576, 1, 5, 5]], "depthwise convolution backward"),
    ("aten::convolution_backward", [[128, 96, 16, 16], [128, 16, 16, 16], [96, 16, 1, 1]], "convolution backward"),
    ("aten::mkldnn_convolution", [[128, 96, 16, 16], [96, 1, 3, 3]], "depthwise convolution forward"),
    ("aten::mkldnn_convolution", [[128, 1, 64, 64], [16, 1, 3, 3]], "convolution forward"),  # a stem on one channel
    ("aten::native_batch_norm_backward", [[128, 48, 32, 32], [128, 48, 32, 32], [48]], "batch norm"),
    ("aten::add_", [[128, 48, 32, 32], [128, 48, 32, 32]], "other"),
    ("aten::addmm", [[96], [512, 576], [576, 96]], "matmul"),  # a 1x1 convolution on 2x2 maps of a batch of 128
    (PROFILER_PREFIX + "depthwise_weight_grad", [], "depthwise convolution backward"),  # effscale's kernels
    (PROFILER_PREFIX + "depthwise_input_grad", [], "depthwise convolution backward"),
    (PROFILER_PREFIX + "batch_norm_backward", [], "batch norm"),
])
def test_operator_kinds(name: str, shapes: list[list[int]], kind: str) -> None:
    assert operator_kind(name, shapes) == kind


def test_a_proxy_step_is_shared_out_and_its_depthwise_convolutions_timed() -> None:
    table, shape, share = profile_step(proxy_step(32, 16), steps=2)
    assert {"depthwise convolution backward", "batch norm", "optimiser"} <= set(table["operators"])
    assert table["share of step"].sum() == pytest.approx(1.0)
    assert shape == (16, 48, 16, 16) and 0 < share < 1  # the second stage's expanded map
    layers = depthwise_layers(32, 16)
    assert sum(layers.values()) == 16  # B0's 1+2+2+3+3+4+1 blocks
    assert layers[((16, 48, 8, 8), (16, 48, 16, 16), (48, 1, 3, 3)), 2] == 1  # the second stage's first
    passes = depthwise_passes(layers).set_index("kernel")
    assert passes["layers"].to_dict() == {"3x3": 7, "5x5": 9}  # B0's kernels per stage: 3, 3, 5, 3, 5, 5, 3
    timed = ["forward ms", *(f"{who}{what} ms" for who in ["", *(["effscale "] if extension() else [])]
                             for what in ["input gradient", "weight gradient"])]
    assert (passes[timed] > 0).all().all()
