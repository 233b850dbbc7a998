"""The study-facing score function: a tiny BERT's search points written by the one workspace
(through its block merger) and scored by the seed's cached scorer on tiny val/test splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from training_tiny import tiny_config, tiny_dataset

from fairmerge.fairness.calibration import predict_at
from fairmerge.models import load_tokenizer
from fairmerge.search import CoefficientSpace, Evaluations, grid_search, objectives_of
from fairmerge.search.front import score_front_on_test
from fairmerge.search.scoring import CachedScoreFn
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.points import PointEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages.search import SEARCH_LABEL, SearchPoints
from fairmerge.study.stages.workspace import Workspace


def test_score_fn_writes_the_point_scores_it_and_keeps_front_test_predictions(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(None)
    config = tiny_config("bert", vocab_size=tokenizer.vocab_size)
    config.num_labels = 2
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    vectors = {
        g: {k: 0.5 * torch.randn_like(v) for k, v in model.named_parameters()} for g in ("race:A", "race:B")
    }
    space = CoefficientSpace(("race:A", "race:B"), ("embeddings", "lower", "upper", "head"))
    workspace = Workspace(model, {"base": base})
    workspace.add_blocks(str(SEARCH_LABEL), "base", vectors, space, "quarters")
    data = tiny_dataset()
    cache = ScoreCache(tmp_path)
    val, test = (
        SplitEvaluator.build(
            name,
            data[name],
            tokenizer,
            attributes=["race"],
            max_length=16,
            min_group_size=5,
            batch_size=8,
            cache=cache,
        )
        for name in ("val", "test")
    )
    evaluator = PointEvaluator(CandidateScorer(val, test, workspace, 0), False, "accuracy", 20, 0)
    points = SearchPoints(evaluator, tuple(space.names))
    score = CachedScoreFn(points)
    evaluations = Evaluations(score, space, objectives_of(["accuracy", "race_dpd"]))
    result = grid_search(evaluations, 3)
    assert evaluations.counts["val"] == 3 and len(list(tmp_path.glob("*.npy"))) == 3
    test_front = score_front_on_test(result, evaluations)
    assert evaluations.counts["test"] == len(result.front) == len(score.test_scores)
    assert all(not np.isnan(p.intervals[0][0]) for p in test_front)  # test metrics carry intervals
    point = result.front[0]
    cached = score.test_predictions([point])[0]

    workspace.release(str(SEARCH_LABEL))  # the model is θ_base again, bit for bit
    assert all(torch.equal(model.state_dict()[k], base[k]) for k in base)
    workspace.add_blocks(str(SEARCH_LABEL), "base", vectors, space, "quarters")
    workspace.materialise(points.candidate(point.coefficients))  # the same weights, scored directly
    np.testing.assert_array_equal(cached, predict_at(test.score(model), 0.5))
