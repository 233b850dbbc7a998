"""``sweep.method`` reaches the study's merge sweeps: the config's merge options build the merger,
so ``ties`` writes other weights than task arithmetic at the same λ, and the default writes
θ_base + λ·Σ τ_g bit for bit (the reference test covers the whole default study)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.labels import ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.config import load_config
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.stages.workspace import Workspace
from fairmerge.study.sweeps import merge_sweep
from fairmerge.vectors import InPlaceMerger, TaskVector

LAMBDA = 0.8


class _RecordingEvaluator:
    """Stands in for the PointEvaluator: keeps the weights the workspace writes at every validated point."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.weights: dict[float, dict[str, torch.Tensor]] = {}

    def validate(self, point: Candidate) -> MetricRows:
        model = self.workspace.materialise(point)
        assert point.lam is not None
        self.weights[point.lam] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        row = {
            "split": "val",
            "attribute": "all",
            "group": "all",
            "metric": "accuracy",
            "value": 0.5,
            "ci_low": 0.4,
            "ci_high": 0.6,
        }
        return MetricRows.of(point.label, point.lam, pd.DataFrame([row]))


def tiny_model() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config).eval()


def swept_weights(options: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict, list[TaskVector]]:
    """Base, the weights the sweep wrote at λ = LAMBDA, and the vectors, for one set of merge options."""
    model = tiny_model()
    base = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    generator = torch.Generator().manual_seed(1)
    vectors = [
        TaskVector({k: 0.01 * torch.randn(v.shape, generator=generator) for k, v in base.items()})
        for _ in range(3)
    ]
    workspace = Workspace(model, {"base": base})
    evaluator = _RecordingEvaluator(workspace)
    merge_sweep(
        evaluator,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # no refinement: the policy is never asked
        workspace,
        vectors,
        ModelLabel("merge"),
        [0.0, LAMBDA],
        refine_rounds=0,
        merge_options=options,
    )
    return base, evaluator.weights[LAMBDA], vectors


def options(*overrides: str) -> dict[str, Any]:
    config = load_config(None, overrides=list(overrides))
    return config.sweep.merge_options(config.derived_seeds(3))


def test_default_method_is_task_arithmetic_bit_for_bit() -> None:
    assert options()["method"] == "task_arithmetic"
    base, merged, vectors = swept_weights(options())
    for key, tensor in base.items():
        assert torch.allclose(merged[key], tensor + LAMBDA * sum(v[key] for v in vectors), atol=1e-6), key
    before = tiny_model()  # the merger as the sweep built it before sweep.method reached it
    InPlaceMerger(before, base, list(vectors), uniform=True).set_coefficients(LAMBDA)
    for key, tensor in before.state_dict().items():
        assert torch.equal(merged[key], tensor), key


def test_ties_from_the_config_merges_other_weights_at_the_same_lambda() -> None:
    ties = options("sweep.method=ties", "sweep.density=0.5")
    assert ties["method"] == "ties"
    _, arithmetic, _ = swept_weights(options())
    _, trimmed, _ = swept_weights(ties)
    changed = [k for k in arithmetic if not torch.equal(arithmetic[k], trimmed[k])]
    assert changed, "sweep.method=ties wrote the task-arithmetic weights"
