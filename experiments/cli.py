"""The `effscale` command line: one subcommand per module, bad input as one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from effscale.experiments import cmd_count, cmd_family, cmd_figure, cmd_grid, cmd_nas, cmd_report, cmd_scale, cmd_train
from effscale.models.errors import EffscaleError, SettingError

SUBCOMMANDS = (cmd_count, cmd_scale, cmd_train, cmd_grid, cmd_family, cmd_nas, cmd_figure, cmd_report)

DESCRIPTION = """\
Compound model scaling and architecture search, after EfficientNet (Tan & Le, 2019).
MACs are multiply-adds of conv and linear layers: the paper's "FLOPS".

examples:
  effscale count efficientnet-b0
  effscale count efficientnet-b0 --width 1.4 --depth 1.8 --resolution 380 --json
  effscale scale efficientnet-b0 --official --phi 0,1,2,3,4,5,6,7
  effscale train --epochs 5
  effscale grid --out runs/grid && effscale family train runs/grid --phi 1,2
  effscale nas --out runs/nas --target-macs 6M --trials 20
  effscale figure 3 --budget cpu --out runs/fig3 && effscale report runs/fig3
"""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="effscale", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except EffscaleError as err:
        print(f"effscale {args.command}: error: {in_option_terms(err, args)}", file=sys.stderr)
        return 2


def in_option_terms(err: EffscaleError, args: argparse.Namespace) -> str:
    """The error's message, naming the command-line option (--val-size) rather than the setting (val_size) when
    the command has that option."""
    if isinstance(err, SettingError) and hasattr(args, err.setting):
        return err.naming("--" + err.setting.replace("_", "-"))
    return str(err)


def entry_point() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
