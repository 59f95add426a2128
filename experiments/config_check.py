"""The shape of an experiment config (experiments/configs/*.yaml), checked when it loads: a wrong key or value
is one line naming its key path, before any training."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from effscale.models.errors import EffscaleError
from effscale.scaling.inverse import DIMENSIONS

BUDGETS = ("tiny", "cpu", "gpu")
FINDINGS = ("saturation", "baselines", "compound")  # what reports.findings checks (see cmd_figure)
VARIED = ("d", "w", "r")  # a series' `vary` and `fixed` keys: depth, width, resolution coefficients
TOP = "top level"  # how errors name the config's own keys
Check = Callable[[str, Any], None]  # raises EffscaleError naming `where` (the key path) when the value is wrong


def check_config(config: Any) -> None:
    """Raise one line naming the first key with a wrong shape or value: an unknown or missing key, a list for a
    mapping, a word for a number, a baseline, dimension, series or finding that does not exist."""
    _require(TOP, config, ("baselines", "budgets", "finding"))
    _require("baselines", config["baselines"])
    for name in config["baselines"]:
        _text(f"baseline name {name!r}", name)
    known = _one_of(tuple(config["baselines"]))
    series = _series_names(config)
    _mapping(TOP, config, {
        "name": _text, "title": _text, "finding": _one_of(FINDINGS), "reference_series": _one_of(series),
        "panels": _list_of(_one_of(series + tuple(config["baselines"]))),
        "baselines": _fields(dict.fromkeys(config["baselines"], _baseline_entry)),
        "series": _list_of(_fields({"name": _text, "baseline": known, "vary": _one_of(VARIED),
                                    "values": _list_of(_positive), "fixed": _fields(dict.fromkeys(VARIED, _positive))},
                                   ("name", "baseline", "vary", "values"))),
        "matched": _list_of(_fields({"baseline": known, "alpha": _positive, "beta": _positive, "gamma": _positive,
                                     "phis": _list_of(_number), "dimensions": _list_of(_one_of(DIMENSIONS))},
                                    ("baseline", "alpha", "beta", "gamma", "phis"))),
        "points": _list_of(_fields({"baseline": known, "series": _text, "d": _positive, "w": _positive, "r": _positive},
                                   ("baseline", "series", "d", "w", "r"))),
        "budgets": _fields(dict.fromkeys(BUDGETS, _optional(_fields({
            "epochs": _positive, "subset": _optional(_count), "val_size": _count, "seeds": _count, "values": _count,
            "phis": _list_of(_number), "baselines": _list_of(known), "resolution": _count})))),
    })
    if config["finding"] == "baselines" and "reference_series" not in config:
        raise EffscaleError("finding 'baselines' needs 'reference_series' (the series the others are compared with)")


def _require(where: str, value: Any, required: tuple[str, ...] = ()) -> None:
    """`value` is a mapping with the `required` keys."""
    if not isinstance(value, dict):
        raise EffscaleError(f"{where} must be a mapping (key: value), got {_shown(value)}")
    for key in required:
        if key not in value:
            raise EffscaleError(f"{where} needs {key!r}")


def _mapping(where: str, value: Any, fields: dict[str, Check], required: tuple[str, ...] = ()) -> None:
    """`value` is a mapping with the `required` keys and only keys of `fields`, each passing its check."""
    _require(where, value, required)
    for key, item in value.items():
        if key not in fields:
            raise EffscaleError(f"{where}: unknown key {key!r}; known: {', '.join(map(str, fields))}")
        fields[key](str(key) if where == TOP else f"{where}.{key}", item)


def _fields(fields: dict[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A check for a mapping (see _mapping)."""
    return lambda where, value: _mapping(where, value, fields, required)


def _list_of(check: Check) -> Check:
    """A check for a non-empty list whose items pass `check`."""
    def check_list(where: str, value: Any) -> None:
        if not isinstance(value, list) or not value:
            raise EffscaleError(f"{where} must be a non-empty list, got {_shown(value)}")
        for index, item in enumerate(value):
            check(f"{where}[{index}]", item)

    return check_list


def _one_of(choices: tuple[str, ...]) -> Check:
    """A check for one of `choices`."""
    def check_choice(where: str, value: Any) -> None:
        if value not in choices:
            raise EffscaleError(f"{where} must be one of {', '.join(map(str, choices))}, got {_shown(value)}")

    return check_choice


def _optional(check: Check) -> Check:
    """`check`, or null."""
    return lambda where, value: None if value is None else check(where, value)


def _text(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise EffscaleError(f"{where} must be text, got {_shown(value)}")


def _number(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EffscaleError(f"{where} must be a number, got {_shown(value)}")


def _positive(where: str, value: Any) -> None:
    _number(where, value)
    if value <= 0:
        raise EffscaleError(f"{where} must be > 0, got {value!r}")


def _count(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EffscaleError(f"{where} must be a whole number >= 1, got {_shown(value)}")


def _baseline_entry(where: str, value: Any) -> None:
    """A baseline: a model, optionally scaled in depth and width, at a resolution."""
    _mapping(where, value, {"model": _text, "width": _positive, "depth": _positive, "resolution": _count}, ("model",))


def _shown(value: Any) -> str:
    """A value for an error message: scalars as written, containers by their kind."""
    return {dict: "a mapping", list: "a list"}.get(type(value), repr(value))


def _series_names(config: dict[str, Any]) -> tuple[str, ...]:
    """Every series the config can produce (what `panels` and `reference_series` may name)."""
    names = [entry.get("name") for entry in _entries(config, "series")]
    names += [entry.get("series") for entry in _entries(config, "points")]
    if _entries(config, "matched"):
        names += ["baseline", "compound", *DIMENSIONS]
    return tuple(dict.fromkeys(name for name in names if isinstance(name, str)))


def _entries(config: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The mappings listed under `key` (what is not one is refused by check_config)."""
    entries = config.get(key)
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
