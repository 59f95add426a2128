"""Results tables: filtering, per-point aggregation over seeds, ranking and Markdown rendering."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

POINT = ["series", "label"]
POINT_COLUMNS = ["d", "w", "r", "params", "macs", "acts"]
DEFAULT_SERIES = "all"

Format = str | Callable[[Any], str]


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose `state` is COMPLETE (all rows if there is no `state` column)."""
    if "state" not in df.columns:
        return df
    return df[df["state"].astype(str).str.upper() == "COMPLETE"]


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per point (series, label): its coordinates and costs, accuracy mean/std over seeds, n_seeds.

    Only COMPLETE rows with an accuracy count. The std is the sample std (ddof=1), 0 for a single seed.
    A missing `series` column means one series named "all"; missing coordinate/cost columns come out NaN.
    Sorted by series, then MACs.
    """
    rows = completed(df).dropna(subset=["accuracy"])
    if "series" not in rows.columns:
        rows = rows.assign(series=DEFAULT_SERIES)
    rows = rows.reindex(columns=[*POINT, *POINT_COLUMNS, "accuracy"])
    grouped = rows.groupby(POINT, sort=False, dropna=False)
    agg = grouped[POINT_COLUMNS].first()
    agg["accuracy_mean"] = grouped["accuracy"].mean()
    agg["accuracy_std"] = grouped["accuracy"].std(ddof=1).fillna(0.0)
    agg["n_seeds"] = grouped["accuracy"].size()
    return agg.reset_index().sort_values(["series", "macs"], kind="stable", ignore_index=True)


def ranking(df: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Points sorted by mean accuracy, best first; `df` is a results table or its aggregate."""
    agg = df if "accuracy_mean" in df.columns else aggregate(df)
    ranked = agg.sort_values("accuracy_mean", ascending=False, kind="stable", ignore_index=True)
    return ranked if top is None else ranked.head(top)


def human(n: float) -> str:
    """Compact count: 385.8M, 1.83G, 600M, 5.29K; plain number below 1000; empty for NaN/None."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return ""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            value = n / scale
            digits = f"{value:.{2 if abs(value) < 10 else 1}f}"
            if abs(float(digits)) >= 1000 and unit != "T":  # 999,990 rounds to 1000.0K: that is 1M
                return human(math.copysign(1000 * scale, n))
            return digits.rstrip("0").rstrip(".") + unit
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.4g}"


def to_markdown(
    df: pd.DataFrame,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    floatfmt: str = ".4f",
    formats: Mapping[str, Format] | None = None,
) -> str:
    """GitHub Markdown table of `df`.

    `columns` picks columns (a mapping also renames them: column -> header). Floats use `floatfmt`
    unless `formats` gives the column a format spec or a callable (e.g. `human`). NaN prints empty;
    numeric columns are right-aligned.
    """
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in (columns or df.columns)}
    formats = formats or {}
    lines = [_row(headers.values()), _row(_rule(df[c]) for c in headers)]
    for _, record in df[list(headers)].iterrows():
        lines.append(_row(_cell(record[c], formats.get(c, floatfmt)) for c in headers))
    return "\n".join(lines) + "\n"


def _row(cells: Any) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(column: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return "---:" if numeric else "---"


def _cell(value: Any, fmt: Format) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if callable(fmt):
        text = fmt(value)
    elif isinstance(value, float):
        text = format(value, fmt)
    else:
        text = str(value)
    return text.replace("|", "\\|")
