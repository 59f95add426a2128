"""Pareto front of a table: the points no other point beats on both cost and value."""

from __future__ import annotations

import pandas as pd


def pareto_front(df: pd.DataFrame, cost: str = "macs", value: str = "accuracy_mean") -> pd.DataFrame:
    """Rows not dominated by another row (lower-or-equal cost and higher-or-equal value), sorted by cost.

    Rows with a missing cost or value are ignored; of exact duplicates one row is kept.
    """
    rows = df.dropna(subset=[cost, value]).sort_values([cost, value], ascending=[True, False], kind="stable")
    best = rows[value].cummax().shift(fill_value=float("-inf"))
    return rows[rows[value] > best].reset_index(drop=True)
