"""The cached scorer and the workspace: a candidate is written by the workspace only, on a cache miss,
with the bits a merger writes directly; the injection's worst group must enter every gap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from training_tiny import tiny_config, tiny_dataset

import fairmerge as fm
from fairmerge.errors import DataError
from fairmerge.fairness import group_metrics
from fairmerge.fairness.metrics import qualifying_groups
from fairmerge.labels import ModelLabel
from fairmerge.models import load_tokenizer
from fairmerge.study.candidate import Candidate
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages.workspace import Workspace
from fairmerge.study.sweeps import worst_group
from fairmerge.vectors import InPlaceMerger, TaskVector

MERGE, INJECT = ModelLabel("merge"), ModelLabel("inject", group="race/A")


class CountingWorkspace(Workspace):
    """The study's workspace, counting the candidates it is asked to write."""

    written: list[str]

    def materialise(self, candidate: Candidate) -> torch.nn.Module:
        self.written.append(candidate.key)
        return super().materialise(candidate)


def tiny_workspace() -> tuple[CountingWorkspace, list[TaskVector]]:
    from transformers import AutoModelForSequenceClassification

    config = tiny_config("bert", vocab_size=load_tokenizer(None).vocab_size)
    config.num_labels = 2
    states = {}
    for name, seed in (("base", 0), ("fft", 1)):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config).eval()
        states[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(2)
    params = dict(model.named_parameters())
    vectors = [
        TaskVector({k: 0.3 * torch.randn(v.shape, generator=generator) for k, v in params.items()})
        for _ in range(2)
    ]
    workspace = CountingWorkspace(model, states)
    workspace.written = []
    workspace.add_vectors(str(MERGE), "base", vectors, uniform=True)
    workspace.add_vectors(str(INJECT), "fft", vectors[:1], uniform=True)
    return workspace, vectors


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_workspace_writes_the_bits_a_merger_writes_whatever_came_before() -> None:
    workspace, vectors = tiny_workspace()
    merge = Candidate(MERGE, 0.7, (0.7, 0.7), start="base")
    first = weights(workspace.materialise(merge))
    workspace.materialise(Candidate(INJECT, 0.4, (0.4,), start="fft"))  # another family, another state
    workspace.materialise(Candidate(ModelLabel("fft"), None, None, start="fft"))
    again = weights(workspace.materialise(merge))
    reference = type(workspace.model)(workspace.model.config).eval()
    reference.load_state_dict(workspace.states["base"])
    InPlaceMerger(reference, workspace.states["base"], vectors, uniform=True).set_coefficients(0.7)
    for key, tensor in weights(reference).items():
        assert torch.equal(first[key], tensor) and torch.equal(again[key], tensor), key
    fft = weights(workspace.materialise(Candidate(ModelLabel("fft"), None, None, start="fft")))
    assert all(torch.equal(fft[k], v) for k, v in workspace.states["fft"].items())
    with pytest.raises(RuntimeError, match="no vectors of 'merge_pergroup'"):
        workspace.materialise(Candidate(ModelLabel("merge_pergroup"), None, (1.0, 0.0), start="base"))


def test_the_scorer_writes_a_candidate_only_on_a_cache_miss(tmp_path: Path) -> None:
    workspace, _ = tiny_workspace()
    data, cache = tiny_dataset(), ScoreCache(tmp_path)
    val, test = (
        SplitEvaluator.build(
            name, data[name], load_tokenizer(None), attributes=["race"], max_length=16,
            min_group_size=5, batch_size=8, cache=cache,
        )
        for name in ("val", "test")
    )  # fmt: skip
    scorer = CandidateScorer(val, test, workspace, seed=3)
    point = Candidate(MERGE, 0.5, (0.5, 0.5), start="base")
    scores = scorer.scores(point, "val")
    assert workspace.written == [point.key] and len(list(tmp_path.glob("*.npy"))) == 1
    np.testing.assert_array_equal(scorer.scores(point, "val"), scores)
    frame = scorer.frame(point, "val")
    assert workspace.written == [point.key]  # kept in memory: not written again
    np.testing.assert_array_equal(frame.value, val.metrics(scores, seed=3).value)
    resumed = CandidateScorer(val, test, workspace, seed=3)  # a resumed run reads the score cache
    np.testing.assert_array_equal(resumed.scores(point, "val"), scores)
    assert workspace.written == [point.key]
    direct = val.score(workspace.materialise(point))
    np.testing.assert_array_equal(direct, scores)
    assert scorer.key(point) == "seed3|merge|lam=0.5000"


def _worst(frame: pd.DataFrame, qualifying: pd.DataFrame, groups: list[str]) -> str:
    vectors = {("race", g): f"race/{g}" for g in groups}
    chosen = worst_group(
        frame, ["race"], vectors, qualifying=qualifying, min_group_size=30, criterion="accuracy"
    )
    return chosen["group"]


def test_a_group_below_the_positive_or_negative_thresholds_cannot_be_the_worst(data_dir: Path) -> None:
    val = fm.load_dataset("hatexplain", data_dir)["val"]
    labels, memberships = np.asarray(val.labels), val.memberships(["race"])
    strict = qualifying_groups(labels, memberships, min_group_size=30, min_positives=20, min_negatives=20)
    loose = qualifying_groups(labels, memberships, min_group_size=30, min_positives=1, min_negatives=1)
    by_group = strict.groupby("group").agg(n=("n", "first"), entered=("entered", "all"))
    thin = by_group[(by_group.n >= 30) & ~by_group.entered].index
    assert len(thin), "HateXplain's val split has a race group with posts but too few positives or negatives"
    group = str(thin[0])
    predictions = labels.copy()
    wrong = memberships["race"][group].to_numpy(bool)
    predictions[wrong] = 1 - labels[wrong]  # FFT is wrong on every post of the thin group
    frame = group_metrics(labels, predictions, memberships, n_resamples=0, min_group_size=30)
    groups = [str(g) for g in by_group.index]
    assert _worst(frame, loose, groups) == group  # it is the worst when only its size counts
    chosen = _worst(frame, strict, groups)
    assert chosen != group and bool(by_group.loc[chosen, "entered"])
    with pytest.raises(DataError, match="min_positives"):
        _worst(frame, strict, [str(g) for g in thin])
