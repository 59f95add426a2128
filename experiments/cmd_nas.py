"""`effscale nas`: MNAS-style search for a baseline with the reward ACC * (COST / T)^w."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from effscale.experiments.options import finite_float, parse_list, parse_number
from effscale.experiments.output import print_table
from effscale.experiments.training_options import add_training_arguments, identity_of, launch_config_from_args
from effscale.models.errors import EffscaleError
from effscale.models.zoo import get_model
from effscale.reports.nas_report import write_nas_report
from effscale.search.cost import COSTS, cost_of
from effscale.search.datasets import load_dataset
from effscale.search.nas_search import NasObjective, NasRun
from effscale.search.objective import Evaluation
from effscale.search.proxy import DEFAULT_PROXY
from effscale.search.reward import W_MIN, RewardSpec
from effscale.search.rundir import RunDir
from effscale.search.samplers import MULTI_OBJECTIVE, SEARCHERS, make_sampler, searcher_settings
from effscale.search.space import CHOICE_FIELDS, SearchSpace
from effscale.search.train_config import TrainConfig

BACKENDS = ("optuna", "ray")
REFERENCES = ("efficientnet-b0", "mobilenet-v2")
DEFAULTS = TrainConfig(epochs=1.0, subset=5000)

EXAMPLES = """\
The search space is MnasNet's (section 4.1): one searched block per stage of --reference, each choosing
its ConvOp, kernel, SE ratio, skip, output filters (x the reference's) and layers (+- the reference's).
Candidates are built at --resolution (32 px by default, like the proxy) for the dataset's channels and
classes, and COST is measured there: T defaults to the reference's own COST at that size
(efficientnet-b0 at 32 px, 1 channel, 10 classes: 8.3M MACs; mobilenet-v2: 6.0M), so sensible targets
are a few M MACs. Candidates over --max-macs are rejected before training. Rerunning the same command
on the same --out resumes; a larger --trials continues the search.

examples:
  effscale nas --out runs/nas --trials 30                              # TPE, soft reward, T = B0 @ 32 px
  effscale nas --out runs/nas-hard --target-macs 6M --hard --searcher evolution --jobs 2
  effscale nas --out runs/nas-pareto --searcher nsga2 --cost params --trials 60
  effscale nas --out runs/nas-mb --ops mb3,mb6 --kernels 3,5          # a narrower space
  effscale scale runs/nas/best.json --official --phi 0,1,2             # then: count, train, grid --baseline
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("nas", help="search a baseline (MnasNet space, reward ACC * (COST/T)^w)",
                                   description=__doc__, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="run directory (created, or resumed)")
    reward = parser.add_argument_group("reward")
    reward.add_argument("--target-macs", "--target", dest="target", type=_signed_number, metavar="T",
                        help="T in the unit of --cost, e.g. 6M (default: the reference's COST at --resolution)")
    reward.add_argument("--w", type=float, default=-0.07,
                        help=f"exponent w of the soft reward, in [{W_MIN:g}, 0] (default -0.07)")
    reward.add_argument("--hard", action="store_true", help="hard constraint: w = 0 at or under T, -1 above")
    reward.add_argument("--cost", choices=tuple(COSTS), default="macs",
                        help="COST: macs (paper FLOPS, default), params, acts, or latency (ms, measured here)")
    reward.add_argument("--max-macs", type=_signed_number, metavar="CAP",
                        help="reject candidates over this many MACs before training (> 0)")
    space = parser.add_argument_group("search space")
    space.add_argument("--reference", choices=REFERENCES, default="efficientnet-b0",
                       help="the stages the space is built around (default efficientnet-b0)")
    space.add_argument("--resolution", type=int, default=DEFAULT_PROXY["resolution"],
                       help=f"input resolution of the candidates (default {DEFAULT_PROXY['resolution']})")
    space.add_argument("--ops", type=parse_list(str, "names"), help="ConvOps among cn, ds, mb3, mb6 (default all), e.g. mb3,mb6")
    space.add_argument("--kernels", type=parse_list(int, "integers"), help="default 3,5")
    space.add_argument("--se-ratios", type=parse_list(finite_float, "finite numbers"), help="default 0,0.25")
    space.add_argument("--skips", type=parse_list(str, "names"), help="among identity, none (default both)")
    space.add_argument("--widths", type=parse_list(finite_float, "finite numbers"), help="output filters x the reference's (default 0.75,1,1.25)")
    space.add_argument("--layer-deltas", type=parse_list(int, "integers"), help="layers added to the reference's (default -1,0,1)")
    search = parser.add_argument_group("search")
    search.add_argument("--searcher", choices=SEARCHERS, default="tpe",
                        help="tpe (default), nsga2 (accuracy vs cost, Pareto front), random, evolution (regularized)")
    search.add_argument("--trials", type=int, default=30, help="candidates to try (default 30)")
    search.add_argument("--population", type=int, default=10,
                        help="TPE's random start-up trials; NSGA-II's and evolution's population (default 10)")
    search.add_argument("--tournament", type=int, default=3, help="evolution's tournament sample size (default 3)")
    add_training_arguments(parser, DEFAULTS)
    run_ = parser.add_argument_group("execution")
    run_.add_argument("--seeds", type=int, default=1, help="training seeds per candidate (default 1)")
    run_.add_argument("--backend", choices=BACKENDS, default="optuna", help="optuna (default) or ray (Ray Tune)")
    run_.add_argument("--address", help="Ray cluster address (with --backend ray; default: a local Ray)")
    run_.add_argument("--jobs", type=int, default=1, help="trials in parallel (each gets cores / jobs threads)")
    run_.add_argument("--storage", help="Optuna RDB URL (e.g. postgresql://...) instead of the run's journal file")
    run_.add_argument("--top", type=int, default=10, help="rows of the top-k table (default 10)")
    parser.set_defaults(run=run)


def _signed_number(text: str) -> float:
    """A number with an optional K/M/G suffix; the sign is kept so that the range check can name the problem."""
    negative = text.strip().startswith("-")
    return (-1 if negative else 1) * parse_number(text.strip().removeprefix("-"))


def space_from_args(args: argparse.Namespace) -> SearchSpace:
    """The search space around the reference at --resolution, for the dataset's channels and classes."""
    data = load_dataset(args.dataset, "train")
    reference = get_model(args.reference).with_(resolution=args.resolution, num_classes=data.num_classes,
                                                in_channels=int(data.images.shape[1]))
    choices = {field: getattr(args, field) for field in CHOICE_FIELDS.values() if getattr(args, field) is not None}
    return SearchSpace(reference, **choices)


def _check(args: argparse.Namespace) -> None:
    if args.backend != "ray" and args.address:
        raise EffscaleError("--address needs --backend ray")
    if args.backend == "ray" and args.storage:
        raise EffscaleError("--storage is an Optuna option: Ray Tune keeps its state under the run directory")
    if min(args.trials, args.seeds, args.jobs, args.top) < 1:
        raise EffscaleError("--trials, --seeds, --jobs and --top must be >= 1")
    if args.max_macs is not None and not (math.isfinite(args.max_macs) and args.max_macs > 0):
        raise EffscaleError(f"--max-macs must be a finite number > 0, got {args.max_macs:g}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    space = space_from_args(args)
    target = cost_of(space.base, args.cost) if args.target is None else args.target
    reward = RewardSpec(target, args.w, args.hard, args.cost)
    train = launch_config_from_args(args)
    evaluation = Evaluation(args.dataset, train, seeds=args.seeds, max_macs=args.max_macs)
    objective = NasObjective(space, evaluation, reward, multi_objective=args.searcher in MULTI_OBJECTIVE)
    sampler = make_sampler(args.searcher, args.seed, args.population, args.tournament)
    run_dir = RunDir(args.out)
    identity = {"reference": space.base.to_dict(), "space": space.choices(), "dataset": args.dataset,
                "train": identity_of(train), "seeds": args.seeds, "reward": reward.__dict__,
                "max_macs": args.max_macs, "searcher": args.searcher, "backend": args.backend,
                **searcher_settings(args.searcher, args.population, args.tournament)}
    with run_dir.claim("nas", identity, {"trials": args.trials, "jobs": args.jobs, "threads": args.threads}) as resuming:
        print(f"search space: {space.size():.3g} architectures around {args.reference} at {args.resolution} px; "
              f"reward ACC * ({args.cost} / {target:.4g})^{'hard' if args.hard else f'{args.w:g}'}; "
              f"{args.trials} trials of {args.searcher}" + ("; resuming" if resuming else ""))
        results = NasRun(run_dir.path, objective, sampler, args.trials, args.jobs, args.storage, args.backend,
                         args.address).run()
        settings = {"searcher": args.searcher, "reference": args.reference, "resolution": args.resolution,
                    "dataset": args.dataset, "cost": args.cost, "target": target, "w": args.w, "hard": args.hard,
                    "max_macs": args.max_macs, "trials": args.trials, "seeds": args.seeds}
        topk = write_nas_report(run_dir.path, results, settings, args.top)
    _print_summary(run_dir, results, topk)
    return 0


def _print_summary(run_dir: RunDir, results: pd.DataFrame, topk: pd.DataFrame) -> None:
    """The top-k table and the output paths; one line instead when no candidate finished training."""
    report = run_dir.path / "report.md"
    if topk.empty:
        print(f"no candidate finished training ({results['trial'].nunique()} trial(s) rejected or failed): "
              f"the reasons are in {report} and {run_dir.results}")
        return
    print_table(topk[["trial", "label", "reward_mean", "accuracy_mean", "accuracy_std", "n_seeds", "cost", "macs", "params"]])
    print(f"results: {run_dir.results}")
    if run_dir.best.is_file():
        print(f"best:    {run_dir.best}")
    print(f"report:  {report}")
