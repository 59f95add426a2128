"""Named experiments (Figures 3, 4, 8 and Table 3): YAML configs expanded into points per baseline and budget.

A config (see experiments/configs/*.yaml; copy one and pass it with --config) names its baselines and
its points in three forms: `series` (one coefficient varied over `values`, others `fixed`), `matched`
(compound members at `phis` and depth-, width- and resolution-only rivals at matching MACs) and explicit
`points` (d, w, r). Budgets (tiny, cpu, gpu) set the training budget, the seeds, and may trim the lists.
A config's shape is checked when it loads: a wrong key or value is one line naming it, before any training.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from effscale.experiments.config_check import check_config
from effscale.experiments.options import load_model
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.scaling.inverse import DIMENSIONS
from effscale.scaling.matching import matched_family, point
from effscale.scaling.rounding import scaled
from effscale.scaling.rules import Coefficients

TRAINING_KEYS = ("epochs", "subset", "val_size", "seeds")


@dataclass(frozen=True)
class Experiment:
    """One named experiment at one budget: the points to train on each baseline."""

    name: str
    title: str
    finding: str
    budget: dict[str, Any]
    baselines: dict[str, NetworkSpec]
    points: dict[str, list[dict[str, Any]]]
    panels: tuple[str, ...] | None = None
    reference_series: str | None = None


def read_config(name_or_path: str) -> dict[str, Any]:
    """A packaged config by name (fig3, fig4, fig8, table3) or a YAML file, its shape checked (see check_config)."""
    path = Path(name_or_path)
    try:
        text = path.read_text() if path.suffix in (".yaml", ".yml") else \
            resources.files("effscale.experiments").joinpath("configs", f"{name_or_path}.yaml").read_text()
    except (OSError, UnicodeDecodeError):
        raise EffscaleError(f"no experiment config {name_or_path!r}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise EffscaleError(f"experiment config {name_or_path} is not valid YAML: {str(err).splitlines()[0]}") from None
    try:
        check_config(config)
    except EffscaleError as err:
        raise EffscaleError(f"experiment config {name_or_path}: {err}") from None
    return config


def _baseline(entry: dict[str, Any], resolution: int | None) -> NetworkSpec:
    spec = load_model(entry["model"])
    if "width" in entry or "depth" in entry:
        spec = scaled(spec, entry.get("depth", 1.0), entry.get("width", 1.0))
    return spec.with_(resolution=resolution or entry.get("resolution") or spec.resolution)


def load_experiment(name_or_path: str, budget_name: str) -> Experiment:
    """The experiment's points at budget `budget_name`, one list per baseline in use."""
    config = read_config(name_or_path)
    if budget_name not in config["budgets"]:
        raise EffscaleError(f"unknown budget {budget_name!r}; this config has {', '.join(config['budgets'])}")
    budget = config["budgets"][budget_name] or {}
    names = budget.get("baselines", list(config["baselines"]))
    baselines = {name: _baseline(config["baselines"][name], budget.get("resolution")) for name in names}
    points: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for series in config.get("series", []):
        if series["baseline"] in baselines:
            points[series["baseline"]] += _series_points(baselines[series["baseline"]], series, budget.get("values"))
    for matched in config.get("matched", []):
        if matched["baseline"] in baselines:
            points[matched["baseline"]] += _matched_points(baselines, matched, budget.get("phis", matched["phis"]))
    for row in config.get("points", []):
        if row["baseline"] in baselines:
            coefficients = Coefficients(row["d"], row["w"], row["r"])
            label = f"{row['series']} d={row['d']:g} w={row['w']:g} r={row['r']:g}"
            points[row["baseline"]].append(point(baselines[row["baseline"]], coefficients, label, row["series"],
                                                 group=row["baseline"]))
    if not any(points.values()):
        raise EffscaleError(f"experiment {config.get('name', name_or_path)} has no points at budget {budget_name}")
    return Experiment(config.get("name", str(name_or_path)), config.get("title", ""), config["finding"],
                      budget, baselines, {name: rows for name, rows in points.items() if rows},
                      tuple(config["panels"]) if config.get("panels") else None, config.get("reference_series"))


def _matched_points(baselines: dict[str, NetworkSpec], matched: dict[str, Any],
                    phis: list[float]) -> list[dict[str, Any]]:
    """Compound members at `phis` and single-dimension rivals (`dimensions`, default all three) at matching
    MACs; with several baselines, each group is named after its baseline too."""
    name = matched["baseline"]
    rows = matched_family(baselines[name], matched["alpha"], matched["beta"], matched["gamma"], phis,
                          matched.get("dimensions", DIMENSIONS))
    return [{**row, "group": f"{name} {row['group']}"} for row in rows] if len(baselines) > 1 else rows


def _series_points(baseline: NetworkSpec, series: dict[str, Any], keep: int | None) -> list[dict[str, Any]]:
    """One coefficient (`vary`: d, w or r) over `values`, the others `fixed` (1 by default)."""
    rows = []
    for value in series["values"][:keep]:
        fixed = {"d": 1.0, "w": 1.0, "r": 1.0, **series.get("fixed", {}), series["vary"]: value}
        coefficients = Coefficients(fixed["d"], fixed["w"], fixed["r"])
        label = f"{series['name']} {series['vary']}={value:g}"
        rows.append(point(baseline, coefficients, label, series["name"]))
    return rows
