"""Step 1: the constrained grid, training only kept points, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from effscale.models.errors import EffscaleError
from effscale.scaling.rules import apply, compound
from effscale.search.grid import GridConfig, constraint_values, enumerate_points, screen
from effscale.search.optuna_runner import StudySetup, optimize
from effscale.search.proxy import proxy_spec
from effscale.search.rundir import RunDir
from tests.conftest import assert_one_line_error

TINY = ["--dataset", "synthetic:600", "--epochs", "1", "--subset", "400", "--val-size", "150", "--batch-size", "32"]


def test_only_constrained_points_are_enumerated() -> None:
    points = enumerate_points(GridConfig(step=0.1))
    values = constraint_values(points)
    assert len(points) == 20
    assert (abs(values - 2) <= 0.1 + 1e-9).all()
    assert min(p.alpha for p in points) >= 1 and min(p.beta for p in points) >= 1 and min(p.gamma for p in points) >= 1
    assert (1.2, 1.1, 1.2) in {(p.alpha, p.beta, p.gamma) for p in points}


def test_solve_gamma_mode_hits_the_constraint() -> None:
    points = enumerate_points(GridConfig(step=0.1, solve_gamma=True))
    assert len(points) > 5
    assert abs(constraint_values(points) - 2).max() < 1e-3


def test_screen_reports_points_outside_the_band() -> None:
    kept, skipped = screen(enumerate_points(GridConfig(step=0.1)), proxy_spec(), GridConfig(step=0.1))
    outside = [row for row in skipped if row["reason"] == "MACs ratio outside the band 1.5..2.5"]
    assert kept and outside
    assert all(1.5 <= row["macs_ratio"] <= 2.5 for row in kept)
    assert all(not 1.5 <= row["macs_ratio"] <= 2.5 for row in outside)


def test_screen_trains_each_network_once_choosing_the_point_closest_to_the_constraint() -> None:
    config = GridConfig()
    points = enumerate_points(config)
    kept, skipped = screen(points, proxy_spec(), config)
    assert (len(points), len(kept), len(skipped)) == (108, 11, 97)  # rounding at 32 px: few distinct networks
    spec = {row["label"]: apply(proxy_spec(), compound(row["alpha"], row["beta"], row["gamma"], 1.0)) for row in kept + skipped}
    assert len({spec[row["label"]] for row in kept}) == len(kept)
    constraint = {row["label"]: row["alpha"] * row["beta"] ** 2 * row["gamma"] ** 2 for row in kept + skipped}
    same = [row for row in skipped if row["reason"].startswith("the same network as ")]
    assert len(same) == 12
    for row in same:
        chosen = row["reason"].removeprefix("the same network as ")
        assert spec[row["label"]] == spec[chosen]
        assert abs(constraint[chosen] - 2) <= abs(constraint[row["label"]] - 2)


@pytest.mark.parametrize("config, message", [
    (dict(step=0.1, tolerance=0.0, alpha=(1.0, 1.05), beta=(1.0, 1.05), gamma=(1.0, 1.05)), "no grid point"),
    (dict(alpha=(0.8, 2.0)), "alpha range must start at >= 1"),
])
def test_bad_grid_configs(config: dict, message: str) -> None:
    with pytest.raises(EffscaleError, match=message):
        enumerate_points(GridConfig(**config))


def test_grid_trains_only_kept_points_with_real_accuracy(cli, tmp_path: Path, fashion_mnist: None) -> None:
    out = tmp_path / "run"
    status, stdout, _ = cli("grid", "--out", str(out), "--step", "0.1", "--alpha-range", "1,1.2",
                            "--dataset", "fashion-mnist", "--epochs", "2", "--subset", "3000", "--val-size", "1000",
                            "--batch-size", "64", "--jobs", "2")
    assert status == 0
    results = pd.read_csv(out / "results.csv")
    trained = results[results["state"] == "COMPLETE"]
    config = GridConfig(step=0.1, alpha=(1.0, 1.2))
    kept, skipped = screen(enumerate_points(config), proxy_spec(), config)
    assert sorted(trained["label"]) == sorted(row["label"] for row in kept)
    assert sorted(results.loc[results["state"] == "SKIPPED", "label"]) == sorted(row["label"] for row in skipped)
    assert (trained["accuracy"] > 0.3).all(), trained["accuracy"]  # 10 classes: chance is 0.1
    best = json.loads((out / "best.json").read_text())
    assert best["accuracy_mean"] == pytest.approx(trained["accuracy"].max())
    assert (out / "report.md").is_file() and (out / "plots" / "accuracy_vs_macs.png").is_file()
    status, stdout, _ = cli("scale", "proxy", "--from", str(out), "--phi", "0,1", "--json")
    assert status == 0 and json.loads(stdout)[1]["width"] == pytest.approx(best["beta"])


def _finished(journal: Path) -> list[optuna.trial.FrozenTrial]:
    if not journal.exists():
        return []
    study = optuna.load_study(study_name="grid", storage=JournalStorage(JournalFileBackend(str(journal))))
    return [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]


def test_sigkill_then_rerun_trains_every_point_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "effscale.experiments.cli", "grid", "--out", str(out), "--step", "0.1",
               "--macs-band", "1,3", *TINY]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_finished(out / "study.journal")) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {t.params["point"]: t.value for t in _finished(out / "study.journal")}
    assert len(before) >= 2
    assert not (out / "results.csv").exists()  # killed before the end
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    results = pd.read_csv(out / "results.csv")
    complete = results[results["state"] == "COMPLETE"]
    config = GridConfig(step=0.1, macs_band=(1.0, 3.0))
    kept = len(screen(enumerate_points(config), proxy_spec(), config)[0])
    assert len(complete) == kept and complete["label"].is_unique
    after = {t.params["point"]: t.value for t in _finished(out / "study.journal")}
    assert len(after) == kept
    assert all(after[point] == value for point, value in before.items())  # nothing finished was redone


def test_run_dir_of_another_command_is_refused(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"kind": "nas", "identity": {}}))
    status, _, err = cli("grid", "--out", str(out), "--step", "0.1", *TINY)
    assert_one_line_error(status, err, "made by a different command")


@pytest.mark.parametrize("argv, message", [
    (["--step", "0.1", "--tolerance", "0", "--alpha-range", "1,1.05", "--beta-range", "1,1.05", "--gamma-range", "1,1.05"],
     "no grid point satisfies"),
    (["--alpha-range", "0.5,2"], "alpha range must start at >= 1"),
    (["--backend", "spark"], "invalid choice: 'spark'"),
    (["--address", "127.0.0.1:1"], "need --backend ray"),
])
def test_grid_bad_input(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    status, _, err = cli("grid", "--out", str(tmp_path / "run"), *argv, *TINY)
    assert_one_line_error(status, err, message)


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "/nonexistent"], "unknown dataset '/nonexistent'"),
    (["--subset", "100000"], "--subset must be between 1 and 450"),
    (["--storage", "nosuchdb://x"], "cannot open study storage nosuchdb://x: Can't load plugin"),
    (["--storage", "sqlite:////nonexistent/study.db"], "unable to open database file"),
])
def test_bad_data_or_storage_is_refused_before_the_run_dir_and_workers(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    status, out, err = cli("grid", "--out", str(tmp_path / "run"), "--jobs", "2", *TINY, *argv)
    assert_one_line_error(status, err, message)
    assert out == "" and not (tmp_path / "run").exists()


class BadInputObjective:
    """Fails as bad input only a worker can see would (picklable, for spawned workers)."""

    def __call__(self, trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise EffscaleError("the data went away")


def after_one_trial(trials: list) -> bool:
    return len(trials) >= 1


def test_worker_bad_input_stops_it_with_status_2(tmp_path: Path) -> None:
    setup = StudySetup(tmp_path, "probe", optuna.samplers.RandomSampler(seed=0))
    with pytest.raises(EffscaleError, match=r"1 worker process\(es\) stopped with an error \(exit 2\)"):
        optimize(setup, BadInputObjective(), done=after_one_trial, total=1)


def test_a_second_launcher_on_the_same_directory_is_refused(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunDir(out).claim("grid", {"held": "by another launcher"}):
        status, _, err = cli("grid", "--out", str(out), "--step", "0.1", *TINY)
    assert_one_line_error(status, err, "is in use by another effscale process")
    assert json.loads((out / "config.json").read_text())["identity"] == {"held": "by another launcher"}


def test_family_train_compares_the_compound_member_with_single_dimensions(cli, tmp_path: Path) -> None:
    grid_dir, out = tmp_path / "grid", tmp_path / "family"
    assert cli("grid", "--out", str(grid_dir), "--step", "0.1", "--alpha-range", "1,1.2", *TINY)[0] == 0
    status, stdout, _ = cli("family", "train", str(grid_dir), "--phi", "1", "--out", str(out), *TINY)
    assert status == 0, stdout
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["series"]) == ["baseline", "compound", "depth", "resolution", "width"]
    assert (results["state"] == "COMPLETE").all() and (results["accuracy"] > 0.1).all()
    compound_macs = results.loc[results["series"] == "compound", "macs"].item()
    rivals = results[results["series"].isin(["depth", "width", "resolution"])]
    assert (abs(rivals["macs"] / compound_macs - 1) < 0.25).all()  # matched MACs, up to rounding
    assert (out / "report.md").is_file() and not (grid_dir / "family").exists()
    status, _, err = cli("family", "train", str(grid_dir), "--phi", "2", "--out", str(out), *TINY)
    assert_one_line_error(status, err, "made by a different command")
    assert_one_line_error(*cli("family", "train", str(grid_dir), "--phi=-1")[::2], "--phi values must be > 0")


def test_a_changed_setting_is_named_by_its_dotted_path(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    with run_dir.claim("grid", {"train": {"epochs": 0.1, "lr": 0.004}, "points": [f"p{i}" for i in range(20)]}):
        pass
    with pytest.raises(EffscaleError) as info, run_dir.claim("grid", {"train": {"epochs": 0.2, "lr": 0.004},
                                                                       "points": [f"p{i}" for i in range(21)]}):
        pass
    assert str(info.value).endswith("(points: a list of 20 then, a list of 21 now; train.epochs: 0.1 then, 0.2 now): "
                                    "use another --out or the original options")
