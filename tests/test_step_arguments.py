"""The shared command line of the proxy-step benchmarks: its flags, and one-line errors for bad counts."""

from __future__ import annotations

import sys

import pytest

from effscale.experiments.benchmarks.parallel_ceiling import step_arguments


def parse(monkeypatch: pytest.MonkeyPatch, *argv: str):
    monkeypatch.setattr(sys, "argv", ["benchmark", *argv])
    return step_arguments(None, "--steps", 5, "steps", ("--compile", {"action": "store_true"}))


def test_defaults_and_extra_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse(monkeypatch, "--compile", "--resolution", "32")
    assert (args.resolution, args.batch_size, args.steps, args.compile) == (32, 128, 5, True)


@pytest.mark.parametrize("argv", [("--batch-size", "1"), ("--steps", "0")])
def test_a_batch_below_two_or_no_steps_is_bad_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                      argv: tuple[str, str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(monkeypatch, *argv)
    assert exit_.value.code == 2
    assert "--steps must be at least 1 and --batch-size at least 2" in capsys.readouterr().err
