"""Figures from results tables: accuracy vs MACs (paper Figures 3 and 8), accuracy per point, NAS rewards.

Figures are built on `matplotlib.figure.Figure` (no pyplot state) and rendered by the Agg backend.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cbook import STEP_LOOKUP_MAP
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from matplotlib.ticker import Formatter, FuncFormatter
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


def plot_accuracy_vs_macs(agg: pd.DataFrame, path_stem: str | Path, **options: Any) -> list[Path]:
    """`accuracy_vs_macs_figure(agg, **options)` saved as PNG and SVG at `path_stem`."""
    return save_figure(accuracy_vs_macs_figure(agg, **options), path_stem)


def accuracy_vs_macs_figure(
    agg: pd.DataFrame,
    title: str | None = None,
    panels: Sequence[str] | None = None,
    pareto: bool = False,
    annotate: bool = True,
    connect: bool = True,
) -> Figure:
    """Mean accuracy (error bars: std over seeds) against MACs on a log axis, one line per series.

    `agg` is `tables.aggregate(...)`. With `panels`, each name gets its own subplot side by side (Figure 3
    style) showing the series of that name and those named "NAME: RULE" (Table 3 style: one panel per
    network, one line per rule); otherwise all series share one axes (Figure 8 style). A series is coloured
    and listed in the legend (outside, right) by its rule: the part after "NAME: ".
    `pareto` adds the front of the points drawn in each axes; `annotate` labels points with what their
    series varies ("w=1.4") or their (d, w, r); `connect` False draws points only, for series that are
    not curves (the points of a grid search).
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
                _draw_series(ax, shown[shown["series"] == name], _rule(name), colours[_rule(name)], connect)
            if pareto:
                draw_pareto(ax, shown)
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
        return fig


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
    ax.xaxis.set_minor_formatter(_MinorMacsFormatter())
    ax.margins(x=0.08, y=0.1)
    low, high = ax.get_xlim()
    ax.set_xlim(low, high * (high / low) ** 0.12)


class _MinorMacsFormatter(Formatter):
    """Minor ticks of a log MACs axis: the 2x, 3x and 5x of each decade, or every tick where the axis is
    too narrow for whole multiples (ticks at 5.2M, 5.4M, ...)."""

    label_all = False

    def set_locs(self, locs: Sequence[float]) -> None:
        super().set_locs(locs)
        low, high = sorted(self.axis.get_view_interval()) if self.axis else (0.0, math.inf)
        mantissas = [_mantissa(x) for x in locs if low <= x <= high]
        self.label_all = any(not math.isclose(m, round(m)) for m in mantissas)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return human(x) if self.label_all or round(_mantissa(x)) in (2, 3, 5) else ""


def _mantissa(x: float) -> float:
    """5.2 of 5.2e6."""
    return x / 10 ** math.floor(math.log10(x))


def _draw_series(ax: Axes, points: pd.DataFrame, name: str, colour: str, connect: bool) -> None:
    points = points.sort_values("macs")
    ax.errorbar(points["macs"], 100 * points["accuracy_mean"], yerr=100 * points["accuracy_std"], marker="o",
                markersize=5, capsize=3, color=colour, label=name, linestyle="-" if connect else "none")


_LABEL_OFFSETS = ((5, -12), (5, 4), (-5, 4), (-5, -12), (7, -4), (-7, -4), (0, 9), (0, -19), (8, -24), (8, 16),
                  (-8, -24), (-8, 16))
"""Where a point's label may go, in points from the point, tried in turn until one overlaps nothing."""


def label_points(ax: Axes, points: pd.DataFrame, colours: dict[str, str]) -> list[Text]:
    """Label each point once (see `_point_texts`), even when several series share it (the baseline).

    Draw the data and settle the layout first (`Figure.draw_without_rendering`). Each label goes to the
    first of `_LABEL_OFFSETS` whose box lies inside the axes and touches no marker, line, error bar or
    label placed before it; when none is free, to the one with the least harm (leaving the axes, then
    covering labels, then markers, then crossing lines), so that crowded points stay readable.
    """
    placed: dict[tuple[float, float], Text] = {}
    labels: list[Bbox] = []
    markers, paths = _obstacles(ax)
    for (_, p), words in zip(points.iterrows(), _point_texts(points)):
        key = (p["macs"], p["accuracy_mean"])
        if key in placed:
            continue
        text = ax.annotate(words, (p["macs"], 100 * p["accuracy_mean"]), xytext=(0, 0), textcoords="offset points",
                           fontsize=8, color=colours[_rule(p["series"])], in_layout=False)
        harms = []
        for dx, dy in _LABEL_OFFSETS:
            _place(text, dx, dy)
            box = text.get_window_extent()
            outside = not (ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1 and ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1)
            harms.append((outside, sum(box.overlaps(other) for other in labels),
                          sum(box.overlaps(marker) for marker in markers),
                          sum(path.intersects_bbox(box, filled=False) for path in paths)))
            if harms[-1] == (False, 0, 0, 0):
                break
        _place(text, *_LABEL_OFFSETS[harms.index(min(harms))])
        labels.append(text.get_window_extent())
        placed[key] = text
    return list(placed.values())


def _place(text: Text, dx: float, dy: float) -> None:
    """Put an annotation `dx`, `dy` points from its point, aligned away from it."""
    text.set_position((dx, dy))
    text.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")


def _obstacles(ax: Axes) -> tuple[list[Bbox], list[MplPath]]:
    """What labels must not cover, in display coordinates: a box per marker (of lines, error-bar caps and
    scatter points) and the path of every drawn line and error bar."""
    pixels = ax.figure.dpi / 72
    boxes, paths = [], []
    for line in ax.get_lines():
        data = np.column_stack(STEP_LOOKUP_MAP[line.get_drawstyle()](*line.get_data())).astype(float)
        xy = line.get_transform().transform(data)
        half = line.get_markersize() * pixels / 2
        if line.get_marker() == "_":  # error-bar caps are horizontal strokes
            paths += [MplPath([(x - half, y), (x + half, y)]) for x, y in xy]
        elif line.get_marker() not in ("None", "", " ", None):
            boxes += [_square(x, y, half) for x, y in xy]
        if line.get_linestyle() not in ("None", "", " "):
            paths.append(MplPath(xy))
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            paths += [collection.get_transform().transform_path(path) for path in collection.get_paths()]
        elif isinstance(collection, PathCollection):
            half = math.sqrt(float(np.max(collection.get_sizes(), initial=36.0))) * pixels / 2
            xy = collection.get_offset_transform().transform(collection.get_offsets())
            boxes += [_square(x, y, half) for x, y in xy]
    return boxes, paths


def _square(x: float, y: float, half: float) -> Bbox:
    return Bbox.from_extents(x - half, y - half, x + half, y + half)


def draw_pareto(ax: Axes, points: pd.DataFrame, cost: str = "macs", **style: Any) -> None:
    """The Pareto front of the points' mean accuracy against `cost`: a dashed step line."""
    front = pareto_front(points, cost=cost)
    ax.step(front[cost], 100 * front["accuracy_mean"], where="post", label="Pareto front",
            **{"linestyle": "--", "color": "0.3", "linewidth": 1.2, "zorder": 1, **style})


def _point_texts(points: pd.DataFrame) -> list[str]:
    """Each point's label: the coefficients its series varies ("w=1.4"), all three "(d, w, r)" for a
    point that several series share or a series that varies all three, or the point's label when its
    coefficients are unknown."""
    coefficients = points.reindex(columns=["d", "w", "r"])
    shared = points.duplicated(["macs", "accuracy_mean"], keep=False)
    varying = coefficients.groupby(points["series"]).transform("nunique") > 1
    texts = []
    for index, point in coefficients.iterrows():
        if point.isna().any():
            texts.append(str(points.at[index, "label"]))
        elif shared[index] or varying.loc[index].all() or not varying.loc[index].any():
            texts.append("(" + ", ".join(f"{c:.3g}" for c in point) + ")")
        else:
            texts.append(" ".join(f"{k}={c:.3g}" for k, c in point[varying.loc[index]].items()))
    return texts


def save_figure(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write `fig` as PNG and SVG next to each other; the same figure always gives the same bytes."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ext) for ext in (".png", ".svg")]
    with mpl.rc_context(STYLE):  # the SVG settings apply when saving
        for path in paths:
            fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=_METADATA[path.suffix])
    return paths
