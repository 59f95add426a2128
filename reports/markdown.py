"""Markdown report of a run directory, composed by the caller from (heading, text) sections."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def image_link(path: str | Path, run_dir: str | Path, alt: str | None = None) -> str:
    """Markdown image link to `path`, relative to `run_dir` (forward slashes)."""
    relative = Path(os.path.relpath(Path(path), Path(run_dir))).as_posix()
    return f"![{alt if alt is not None else Path(path).stem}]({relative})"


def write_report(run_dir: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write `run_dir/report.md`: a title, then one second-level heading and its Markdown text per section."""
    parts = [f"# {title}\n"]
    parts += [f"## {heading}\n\n{text.strip()}\n" for heading, text in sections]
    path = Path(run_dir) / "report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
