"""The reward ACC * (COST / T)^w, soft and hard, and the pluggable COST measures."""

from __future__ import annotations

import pytest

from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.zoo import get_model
from effscale.search.cost import COSTS, cost_of, latency_ms
from effscale.search.reward import RewardSpec, reward
from effscale.search.space import SearchSpace

T = 400e6


def test_soft_reward_by_hand() -> None:
    assert reward(0.8, 800e6, T) == pytest.approx(0.7621103984, rel=1e-9)  # 0.8 * 2**-0.07
    assert reward(0.8, 200e6, T) == pytest.approx(0.8397733469, rel=1e-9)  # 0.8 * 0.5**-0.07
    assert reward(0.8, T, T) == 0.8
    assert reward(0.8, 800e6, T, w=-1.0) == pytest.approx(0.4)
    assert reward(0.8, 800e6, T, w=0.0) == 0.8
    assert reward(0.8, 800e6, T, w=-10.0) == pytest.approx(0.8 / 1024)  # the most negative w accepted


def test_hard_reward_by_hand() -> None:
    assert reward(0.8, 200e6, T, hard=True) == 0.8
    assert reward(0.8, T, T, hard=True) == 0.8
    assert reward(0.8, 800e6, T, hard=True) == pytest.approx(0.4)
    assert reward(0.8, 500e6, T, w=-0.3, hard=True) == pytest.approx(0.64)  # w does not apply when hard


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": 0.0}, "target T must be > 0"),
        ({"target": -5.0}, "target T must be > 0"),
        ({"w": 0.07}, r"w must lie in \[-10, 0\].*got 0.07$"),
        ({"w": -10.5}, r"w must lie in \[-10, 0\].*got -10.5$"),
        ({"w": -1e308}, r"w must lie in \[-10, 0\].*got -1e\+308$"),
        ({"w": float("nan")}, r"w must lie in \[-10, 0\].*got nan$"),
        ({"w": float("-inf")}, r"w must lie in \[-10, 0\].*got -inf$"),
        ({"cost": 0.0}, "cost must be > 0"),
    ],
)
def test_invalid_reward_inputs(kwargs: dict[str, float], message: str) -> None:
    args = {"accuracy": 0.8, "cost": 800e6, "target": T, **kwargs}
    with pytest.raises(EffscaleError, match=message):
        reward(**args)


def test_reward_spec_validates_and_scores() -> None:
    spec = RewardSpec(target=T, hard=True, cost="params")
    assert spec(0.8, 800e6) == pytest.approx(0.4)
    assert RewardSpec(T)(0.8, 800e6) == reward(0.8, 800e6, T)
    with pytest.raises(EffscaleError, match="w must lie in"):
        RewardSpec(T, w=0.5)
    with pytest.raises(EffscaleError, match="w must lie in"):
        RewardSpec(T, w=-1e308)
    with pytest.raises(EffscaleError, match="target T must be > 0"):
        RewardSpec(0)
    with pytest.raises(EffscaleError, match="known costs: macs, params, acts, latency"):
        RewardSpec(T, cost="energy")


def test_analytic_costs_are_the_counts() -> None:
    b0 = get_model("efficientnet-b0")
    counted = count(b0)
    assert cost_of(b0) == float(counted.macs)
    assert cost_of(b0, "params") == float(counted.params)
    assert cost_of(b0, "acts") == float(counted.acts)
    assert set(COSTS) == {"macs", "params", "acts", "latency"}


def test_unknown_cost_lists_the_known_ones() -> None:
    with pytest.raises(EffscaleError, match="unknown cost 'flops'; known costs: macs, params, acts, latency"):
        cost_of(get_model("mobilenet-v2"), "flops")


def test_latency_of_a_tiny_spec() -> None:
    space = SearchSpace("mobilenet-v2", ops=("ds",), widths=(0.75,), layer_deltas=(-1,), resolution=32, num_classes=10)
    spec = space.decode({name: options[0] for name, options in space.choices().items()})
    assert 0 < latency_ms(spec, runs=5, warmup=1) < 1000
    assert cost_of(spec, "latency") > 0
