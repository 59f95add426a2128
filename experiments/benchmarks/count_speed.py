"""Benchmark: counting EfficientNet-B7 at 600 px analytically, with FlopCounterMode and with fvcore, in one run.

    python -m effscale.experiments.benchmarks.count_speed [--repeats 5]

Prints the median time of each counter, the ratios to the analytic one, and checks that all agree.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from effscale.models.complexity import Complexity
from effscale.models.measure import measure
from effscale.models.zoo import get_model


def _median_seconds(function: Callable[[], Complexity], repeats: int) -> tuple[float, Complexity]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet-b7")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per counter (median reported)")
    args = parser.parse_args()
    spec = get_model(args.model)
    results = {}
    for counter, repeats in (("analytic", 50 * args.repeats), ("torch", args.repeats), ("fvcore", max(1, args.repeats // 2))):
        results[counter] = _median_seconds(lambda: measure(spec, counter), repeats)
    analytic_seconds, analytic = results["analytic"]
    print(f"{args.model} at {spec.resolution} px: {analytic.params:,} params, {analytic.macs:,} MACs")
    print(f"{'counter':<10} {'median':>12} {'x analytic':>12}  agrees")
    for counter, (seconds, complexity) in results.items():
        agrees = (complexity.params, complexity.macs) == (analytic.params, analytic.macs)
        print(f"{counter:<10} {seconds * 1e3:>10.2f}ms {seconds / analytic_seconds:>12.0f}  {agrees}")


if __name__ == "__main__":
    main()
