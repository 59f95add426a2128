"""The searchers of `effscale nas`: Optuna samplers by name, each seeded per trial.

Workers are separate processes that each unpickle the same sampler, and a resumed run starts a new
one: a sampler seeded once would hand every worker, and every resumed run, the same random stream.
`TrialSeeded` builds the named sampler afresh for each trial with a seed derived from (seed, trial
number), so a run is reproducible and no two trials share a stream. The samplers keep their state
in the study (NSGA-II's generations) or recompute it from the trials (TPE, evolution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from effscale.models.errors import EffscaleError
from effscale.search.evolution import RegularizedEvolutionSampler

SEARCHERS = ("tpe", "nsga2", "random", "evolution")
MULTI_OBJECTIVE = ("nsga2",)


class TrialSeeded(BaseSampler):
    """Delegates each trial to `factory(seed=...)` seeded by (seed, trial number); picklable."""

    def __init__(self, factory: Callable[..., BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = seed
        self._current: tuple[int, BaseSampler] | None = None

    def for_trial(self, trial: FrozenTrial) -> BaseSampler:
        """The sampler of this trial (made on first use)."""
        if self._current is None or self._current[0] != trial.number:
            seed = int(np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0])
            self._current = (trial.number, self._factory(seed=seed))
        return self._current[1]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.for_trial(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.for_trial(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.for_trial(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.for_trial(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.for_trial(trial).after_trial(study, trial, state, values)


def make_sampler(name: str, seed: int, population: int = 10, tournament: int = 3) -> BaseSampler:
    """The named searcher. `population`: TPE's random start-up trials, NSGA-II's and evolution's
    population size; `tournament`: evolution's sample size S (ignored by the other searchers)."""
    factories: dict[str, Callable[..., BaseSampler]] = {
        "tpe": partial(TPESampler, n_startup_trials=population),
        "nsga2": partial(NSGAIISampler, population_size=population),
        "random": RandomSampler,
        "evolution": partial(RegularizedEvolutionSampler, population_size=population, sample_size=tournament),
    }
    if name not in factories:
        raise EffscaleError(f"unknown searcher {name!r}; known: {', '.join(SEARCHERS)}")
    if name != "random" and population < 2:
        raise EffscaleError(f"--population must be >= 2 with --searcher {name}, got {population}")
    if name == "evolution" and not 1 <= tournament <= population:
        raise EffscaleError(f"--tournament must lie in [1, --population] = [1, {population}] with --searcher evolution, "
                            f"got {tournament}")
    return TrialSeeded(factories[name], seed)


def searcher_settings(name: str, population: int, tournament: int) -> dict[str, int]:
    """Of `population` and `tournament`, those the named searcher uses (what a run's identity records)."""
    if name == "random":
        return {}
    if name == "evolution":
        return {"population": population, "tournament": tournament}
    return {"population": population}
