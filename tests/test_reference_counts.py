"""Every reference row matches exactly: analytic counter, FlopCounterMode, fvcore and the built module."""

from __future__ import annotations

import json

import pytest

from effscale.models.builder import build
from effscale.models.complexity import count
from effscale.models.measure import measure
from effscale.models.zoo import get_model
from tests.conftest import reference_rows

ROWS = reference_rows()
IDS = [row["model"] for row in ROWS]
FVCORE_MODELS = {"efficientnet-b0", "mobilenet-v1", "mobilenet-v2", "mnasnet-a1", "resnet-50"}


def _spec(row: dict[str, str]):
    return get_model(row["model"]).with_(resolution=int(row["resolution"]), num_classes=int(row["num_classes"]))


def test_reference_file_has_every_named_model() -> None:
    assert len(ROWS) == 12
    assert {row["model"] for row in ROWS} >= {f"efficientnet-b{i}" for i in range(8)}


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_analytic_count_matches_reference(row: dict[str, str]) -> None:
    complexity = count(_spec(row))
    assert complexity.params == int(row["params"])
    assert complexity.macs == int(row["macs"])


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_flop_counter_mode_matches_reference(row: dict[str, str]) -> None:
    measured = measure(_spec(row), "torch")
    assert measured.params == int(row["params"])
    assert measured.macs == int(row["macs"])
    assert measured.acts == count(_spec(row)).acts


@pytest.mark.parametrize("row", [r for r in ROWS if r["model"] in FVCORE_MODELS], ids=sorted(FVCORE_MODELS, key=IDS.index))
def test_fvcore_matches_reference(row: dict[str, str]) -> None:
    assert measure(_spec(row), "fvcore").macs == int(row["macs"])


@pytest.mark.parametrize("name", ["efficientnet-b0", "mobilenet-v1", "resnet-50", "mnasnet-a1"])
def test_built_module_has_the_counted_parameters(name: str) -> None:
    spec = get_model(name)
    assert sum(p.numel() for p in build(spec).parameters()) == count(spec).params


@pytest.mark.parametrize("row", ROWS[:8], ids=IDS[:8])
def test_count_cli_json(cli, row: dict[str, str]) -> None:
    status, out, _ = cli("count", row["model"], "--json")
    record = json.loads(out)
    assert status == 0
    assert (record["params"], record["macs"], record["resolution"]) == (
        int(row["params"]), int(row["macs"]), int(row["resolution"]))
    assert {"model", "width", "depth", "resolution", "params", "macs", "acts"} <= set(record)
