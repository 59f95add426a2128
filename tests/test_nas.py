"""`effscale nas`: real searches write every output, every searcher runs, evolution mutates one choice,
the cost cap rejects before training, bad input is one line, a rerun resumes without new trials.

Searches run on the synthetic dataset at 16 px with a few hundred images; one runs on Fashion-MNIST
(Debian's `dataset-fashion-mnist`; skipped locally without it, a failure in CI).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from effscale.experiments.cli import main
from effscale.models.complexity import count
from effscale.models.errors import EffscaleError
from effscale.models.spec import NetworkSpec
from effscale.search.evolution import RegularizedEvolutionSampler
from effscale.search.optuna_runner import StudySetup
from effscale.search.samplers import SEARCHERS, make_sampler
from effscale.search.space import SearchSpace
from tests.conftest import assert_one_line_error

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY = ["--epochs", "1", "--batch-size", "50", "--threads", "1"]
SYNTHETIC = ["--dataset", "synthetic:400", "--resolution", "16", "--subset", "200", "--val-size", "100", *TINY]
SMALL_POPULATION = ["--population", "2", "--tournament", "1"]
OUTPUTS = ("results.csv", "best.json", "topk.csv", "report.md", "plots/reward_vs_trial.png",
           "plots/cost_vs_accuracy.png")


def nas(out: Path, *extra: str) -> list[str]:
    return ["nas", "--out", str(out), *SYNTHETIC, *SMALL_POPULATION, *extra]


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 4-trial search per searcher on synthetic data: searcher -> run directory."""
    runs = {}
    for searcher in SEARCHERS:
        out = tmp_path_factory.mktemp(searcher)
        assert main(nas(out, "--searcher", searcher, "--trials", "4")) == 0
        runs[searcher] = out
    return runs


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_every_searcher_trains_its_trials_and_writes_every_output(searches: dict[str, Path], searcher: str) -> None:
    out = searches[searcher]
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["trial"]) == [0, 1, 2, 3] and set(results["state"]) == {"COMPLETE"}
    assert results["reward"].between(0, 1).all() and (results["seconds"] > 0).all()
    assert all((out / name).is_file() for name in OUTPUTS)
    best = json.loads((out / "best.json").read_text())
    assert best["reward"] == pytest.approx(results["reward"].max())
    assert NetworkSpec.from_dict(best["spec"]).name == best["label"]


def test_nsga2_front_is_the_studys_best_trials(searches: dict[str, Path]) -> None:
    out = searches["nsga2"]
    study = StudySetup(out, "nas", make_sampler("nsga2", 0), ("maximize", "minimize")).open()
    topk = pd.read_csv(out / "topk.csv")
    best_labels = {t.user_attrs["spec"]["name"] for t in study.best_trials}
    assert set(topk.loc[topk["pareto"], "label"]) == best_labels


def test_rerun_resumes_without_new_trials(searches: dict[str, Path], cli) -> None:
    out = searches["tpe"]
    status, stdout, _ = cli(*nas(out, "--searcher", "tpe", "--trials", "4"))
    assert status == 0 and "resuming" in stdout
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert len(StudySetup(out, "nas", make_sampler("tpe", 0)).open().trials) == 4


def test_resuming_ignores_the_settings_a_searcher_does_not_use(searches: dict[str, Path], cli) -> None:
    status, stdout, _ = cli(*nas(searches["random"], "--searcher", "random", "--trials", "4", "--population", "1",
                                 "--tournament", "7"))
    assert status == 0 and "resuming" in stdout
    status, _, stderr = cli(*nas(searches["evolution"], "--searcher", "evolution", "--trials", "4", "--tournament", "2"))
    assert status == 2 and "(tournament: 1 then, 2 now)" in stderr


def test_evolution_children_differ_from_a_member_in_exactly_one_choice() -> None:
    space = SearchSpace("efficientnet-b0", resolution=32)
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda trial: -float(count(space.sample(trial)).macs), n_trials=16)
    trials = study.trials
    for child in trials[4:]:
        distances = [sum(child.params[k] != parent.params[k] for k in child.params) for parent in trials[:child.number]]
        assert min(distances) == 1, child.number
    assert all(min(sum(t.params[k] != o.params[k] for k in t.params) for o in trials[:t.number]) > 1
               for t in trials[1:4])  # the first population is random


def test_per_trial_seeding_is_reproducible_and_resumes_without_repeats() -> None:
    def params(study: optuna.Study) -> list[dict]:
        return [t.params for t in study.trials]

    space = SearchSpace("mobilenet-v2")
    first, second = (optuna.create_study(sampler=make_sampler("random", 7)) for _ in range(2))
    for study in (first, second):
        study.optimize(lambda trial: float(space.sample(trial).num_blocks), n_trials=3)
    assert params(first) == params(second)
    first = optuna.load_study(study_name=first.study_name, storage=first._storage,
                              sampler=make_sampler("random", 7))  # as a resumed run: a fresh sampler
    first.optimize(lambda trial: float(space.sample(trial).num_blocks), n_trials=1)
    assert params(first)[3] not in params(first)[:3]


def test_cost_cap_rejects_before_training(tmp_path: Path, cli) -> None:
    status, stdout, _ = cli(*nas(tmp_path, "--trials", "2", "--max-macs", "1M", "--searcher", "random"))
    results = pd.read_csv(tmp_path / "results.csv")
    assert status == 0 and len(results) == 2
    assert set(results["state"]) == {"FAIL"} and results["reason"].str.contains("over the cap").all()
    assert results["accuracy"].isna().all() and (results["seconds"] == 0).all() and (results["macs"] > 1e6).all()
    assert not (tmp_path / "best.json").exists() and "over the cap" in (tmp_path / "report.md").read_text()
    summary = stdout.strip().splitlines()[-1]
    assert summary == (f"no candidate finished training (2 trial(s) rejected or failed): the reasons are in "
                       f"{tmp_path / 'report.md'} and {tmp_path / 'results.csv'}")
    assert "Empty DataFrame" not in stdout and "best.json" not in stdout


@pytest.mark.parametrize("searcher, population", [("tpe", 2), ("random", 1)])
def test_tournament_only_constrains_evolution_and_population_not_random(searcher: str, population: int) -> None:
    space = SearchSpace("mobilenet-v2")
    study = optuna.create_study(sampler=make_sampler(searcher, 0, population=population, tournament=3))
    study.optimize(lambda trial: float(space.sample(trial).num_blocks), n_trials=3)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    with pytest.raises(EffscaleError, match=r"--tournament must lie in \[1, --population\] = \[1, 2\].*got 3"):
        make_sampler("evolution", 0, population=2, tournament=3)


def test_ray_backend_writes_the_same_outputs_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ray"
    assert main(nas(out, "--searcher", "tpe", "--trials", "3", "--backend", "ray")) == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["trial"]) == [0, 1, 2] and set(results["state"]) == {"COMPLETE"}
    assert results["reward"].between(0, 1).all() and (results["seconds"] > 0).all()
    assert all((out / name).is_file() for name in OUTPUTS)
    best = json.loads((out / "best.json").read_text())
    assert best["reward"] == pytest.approx(results["reward"].max())
    assert main(nas(out, "--searcher", "tpe", "--trials", "3", "--backend", "ray")) == 0  # resumes: no new trial
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), results)


@pytest.mark.parametrize("extra, fragments", [
    (["--target-macs", "0"], ["target T must be > 0"]),
    (["--target-macs", "1e300", "--w=-10"], ["target T must be > 0 and at most 1e+18, got 1e+300"]),
    (["--target-macs=-2M"], ["target T must be > 0"]),
    (["--w", "0.07"], ["w must lie in [-10, 0]", "got 0.07"]),
    (["--w=-1e308"], ["w must lie in [-10, 0]", "got -1e+308"]),
    (["--w", "nan"], ["w must lie in [-10, 0]", "got nan"]),
    (["--max-macs", "0"], ["--max-macs must be a finite number > 0, got 0"]),
    (["--max-macs=-1M"], ["--max-macs must be a finite number > 0, got -1e+06"]),
    (["--max-macs", "1e400"], ["--max-macs must be a finite number > 0, got inf"]),
    (["--widths", "0,1"], ["widths must lie in (0, 16], got 0.0"]),
    (["--se-ratios", "0,1.5"], ["SE ratios must be finite numbers in [0, 1], got 1.5"]),
    (["--population", "1"], ["--population must be >= 2 with --searcher tpe, got 1"]),
    (["--searcher", "evolution", "--tournament", "3"], ["--tournament must lie in [1, --population] = [1, 2]", "got 3"]),
    (["--searcher", "annealing"], ["invalid choice", "'annealing'"]),
    (["--ops", ""], ["the list is empty"]),
    (["--ops", "mb3,,mb6"], ["an empty element in the list 'mb3,,mb6'"]),
    (["--kernels", "3,x"], ["not a comma-separated list of integers"]),
    (["--widths", "nan"], ["not a comma-separated list of finite numbers"]),
    (["--address", "127.0.0.1:1"], ["--address needs --backend ray"]),
    (["--storage", "sqlite:////nonexistent/study.db"], ["cannot open study storage", "unable to open database file"]),
])
def test_bad_input_is_one_line(tmp_path: Path, cli, extra: list[str], fragments: list[str]) -> None:
    assert_one_line_error(*cli(*nas(tmp_path / "run", *extra))[::2], *fragments)
    assert not (tmp_path / "run").exists()


def test_fashion_mnist_search_best_spec_feeds_count_scale_and_grid(fashion_mnist: None, tmp_path: Path, cli) -> None:
    out = tmp_path / "nas"
    status, stdout, _ = cli("nas", "--out", str(out), "--trials", "3", "--subset", "1000", "--val-size", "500",
                            *TINY, *SMALL_POPULATION)
    assert status == 0 and "best:" in stdout
    assert all((out / name).is_file() for name in OUTPUTS)
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 3 and (results["accuracy"] > 0).all()
    assert "Top 3 by reward" in (out / "report.md").read_text()
    best = str(out / "best.json")
    status, stdout, _ = cli("count", best, "--json")
    assert status == 0 and json.loads(stdout)["macs"] == results["macs"][results["reward"].idxmax()]
    status, stdout, _ = cli("scale", best, "--official", "--phi", "0,1", "--csv")
    assert status == 0 and len(pd.read_csv(io.StringIO(stdout))) == 2
    status, stdout, err = cli("grid", "--baseline", best, "--out", str(tmp_path / "grid"), "--step", "0.5",
                              "--alpha-range", "2,2", "--beta-range", "1,1", "--gamma-range", "1,1",
                              "--macs-band", "1,3", "--dataset", "synthetic:400", "--subset", "200",
                              "--val-size", "100", *TINY)
    assert status == 0, err
    assert len(pd.read_csv(tmp_path / "grid" / "results.csv")) == 1
