"""Running a study on Optuna: storage in the run directory, worker processes, resume after a kill.

The sampler, pruner and storage are Optuna's. Workers hand out trials with `study.ask()` under a
file lock shared on one machine, so a GridSampler gives each point to exactly one worker. A trial cut off
by a kill is failed and queued again (its retry names it in the user attribute `retry_of`): with the run
directory's journal, which one launcher holds at a time, every trial left RUNNING at launch; with an RDB
`--storage`, which launchers on several machines may share, only trials whose heartbeat (Optuna's, every
`HEARTBEAT_S`) stopped more than `GRACE_S` ago, so that no launcher fails another one's live trials.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, RDBStorage, fail_stale_trials
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled  # what Study.optimize uses
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from effscale.models.errors import EffscaleError
from effscale.search.objective import TRIAL_FAILURES
from effscale.search.rundir import RunDir

HEARTBEAT_S = 30
GRACE_S = 120
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
    grace_s: int = GRACE_S

    def open(self) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with _reported_as_one_line(self.storage_url or RunDir(self.run_dir).journal):
            storage: Any = (open_rdb_storage(self.storage_url, self.grace_s) if self.storage_url
                            else JournalStorage(JournalFileBackend(str(RunDir(self.run_dir).journal))))
            return optuna.create_study(study_name=self.name, storage=storage, sampler=self.sampler,
                                       pruner=self.pruner, directions=list(self.directions), load_if_exists=True)


def open_rdb_storage(url: str, grace_s: int = GRACE_S) -> RDBStorage:
    """The `--storage` database with trial heartbeats; one line when it cannot be opened (launchers call this
    before they write anything)."""
    with _reported_as_one_line(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat arguments
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=grace_s,
                          heartbeat_stale_trial_callback=_queue_again)


@contextmanager
def _reported_as_one_line(storage: object) -> Iterator[None]:
    """An unreachable database or a bad URL as one line for the user."""
    try:
        yield
    except EffscaleError:
        raise
    except Exception as err:
        raise EffscaleError(f"cannot open study storage {storage}: {str(err).splitlines()[0]}") from None


Done = Callable[[list[FrozenTrial]], bool]


class PointGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, except that the runner (not `study.stop`, which ask/tell cannot use) ends the study."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        """Nothing: `work` stops once every point has been handed out."""


def interrupted(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the trials cut off by a kill: each has a retry that names it."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def started(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Trials running or finished, leaving out attempts cut off by a kill (they are queued again)."""
    cut_off = interrupted(trials)
    return [t for t in trials if (t.state == TrialState.RUNNING or t.state.is_finished()) and t.number not in cut_off]


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Finished trials, leaving out attempts cut off by a kill."""
    return [t for t in started(trials) if t.state.is_finished()]


def queued(trials: list[FrozenTrial]) -> bool:
    """Whether any trial waits to be handed out (e.g. a re-queued interrupted one)."""
    return any(t.state == TrialState.WAITING for t in trials)


def recover_interrupted(study: optuna.Study) -> int:
    """Fail the trials a kill cut off and queue their parameters again; how many. With a heartbeat (RDB
    storage) those whose heartbeat stopped, else (the run's own journal) every trial left RUNNING."""
    if is_heartbeat_enabled(study._storage):
        return recover_stale(study)
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        _queue_again(study, trial)
    return len(stale)


def recover_stale(study: optuna.Study) -> int:
    """Fail the trials whose heartbeat stopped and queue their parameters again; how many."""
    before = len(interrupted(study.get_trials(deepcopy=False)))
    _fail_stale(study)
    return len(interrupted(study.get_trials(deepcopy=False))) - before


def _fail_stale(study: optuna.Study) -> None:
    """Optuna's `fail_stale_trials` (which calls `_queue_again` on each); nothing without a heartbeat."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        fail_stale_trials(study)


def _queue_again(study: optuna.Study, trial: FrozenTrial) -> None:
    study.enqueue_trial(_params_of(trial), user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def _params_of(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters; for one cut off before its objective suggested them, the grid point that a
    GridSampler gave it (recorded as its system attributes `search_space` and `grid_id`)."""
    if trial.params or "grid_id" not in trial.system_attrs:
        return trial.params
    space = trial.system_attrs["search_space"]
    values = next(itertools.islice(itertools.product(*space.values()), trial.system_attrs["grid_id"], None))
    return dict(zip(space, values))


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective: TrialObjective) -> None:
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):  # a no-op without heartbeat
            values = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    except TRIAL_FAILURES as reason:
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
                _fail_stale(study)  # another machine's launcher died: queue its trials again
                if os.getppid() != launcher or done(study.get_trials(deepcopy=False)):
                    return
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
                    trial = study.ask()  # ask/tell under the lock instead: `_run_trial` keeps the heartbeat
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
    elsewhere = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if elsewhere:  # only with a shared storage: another launcher's, or cut off less than `grace_s` ago
        print(f"{elsewhere} trial(s) still running under another launcher (or cut off less than {setup.grace_s} s "
              "ago): rerun the same command to collect them")
    return study


def _finished(study: optuna.Study) -> int:
    return len(finished(study.get_trials(deepcopy=False)))
