"""Stage: the coefficient searches of issue #20 (grid, TPE, NSGA-II, learned, orthogonal) on validation,
each front scored on test, each method's selected point tested like any other family.

Runs only when the config has a ``search:`` section (``fairmerge run search``). Every searcher
spends the same budget of validation model evaluations through one cached scorer per seed over the
main recipe's subgroup vectors (:mod:`fairmerge.search`); the configured selection rule picks one
point per method from its front, which is tested as ``merge[<method>]`` (so it enters the
comparisons with FFT and the verdict). Only front points are scored on test, once each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
from torch import Tensor

from fairmerge.inference import collate
from fairmerge.labels import ModelLabel
from fairmerge.search import (
    CoefficientSpace,
    Evaluations,
    Learner,
    MergedParameters,
    SearchConfig,
    SearchResult,
    grid_search,
    group_targets,
    learned_search,
    nsga2_search,
    objectives_of,
    score_front_on_test,
    select_from_front,
    tpe_search,
)
from fairmerge.search.outcome import SeedSearch
from fairmerge.search.problem import BLOCKS, Coefficients, ScoredPoint, Split
from fairmerge.search.scoring import CachedScoreFn
from fairmerge.study.candidate import Candidate
from fairmerge.study.points import PointEvaluator
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.merge_sweep import MAIN
from fairmerge.study.stages.workspace import Lab
from fairmerge.study.testing import SelectedModel, Tested

SEARCH_LABEL = ModelLabel("merge", strategy="search")
"""The family (and score-cache label) of every search point: one cache entry per coefficients,
whichever method scored it, so a method's selected point is tested from its front's test scores."""
START_LAMBDA = 0.5
"""Where TPE, NSGA-II and the learned searches start (uniform λ); the grid covers [low, high]."""


@dataclass(frozen=True)
class SearchPoints:
    """The searches' points as candidates of the one workspace, scored by the seed's cached scorer
    (:class:`~fairmerge.search.scoring.PointScorer`): a miss has the workspace write the point."""

    evaluator: PointEvaluator
    names: tuple[str, ...]

    def candidate(self, coefficients: Coefficients) -> Candidate:
        lambdas = dict(zip(self.names, coefficients, strict=True))
        return Candidate(SEARCH_LABEL, None, tuple(coefficients), "base", lambdas)

    def scores(self, coefficients: Coefficients, split: Split) -> np.ndarray:
        return self.evaluator.scorer.scores(self.candidate(coefficients), split)

    def metrics(self, scores: np.ndarray, split: Split) -> pd.DataFrame:
        evaluator = self.evaluator
        resamples = evaluator.val_resamples if split == "val" else evaluator.test_resamples
        return evaluator.scorer.split(split).metrics(scores, n_resamples=resamples, seed=evaluator.seed)


@dataclass(frozen=True)
class SearchRun:
    """What every method of one seed's search shares: its settings, the rule that picks a point
    from a front, the shared evaluations (budget and score cache) and the learned searches' learner."""

    search: SearchConfig
    policy: SelectionPolicy
    points: SearchPoints
    score: CachedScoreFn
    evaluations: Evaluations
    learner: Learner
    seed: int


def _learner(
    context: SeedContext, lab: Lab, vectors: dict[str, dict[str, Tensor]], space: CoefficientSpace
) -> Learner:
    """The learned searches' gradient learner over the model's merged parameters on val."""
    search, evaluation = need(context.config.search, "the search section"), context.config.evaluation
    model, val = lab.workspace.model, lab.evaluator.val
    return Learner(
        model,
        MergedParameters(model, lab.workspace.states["base"], vectors, space, search.blocks),
        partial(collate, val.encoded),
        group_targets(
            val.split,
            objectives_of(search.objectives),
            min_group_size=evaluation.min_group_size,
            min_positives=evaluation.min_positives,
            min_negatives=evaluation.min_negatives,
        ),
        search.learning_rate,
        search.batch_size,
    )


def _pick(run: SearchRun, method: str, result: SearchResult) -> tuple[ScoredPoint, Tested]:
    """The rule's point of a method's front, tested once as ``merge[<method>]``."""
    section, policy = run.policy.section, run.policy
    point, why = select_from_front(
        result,
        run.evaluations,
        section.rule,
        epsilon=section.epsilon,
        delta=section.delta,
        reference_accuracy=policy.reference_accuracy,
        attributes=policy.gap_attributes,
    )
    label = ModelLabel("merge", strategy=method)
    candidate = run.points.candidate(point.coefficients)
    rows, predictions = run.points.evaluator.test_once(candidate, "argmax", label=label)
    reason = f"{method}: front of {len(result.front)}, {result.n_evaluations} evaluations; {why.reason}"
    selected = SelectedModel(label, None, candidate.lambdas, section.rule, why.feasible, reason)
    return point, Tested(rows, {str(label): selected}, {str(label): predictions})


def _searched(run: SearchRun) -> tuple[SeedSearch, Tested]:
    """Every configured method's front on val, scored on test, and its pick tested."""
    results: dict[str, SearchResult] = {}
    tests: dict[str, list[ScoredPoint]] = {}
    predictions: dict[str, np.ndarray] = {}
    chosen: dict[str, ScoredPoint] = {}
    tested = Tested()
    for method in run.search.methods:
        results[method] = result = _search(method, run)
        tests[method] = score_front_on_test(result, run.evaluations)
        predictions[method] = run.score.test_predictions(tests[method]) if tests[method] else np.empty((0, 0))
        if result.front:
            chosen[method], pick = _pick(run, method, result)
            tested += pick
    counts = dict(run.evaluations.counts)
    return SeedSearch(run.seed, results, tests, predictions, chosen, counts), tested


def run(context: SeedContext, state: SeedState) -> SeedState:
    search = context.config.search
    if search is None:
        return state
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    vectors = {name: dict(vector.items()) for name, vector in lab.for_merger(MAIN).items()}
    space = CoefficientSpace(tuple(vectors), BLOCKS[search.blocks], search.low, search.high)
    lab.workspace.add_blocks(str(SEARCH_LABEL), "base", vectors, space, search.blocks)
    try:
        points = SearchPoints(lab.evaluator, tuple(space.names))
        score = CachedScoreFn(points)
        evaluations = Evaluations(score, space, objectives_of(search.objectives), decimals=search.decimals)
        learner = _learner(context, lab, vectors, space)
        outcome, tested = _searched(
            SearchRun(search, policy, points, score, evaluations, learner, context.seed)
        )
    finally:
        lab.workspace.release(str(SEARCH_LABEL))
    return replace(state, search=outcome, tested=state.tested + tested)


def _search(method: str, run: SearchRun) -> SearchResult:
    """One method's front on val, within the shared budget."""
    search, evaluations, seed = run.search, run.evaluations, run.seed
    if method == "grid":
        return grid_search(evaluations, search.budget)
    if method == "tpe":
        section = run.policy.section
        options: dict[str, object] = {
            "rule": section.rule,
            "epsilon": section.epsilon,
            "delta": section.delta,
            "reference_accuracy": run.policy.reference_accuracy,
        }
        return tpe_search(
            evaluations, search.budget, seed=seed, rule_options=options, start_lambda=START_LAMBDA
        )
    if method == "nsga2":
        return nsga2_search(
            evaluations,
            search.budget,
            seed=seed,
            population_size=search.population_size,
            start_lambda=START_LAMBDA,
        )
    return learned_search(
        evaluations,
        run.learner,
        search.budget,
        search.mus,
        seed=seed,
        start_lambda=START_LAMBDA,
        orthogonal=method == "orthogonal",
    )


LLAMA_7B_LEARNED_GIB = 110.8
"""``estimate_learned_memory`` of a Llama-2-7B-shaped classifier, bf16, 5 vectors (checked by
tests/test_study_search.py; computing it here would build a 7B meta model on every import)."""
PLAN = (
    "search (only with a search: section): grid, TPE, NSGA-II, learned, orthogonal fronts on val, "
    "fronts scored on test once, each method's pick tested as merge[<method>]; learned searches hold "
    f"(4 + G) × the model resident: {LLAMA_7B_LEARNED_GIB} GiB for Llama-2-7B in bf16 with 5 vectors"
)

STAGE = Stage("search: coefficient fronts (val)", PLAN, run)
