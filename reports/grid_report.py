"""The report of a grid-search run directory: ranking table, plots and report.md."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from effscale.reports.markdown import image_link, write_report
from effscale.reports.plots import plot_accuracy_by_point, plot_accuracy_vs_macs
from effscale.reports.tables import aggregate, human, ranking, to_markdown

RANKING_COLUMNS = {"label": "point", "d": "d", "w": "w", "r": "r", "macs": "MACs (paper FLOPS)",
                   "params": "params", "accuracy_mean": "accuracy", "accuracy_std": "std", "n_seeds": "seeds"}


def write_grid_report(run_dir: Path, results: pd.DataFrame) -> pd.DataFrame:
    """Plots under plots/, report.md with the ranking and the skipped or failed points; returns the ranking."""
    table = ranking(aggregate(results))
    plots = Path(run_dir) / "plots"
    plots.mkdir(exist_ok=True)
    sections = []
    if not table.empty:
        by_point = plot_accuracy_by_point(table, plots / "accuracy_by_point", title="Grid points at phi = 1")
        vs_macs = plot_accuracy_vs_macs(table, plots / "accuracy_vs_macs", title="Grid points: accuracy vs MACs",
                                        pareto=True)
        sections.append(("Ranking", to_markdown(table, RANKING_COLUMNS, formats={"macs": human, "params": human})))
        sections.append(("Plots", f"{image_link(by_point[0], run_dir)}\n\n{image_link(vs_macs[0], run_dir)}"))
    others = results[results["state"] != "COMPLETE"].drop_duplicates("label")
    if not others.empty:
        columns = {"label": "point", "macs_ratio": "MACs ratio", "state": "state", "reason": "reason"}
        sections.append(("Not trained or not finished", to_markdown(others, columns, floatfmt=".2f")))
    write_report(Path(run_dir), "Compound-coefficient grid search (Step 1)", sections)
    return table[list(RANKING_COLUMNS)].rename(columns=RANKING_COLUMNS)
