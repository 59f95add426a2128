"""Does the paper's finding hold at this scale? Plain statements with the numbers and their spread.

Accuracies are in percentage points; a spread is the standard deviation over seeds (0 with one seed,
in which case no difference can be called significant).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from effscale.reports.tables import aggregate, completed, human


def _pp(value: float) -> str:
    return f"{100 * value:+.2f}"


def saturation(results: pd.DataFrame) -> str:
    """Figure 3: per series, the accuracy gained per doubling of MACs in the first and the second half of the curve.

    The curve saturates when the second half gains less than the first half's rate predicts by more than
    the spread of that shortfall (the seed stds of its three end points, propagated).
    """
    lines = []
    for series, points in aggregate(results).groupby("series", sort=False):
        points = points.sort_values("macs")
        if len(points) < 3:
            lines.append(f"- {series}: too few points ({len(points)}) to judge saturation.")
            continue
        middle = len(points) // 2
        ends = points.iloc[[0, middle, -1]]
        accuracy, std = ends["accuracy_mean"].to_numpy(), ends["accuracy_std"].to_numpy()
        doublings = np.log2(ends["macs"].to_numpy()[1:] / ends["macs"].to_numpy()[:-1])
        rate = np.diff(accuracy) / doublings
        ratio = doublings[1] / doublings[0]
        shortfall = rate[0] * doublings[1] - (accuracy[2] - accuracy[1])
        spread = float(np.linalg.norm([ratio * std[0], (ratio + 1) * std[1], std[2]]))
        verdict = _saturation_verdict(shortfall, spread)
        lines.append(f"- {series}: {_pp(rate[0])} pp per doubling of MACs up to {human(ends['macs'].iloc[1])}, "
                     f"{_pp(rate[1])} pp per doubling beyond, {_pp(-shortfall)} pp against the first rate "
                     f"(spread {100 * spread:.2f} pp): {verdict}.")
    return "\n".join(lines)


def _saturation_verdict(shortfall: float, spread: float) -> str:
    if shortfall > spread:
        return "saturates, as in the paper"
    if shortfall < -spread:
        return "does NOT saturate here (later gains are larger)"
    return "the gains shrink by less than the spread: saturation is not shown"


def baselines(results: pd.DataFrame, reference: str) -> str:
    """Figure 4: each width-scaling line against the reference line, interpolated at equal log-MACs."""
    table = aggregate(results)
    ref = table[table["series"] == reference].sort_values("macs")
    if ref.empty:
        return f"- the reference series {reference!r} has no finished points."
    lines = []
    for series, points in table[table["series"] != reference].groupby("series", sort=False):
        inside = points[(points["macs"] >= ref["macs"].min()) & (points["macs"] <= ref["macs"].max())]
        if inside.empty:
            lines.append(f"- {series}: no MACs overlap with {reference}; compare the curves on the plot.")
            continue
        ref_accuracy = np.interp(np.log(inside["macs"]), np.log(ref["macs"]), ref["accuracy_mean"])
        difference = float(np.mean(inside["accuracy_mean"] - ref_accuracy))
        spread = float(np.sqrt(np.mean(inside["accuracy_std"] ** 2) + np.mean(ref["accuracy_std"] ** 2)))
        verdict = "higher, as in the paper" if difference > spread else (
            "lower, unlike the paper" if difference < -spread else "no difference beyond the spread")
        count = f"{len(inside)} point{'s' * (len(inside) != 1)}"
        lines.append(f"- {series} vs {reference} at equal MACs ({count}): {_pp(difference)} pp "
                     f"(spread {100 * spread:.2f} pp): {verdict}.")
    return "\n".join(lines)


def compound(results: pd.DataFrame) -> str:
    """Figure 8 and Table 3: in each group of matching MACs, compound against each single dimension,
    then how often compound is ahead of each over all groups."""
    done = completed(results)
    lines, ahead = [], {}
    for group, rows in done.groupby("group"):
        stats = rows.groupby("series")["accuracy"].agg(["mean", "std"]).fillna(0.0)
        macs = rows.groupby("series")["macs"].first()
        if "compound" not in stats.index:
            continue
        singles = stats.drop(index=["compound", "baseline"], errors="ignore")
        if singles.empty:
            continue
        parts = []
        for series, row in singles.iterrows():
            difference = stats.loc["compound", "mean"] - row["mean"]
            parts.append(f"{series} ({human(macs[series])}) {_pp(difference)} ± {100 * _spread(stats, series):.2f}")
            ahead.setdefault(series, []).append(difference > 0)
        lines.append(f"- {group}: compound ({human(macs['compound'])} MACs, "
                     f"{100 * stats.loc['compound', 'mean']:.2f}%) minus each single dimension, pp: "
                     f"{'; '.join(parts)}: {_compound_verdict(stats)}.")
    if not lines:
        return "- no group has both a compound and a single-dimension point finished."
    overall = ", ".join(f"{series} in {sum(wins)} of {len(wins)}" for series, wins in sorted(ahead.items()))
    return "\n".join([f"- Compound is ahead of {overall} groups.", *lines])


def _spread(stats: pd.DataFrame, series: str) -> float:
    """Spread of the difference between compound and `series` (their seed stds combined)."""
    return math.hypot(stats.loc["compound", "std"], stats.loc[series, "std"])


def _compound_verdict(stats: pd.DataFrame) -> str:
    winner = stats.drop(index="baseline", errors="ignore")["mean"].idxmax()
    if winner == "compound":
        return "compound is best, as in the paper"
    if stats.loc[winner, "mean"] - stats.loc["compound", "mean"] > _spread(stats, winner):
        return f"{winner} is best, unlike the paper"
    return f"{winner} is ahead by less than the spread: compound ties for best"
