"""The sampling searchers: a uniform λ grid, per-group TPE (the study's, reused) and NSGA-II.

Each spends at most ``budget`` validation model evaluations through one :class:`Evaluations`
(cached: a proposal already scored costs nothing and does not count), and returns every point
it scored with their non-dominated front.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import numpy as np
import optuna
import pandas as pd

from fairmerge.errors import ConfigError
from fairmerge.search.problem import Evaluations, ScoredPoint, SearchResult, front_of
from fairmerge.sweep.pergroup import _quiet_optuna, search_group_coefficients


def _result(method: str, evaluations: Evaluations, points: list[ScoredPoint], start: float) -> SearchResult:
    """``n_evaluations``: the distinct models the method scored, whether or not another method's
    scoring had already filled the cache (so sharing an :class:`Evaluations` changes no budget)."""
    return SearchResult(
        method,
        points,
        front_of(points, evaluations.objectives),
        len({p.coefficients for p in points}),
        time.perf_counter() - start,
        evaluations.space,
        evaluations.objectives,
    )


def _check_budget(budget: int) -> None:
    if budget < 1:
        raise ConfigError(f"a search budget must be >= 1 model evaluation, got {budget}")


def grid_search(evaluations: Evaluations, budget: int) -> SearchResult:
    """One λ for every coefficient, ``budget`` values evenly spaced over [low, high]."""
    _check_budget(budget)
    start = time.perf_counter()
    space = evaluations.space
    points = [evaluations(space.uniform(lam)) for lam in np.linspace(space.low, space.high, budget)]
    return _result("grid", evaluations, points, start)


def tpe_search(
    evaluations: Evaluations,
    budget: int,
    *,
    seed: int,
    rule_options: dict[str, object] | None = None,
    start_lambda: float | None = None,
) -> SearchResult:
    """The study's per-group TPE (:func:`fairmerge.sweep.pergroup.search_group_coefficients`), as is.

    It maximises one selection-rule score, not the objectives; its front is the non-dominated set
    of the trials it ran. ``rule_options`` are that function's rule/epsilon/delta/reference_accuracy.
    """
    _check_budget(budget)
    begin = time.perf_counter()
    space = evaluations.space
    points: list[ScoredPoint] = []

    def evaluate(lambdas: Sequence[float]) -> pd.DataFrame:
        points.append(evaluations(lambdas))
        return evaluations.frame(lambdas)  # the rule reads every headline metric

    search_group_coefficients(
        evaluate,
        space.names,
        n_trials=budget,
        seed=seed,
        start=start_lambda,
        low=space.low,
        high=space.high,
        **dict(rule_options or {}),  # type: ignore[arg-type]
    )
    return _result("tpe", evaluations, points, begin)


def nsga2_search(
    evaluations: Evaluations,
    budget: int,
    *,
    seed: int,
    population_size: int | None = None,
    start_lambda: float | None = None,
    max_proposals: int | None = None,
) -> SearchResult:
    """Optuna's seeded NSGA-II over the coefficients, objectives as declared (accuracy ↑, gaps ↓).

    Stops after it has scored ``budget`` distinct models (re-proposing one of its own points is
    free), or after ``max_proposals`` trials (default 5 × budget) when it keeps re-proposing known points.
    A point with an undefined objective fails its trial (optuna drops it) and is kept out of the front.
    """
    _check_budget(budget)
    begin = time.perf_counter()
    space = evaluations.space
    names = space.names
    population = population_size or max(4, budget // 4)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    directions = [
        optuna.study.StudyDirection.MAXIMIZE if o.maximize else optuna.study.StudyDirection.MINIMIZE
        for o in evaluations.objectives
    ]
    points: list[ScoredPoint] = []

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        point = evaluations([trial.suggest_float(n, space.low, space.high) for n in names])
        points.append(point)
        if not point.defined:
            return tuple(math.nan for _ in point.values)  # optuna marks the trial failed
        return point.values

    def stop(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if len({p.coefficients for p in points}) >= budget:
            study.stop()

    with _quiet_optuna(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(directions=directions, sampler=sampler)
        if start_lambda is not None:
            study.enqueue_trial(dict(zip(names, space.uniform(start_lambda), strict=True)))
        study.optimize(objective, n_trials=max_proposals or 5 * budget, callbacks=[stop])
    return _result("nsga2", evaluations, points, begin)
