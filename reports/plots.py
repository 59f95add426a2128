"""Figures from results tables: accuracy vs MACs (paper Figures 3 and 8), accuracy per point, NAS rewards.

Figures are built on `matplotlib.figure.Figure` (no pyplot state) and rendered by the Agg backend.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from effscale.reports.pareto import pareto_front
from effscale.reports.tables import completed, human

MACS_LABEL = "MACs (paper FLOPS)"
ACCURACY_LABEL = "validation accuracy (%)"
DPI = 150
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
         "xtick.labelsize": 9, "ytick.labelsize": 9, "svg.fonttype": "none", "svg.hashsalt": "effscale"}
# No timestamps in the files, so that re-rendering the same results gives the same bytes.
_METADATA = {".png": {}, ".svg": {"Date": None}}


def plot_accuracy_vs_macs(
    agg: pd.DataFrame,
    path_stem: str | Path,
    title: str | None = None,
    panels: Sequence[str] | None = None,
    pareto: bool = False,
    annotate: bool = True,
) -> list[Path]:
    """Mean accuracy (error bars: std over seeds) against MACs on a log axis, one line per series.

    `agg` is `tables.aggregate(...)`. With `panels`, each name gets its own subplot side by side (Figure 3
    style) showing the series of that name and those named "NAME: RULE" (Table 3 style: one panel per
    network, one line per rule); otherwise all series share one axes (Figure 8 style). A series is coloured
    and listed in the legend (outside, right) by its rule: the part after "NAME: ".
    `pareto` adds the front of the points drawn in each axes; `annotate` labels points with their (d, w, r).
    """
    series = list(agg["series"].unique())
    colours = _colours(list(dict.fromkeys(_rule(name) for name in series)))
    groups = [[s for s in series if s == name or s.startswith(f"{name}: ")] for name in panels or []] or [series]
    missing = [name for name, group in zip(panels or [], groups) if not group]
    if missing:
        raise ValueError(f"no series {missing} in the table; it has {series}")
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(4.2 * len(groups) + 1.8, 3.8), layout="constrained")
        axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
        for panel, (ax, names) in enumerate(zip(axes, groups)):
            shown = agg[agg["series"].isin(names)]
            for name in names:
                _draw_series(ax, shown[shown["series"] == name], _rule(name), colours[_rule(name)])
            if pareto:
                _draw_pareto(ax, shown)
            macs_axis(ax)
            ax.grid(True, which="both", alpha=0.3)
            if panels:
                ax.set_title(panels[panel])
        axes[0].set_ylabel(ACCURACY_LABEL)
        if any(len(names) > 1 for names in groups) or pareto:
            fig.legend(handles=_unique_handles(axes), loc="outside right center")
        if title and panels:
            fig.suptitle(title)
        elif title:  # over the axes, clear of the legend outside on the right
            axes[0].set_title(textwrap.fill(title, 60))
        if annotate:
            fig.draw_without_rendering()  # settle the layout: label boxes are then measured where they will be
            for ax, names in zip(axes, groups):
                label_points(ax, agg[agg["series"].isin(names)], colours)
        return save_figure(fig, path_stem)


def plot_accuracy_by_point(agg: pd.DataFrame, path_stem: str | Path, title: str | None = None) -> list[Path]:
    """Horizontal bars of mean accuracy per point (error bars: std over seeds), best at the top."""
    ranked = agg.sort_values("accuracy_mean", kind="stable")
    names = ranked["label"].astype(str)
    if ranked["series"].nunique() > 1:
        names = ranked["series"].astype(str) + ": " + names
    mean, std = 100 * ranked["accuracy_mean"], 100 * ranked["accuracy_std"]
    low, high = (mean - std).min(), (mean + std).max()
    margin = max(high - low, 1.0) * 0.25
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(7.0, 1.2 + 0.32 * len(ranked)), layout="constrained")
        ax = fig.subplots()
        ax.barh(names, mean, xerr=std, color="tab:blue", alpha=0.8, capsize=3)
        for y, (m, s) in enumerate(zip(mean, std)):
            ax.annotate(f"{m:.1f}", (m + s, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        ax.set_xlim(max(0.0, low - margin), high + 2 * margin)
        ax.set_xlabel(ACCURACY_LABEL)
        ax.grid(True, axis="x", alpha=0.3)
        if title:
            ax.set_title(title)
        return save_figure(fig, path_stem)


def plot_reward_vs_trial(df: pd.DataFrame, path_stem: str | Path, title: str | None = None) -> list[Path]:
    """Reward of each COMPLETE trial (points) and the best reward so far (step line)."""
    trials = completed(df).dropna(subset=["reward"]).sort_values("trial")
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        ax = fig.subplots()
        ax.scatter(trials["trial"], trials["reward"], s=18, alpha=0.7, label="trial")
        ax.step(trials["trial"], trials["reward"].cummax(), where="post", color="tab:red", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("reward")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        if title:
            ax.set_title(title)
        return save_figure(fig, path_stem)


def _unique_handles(axes: Sequence[Axes]) -> list[Artist]:
    handles: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    return list(handles.values())


def _rule(series: str) -> str:
    """"compound" of "mobilenet-v2: compound"; a series without a network prefix is its own rule."""
    return series.split(": ", 1)[-1]


def _colours(series: Sequence[str]) -> dict[str, str]:
    cycle = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(series)}


def macs_axis(ax: Axes) -> None:
    """Log MACs axis with compact tick labels (100M, 2G) and room for point labels on the right."""
    ax.set_xscale("log")
    ax.set_xlabel(MACS_LABEL)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: human(x)))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_tick))
    ax.margins(x=0.08, y=0.1)
    low, high = ax.get_xlim()
    ax.set_xlim(low, high * (high / low) ** 0.25)


def _minor_tick(x: float, _: int) -> str:
    """Label the 2x, 3x and 5x minor ticks of a decade, leave the others blank."""
    mantissa = round(x / 10 ** math.floor(math.log10(x)))
    return human(x) if mantissa in (2, 3, 5) else ""


def _draw_series(ax: Axes, points: pd.DataFrame, name: str, colour: str) -> None:
    points = points.sort_values("macs")
    ax.errorbar(points["macs"], 100 * points["accuracy_mean"], yerr=100 * points["accuracy_std"],
                marker="o", markersize=5, capsize=3, color=colour, label=name)


_LABEL_OFFSETS = ((5, -12), (5, 4), (-5, 4), (-5, -12), (0, 9), (0, -19), (8, -24), (8, 16))
"""Where a point's label may go, in points from the point, tried in turn until one overlaps nothing."""


def label_points(ax: Axes, points: pd.DataFrame, colours: dict[str, str]) -> list[Text]:
    """Label each point with its (d, w, r) once, even when several series share it (the baseline).

    Settle the layout first (`Figure.draw_without_rendering`). Each label takes the first of
    `_LABEL_OFFSETS` whose box lies inside the axes and overlaps no marker and no label placed before
    it (the last one when none does), so that crowded points stay readable.
    """
    placed: dict[tuple[float, float, str], Text] = {}
    markers = ax.transData.transform(list(zip(points["macs"], 100 * points["accuracy_mean"])))
    taken = [Bbox.from_bounds(x - 4, y - 4, 8, 8) for x, y in markers]
    for _, p in points.iterrows():
        key = (p["macs"], p["accuracy_mean"], _point_text(p))
        if key in placed:
            continue
        for dx, dy in _LABEL_OFFSETS:
            text = ax.annotate(key[2], (p["macs"], 100 * p["accuracy_mean"]), xytext=(dx, dy),
                               ha="left" if dx > 0 else "right" if dx < 0 else "center",
                               textcoords="offset points", fontsize=8,
                               color=colours[_rule(p["series"])], in_layout=False)
            box = text.get_window_extent()
            inside = ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
            if inside and not any(box.overlaps(other) for other in taken) or (dx, dy) == _LABEL_OFFSETS[-1]:
                taken.append(box)
                placed[key] = text
                break
            text.remove()
    return list(placed.values())


def _draw_pareto(ax: Axes, points: pd.DataFrame) -> None:
    front = pareto_front(points)
    ax.step(front["macs"], 100 * front["accuracy_mean"], where="post", linestyle="--", color="0.3",
            linewidth=1.2, label="Pareto front", zorder=1)


def _point_text(point: pd.Series) -> str:
    """(d, w, r) in compact form, or the label when the coefficients are unknown."""
    coefficients = [point.get(k) for k in ("d", "w", "r")]
    if any(c is None or math.isnan(c) for c in coefficients):
        return str(point["label"])
    return "(" + ", ".join(f"{c:.3g}" for c in coefficients) + ")"


def save_figure(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write `fig` as PNG and SVG next to each other; the same figure always gives the same bytes."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ext) for ext in (".png", ".svg")]
    for path in paths:
        fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=_METADATA[path.suffix])
    return paths
