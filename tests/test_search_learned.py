"""Learned coefficients: a logistic problem with a known optimum, gradients against finite
differences on a tiny BERT, blocks, and the functional merge against the in-place one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from training_tiny import tiny_model

from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError
from fairmerge.fairness import group_metrics
from fairmerge.search import (
    BlockMerger,
    CoefficientSpace,
    Evaluations,
    Learner,
    MergedParameters,
    group_targets,
    learned_search,
    objectives_of,
)
from fairmerge.search.learned import batch_loss, orthogonal_parametrisation, plain_parametrisation
from fairmerge.search.problem import blocks_of_keys

OBJECTIVES = objectives_of(["accuracy", "race_dpd", "race_eod"])


class GroupLogits(torch.nn.Module):
    """Positive-class logit = λ_A for group A posts, λ_B for group B posts (negative class: 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.T


def _logistic_problem() -> tuple[GroupLogits, TextSplit, torch.Tensor, dict[str, dict[str, torch.Tensor]]]:
    """Group A: 100 posts, 80 hateful; B: 100, 30 hateful. The CE optimum: λ = logit(0.8), logit(0.3)."""
    labels = np.array([1] * 80 + [0] * 20 + [1] * 30 + [0] * 70)
    race = [frozenset({"A"})] * 100 + [frozenset({"B"})] * 100
    split = TextSplit([str(i) for i in range(200)], ["post"] * 200, labels, {"race": race})
    features = torch.zeros(200, 2)
    features[:100, 0], features[100:, 1] = 1, 1
    vectors = {
        "race:A": {"weight": torch.tensor([[0.0, 0.0], [1.0, 0.0]])},
        "race:B": {"weight": torch.tensor([[0.0, 0.0], [0.0, 1.0]])},
    }
    return GroupLogits(), split, features, vectors


def _learner(model: torch.nn.Module, split: TextSplit, features: torch.Tensor, vectors, space) -> Learner:
    merged = MergedParameters(model, {"weight": torch.zeros(2, 2)}, vectors, space, "whole")
    targets = group_targets(split, OBJECTIVES, min_group_size=30)
    return Learner(model, merged, lambda rows: {"features": features[rows]}, targets, 0.3, 200)


def test_learning_recovers_the_known_optimum_and_the_zero_gap_solution() -> None:
    model, split, features, vectors = _logistic_problem()
    space = CoefficientSpace(("race:A", "race:B"), low=-3.0, high=3.0)
    learner = _learner(model, split, features, vectors, space)
    start = np.zeros((2, 1))
    for parametrisation in (plain_parametrisation(space), orthogonal_parametrisation(learner.merged)):
        fitted = learner.learn(parametrisation, start, mu=0.0, passes=120, seed=0)[:, 0]
        np.testing.assert_allclose(fitted, [np.log(0.8 / 0.2), np.log(0.3 / 0.7)], atol=0.03)
    fair = learner.learn(plain_parametrisation(space), start, mu=20.0, passes=120, seed=0)[:, 0]
    sigmoid = 1 / (1 + np.exp(-fair))
    assert abs(sigmoid[0] - sigmoid[1]) < 0.02  # soft DPD and EOD (equal here) driven to ~0


def test_mu_sweep_traces_the_known_front() -> None:
    """Hard predictions: μ = 0 predicts A hateful, B not (accuracy 0.75, DPD = EOD = 1); a large μ
    predicts both alike, best both hateful (accuracy 0.55, gaps 0). Those two points are the front."""
    model, split, features, vectors = _logistic_problem()
    space = CoefficientSpace(("race:A", "race:B"), low=-3.0, high=3.0)
    learner = _learner(model, split, features, vectors, space)
    memberships = split.memberships(["race"])

    def score(coefficients: tuple[float, ...], _split: str) -> pd.DataFrame:
        p = 1 / (1 + np.exp(-(features.numpy() @ np.array(coefficients))))
        return group_metrics(
            split.labels, (p > 0.5).astype(int), memberships, n_resamples=50, min_group_size=30
        )

    evaluations = Evaluations(score, space, OBJECTIVES)
    result = learned_search(evaluations, learner, 122, [0.0, 20.0], seed=0, start_lambda=0.0)
    assert result.n_evaluations == 2 + 2 * 60
    assert sorted(p.values for p in result.front) == [(0.55, 0.0, 0.0), (0.75, 1.0, 1.0)]
    assert [p.info["mu"] for p in result.points] == [0.0, 20.0]


def _tiny_bert_problem():
    torch.manual_seed(0)
    model = tiny_model("bert").double().eval()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    vectors = {
        g: {k: 0.05 * torch.randn_like(v) for k, v in model.named_parameters()} for g in ("race:A", "race:B")
    }
    n = 24
    labels = np.array([0, 1] * (n // 2))
    race = [frozenset({"A"}) if i % 3 == 0 else frozenset({"B"}) for i in range(n)]
    split = TextSplit([str(i) for i in range(n)], ["x"] * n, labels, {"race": race})
    ids = torch.randint(1, 100, (n, 8))
    return model, base, vectors, split, ids


def test_gradient_matches_finite_differences_on_a_tiny_bert() -> None:
    model, base, vectors, split, ids = _tiny_bert_problem()
    space = CoefficientSpace(("race:A", "race:B"), ("embeddings", "lower", "upper", "head"))
    merged = MergedParameters(model, base, vectors, space, "quarters")
    targets = group_targets(split, OBJECTIVES, min_group_size=4, min_positives=2, min_negatives=2)
    rows = np.arange(len(split))

    def batch(r: np.ndarray) -> dict[str, torch.Tensor]:
        return {"input_ids": ids[r], "attention_mask": torch.ones_like(ids[r])}

    lam = torch.tensor(
        np.random.default_rng(0).uniform(0, 1, (2, 4)), dtype=torch.float64, requires_grad=True
    )
    loss = batch_loss(model, merged, lam, batch, targets, rows, mu=0.7)
    (grad,) = torch.autograd.grad(loss, lam)
    step = 1e-6
    numeric = torch.zeros_like(lam)
    with torch.no_grad():
        for index in np.ndindex(2, 4):
            shift = torch.zeros_like(lam)
            shift[index] = step
            up = batch_loss(model, merged, lam + shift, batch, targets, rows, mu=0.7)
            down = batch_loss(model, merged, lam - shift, batch, targets, rows, mu=0.7)
            numeric[index] = (up - down) / (2 * step)
    assert grad.abs().min() > 0  # every block's coefficients move the loss
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)


def test_functional_merge_matches_the_in_place_merger() -> None:
    model, base, vectors, _, _ = _tiny_bert_problem()
    space = CoefficientSpace(("race:A", "race:B"), ("embeddings", "lower", "upper", "head"))
    coefficients = tuple(np.linspace(-0.5, 1.0, 8))
    merged = MergedParameters(model, base, vectors, space, "quarters")(
        torch.tensor(coefficients, dtype=torch.float64).reshape(2, 4)
    )
    BlockMerger(model, base, vectors, space, "quarters").set_coefficients(coefficients)
    params = dict(model.named_parameters())
    for key, value in merged.items():
        torch.testing.assert_close(params[key].detach(), value, rtol=1e-12, atol=1e-12)


def test_blocks_follow_the_layers() -> None:
    keys = [k for k, _ in tiny_model("bert").named_parameters()]
    blocks = blocks_of_keys(keys, "quarters")
    assert blocks["bert.embeddings.word_embeddings.weight"] == "embeddings"
    assert blocks["bert.encoder.layer.0.attention.self.query.weight"] == "lower"
    assert blocks["bert.encoder.layer.1.output.dense.weight"] == "upper"
    assert blocks["classifier.weight"] == blocks["bert.pooler.dense.weight"] == "head"
    assert set(blocks_of_keys(keys, "whole").values()) == {"all"}


def test_learned_search_needs_a_pass_per_mu() -> None:
    model, split, features, vectors = _logistic_problem()
    space = CoefficientSpace(("race:A", "race:B"))
    evaluations = Evaluations(lambda c, s: pd.DataFrame(), space, OBJECTIVES)
    with pytest.raises(ConfigError, match="leaves no pass"):
        learned_search(
            evaluations,
            _learner(model, split, features, vectors, space),
            3,
            [0.0, 1.0],
            seed=0,
            start_lambda=0.0,
        )


def test_base_must_not_be_the_model_s_own_tensors() -> None:
    model, _, vectors, _, _ = _tiny_bert_problem()
    space = CoefficientSpace(("race:A", "race:B"))
    with pytest.raises(ConfigError, match="pass a copy of θ_base"):
        MergedParameters(model, model.state_dict(), vectors, space, "whole")
