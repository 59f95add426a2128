"""The step profile benchmark's accounting: which operators are depthwise convolutions, and how many a step runs."""

from __future__ import annotations

import pytest

from effscale.experiments.benchmarks.parallel_ceiling import proxy_step
from effscale.experiments.benchmarks.step_profile import depthwise_gradients, operator_kind, profile_step
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
    (PROFILER_PREFIX + "batch_norm_backward", [], "batch norm"),
])
def test_operator_kinds(name: str, shapes: list[list[int]], kind: str) -> None:
    assert operator_kind(name, shapes) == kind


def test_a_proxy_step_runs_one_depthwise_backward_per_block() -> None:
    table, _, _, depthwise = profile_step(proxy_step(32, 8), steps=2)
    assert sum(depthwise.values()) == 16  # B0's 1+2+2+3+3+4+1 blocks
    assert {"depthwise convolution backward", "batch norm", "optimiser"} <= set(table["operators"])
    assert table["share of step"].sum() == pytest.approx(1.0)
    gradients = depthwise_gradients(depthwise).set_index("kernel")
    assert gradients["layers"].to_dict() == {"3x3": 7, "5x5": 9}  # B0's kernels per stage: 3, 3, 5, 3, 5, 5, 3
    timed = ["input gradient ms", "weight gradient ms"] + (["effscale weight gradient ms"] if extension() else [])
    assert (gradients[timed] > 0).all().all()
