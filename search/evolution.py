"""Regularized evolution (Real et al., 2019, "aging evolution") as an Optuna sampler.

The population is the study's last P COMPLETE trials in order of completion (older ones have aged
out); until P trials have completed, candidates are drawn at random. Each new candidate takes S
members of the population at random, keeps the best of them (the tournament) and copies its
parameters with exactly one categorical choice changed to another of its options. Failed trials
(e.g. rejected over a cost cap) never join the population. Single objective only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import intersection_search_space
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


class RegularizedEvolutionSampler(BaseSampler):
    """Population `population_size` (P), tournament `sample_size` (S), mutation of one choice."""

    def __init__(self, population_size: int = 10, sample_size: int = 3, seed: int | None = None) -> None:
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size}, {population_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)

    def population(self, study: optuna.Study) -> list[FrozenTrial]:
        """The last P COMPLETE trials, oldest first."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return sorted(complete, key=lambda t: (t.datetime_complete, t.number))[-self.population_size:]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The categorical parameters every member has, once the population is full; else none (random)."""
        self._raise_error_if_multi_objective(study)
        population = self.population(study)
        if len(population) < self.population_size:
            return {}
        return {name: dist for name, dist in intersection_search_space(population).items()
                if isinstance(dist, CategoricalDistribution)}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """The tournament winner's choices with one of them mutated."""
        if not search_space:
            return {}
        parent = self.tournament(study, self.population(study))
        return self.mutate({name: parent.params[name] for name in search_space}, search_space)

    def tournament(self, study: optuna.Study, population: list[FrozenTrial]) -> FrozenTrial:
        """The best of `sample_size` members drawn without replacement."""
        drawn = [population[i] for i in self._rng.choice(len(population), self.sample_size, replace=False)]
        best = max if study.direction == StudyDirection.MAXIMIZE else min
        return best(drawn, key=lambda t: t.value)

    def mutate(self, params: dict[str, Any], search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """`params` with one choice (among those with alternatives) set to a different option."""
        mutable = [name for name, dist in search_space.items() if len(dist.choices) > 1]  # type: ignore[attr-defined]
        if not mutable:
            return dict(params)
        name = mutable[self._rng.randint(len(mutable))]
        others = [c for c in search_space[name].choices if c != params[name]]  # type: ignore[attr-defined]
        return {**params, name: others[self._rng.randint(len(others))]}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """Random: the initial population, and any parameter outside the relative search space."""
        return self._random.sample_independent(study, trial, param_name, param_distribution)
