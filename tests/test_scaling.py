"""Scaling rules: official rounding, compound formula, the released table, the inverse, the family table."""

from __future__ import annotations

import json
import math

import pytest

from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.zoo import get_model
from effscale.scaling.inverse import phi_for_macs
from effscale.scaling.matching import point
from effscale.scaling.rounding import round_filters, round_repeats, round_resolution
from effscale.scaling.rules import Coefficients, apply, compound, official
from tests.conftest import reference_rows

B0 = get_model("efficientnet-b0")


@pytest.mark.parametrize("channels, width, expected", [
    (32, 1.0, 32), (32, 1.1, 32), (32, 1.2, 40), (1280, 1.1, 1408), (40, 1.1, 48), (16, 0.25, 8), (320, 2.0, 640),
    (24, 0.75, 24),  # 18 -> 16 is below 90% of 18, so 24
])
def test_round_filters(channels: int, width: float, expected: int) -> None:
    assert round_filters(channels, width) == expected


def test_round_repeats_and_resolution() -> None:
    assert [round_repeats(n, 3.1) for n in (1, 2, 3, 4)] == [4, 7, 10, 13]
    assert round_repeats(4, 0.25) == 1
    assert round_resolution(224, 1.15) == 256  # 257.6 -> nearest multiple of 4
    assert round_resolution(224, 240 / 224) == 240
    assert round_resolution(32, 0.1) == 8


def test_a_resolution_factor_of_one_keeps_the_baseline() -> None:
    baseline = get_model("efficientnet-b0").with_(resolution=30)
    assert apply(baseline, Coefficients()).resolution == 30
    assert point(baseline, Coefficients(), "baseline", "baseline")["macs_ratio"] == 1.0
    assert apply(baseline, Coefficients(resolution=1.1)).resolution == 32


def test_compound_formula_any_phi() -> None:
    c = compound(1.2, 1.1, 1.15, 2.0)
    assert (c.depth, c.width, c.resolution) == pytest.approx((1.44, 1.21, 1.3225))
    smaller = apply(B0, compound(1.2, 1.1, 1.15, -1.0))
    assert count(smaller).macs < count(B0).macs
    assert math.isclose(compound(1.2, 1.1, 1.15, 0).depth, 1.0)


def test_paper_coefficients_double_flops_per_phi() -> None:
    ratio = count(apply(B0, compound(1.2, 1.1, 1.15, 1))).macs / count(B0).macs
    assert 1.9 < ratio < 2.4  # alpha * beta^2 * gamma^2 = 1.92, with rounding


def test_official_rule_reproduces_every_released_model() -> None:
    rows = {row["model"]: row for row in reference_rows()}
    for phi in range(8):
        spec = apply(B0, official(phi))
        row = rows[f"efficientnet-b{phi}"]
        assert spec.resolution == int(row["resolution"])
        assert (count(spec).params, count(spec).macs) == (int(row["params"]), int(row["macs"]))


def test_scale_cli_official_reproduces_b0_to_b7(cli) -> None:
    status, out, _ = cli("scale", "efficientnet-b0", "--official", "--phi", "0,1,2,3,4,5,6,7", "--json")
    assert status == 0
    table = json.loads(out)
    rows = {row["model"]: row for row in reference_rows()}
    assert [(r["params"], r["macs"]) for r in table] == [
        (int(rows[f"efficientnet-b{i}"]["params"]), int(rows[f"efficientnet-b{i}"]["macs"])) for i in range(8)]
    assert table[0]["macs_ratio"] == 1.0
    assert table[7]["repeats"] == "4/7/7/10/10/13/4"


def test_scale_cli_csv_compound(cli) -> None:
    status, out, _ = cli("scale", "mobilenet-v2", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                         "--phi=-1,0,1", "--csv")
    lines = out.strip().splitlines()
    assert status == 0 and len(lines) == 4
    assert lines[0].startswith("phi,depth,width,resolution,stem,channels,repeats,head,params,macs,acts,macs_ratio")


def test_phi_for_macs_is_the_largest_phi_within_budget() -> None:
    target = 4 * count(B0).macs
    phi = phi_for_macs(B0, 1.2, 1.1, 1.15, target)
    assert count(apply(B0, compound(1.2, 1.1, 1.15, phi))).macs <= target
    assert count(apply(B0, compound(1.2, 1.1, 1.15, phi + 0.01))).macs > 0.95 * target
    assert 1.5 < phi < 2.5


def test_invalid_coefficients() -> None:
    with pytest.raises(EffscaleError, match="alpha must be a finite number >= 1"):
        compound(0.9, 1.1, 1.1, 1)
    with pytest.raises(EffscaleError, match="width must be a finite number > 0"):
        Coefficients(width=0)
    with pytest.raises(EffscaleError, match="whole phi"):
        official(8)
