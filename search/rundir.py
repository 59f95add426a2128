"""A run directory holds everything about one run: its config, study storage, results, best point, plots, report.

Rerunning the same command on the same directory resumes; a directory made by a different command
is refused with one line. A lock file keeps two launchers off the same directory.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from effscale.models.errors import EffscaleError


class RunDir:
    """Paths and the identity check of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / "config.json")
    journal = property(lambda self: self.path / "study.journal")
    results = property(lambda self: self.path / "results.csv")
    best = property(lambda self: self.path / "best.json")
    plots = property(lambda self: self.path / "plots")

    @contextmanager
    def claim(self, kind: str, identity: dict[str, Any], extra: dict[str, Any] | None = None) -> Iterator[bool]:
        """Create the directory, hold its launcher lock (a second launcher is refused, not kept waiting) and
        check that it belongs to the same command; yields True when resuming.

        `identity` holds what defines the run (baseline, dataset, grid, budget); `extra` is recorded
        but may change between reruns (jobs, threads).
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise EffscaleError(f"cannot create run directory {self.path}: {err.strerror}") from None
        with self._lock("launcher"):
            yield self._check_identity({"kind": kind, "identity": json.loads(json.dumps(identity))}, extra or {})

    def _check_identity(self, record: dict[str, Any], extra: dict[str, Any]) -> bool:
        """True when config.json holds `record`; raise when it holds another; write it when there is none."""
        if not self.config.exists():
            self.write_json(self.config, {**record, "extra": extra})
            return False
        try:
            previous = json.loads(self.config.read_text())
        except json.JSONDecodeError:
            raise EffscaleError(f"{self.config} is corrupt: remove it or use another --out") from None
        if {key: previous.get(key) for key in record} != record:
            changed = _differences(previous.get("identity", {}), record["identity"])
            if previous.get("kind") != record["kind"]:
                changed = [f"made by 'effscale {previous.get('kind')}'"]
            raise EffscaleError(f"run directory {self.path} was made by a different command ({'; '.join(changed)}): "
                                "use another --out or the original options")
        return True

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive lock file in the directory; a second holder is refused, not kept waiting."""
        handle = open(self.path / f".{name}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EffscaleError(f"run directory {self.path} is in use by another effscale process") from None
        try:
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    @contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """A blocking lock shared by the worker processes of one run (e.g. around handing out grid points)."""
        with open(self.path / f".{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_json(self, path: Path, data: Any) -> None:
        """Write JSON atomically (a killed run never leaves half a file)."""
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(path)


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """'train.epochs: 0.1 then, 0.2 now' for each setting that differs, nested settings by their dotted name."""
    changed = []
    for key in sorted(set(old) | set(new)):
        before, now = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(now, dict):
            changed += _differences(before, now, f"{prefix}{key}.")
        elif before != now:
            changed.append(f"{prefix}{key}: {_brief(before)} then, {_brief(now)} now")
    return changed


def _brief(value: Any) -> str:
    """repr(value), or for a long list its length."""
    text = repr(value)
    return f"a list of {len(value)}" if isinstance(value, list) and len(text) > 60 else text
