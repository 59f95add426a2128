"""Measurements in turns: every measure runs once a round, in order, with the cyclic garbage collector off."""

from __future__ import annotations

import gc

import pytest

from effscale.experiments.benchmarks.turns import in_turns


def test_measures_take_turns_with_the_collector_off_and_it_is_back_on_afterwards() -> None:
    calls: list[str] = []

    def measure(name: str) -> float:
        calls.append(name)
        return float(gc.isenabled())

    readings = in_turns([lambda: measure("a"), lambda: measure("b")], rounds=3)
    assert calls == ["a", "b"] * 3
    assert readings == [[0.0] * 3, [0.0] * 3]
    assert gc.isenabled()


def test_the_collector_is_back_on_after_a_measure_fails() -> None:
    def failing() -> float:
        raise RuntimeError("measure failed")

    with pytest.raises(RuntimeError, match="measure failed"):
        in_turns([failing], rounds=1)
    assert gc.isenabled()
