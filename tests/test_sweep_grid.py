"""sweep(): one in-place model over a λ grid, tidy frame with a λ column, refinement near the best."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import group_metrics
from fairmerge.sweep import InPlaceMerger, dpd_bound_table, points_from_metrics, sweep

N = 400
TARGET = 0.37  # accuracy peaks at this λ


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    return BertForSequenceClassification(config).eval()


def setup() -> tuple[BertForSequenceClassification, InPlaceMerger, float]:
    model = tiny_bert()
    vector = {"classifier.bias": torch.tensor([0.0, 1.0]), "classifier.weight": torch.zeros(2, 8)}
    merger = InPlaceMerger.from_model(model, [vector])
    return model, merger, float(model.classifier.bias.detach()[1])


def make_evaluate(model: BertForSequenceClassification, base_bias: float, calls: list[float]):
    """Metrics that depend on the λ actually written into the model (read back from its bias)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    u = rng.permutation((np.arange(N) + 0.5) / N)
    groups = rng.integers(0, 3, N)
    race = pd.DataFrame({g: groups == i for i, g in enumerate(["A", "B", "C"])})

    def evaluate(m: torch.nn.Module) -> pd.DataFrame:
        assert m is model
        lam = float(model.classifier.bias.detach()[1]) - base_bias
        calls.append(lam)
        flip = min(1.0, abs(lam - TARGET)) * (1 + 0.5 * (groups == 0))  # group A suffers more
        predictions = np.where(u < flip, 1 - labels, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return group_metrics(labels, predictions, {"race": race}, n_resamples=0)

    return evaluate


def test_sweep_frame_has_a_lambda_column_and_one_block_per_point() -> None:
    model, merger, base_bias = setup()
    calls: list[float] = []
    frame = sweep(merger, [0.5, 0.0, 1.0, 0.5, 0.25], make_evaluate(model, base_bias, calls), progress=False)
    rows_per_point = len(frame) // 4
    assert frame.columns[0] == "lambda"
    assert list(frame.columns[1:]) == ["attribute", "group", "metric", "value", "ci_low", "ci_high"]
    assert len(frame) == 4 * rows_per_point
    assert list(frame["lambda"].drop_duplicates()) == [0.0, 0.25, 0.5, 1.0]  # ordered, duplicates dropped
    np.testing.assert_allclose(sorted(calls), [0.0, 0.25, 0.5, 1.0], atol=1e-6)
    assert float(model.classifier.bias.detach()[1]) == base_bias  # restored afterwards


def test_refinement_adds_midpoints_around_the_selected_point() -> None:
    model, merger, base_bias = setup()
    calls: list[float] = []
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    frame = sweep(merger, grid, make_evaluate(model, base_bias, calls), refine_rounds=2, progress=False)
    lambdas = sorted(frame["lambda"].unique())
    assert lambdas == sorted([*grid, 0.125, 0.375, 0.3125, 0.4375])
    best = points_from_metrics(frame).sort_values("accuracy").iloc[-1]["lambda"]
    assert best == 0.375
    assert len(calls) == len(lambdas)


def test_sweep_output_feeds_the_bound_and_it_holds_on_its_own_grid() -> None:
    model, merger, base_bias = setup()
    frame = sweep(merger, [0.0, 0.25, 0.5, 0.75, 1.0], make_evaluate(model, base_bias, []), progress=False)
    table = dpd_bound_table(frame, tau_norm=1.0, attribute="race")
    assert table["holds"].all()
    assert (table["lipschitz_max"] > 0).all()


def test_bad_evaluate_output_and_bad_grid_raise() -> None:
    model, merger, base_bias = setup()
    with pytest.raises(DataError, match="DataFrame"):
        sweep(merger, [0.1], lambda m: {"accuracy": 1.0}, progress=False)  # type: ignore[arg-type,return-value]
    with pytest.raises(DataError, match="value"):
        sweep(merger, [0.1], lambda m: pd.DataFrame({"attribute": ["all"]}), progress=False)
    with pytest.raises(ConfigError):
        sweep(merger, [], lambda m: pd.DataFrame(), progress=False)
    with pytest.raises(ConfigError):
        sweep(merger, [float("nan")], lambda m: pd.DataFrame(), progress=False)
    assert float(model.classifier.bias.detach()[1]) == base_bias  # a failed sweep still restores the base
