"""Figures 3, 4, 8 and Table 3 at the tiny budget, end to end on Fashion-MNIST: points, tables, plots, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from effscale.experiments.named import load_experiment
from tests.conftest import assert_one_line_error

EXPERIMENTS = [("figure", "3", "fig3"), ("figure", "4", "fig4"), ("figure", "8", "fig8"), ("table", "3", "table3")]


@pytest.mark.parametrize("command, number, name", EXPERIMENTS, ids=[e[2] for e in EXPERIMENTS])
def test_tiny_budget_end_to_end(cli, tmp_path: Path, fashion_mnist: None, command: str, number: str, name: str) -> None:
    out = tmp_path / name
    status, stdout, err = cli(command, number, "--budget", "tiny", "--out", str(out), "--jobs", "2")
    assert status == 0, err
    expected = load_experiment(name, "tiny")
    results = pd.read_csv(out / "results.csv")
    labels = sorted(p["label"] for points in expected.points.values() for p in points)
    assert sorted(results["label"]) == labels  # one seed at the tiny budget: one row per point
    assert (results["state"] == "COMPLETE").all()
    assert results["accuracy"].between(0, 1).all()
    # 24 training steps at the tiny budget; chance is 0.10 (about +-0.013 on 500 held-out images)
    assert results["accuracy"].mean() > 0.2 and results["accuracy"].max() > 0.3, results[["label", "accuracy"]]
    report = (out / "report.md").read_text()
    assert "## Findings" in report and "Command: `effscale" in report and "MACs (paper FLOPS)" in report
    for stem in ("accuracy_vs_macs",):
        assert (out / "plots" / f"{stem}.png").stat().st_size > 10_000
        assert (out / "plots" / f"{stem}.svg").is_file()
    assert json.loads((out / "experiment.json").read_text())["budget"] == "tiny"
    status, stdout, _ = cli("report", str(out))  # the report command rebuilds it from results.csv
    assert status == 0 and (out / "report.md").read_text() == report


def test_every_budget_of_every_config_expands() -> None:
    for _, _, name in EXPERIMENTS:
        for budget in ("tiny", "cpu", "gpu"):
            experiment = load_experiment(name, budget)
            assert all(points for points in experiment.points.values())
    fig3 = load_experiment("fig3", "cpu").points["proxy"]
    assert sorted({p["w"] for p in fig3 if p["series"] == "width"}) == [1.0, 1.4, 1.8, 2.6, 3.8, 5.0]
    fig8 = load_experiment("fig8", "cpu").points["proxy"]
    for phi in (1, 2, 3):
        group = [p for p in fig8 if p["group"] == f"phi={phi}"]
        compound = next(p for p in group if p["series"] == "compound")
        assert {p["series"] for p in group} == {"compound", "depth", "width", "resolution"}
        assert all(abs(p["macs"] / compound["macs"] - 1) < 0.25 for p in group)  # matching MACs
    table3 = load_experiment("table3", "cpu").points
    for network, rivals in {"mobilenet-v1": {"width", "resolution"}, "resnet-50": {"depth", "width", "resolution"}}.items():
        group = [p for p in table3[network] if p["group"] == f"{network} phi=1"]
        compound = next(p for p in group if p["series"] == "compound")
        assert {p["series"] for p in group} == {"compound", *rivals}
        assert all(abs(p["macs"] / compound["macs"] - 1) < 0.25 for p in group)
    assert (compound["d"], compound["w"], compound["r"]) == (1.2, 1.1, 1.15)


def test_bad_experiment_input(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    assert_one_line_error(*cli("figure", "3", "--config", str(bad), "--out", str(tmp_path / "x"))[::2], "not valid YAML")
    assert_one_line_error(*cli("figure", "5")[::2], "invalid choice")
    assert_one_line_error(*cli("report", str(tmp_path))[::2], "has no results.csv")
