"""The COST of a candidate in the reward: analytic counts from the spec, or latency measured here."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from effscale.models.builder import build
from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec


def latency_ms(spec: NetworkSpec, runs: int = 20, warmup: int = 3, threads: int = 1) -> float:
    """Median milliseconds of one batch-1 CPU forward pass at the spec's resolution, on `threads` threads."""
    model = build(spec).eval()
    x = torch.randn(1, spec.in_channels, spec.resolution, spec.resolution)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 1000.0 * statistics.median(times)


COSTS: dict[str, Callable[[NetworkSpec], float]] = {
    "macs": lambda spec: float(count(spec).macs),
    "params": lambda spec: float(count(spec).params),
    "acts": lambda spec: float(count(spec).acts),
    "latency": latency_ms,
}


def check_cost_name(name: str) -> None:
    """Reject an unknown cost name with the known ones listed."""
    if name not in COSTS:
        raise EffscaleError(f"unknown cost {name!r}; known costs: {', '.join(COSTS)}")


def cost_of(spec: NetworkSpec, name: str = "macs") -> float:
    """COST(spec) by the named measure: macs (paper FLOPS), params, acts, or latency (ms, this machine)."""
    check_cost_name(name)
    return COSTS[name](spec)
