"""Running a study on Optuna: storage in the run directory, worker processes, resume after a kill.

The sampler, pruner and storage are Optuna's. Workers hand out trials with `study.ask()` under a
file lock shared on one machine, so a GridSampler gives each point to exactly one worker; trials left
RUNNING by a killed run are marked failed ("interrupted") and queued again on the next launch.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from effscale.models.errors import EffscaleError
from effscale.search.objective import Diverged, Rejected
from effscale.search.rundir import RunDir

INTERRUPTED = "interrupted"
_PR_SET_PDEATHSIG = 1


class TrialObjective(Protocol):
    """Picklable: trains one trial's candidate and returns the value(s) to tell Optuna."""

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]: ...


@dataclass(frozen=True)
class StudySetup:
    """Everything a worker process needs to open the same study (picklable)."""

    run_dir: Path
    name: str
    sampler: optuna.samplers.BaseSampler
    directions: tuple[str, ...] = ("maximize",)
    pruner: optuna.pruners.BasePruner | None = None
    storage_url: str | None = None

    def open(self) -> optuna.Study:
        storage: Any = self.storage_url or JournalStorage(JournalFileBackend(str(RunDir(self.run_dir).journal)))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            return optuna.create_study(study_name=self.name, storage=storage, sampler=self.sampler,
                                       pruner=self.pruner, directions=list(self.directions), load_if_exists=True)
        except Exception as err:  # unreachable database, bad URL: one line for the user
            raise EffscaleError(f"cannot open study storage {self.storage_url or RunDir(self.run_dir).journal}: "
                                f"{str(err).splitlines()[0]}") from None


Done = Callable[[list[FrozenTrial]], bool]


class PointGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, except that the runner (not `study.stop`, which ask/tell cannot use) ends the study."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        """Nothing: `work` stops once every point has been handed out."""


def started(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials running or finished, leaving out attempts cut off by a kill (they are queued again)."""
    return [t for t in trials if (t.state == TrialState.RUNNING or t.state.is_finished())
            and t.user_attrs.get("reason") != INTERRUPTED]


def queued(trials: list[FrozenTrial]) -> bool:
    """Whether any trial waits to be handed out (e.g. a re-queued interrupted one)."""
    return any(t.state == TrialState.WAITING for t in trials)


def recover_interrupted(study: optuna.Study) -> int:
    """Fail the trials a killed run left RUNNING (reason "interrupted") and queue their parameters again."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, "reason", INTERRUPTED)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return len(stale)


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective: TrialObjective) -> None:
    try:
        values = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    except (Rejected, Diverged) as reason:
        trial.set_user_attr("reason", str(reason))
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, values)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the launcher dies (even by SIGKILL), so no orphan
    keeps training a trial that the next launch will queue again."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # elsewhere an orphan finishes its trial and then stops (see `work`)


def work(setup: StudySetup, objective: TrialObjective, done: Done) -> None:
    """One worker: ask (under the run's lock) and train until `done` says the study has all it needs."""
    _die_with_parent()
    launcher = os.getppid()
    try:
        study = setup.open()
        run_dir = RunDir(setup.run_dir)
        while True:
            with run_dir.mutex("ask"):
                if os.getppid() != launcher or done(study.get_trials(deepcopy=False)):
                    return
                trial = study.ask()
            _run_trial(study, trial, objective)
    except EffscaleError as err:  # bad input the launcher could not see: one line, exit status 2
        print(f"\n{setup.name} worker: error: {err}", file=sys.stderr)
        sys.exit(2)


def optimize(setup: StudySetup, objective: TrialObjective, done: Done, total: int, jobs: int = 1) -> optuna.Study:
    """Run `jobs` worker processes on the study until `done`, with a progress bar over finished trials."""
    study = setup.open()
    recovered = recover_interrupted(study)
    if recovered:
        print(f"resuming: {recovered} interrupted trial(s) queued again")
    context = multiprocessing.get_context("spawn")  # no fork after torch has started its thread pools
    workers = [context.Process(target=work, args=(setup, objective, done), daemon=True) for _ in range(jobs)]
    for worker in workers:
        worker.start()
    with tqdm(total=total, desc=setup.name, unit="trial") as bar:
        while any(worker.is_alive() for worker in workers):
            bar.n = _finished(study)
            bar.refresh()
            time.sleep(1.0)
        bar.n = _finished(study)
        bar.refresh()
    failed = [worker.exitcode for worker in workers if worker.exitcode]
    if failed:
        raise EffscaleError(f"{len(failed)} worker process(es) stopped with an error (exit {failed[0]}); "
                            "rerun the same command to resume")
    return study


def _finished(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.user_attrs.get("reason") != INTERRUPTED)
