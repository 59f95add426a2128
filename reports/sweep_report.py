"""The report of a run directory that trained a list of scaled points (grid, family, figure): tables, plots, report.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from effscale.reports.markdown import image_link, write_report
from effscale.reports.plots import plot_accuracy_by_point, plot_accuracy_vs_macs
from effscale.reports.tables import aggregate, human, ranking, to_markdown

RANKING_COLUMNS = {"series": "series", "label": "point", "d": "d", "w": "w", "r": "r", "macs": "MACs (paper FLOPS)",
                   "params": "params", "accuracy_mean": "accuracy", "accuracy_std": "std", "n_seeds": "seeds"}


def write_sweep_report(run_dir: Path, results: pd.DataFrame, title: str, by_point: bool = False,
                       panels: Sequence[str] | None = None, findings: str | None = None) -> pd.DataFrame:
    """Plots under plots/ (accuracy vs MACs; per point when `by_point`), report.md with the ranking and
    the points not trained; returns the ranking with readable column names."""
    agg = aggregate(results)
    table = ranking(agg)
    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    sections = [("Findings", findings)] if findings else []
    if not table.empty:
        images = plot_accuracy_vs_macs(agg, plots / "accuracy_vs_macs", title=title, panels=panels,
                                       pareto=by_point, connect=not by_point)
        if by_point:
            images += plot_accuracy_by_point(table, plots / "accuracy_by_point", title=title)
        links = "\n\n".join(image_link(path, run_dir) for path in images if path.suffix == ".png")
        sections.append(("Ranking (validation accuracy, mean and std over seeds)",
                         to_markdown(table, RANKING_COLUMNS, formats={"macs": human, "params": human})))
        sections.append(("Plots", links))
    others = results[results["state"] != "COMPLETE"].drop_duplicates(["series", "label"])
    if not others.empty:
        columns = {"series": "series", "label": "point", "macs_ratio": "MACs ratio", "state": "state", "reason": "reason"}
        sections.append(("Not trained or not finished", to_markdown(others, columns, floatfmt=".2f")))
    write_report(Path(run_dir), title, sections)
    return table[list(RANKING_COLUMNS)].rename(columns=RANKING_COLUMNS)
