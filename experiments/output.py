"""Printing tables and records the same way in every subcommand."""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd

from effscale.reports.tables import human

_COUNT_COLUMNS = {"params", "macs", "acts"}


def print_table(table: pd.DataFrame, fmt: str = "text") -> None:
    """`text`: aligned with human-readable counts; `csv`; `json` (a list of records)."""
    if fmt == "csv":
        table.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    else:
        shown = table.copy()
        for column in _COUNT_COLUMNS & set(shown.columns):
            shown[column] = shown[column].map(human)
        print(shown.to_string(index=False, float_format=lambda value: f"{value:.4g}"))


def print_record(record: dict[str, Any], as_json: bool) -> None:
    """One object: JSON, or `key: value` lines with exact counts."""
    if as_json:
        print(json.dumps(record))
    else:
        width = max(len(key) for key in record)
        for key, value in record.items():
            shown = f"{value:,}" if isinstance(value, int) and key in _COUNT_COLUMNS else value
            print(f"{key:<{width}}  {shown}")
