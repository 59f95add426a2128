"""The layer-times benchmark: every layer of the proxy is timed once, under its kind, and the times add up."""

from __future__ import annotations

import math

from effscale.experiments.benchmarks.layer_times import GATED, REST, layer_times
from effscale.search.cpu_kernels import extension


def test_every_layer_is_timed_under_its_kind_and_the_rest_completes_the_step() -> None:
    plain, marked, table = layer_times(resolution=32, batch_size=8, steps=2)
    assert plain > 0 and marked > 0
    counts = dict(zip(table["layers"], table["count"]))
    # with the kernels built, the 33 batch norms a SiLU follows take it in, and the depthwise convolutions' 16 the
    # squeeze-excite gates after them
    norms = ({"batch norm + SiLU": 17, GATED: 16, "batch norm": 16} if extension() is not None
             else {"batch norm": 49, "squeeze-excite": 16})
    assert counts == {"1x1 convolution": 32, "depthwise 3x3 convolution": 7, "depthwise 5x5 convolution": 9,
                      "3x3 convolution": 1, "linear": 1, REST: 0, **norms}
    timed = table[(table["layers"] != REST) & (table["count"] > 0)]
    assert (timed["forward ms"] > 0).all()
    backward = dict(zip(timed["layers"], timed["backward ms"]))
    assert backward.pop("3x3 convolution") == 0  # the stem's input needs no gradient: no mark where it leaves
    assert all(ms > 0 for ms in backward.values())
    assert table.loc[table["layers"] == REST, "forward ms"].item() > 0
    assert math.isclose(table["share of the step"].sum(), 1.0)
