"""Benchmark: guided searchers against random sampling at an equal number of trials, over several seeds.

    python -m effscale.experiments.benchmarks.nas_searchers [--searchers tpe,random] [--seeds 3]
        [--trials 10] [--population 4] [--dataset fashion-mnist] [--subset 1500] [--epochs 1]

Every search is a real `effscale nas` run (the same objective, samplers and runner, in a temporary
run directory): the MnasNet space around EfficientNet-B0 at 32 px, soft reward ACC * (MACs / T)^-0.07
with T = B0's own MACs at 32 px (8.3M), accuracy from a cheap but real proxy training: by default
Fashion-MNIST, 1,500 training images, one epoch at batch 64 (23 steps), measured on 500 held-out
training images (the test split is never used). Search seed s seeds both the sampler and the training.
Prints, per searcher, the mean reward of its top 5 candidates for each seed, their mean and spread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from effscale.models.zoo import get_model
from effscale.search.cost import cost_of
from effscale.search.datasets import load_dataset
from effscale.search.nas_search import NasObjective, NasRun
from effscale.search.objective import Evaluation
from effscale.search.reward import RewardSpec
from effscale.search.samplers import SEARCHERS, make_sampler
from effscale.search.space import SearchSpace
from effscale.search.train_config import TrainConfig

TOP = 5


def top_reward(searcher: str, seed: int, args: argparse.Namespace, space: SearchSpace, reward: RewardSpec) -> float:
    """Mean reward of the top `TOP` candidates of one search."""
    train = TrainConfig(epochs=args.epochs, subset=args.subset, val_size=args.val_size, batch_size=64,
                        seed=seed, threads=1)
    objective = NasObjective(space, Evaluation(args.dataset, train), reward)
    sampler = make_sampler(searcher, seed, args.population, args.tournament)
    with tempfile.TemporaryDirectory(prefix=f"nas-{searcher}-{seed}-") as run_dir:
        results = NasRun(Path(run_dir), objective, sampler, args.trials, jobs=args.jobs).run()
    rewards = results[results["state"] == "COMPLETE"].groupby("trial")["reward"].mean()
    return float(rewards.nlargest(TOP).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searchers", default="tpe,random", help="comma-separated, among " + ", ".join(SEARCHERS))
    parser.add_argument("--seeds", type=int, default=3, help="searches per searcher (seeds 0..N-1)")
    parser.add_argument("--trials", type=int, default=10, help="trials per search (equal for every searcher)")
    parser.add_argument("--population", type=int, default=4, help="TPE start-up trials / evolution population")
    parser.add_argument("--tournament", type=int, default=2, help="evolution's tournament size")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=1500, help="training images")
    parser.add_argument("--val-size", type=int, default=500, help="held-out images")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2, help="1-thread trials in parallel")
    args = parser.parse_args()
    data = load_dataset(args.dataset, "train")
    reference = get_model("efficientnet-b0").with_(resolution=32, num_classes=data.num_classes,
                                                   in_channels=int(data.images.shape[1]))
    space = SearchSpace(reference)
    reward = RewardSpec(cost_of(reference, "macs"))
    print(f"proxy: {args.dataset}, {args.subset} training images, {args.epochs:g} epoch(s) at batch 64, "
          f"{args.val_size} held out; space around efficientnet-b0 at 32 px; T = {reward.target / 1e6:.2f}M MACs, "
          f"w = {reward.w}; {args.trials} trials per search, top {TOP} averaged")
    print(f"{'searcher':<10} " + " ".join(f"{'seed ' + str(s):>8}" for s in range(args.seeds))
          + f" {'mean':>8} {'std':>8} {'minutes':>8}")
    for searcher in args.searchers.split(","):
        start = time.perf_counter()
        tops = [top_reward(searcher, seed, args, space, reward) for seed in range(args.seeds)]
        spread = statistics.stdev(tops) if len(tops) > 1 else 0.0
        print(f"{searcher:<10} " + " ".join(f"{t:>8.4f}" for t in tops)
              + f" {statistics.fmean(tops):>8.4f} {spread:>8.4f} {(time.perf_counter() - start) / 60:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
