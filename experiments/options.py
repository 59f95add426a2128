"""Options shared by several subcommands, and how they turn into specs and values."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.models.zoo import MODEL_NAMES, baseline_of, get_model
from effscale.scaling.rounding import check_coefficient, scaled
from effscale.search.proxy import proxy_spec

PROXY = "proxy"
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


T = TypeVar("T")

def add_model_arguments(parser: argparse.ArgumentParser, model_default: str | None = None) -> None:
    """MODEL (a named model or a spec JSON file) and the coefficient overrides."""
    parser.add_argument("model", metavar="MODEL", nargs="?" if model_default else None, default=model_default,
                        help=f"a named model ({', '.join(MODEL_NAMES)}) or a spec JSON file"
                        + (f" (default {model_default})" if model_default else ""))
    parser.add_argument("--width", type=float, help="width coefficient on the model's baseline (efficientnet-bN: on B0)")
    parser.add_argument("--depth", type=float, help="depth coefficient on the model's baseline (efficientnet-bN: on B0)")
    parser.add_argument("--resolution", type=int, help="input resolution in pixels (default: the model's own)")
    parser.add_argument("--num-classes", type=int, help="classes of the classifier (default: the model's, 1000)")
    parser.add_argument("--in-channels", type=int, help="input channels (default: the model's, 3)")


def load_model(name_or_path: str) -> NetworkSpec:
    """A named model, `proxy` (the default proxy), or a spec (or a run's best.json) from a file."""
    if name_or_path == PROXY:
        return proxy_spec()
    if name_or_path in MODEL_NAMES:
        return get_model(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "best.json").is_file():
            raise EffscaleError(f"{path} is a directory without a best.json: name a model, a spec JSON file or a run")
        path = path / "best.json"
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise EffscaleError(f"spec file {path} does not exist")
        return NetworkSpec.load(path)
    return get_model(name_or_path)  # raises with the known names


def model_from_args(args: argparse.Namespace) -> NetworkSpec:
    """The spec that MODEL, --width, --depth, --resolution, --num-classes and --in-channels describe."""
    spec = load_model(args.model)
    if args.width is not None or args.depth is not None:
        width = 1.0 if args.width is None else args.width
        depth = 1.0 if args.depth is None else args.depth
        check_coefficient("--width", width)
        check_coefficient("--depth", depth)
        spec = scaled(load_model(baseline_of(args.model)) if args.model in MODEL_NAMES else spec, depth, width)
    changes = {"resolution": args.resolution, "num_classes": args.num_classes, "in_channels": args.in_channels}
    return spec.with_(**{key: value for key, value in changes.items() if value is not None})


def parse_number(text: str) -> float:
    """A number with an optional K/M/G/T suffix: '400M' -> 4e8."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*([kKmMgGtT]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (examples: 400M, 2.5G, 1e9)")
    return float(match[1]) * _SUFFIXES[match[2].upper()]


def parse_list(cast: Callable[[str], T], what: str) -> Callable[[str], tuple[T, ...]]:
    """An argparse type for comma-separated `what`: '3,5' -> (3, 5) by `cast`; refuses an empty list or element."""
    def parse(text: str) -> tuple[T, ...]:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"an empty element in the list {text!r}" if text.strip() else "the list is empty")
        try:
            return tuple(cast(part) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list of {what}: {text!r}") from None

    return parse


def finite_float(text: str) -> float:
    """float(text), refusing nan and inf (ValueError)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not finite: {text}")
    return value


def nonempty_path(text: str) -> Path:
    """An argparse type for a path: refuses the empty string (which would silently mean the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def nonempty(text: str) -> str:
    """An argparse type for a name or path that may not be empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text


parse_float_list = parse_list(finite_float, "finite numbers")
"""'0,1,2.5' -> (0.0, 1.0, 2.5)."""
