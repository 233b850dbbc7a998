"""Stage: encode val and test once, load the model and every state it is reset to, read the vectors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fairmerge.models import load_classifier, load_processor
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.points import PointEvaluator
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.workspace import (
    Lab,
    Workspace,
    for_model,
    load_state,
    recipe_vectors,
    renamed_keys,
    state_name,
)
from fairmerge.study.training_stage import TrainedModels


def _split_evaluator(context: SeedContext, name: str, base_dir: Path) -> SplitEvaluator:
    config, evaluation = context.config, context.config.evaluation
    return SplitEvaluator.build(
        name,
        context.dataset[name],  # the dataset is already the evaluation view (run.py)
        load_processor(str(base_dir)),  # a tokenizer, or an image model's input format
        attributes=config.attributes,
        max_length=evaluation.max_length,
        min_group_size=evaluation.min_group_size,
        min_positives=evaluation.min_positives,
        min_negatives=evaluation.min_negatives,
        batch_size=evaluation.batch_size,
        cache=context.score_cache,
        precision=evaluation.precision,
    )


def _workspace(trained: TrainedModels) -> Workspace:
    model = load_classifier(str(trained.base))
    keys = renamed_keys(model)
    states = {name: for_model(load_state(path), keys) for name, path in trained.references().items()}
    for models in trained.recipes.values():
        name = state_name(models, trained.main)
        if name not in states:
            states[name] = for_model(load_state(models.base), keys)
    return Workspace(model, states, keys)


def run(context: SeedContext, state: SeedState) -> SeedState:
    trained = need(state.trained, "the trained models")
    val, test = (_split_evaluator(context, name, trained.base) for name in ("val", "test"))
    workspace = _workspace(trained)
    evaluation = context.config.evaluation
    shared = (state_name(m, trained.main) for m in trained.recipes.values() if m.recipe.base_head != "random")
    evaluator = PointEvaluator(
        CandidateScorer(val, test, workspace, context.seed, frozenset(shared)),
        calibrate=evaluation.calibrate,
        calibration_objective=evaluation.calibration_objective,
        test_resamples=evaluation.n_resamples,
        test_permutations=evaluation.n_permutations,
    )
    vectors = {name: recipe_vectors(models) for name, models in trained.recipes.items()}
    return replace(state, lab=Lab(workspace, evaluator, vectors))


STAGE = Stage("evaluate: set-up", "encode val and test, load the model and its states", run)
