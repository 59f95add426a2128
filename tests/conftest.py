"""Shared test helpers."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from effscale.experiments.cli import main

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "reference_counts.csv"


def reference_rows() -> list[dict[str, str]]:
    """Rows of the shared reference counts (the repo's sibling folder shared/)."""
    if not REFERENCE.is_file():
        pytest.fail(f"the reference counts are missing: {REFERENCE} (shared/ must sit beside the checkout)")
    with REFERENCE.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process: returns (exit status, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exit_:  # argparse usage errors
            status = int(exit_.code or 0)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    """Exit status 2, exactly one line on stderr containing every fragment, no traceback."""
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    """The Fashion-MNIST folder (Debian's package, or EFFSCALE_FASHION_MNIST_DIR): skipped locally when
    missing, a failure in CI (no silent skip there)."""
    from effscale.search.datasets import FASHION_MNIST_DEFAULT_DIR, FASHION_MNIST_ENV

    folder = Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_DIR)
    if not (folder / "train-images-idx3-ubyte.gz").exists() and not (folder / "train-images-idx3-ubyte").exists():
        message = f"Fashion-MNIST is not in {folder}: apt-get install -y dataset-fashion-mnist"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder
