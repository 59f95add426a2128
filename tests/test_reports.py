"""Reports layer on a small synthetic results table: aggregation, ranking, Pareto front, Markdown, plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from matplotlib.figure import Figure

from effscale.reports import findings
from effscale.reports.markdown import image_link, write_report
from effscale.reports.pareto import pareto_front
from effscale.reports.plots import (
    accuracy_vs_macs_figure,
    label_points,
    macs_axis,
    plot_accuracy_by_point,
    plot_accuracy_vs_macs,
    plot_reward_vs_trial,
)
from effscale.reports.tables import aggregate, human, ranking, to_markdown

# series, d, w, r, macs, accuracy of seed 0, accuracy of seed 1
POINTS = [
    ("width", 1.0, 1.0, 1.0, 100e6, 0.760, 0.770),
    ("width", 1.0, 1.4, 1.0, 180e6, 0.800, 0.820),
    ("width", 1.0, 1.8, 1.0, 290e6, 0.815, 0.825),
    ("width", 1.0, 2.6, 1.0, 600e6, 0.830, 0.836),
    ("depth", 1.0, 1.0, 1.0, 100e6, 0.760, 0.770),
    ("depth", 2.0, 1.0, 1.0, 190e6, 0.790, 0.800),
    ("depth", 3.0, 1.0, 1.0, 280e6, 0.805, 0.811),
    ("depth", 4.0, 1.0, 1.0, 370e6, 0.812, 0.818),
    ("resolution", 1.0, 1.0, 1.0, 100e6, 0.760, 0.770),
    ("resolution", 1.0, 1.0, 1.3, 169e6, 0.795, 0.805),
    ("resolution", 1.0, 1.0, 1.7, 289e6, 0.816, 0.822),
    ("resolution", 1.0, 1.0, 2.0, 400e6, 0.826, 0.834),
]


def label(d: float, w: float, r: float) -> str:
    return f"d={d:g} w={w:g} r={r:g}"


@pytest.fixture
def results() -> pd.DataFrame:
    rows = [
        {"label": label(d, w, r), "series": s, "d": d, "w": w, "r": r, "params": 4e6 * w * w * d,
         "macs": macs, "acts": macs / 50, "accuracy": acc, "seed": seed, "seconds": 10.0,
         "state": "COMPLETE", "note": "extra column"}
        for s, d, w, r, macs, *accs in POINTS for seed, acc in enumerate(accs)
    ]
    failed = [
        {**rows[2], "seed": 2, "accuracy": 0.10, "state": "FAIL"},
        {**rows[0], "label": "diverged", "accuracy": math.nan, "state": "FAIL"},
    ]
    return pd.DataFrame(rows + failed)


@pytest.fixture
def agg(results: pd.DataFrame) -> pd.DataFrame:
    return aggregate(results)


def test_aggregate_one_row_per_point_with_seed_statistics(agg: pd.DataFrame) -> None:
    assert len(agg) == 12
    assert list(agg.columns) == ["series", "label", "d", "w", "r", "params", "macs", "acts",
                                 "accuracy_mean", "accuracy_std", "n_seeds"]
    point = agg[(agg["series"] == "width") & (agg["label"] == "d=1 w=1.4 r=1")].iloc[0]
    assert point["accuracy_mean"] == pytest.approx(0.81)
    assert point["accuracy_std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert point["n_seeds"] == 2  # the FAIL seed (accuracy 0.10) is left out
    assert point["macs"] == 180e6
    assert "diverged" not in set(agg["label"])


def test_aggregate_sorted_by_series_then_macs(agg: pd.DataFrame) -> None:
    assert list(agg["series"].unique()) == ["depth", "resolution", "width"]
    assert list(agg[agg["series"] == "width"]["macs"]) == [100e6, 180e6, 290e6, 600e6]


def test_aggregate_without_series_or_state_is_one_series() -> None:
    table = pd.DataFrame({"label": ["a", "a", "b"], "macs": [1, 1, 2], "accuracy": [0.5, 0.7, 0.9]})
    agg = aggregate(table)
    assert list(agg["series"]) == ["all", "all"]
    assert list(agg["accuracy_mean"]) == pytest.approx([0.6, 0.9])
    assert list(agg["accuracy_std"]) == pytest.approx([math.sqrt(0.02), 0.0])


def test_ranking_best_first(results: pd.DataFrame, agg: pd.DataFrame) -> None:
    top = ranking(agg, top=4)
    assert list(top["label"]) == ["d=1 w=2.6 r=1", "d=1 w=1 r=2", "d=1 w=1.8 r=1", "d=1 w=1 r=1.7"]
    assert ranking(results, top=4).equals(top)


def test_pareto_front_exact_members() -> None:
    points = pd.DataFrame({
        "label": ["A", "B", "C", "D", "E", "F", "G"],
        "macs": [1.0, 2.0, 3.0, 4.0, 4.0, 0.5, 5.0],
        "accuracy_mean": [0.50, 0.60, 0.55, 0.70, 0.65, 0.40, 0.70],
    })
    # C is beaten by B, E by D (same cost), G by D (same value, lower cost).
    assert list(pareto_front(points)["label"]) == ["F", "A", "B", "D"]


def test_human_counts() -> None:
    assert [human(n) for n in (385.8e6, 1.83e9, 6e8, 5_288_548, 999, 999_990, 995_000, math.nan)] == [
        "385.8M", "1.83G", "600M", "5.29M", "999", "1M", "995K", ""]


def test_to_markdown_table(agg: pd.DataFrame) -> None:
    text = to_markdown(ranking(agg, top=2), {"label": "point", "macs": "MACs (paper FLOPS)", "accuracy_mean": "accuracy"},
                       floatfmt=".3f", formats={"macs": human})
    assert text.splitlines() == [
        "| point | MACs (paper FLOPS) | accuracy |",
        "| --- | ---: | ---: |",
        "| d=1 w=2.6 r=1 | 600M | 0.833 |",
        "| d=1 w=1 r=2 | 400M | 0.830 |",
    ]


def assert_images(paths: list[Path], stem: Path) -> None:
    assert paths == [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")]
    for path in paths:
        assert path.stat().st_size > 1000
    height, width, channels = matplotlib.image.imread(paths[0]).shape
    assert 300 < height < 3000 and 400 < width < 4000 and channels in (3, 4)
    assert "<svg" in paths[1].read_text()


def test_plot_accuracy_vs_macs_single_axes_and_panels(agg: pd.DataFrame, tmp_path: Path) -> None:
    stem = tmp_path / "plots" / "fig8"
    assert_images(plot_accuracy_vs_macs(agg, stem, title="Scaling up the baseline", pareto=True), stem)
    stem = tmp_path / "fig3"
    assert_images(plot_accuracy_vs_macs(agg, stem, panels=["width", "depth", "resolution"]), stem)
    with pytest.raises(ValueError, match="compound"):
        plot_accuracy_vs_macs(agg, stem, panels=["compound"])


@pytest.mark.parametrize("connect", [True, False])
def test_series_are_lines_or_points_only(agg: pd.DataFrame, connect: bool) -> None:
    ax = accuracy_vs_macs_figure(agg, pareto=True, connect=connect).axes[0]
    series = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(series) == agg["series"].nunique()
    assert {line.get_linestyle() for line in series} == ({"-"} if connect else {"None"})
    assert any(line.get_label() == "Pareto front" and line.get_linestyle() == "--" for line in ax.get_lines())


def test_rendering_the_same_results_twice_gives_the_same_bytes(agg: pd.DataFrame, tmp_path: Path) -> None:
    first = plot_accuracy_vs_macs(agg, tmp_path / "a" / "fig", pareto=True)
    second = plot_accuracy_vs_macs(agg, tmp_path / "b" / "fig", pareto=True)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_point_labels_name_what_varies_and_stay_clear_of_the_data(agg: pd.DataFrame) -> None:
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for _, points in agg.groupby("series"):
        ax.errorbar(points["macs"], 100 * points["accuracy_mean"], yerr=100 * points["accuracy_std"], marker="o", capsize=3)
    macs_axis(ax)
    fig.draw_without_rendering()
    labels = label_points(ax, agg, {name: "black" for name in agg["series"].unique()})
    assert sorted(text.get_text() for text in labels) == sorted(
        ["(1, 1, 1)", "w=1.4", "w=1.8", "w=2.6", "d=2", "d=3", "d=4", "r=1.3", "r=1.7", "r=2"])  # the shared baseline once
    boxes = [text.get_window_extent() for text in labels]
    assert all(ax.bbox.x0 <= b.x0 and b.x1 <= ax.bbox.x1 and ax.bbox.y0 <= b.y0 and b.y1 <= ax.bbox.y1 for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    drawn = [line.get_transform().transform_path(line.get_path()) for line in ax.get_lines() if line.get_linestyle() != "None"]
    drawn += [bars.get_transform().transform_path(path) for bars in ax.collections for path in bars.get_paths()]
    assert not any(path.intersects_bbox(box, filled=False) for path in drawn for box in boxes)  # lines and error bars


@pytest.mark.parametrize(("low", "high", "labelled"), [
    (2e6, 150e6, ["2M", "3M", "5M", "20M", "30M", "50M", "200M", "300M"]),  # 2x, 3x and 5x of each decade
    (5.1e6, 5.9e6, ["5.2M", "5.4M", "5.6M", "5.8M", "6M"]),  # too narrow for whole multiples: every tick
])
def test_macs_axis_minor_tick_labels(low: float, high: float, labelled: list[str]) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot([low, high], [0, 1])
    macs_axis(ax)
    fig.draw_without_rendering()
    view_low, view_high = ax.get_xlim()
    assert [label.get_text() for label in ax.xaxis.get_ticklabels(minor=True)
            if label.get_text() and view_low <= label.get_position()[0] <= view_high] == labelled


def test_plot_accuracy_by_point(agg: pd.DataFrame, tmp_path: Path) -> None:
    stem = tmp_path / "bars"
    assert_images(plot_accuracy_by_point(agg, stem), stem)


def test_plot_reward_vs_trial(tmp_path: Path) -> None:
    trials = pd.DataFrame({
        "trial": range(8),
        "reward": [0.50, 0.55, 0.52, 0.61, math.nan, 0.58, 0.66, 0.64],
        "state": ["COMPLETE"] * 4 + ["FAIL"] + ["COMPLETE"] * 3,
    })
    stem = tmp_path / "reward"
    assert_images(plot_reward_vs_trial(trials, stem), stem)


def test_write_report_with_relative_image_links(tmp_path: Path) -> None:
    figure = tmp_path / "plots" / "fig8.png"
    assert image_link(figure, tmp_path, alt="Figure 8") == "![Figure 8](plots/fig8.png)"
    path = write_report(tmp_path, "Compound scaling", [("Figure 8", image_link(figure, tmp_path)), ("Table", "| a |\n| --- |\n")])
    assert path == tmp_path / "report.md"
    assert path.read_text().splitlines() == [
        "# Compound scaling", "",
        "## Figure 8", "", "![fig8](plots/fig8.png)", "",
        "## Table", "", "| a |", "| --- |",
    ]


def test_compound_finding_counts_wins_and_calls_ties() -> None:
    # group, series, accuracy of seed 0, accuracy of seed 1
    points = [("phi=1", "compound", 0.80, 0.82), ("phi=1", "width", 0.70, 0.72), ("phi=1", "resolution", 0.81, 0.83),
              ("phi=2", "compound", 0.90, 0.90), ("phi=2", "width", 0.80, 0.80), ("phi=2", "resolution", 0.70, 0.70),
              ("phi=3", "compound", 0.60, 0.60), ("phi=3", "width", 0.70, 0.70), ("phi=3", "baseline", 0.99, 0.99)]
    results = pd.DataFrame([{"group": g, "series": s, "label": f"{g} {s}", "macs": 1e6, "accuracy": a, "seed": seed,
                             "state": "COMPLETE"} for g, s, *accs in points for seed, a in enumerate(accs)])
    lines = findings.compound(results).splitlines()
    assert lines[0] == "- Compound is ahead of resolution in 1 of 2, width in 2 of 3 groups."
    assert lines[1].endswith("resolution is ahead by less than the spread: compound ties for best.")
    assert "resolution (1M) -1.00 ± 2.00; width (1M) +10.00 ± 2.00" in lines[1]  # sample stds combined
    assert lines[2].endswith("compound is best, as in the paper.")
    assert lines[3].endswith("width is best, unlike the paper.")  # the baseline is not a rival


def test_saturation_finding_weighs_the_shortfall_against_the_spread() -> None:
    # series, accuracy at 1M, 4M and 16M MACs (two doublings each half), half the gap between the two seeds
    curves = [("width", (0.50, 0.60, 0.64), 0.0), ("depth", (0.50, 0.60, 0.64), 0.02), ("resolution", (0.50, 0.52, 0.70), 0.0)]
    results = pd.DataFrame([{"series": name, "label": f"{name} {macs}", "macs": macs, "accuracy": accuracy + sign * gap,
                             "seed": seed, "state": "COMPLETE"}
                            for name, accuracies, gap in curves
                            for macs, accuracy in zip((1e6, 4e6, 16e6), accuracies, strict=True)
                            for seed, sign in enumerate((-1, 1))])
    depth, resolution, width = findings.saturation(results).splitlines()  # sorted by series
    assert width == ("- width: +5.00 pp per doubling of MACs up to 4M, +2.00 pp per doubling beyond, "
                     "-6.00 pp against the first rate (spread 0.00 pp): saturates, as in the paper.")
    # seed std 2.83 pp at each end point: spread sqrt(1 + 4 + 1) * 2.83 = 6.93 pp > the 6 pp shortfall
    assert depth.endswith("-6.00 pp against the first rate (spread 6.93 pp): "
                          "the gains shrink by less than the spread: saturation is not shown.")
    assert resolution.endswith("+16.00 pp against the first rate (spread 0.00 pp): "
                               "does NOT saturate here (later gains are larger).")


def test_baselines_finding_compares_each_line_with_the_reference_at_equal_macs() -> None:
    # series, [(MACs, mean accuracy)]; each point has two seeds at mean -/+ 0.01 (std 1.41 pp)
    lines = [("d=1, r=1", [(1e6, 0.70), (2e6, 0.74), (4e6, 0.78)]), ("d=2", [(2e6, 0.75)]),
             ("far", [(10e6, 0.90)]), ("r=1.3", [(2e6, 0.80), (4e6, 0.82)]), ("w only", [(4e6, 0.70)])]
    results = pd.DataFrame([{"series": name, "label": f"{name} {macs}", "macs": macs, "accuracy": mean + sign * 0.01,
                             "seed": seed, "state": "COMPLETE"}
                            for name, points in lines for macs, mean in points for seed, sign in enumerate((-1, 1))])
    assert findings.baselines(results, "d=1, r=1").splitlines() == [
        "- d=2 vs d=1, r=1 at equal MACs (1 point): +1.00 pp (spread 2.00 pp): no difference beyond the spread.",
        "- far: no MACs overlap with d=1, r=1; compare the curves on the plot.",
        "- r=1.3 vs d=1, r=1 at equal MACs (2 points): +5.00 pp (spread 2.00 pp): higher, as in the paper.",
        "- w only vs d=1, r=1 at equal MACs (1 point): -8.00 pp (spread 2.00 pp): lower, unlike the paper.",
    ]
    assert findings.baselines(results, "missing") == "- the reference series 'missing' has no finished points."
