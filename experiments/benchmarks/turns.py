"""Measurements taken in turns: on a shared machine a neighbour's burst then hits every contender alike."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def in_turns(measures: list[Callable[[], float]], rounds: int) -> list[list[float]]:
    """Each measure's readings over `rounds` rounds; every round calls each measure once, in order.

    Python's cyclic garbage collector is off while they run (after one collection): a collection of the whole heap
    takes about 90 ms with two proxy models in a process, and it lands on whichever measure, or whichever layer of
    `layer_times`, happens to run when it triggers. Reference counting still frees everything a training step makes."""
    readings: list[list[float]] = [[] for _ in measures]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for measure, taken in zip(measures, readings):
                taken.append(measure())
    finally:
        if was_enabled:
            gc.enable()
    return readings


def medians(readings: list[list[float]]) -> list[float]:
    return [statistics.median(taken) for taken in readings]


def seconds_per_call(function: Callable[[], object], repeats: int = 1) -> Callable[[], float]:
    """A measure for `in_turns`: the mean seconds of `repeats` calls of `function`."""
    def measure() -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        return (time.perf_counter() - start) / repeats
    return measure
