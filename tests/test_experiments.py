"""Figures 3, 4, 8 and Table 3 at the tiny budget, end to end on Fashion-MNIST: points, tables, plots, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from effscale.experiments.named import load_experiment
from effscale.search.rundir import RunDir
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


GOOD_CONFIG = {"finding": "saturation", "baselines": "{proxy: {model: proxy}}",
               "series": "[{name: width, baseline: proxy, vary: w, values: [1.0, 1.4]}]",
               "budgets": "{tiny: {epochs: 0.1, subset: 200, val_size: 100, seeds: 1}}"}
BAD_CONFIGS = [  # (what replaces GOOD_CONFIG's entries (None: left out), what the error line says)
    ({"baselines": "{proxy: {width: 2}}"}, "baselines.proxy needs 'model'"),
    ({"series": "[{name: width, baseline: proxy, vary: w}]"}, "series[0] needs 'values'"),
    ({"matched": "[{baseline: proxy, alpha: 1.2, beta: 1.1, gamma: 1.15}]"}, "matched[0] needs 'phis'"),
    ({"budgets": "{tiny: {baselines: [other]}}"}, "budgets.tiny.baselines[0] must be one of proxy, got 'other'"),
    ({"budgets": "{tiny: 5}"}, "budgets.tiny must be a mapping (key: value), got 5"),
    ({"baselines": "[proxy]"}, "baselines must be a mapping (key: value), got a list"),
    ({"budgets": "[tiny]"}, "budgets must be a mapping (key: value), got a list"),
    ({"series": "[{name: width, baseline: proxy, vary: w, values: [abc]}]"},
     "series[0].values[0] must be a number, got 'abc'"),
    ({"series": "[{name: width, baseline: proxy, vary: q, values: [1]}]"}, "series[0].vary must be one of d, w, r, got 'q'"),
    ({"series": "[{name: w, baseline: proxy, vary: w, values: [1], fixed: {q: 2}}]"}, "series[0].fixed: unknown key 'q'"),
    ({"series": "[{name: width, baseline: nope, vary: w, values: [1]}]"}, "series[0].baseline must be one of proxy"),
    ({"series": "{name: width}"}, "series must be a non-empty list, got a mapping"),
    ({"series": "[{name: w, baseline: proxy, vary: w, values: [1]}]", "panels": "[depth]"},
     "panels[0] must be one of w, proxy, got 'depth'"),
    ({"matched": "[{baseline: proxy, alpha: 1.2, beta: 1.1, gamma: 1.15, phis: [1], dimensions: [height]}]"},
     "matched[0].dimensions[0] must be one of depth, width, resolution, got 'height'"),
    ({"budgets": "{tiny: {epochs: fast}}"}, "budgets.tiny.epochs must be a number, got 'fast'"),
    ({"budgets": "{huge: {epochs: 1}}"}, "budgets: unknown key 'huge'; known: tiny, cpu, gpu"),
    ({"serie": "[]"}, "top level: unknown key 'serie'"),
    ({"finding": "bogus"}, "finding must be one of saturation, baselines, compound, got 'bogus'"),
    ({"finding": None}, "top level needs 'finding'"),
    ({"finding": "baselines"}, "finding 'baselines' needs 'reference_series'"),
]


def write_config(path: Path, **changes: str | None) -> Path:
    """GOOD_CONFIG with `changes` (None removes an entry), as a YAML file at `path`."""
    entries = {**GOOD_CONFIG, **changes}
    path.write_text("".join(f"{key}: {value}\n" for key, value in entries.items() if value is not None))
    return path


@pytest.mark.parametrize("changes, message", BAD_CONFIGS, ids=[message for _, message in BAD_CONFIGS])
def test_bad_config_is_refused_when_it_loads(cli, tmp_path: Path, changes: dict[str, str | None], message: str) -> None:
    config = write_config(tmp_path / "bad.yaml", **changes)
    out = tmp_path / "out"
    status, _, err = cli("figure", "3", "--config", str(config), "--budget", "tiny", "--out", str(out))
    assert_one_line_error(status, err, f"experiment config {config}: {message}")
    assert not out.exists()  # refused before anything is trained or written


@pytest.mark.parametrize("argv, message", [
    (["--config", ""], "argument --config: an empty value"),
    (["--out", ""], "argument --out: an empty path"),
    (["--epochs", "0"], "--epochs must be a finite number > 0, got 0.0"),
    (["--val-size", "0"], "--val-size must be >= 1, got 0"),
])
def test_bad_figure_option(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    config = write_config(tmp_path / "ok.yaml")
    out = tmp_path / "out"
    status, _, err = cli("figure", "3", "--config", str(config), "--budget", "tiny", "--dataset", "synthetic",
                         "--out", str(out), *argv)
    assert_one_line_error(status, err, message)
    assert not out.exists()


@pytest.mark.parametrize("command, budget", [("figure", "tiny"), ("table", "cpu")], ids=["one-baseline", "three-baselines"])
def test_out_is_a_file(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, budget: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("mine\n")
    status, _, err = cli(command, "3", "--budget", budget, "--dataset", "synthetic", "--val-size", "100", "--subset", "200", "--out", "afile")
    assert_one_line_error(status, err, "cannot create run directory afile: File exists")
    assert Path("afile").read_text() == "mine\n"


@pytest.mark.parametrize("command, budget", [("figure", "tiny"), ("table", "cpu")], ids=["one-baseline", "three-baselines"])
def test_run_directory_of_another_command_is_left_alone(cli, tmp_path: Path, command: str, budget: str) -> None:
    out = tmp_path / "nas"
    with RunDir(out).claim("nas", {"reward": "accuracy"}):
        pass
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    status, _, err = cli(command, "3", "--budget", budget, "--dataset", "synthetic", "--val-size", "100", "--subset", "200", "--out", str(out))
    assert_one_line_error(status, err, f"run directory {out} was made by a different command (made by 'effscale nas')")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no experiment.json, config.json kept


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0"], "--seeds and --jobs must be >= 1"),
    (["--dataset", "synthetic:50"], "--val-size must be between 1 and 49"),
])
def test_several_baselines_check_options_before_writing(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    out = tmp_path / "out"
    assert_one_line_error(*cli("table", "3", "--budget", "cpu", "--out", str(out), *argv)[::2], message)
    assert not out.exists()
