"""The study-facing score function: a tiny BERT scored on tiny val/test splits through BlockMerger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from training_tiny import tiny_config, tiny_dataset

from fairmerge.fairness.calibration import predict_at
from fairmerge.models import load_tokenizer
from fairmerge.search import BlockMerger, CoefficientSpace, Evaluations, grid_search, objectives_of
from fairmerge.search.front import score_front_on_test
from fairmerge.search.scoring import MergerScoreFn
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.score_cache import ScoreCache


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
    merger = BlockMerger(model, base, vectors, space, "quarters")
    data = tiny_dataset()
    cache = ScoreCache(tmp_path)
    splits = {
        name: SplitEvaluator.build(
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
    }
    score = MergerScoreFn(model, merger, splits, n_resamples={"val": 0, "test": 20}, seed=0)
    evaluations = Evaluations(score, space, objectives_of(["accuracy", "race_dpd"]))
    result = grid_search(evaluations, 3)
    assert evaluations.counts["val"] == 3 and len(list(tmp_path.glob("*.npy"))) == 3
    test = score_front_on_test(result, evaluations)
    assert evaluations.counts["test"] == len(result.front) == len(score.test_scores)
    assert all(not np.isnan(p.intervals[0][0]) for p in test)  # test metrics carry intervals
    point = result.front[0]
    merger.set_coefficients(point.coefficients)  # the same weights, scored directly
    direct = splits["test"].scores(model, "direct", lambda: None)
    np.testing.assert_array_equal(score.test_predictions([point])[0], predict_at(direct, 0.5))
