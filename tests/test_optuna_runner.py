"""Resuming Optuna studies: which trials a launcher fails and queues again, on the journal and on a shared RDB."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState

from effscale.search.optuna_runner import PointGridSampler, StudySetup, finished, recover_interrupted, started

GRID = {"point": [0, 1, 2]}


def test_journal_queues_a_trial_killed_before_its_objective_suggested_its_point(tmp_path: Path) -> None:
    setup = StudySetup(tmp_path, "grid", PointGridSampler(GRID, seed=0))
    study = setup.open()
    killed = study.ask()  # cut off before the objective's suggest: no params, only the sampler's grid id
    point = GRID["point"][study.trials[killed.number].system_attrs["grid_id"]]
    assert recover_interrupted(setup.open()) == 1
    retry = setup.open().ask()
    assert retry.suggest_categorical("point", GRID["point"]) == point
    assert retry.user_attrs == {"retry_of": killed.number}
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in started(trials)] == [retry.number]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_shared_storage_fails_only_trials_whose_heartbeat_stopped(tmp_path: Path) -> None:
    setup = StudySetup(tmp_path, "grid", PointGridSampler(GRID, seed=0),
                       storage_url=f"sqlite:///{tmp_path / 'study.db'}", grace_s=2)
    first, second = setup.open(), setup.open()  # two launchers sharing the database
    live, dead = first.ask(), first.ask()
    for trial in (live, dead):
        trial.suggest_categorical("point", GRID["point"])
    with get_heartbeat_thread(dead._trial_id, first._storage):
        pass  # one heartbeat, then the machine is gone
    time.sleep(3.2)  # beyond the grace period (the database clock counts whole seconds)
    with get_heartbeat_thread(live._trial_id, first._storage):  # `live` beats now
        assert recover_interrupted(second) == 1
    first.tell(live, 0.5)  # still accepted: nobody failed it
    trials = second.get_trials(deepcopy=False)
    assert {t.number: t.state for t in trials[:2]} == {live.number: TrialState.COMPLETE, dead.number: TrialState.FAIL}
    retry = trials[2]
    assert retry.state == TrialState.WAITING and retry.user_attrs == {"retry_of": dead.number}
    assert retry.system_attrs["fixed_params"] == dead.params
    assert [t.number for t in finished(trials)] == [live.number]
    optuna.delete_study(study_name="grid", storage=f"sqlite:///{tmp_path / 'study.db'}")
