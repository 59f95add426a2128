"""The report of a NAS run directory: top-k table (topk.csv), Pareto front, plots and report.md."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

from effscale.reports.markdown import image_link, write_report
from effscale.reports.pareto import pareto_front
from effscale.reports.plots import (
    ACCURACY_LABEL,
    MACS_LABEL,
    STYLE,
    draw_pareto,
    macs_axis,
    plot_reward_vs_trial,
    save_figure,
)
from effscale.reports.tables import aggregate, completed, human, to_markdown

COST_LABELS = {"macs": MACS_LABEL, "params": "parameters", "acts": "activations",
               "latency": "latency (ms, batch 1, this CPU)"}
TOP_COLUMNS = {"trial": "trial", "label": "candidate", "reward_mean": "reward", "accuracy_mean": "accuracy",
               "accuracy_std": "std", "n_seeds": "seeds", "cost": "cost", "macs": "MACs (paper FLOPS)",
               "params": "params", "stages": "stages"}
_COUNTS = {"macs": human, "params": human}


def candidates(results: pd.DataFrame) -> pd.DataFrame:
    """One row per trained candidate: first trial, counts, cost, stages, mean reward, accuracy mean/std over
    seeds; and whether it is on the accuracy-vs-cost Pareto front. Sorted by mean reward, best first."""
    done = completed(results).dropna(subset=["accuracy"])
    if done.empty:
        return pd.DataFrame(columns=[*TOP_COLUMNS, "acts", "pareto"])
    per_label = done.groupby("label", sort=False).agg(trial=("trial", "min"), cost=("cost", "first"),
                                                      stages=("stages", "first"), reward_mean=("reward", "mean"))
    table = aggregate(done).drop(columns=["series", "d", "w", "r"]).merge(per_label, on="label")
    front = set(pareto_front(table, cost="cost", value="accuracy_mean")["label"])
    table["pareto"] = table["label"].isin(front)
    table = table[[*TOP_COLUMNS, "acts", "pareto"]]
    return table.sort_values(["reward_mean", "trial"], ascending=[False, True], ignore_index=True)


def plot_cost_vs_accuracy(table: pd.DataFrame, cost_name: str, target: float, path_stem: Path,
                          title: str | None = None) -> list[Path]:
    """Mean accuracy of each candidate against its COST (log axis), the Pareto front and the target T."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        ax = fig.subplots()
        ax.scatter(table["cost"], 100 * table["accuracy_mean"], s=18, alpha=0.7, label="candidate")
        draw_pareto(ax, table, cost="cost", marker="o", markersize=4)
        ax.axvline(target, color="tab:red", linestyle=":", label="target T")
        macs_axis(ax)  # log axis, compact tick labels
        ax.set_xlabel(COST_LABELS[cost_name])
        ax.set_ylabel(ACCURACY_LABEL)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
        if title:
            ax.set_title(title)
        return save_figure(fig, path_stem)


def write_nas_report(run_dir: Path, results: pd.DataFrame, settings: Mapping[str, Any], top: int = 10) -> pd.DataFrame:
    """topk.csv, plots/reward_vs_trial and plots/cost_vs_accuracy, report.md; returns the top-k candidates.

    `settings` must hold "cost" (its name) and "target" (T); all of it is listed in the report.
    """
    run_dir = Path(run_dir)
    table = candidates(results)
    topk = table.head(top)
    topk.to_csv(run_dir / "topk.csv", index=False)
    sections = [("Settings", "\n".join(f"- {key}: {_setting(value)}" for key, value in settings.items()))]
    if not table.empty:
        plots = run_dir / "plots"
        rewards = plot_reward_vs_trial(results, plots / "reward_vs_trial", title="Reward by trial")
        tradeoff = plot_cost_vs_accuracy(table, settings["cost"], settings["target"], plots / "cost_vs_accuracy",
                                         title="Candidates: accuracy vs cost")
        sections += [
            (f"Top {len(topk)} by reward", to_markdown(topk, TOP_COLUMNS, formats={**_COUNTS, "cost": human})),
            ("Pareto front (accuracy vs cost)", to_markdown(table[table["pareto"]].sort_values("cost"), TOP_COLUMNS,
                                                            formats={**_COUNTS, "cost": human})),
            ("Plots", f"{image_link(rewards[0], run_dir)}\n\n{image_link(tradeoff[0], run_dir)}"),
        ]
    others = results[results["state"] != "COMPLETE"]
    if not others.empty:
        columns = {"trial": "trial", "label": "candidate", "macs": "MACs (paper FLOPS)", "state": "state", "reason": "reason"}
        sections.append(("Not trained or not finished", to_markdown(others, columns, formats=_COUNTS)))
    write_report(run_dir, "MNAS-style baseline search", sections)
    return topk


def _setting(value: Any) -> str:
    """Large numbers (T, a MACs cap) in compact form: 8.33M."""
    return human(value) if isinstance(value, float) and abs(value) >= 1000 else str(value)
