"""The best candidate of a results table (one row per candidate and seed): the highest mean over seeds."""

from __future__ import annotations

from typing import Any

import pandas as pd


def best_rows(results: pd.DataFrame, column: str) -> pd.DataFrame | None:
    """The COMPLETE rows (one per seed) of the label with the highest mean `column`; None when none completed."""
    complete = results[results["state"] == "COMPLETE"]
    if complete.empty:
        return None
    label = complete.groupby("label")[column].mean().idxmax()
    return complete[complete["label"] == label]


def seed_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Accuracy mean and standard deviation over the rows' seeds (0 for one seed), and their number."""
    return {"accuracy_mean": float(rows["accuracy"].mean()),
            "accuracy_std": float(rows["accuracy"].std()) if len(rows) > 1 else 0.0, "n_seeds": len(rows)}
