"""Stage: the coefficient searches of issue #20 (grid, TPE, NSGA-II, learned, orthogonal) on validation,
each front scored on test, each method's selected point tested like any other family.

Runs only when the config has a ``search:`` section (``fairmerge run search``). Every searcher
spends the same budget of validation model evaluations through one cached scorer per seed over the
main recipe's subgroup vectors (:mod:`fairmerge.search`); the configured selection rule picks one
point per method from its front, which is tested as ``merge[<method>]`` (so it enters the
comparisons with FFT and the verdict). Only front points are scored on test, once each.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from fairmerge.inference import collate
from fairmerge.labels import ModelLabel
from fairmerge.search import (
    BlockMerger,
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
from fairmerge.search.problem import BLOCKS, ScoredPoint
from fairmerge.search.scoring import MergerScoreFn
from fairmerge.study.points import Candidate
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.merge_sweep import MAIN
from fairmerge.study.testing import SelectedModel

SEARCH_LABEL = ModelLabel("merge", strategy="search")
"""The score-cache label of every search point: one cache entry per coefficients, whichever method
scored it, so a method's selected point is tested from its front's test scores."""
START_LAMBDA = 0.5
"""Where TPE, NSGA-II and the learned searches start (uniform λ); the grid covers [low, high]."""


def run(context: SeedContext, state: SeedState) -> SeedState:
    search = context.config.search
    if search is None:
        return state
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    workspace, evaluator, config = lab.workspace, lab.evaluator, context.config
    workspace.load("base", always=True)
    vectors = {name: dict(vector.items()) for name, vector in lab.for_merger(MAIN).items()}
    space = CoefficientSpace(tuple(vectors), BLOCKS[search.blocks], search.low, search.high)
    base = workspace.states["base"]
    merger = BlockMerger(workspace.model, base, vectors, space, search.blocks)
    score = MergerScoreFn(
        workspace.model,
        merger,
        {"val": evaluator.val, "test": evaluator.test},
        n_resamples={"val": evaluator.val_resamples, "test": evaluator.test_resamples},
        seed=context.seed,
        key_prefix=f"seed{context.seed}|{SEARCH_LABEL}",
    )
    objectives = objectives_of(search.objectives)
    evaluations = Evaluations(score, space, objectives, decimals=search.decimals)
    selection = config.selection
    learner = Learner(
        workspace.model,
        MergedParameters(workspace.model, base, vectors, space, search.blocks),
        partial(collate, evaluator.val.encoded),
        group_targets(
            evaluator.val.split,
            objectives,
            min_group_size=config.evaluation.min_group_size,
            min_positives=config.evaluation.min_positives,
            min_negatives=config.evaluation.min_negatives,
        ),
        search.learning_rate,
        search.batch_size,
    )
    results: dict[str, SearchResult] = {}
    tests: dict[str, list[ScoredPoint]] = {}
    predictions: dict[str, np.ndarray] = {}
    chosen: dict[str, ScoredPoint] = {}
    selected, family_predictions = dict(state.selected), dict(state.predictions)
    try:
        for method in search.methods:
            options: dict[str, object] = {
                "rule": selection.rule,
                "epsilon": selection.epsilon,
                "delta": selection.delta,
                "reference_accuracy": policy.reference_accuracy,
            }
            result = _search(method, evaluations, learner, search, context.seed, options)
            tests[method] = score_front_on_test(result, evaluations)
            predictions[method] = score.test_predictions(tests[method]) if tests[method] else np.empty((0, 0))
            results[method] = result
            if not result.front:
                continue
            point, why = select_from_front(
                result,
                evaluations,
                selection.rule,
                epsilon=selection.epsilon,
                delta=selection.delta,
                reference_accuracy=policy.reference_accuracy,
                attributes=policy.gap_attributes,
            )
            chosen[method] = point
            label = ModelLabel("merge", strategy=method)
            lambdas = dict(zip(space.names, point.coefficients, strict=True))
            candidate = Candidate(SEARCH_LABEL, None, point.coefficients, "base", lambdas)
            family_predictions[str(label)] = evaluator.test_once(
                candidate, "argmax", partial(merger.set_coefficients, point.coefficients), label=label
            )
            selected[str(label)] = SelectedModel(
                label,
                None,
                lambdas,
                selection.rule,
                why.feasible,
                f"{method}: front of {len(result.front)}, {result.n_evaluations} evaluations; {why.reason}",
            )
    finally:
        merger.restore()
        workspace.load("base", always=True)
    outcome = SeedSearch(context.seed, results, tests, predictions, chosen, dict(evaluations.counts))
    return replace(state, search=outcome, selected=selected, predictions=family_predictions)


def _search(
    method: str,
    evaluations: Evaluations,
    learner: Learner,
    search: SearchConfig,
    seed: int,
    rule_options: dict[str, object],
) -> SearchResult:
    budget = search.budget
    if method == "grid":
        return grid_search(evaluations, budget)
    if method == "tpe":
        return tpe_search(
            evaluations, budget, seed=seed, rule_options=rule_options, start_lambda=START_LAMBDA
        )
    if method == "nsga2":
        return nsga2_search(
            evaluations, budget, seed=seed, population_size=search.population_size, start_lambda=START_LAMBDA
        )
    return learned_search(
        evaluations,
        learner,
        budget,
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
