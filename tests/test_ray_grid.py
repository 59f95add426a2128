"""The grid search on Ray Tune: same points as Optuna, resume without retraining, ASHA, bad addresses."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("ray.tune")

from effscale.experiments.cli import main  # noqa: E402
from effscale.models.spec import NetworkSpec  # noqa: E402
from effscale.search.grid import GridConfig, enumerate_points, screen  # noqa: E402
from effscale.search.grid_search import GridObjective, GridRun  # noqa: E402
from effscale.search.nas_search import NasObjective, NasRun  # noqa: E402
from effscale.search.objective import Diverged, Evaluation  # noqa: E402
from effscale.search.proxy import proxy_spec  # noqa: E402
from effscale.search.reward import RewardSpec  # noqa: E402
from effscale.search.samplers import make_sampler  # noqa: E402
from effscale.search.space import SearchSpace  # noqa: E402
from effscale.search.train_config import TrainConfig  # noqa: E402
from effscale.search.trainer import Report  # noqa: E402
from tests.conftest import assert_one_line_error  # noqa: E402

# alpha fixed at 1: 5 points satisfy the constraint; the MACs band keeps a few of them (see KEPT)
GRID = ["--dataset", "synthetic", "--step", "0.1", "--alpha-range", "1,1", "--macs-band", "1.2,2.8",
        "--epochs", "1", "--subset", "300", "--val-size", "100", "--batch-size", "32", "--jobs", "2"]


CONFIG = GridConfig(step=0.1, alpha=(1.0, 1.0), macs_band=(1.2, 2.8))
KEPT, SKIPPED = screen(enumerate_points(CONFIG), proxy_spec(), CONFIG)


def grid(out: Path, *extra: str) -> pd.DataFrame:
    """Run `effscale grid` in-process; its results table."""
    assert main(["grid", "--out", str(out), *GRID, *extra]) == 0
    return pd.read_csv(out / "results.csv")


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("ray") / "run"
    return out, grid(out, "--backend", "ray")


def test_ray_trains_the_same_points_as_optuna(ray_run, tmp_path: Path) -> None:
    _, on_ray = ray_run
    on_optuna = grid(tmp_path / "optuna")
    assert list(on_ray.columns) == list(on_optuna.columns)
    trained = []
    for results in (on_ray, on_optuna):
        assert (results["state"] == "SKIPPED").sum() == len(SKIPPED)
        complete = results[results["state"] == "COMPLETE"].set_index("label").sort_index()
        assert list(complete.index) == sorted(row["label"] for row in KEPT) and len(KEPT) >= 2
        assert complete["accuracy"].between(0, 1).all() and (complete["seconds"] > 0).all()
        trained.append(complete["accuracy"])
    pd.testing.assert_series_equal(*trained)  # one objective, one torch thread per trial on both: same numbers


def test_rerun_resumes_without_training_again(ray_run) -> None:
    out, first = ray_run
    trial_dirs = sorted(path.name for path in (out / "ray" / "grid").iterdir() if path.is_dir())
    again = grid(out, "--backend", "ray")
    pd.testing.assert_frame_equal(again, first)  # same training seconds: nothing was trained again
    assert sorted(path.name for path in (out / "ray" / "grid").iterdir() if path.is_dir()) == trial_dirs


def test_unreachable_address_is_one_line(cli, tmp_path: Path) -> None:
    start = time.perf_counter()
    status, _, err = cli("grid", "--out", str(tmp_path / "run"), *GRID, "--backend", "ray", "--address", "127.0.0.1:1")
    assert_one_line_error(status, err, "cannot reach the Ray cluster at 127.0.0.1:1")
    assert time.perf_counter() - start < 10


EPOCHS = 3


@dataclass(frozen=True)
class Scripted(GridObjective):
    """No training: point i reports accuracy 0.9 - 0.1 i every epoch; the last point diverges."""

    def evaluate_point(self, index: int, report: Report | None = None) -> dict[str, Any]:
        if index == len(self.points) - 1:
            raise Diverged("seed 0: non-finite training loss before step 3")
        accuracy = 0.9 - 0.1 * index
        for epoch in range(1, EPOCHS + 1):
            if report is not None:
                report(epoch, accuracy)
        run = {"seed": 0, "val_accuracy": accuracy, "val_loss": 1.0, "epochs": float(EPOCHS), "train_seconds": 0.1}
        return {"accuracy": accuracy, "runs": [run]}


def test_asha_stops_worse_points_and_failures_are_recorded(tmp_path: Path) -> None:
    config = GridConfig(step=0.1, macs_band=(1.2, 2.8))
    kept = screen(enumerate_points(config), proxy_spec(), config)[0][:3]
    objective = Scripted(tuple(kept), proxy_spec(), Evaluation("synthetic", TrainConfig(epochs=EPOCHS)), prune=True)
    results = GridRun(tmp_path, objective, (), backend="ray", jobs=1, asha=True).run().set_index("label")
    first, second, last = (point["label"] for point in kept)
    assert results.loc[first, "state"] == "COMPLETE"  # it sets the bar at the first rung (epoch 1)
    assert results.loc[second, "state"] == "PRUNED"  # worse at epoch 1: stopped there
    assert results.loc[second, "epochs"] == 1 and math.isclose(results.loc[second, "accuracy"], 0.8)
    assert results.loc[last, "state"] == "FAIL" and "non-finite" in results.loc[last, "reason"]


@dataclass(frozen=True)
class Crashing(NasObjective):
    """A candidate whose training crashes (a bug, not a rejection or a divergence)."""

    def score(self, spec: NetworkSpec, cost: float) -> tuple[dict[str, Any], float]:
        raise RuntimeError("out of memory in the candidate")


def test_ray_search_records_crashed_candidates(tmp_path: Path) -> None:
    space = SearchSpace("efficientnet-b0", resolution=16)
    objective = Crashing(space, Evaluation("synthetic", TrainConfig(epochs=1, threads=1)), RewardSpec(5e6))
    results = NasRun(tmp_path, objective, make_sampler("random", seed=0), trials=2, backend="ray").run()
    assert len(results) == 2 and set(results["state"]) == {"FAIL"}
    assert results["reason"].str.contains("out of memory in the candidate").all() and (results["macs"] > 0).all()
