"""Group-balanced weights and Group DRO: exact weights on fixtures, a toy with a known minimax answer,
and both objectives through the training loop and cache on a tiny random BERT."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
)

from fairmerge.data import TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.models import load_classifier, load_processor
from fairmerge.training import TrainConfig, TrainingCache, fit, make_base_checkpoint, train_fft
from fairmerge.training.group_objectives import (
    UNGROUPED,
    GroupDRO,
    GroupObjective,
    group_balanced_weights,
    training_groups,
)

CONFIG = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3)


def _split(race: list[set[str]]) -> TextSplit:
    n = len(race)
    return TextSplit(
        ids=[str(i) for i in range(n)],
        texts=["x"] * n,
        labels=np.arange(n) % 2,
        groups={"race": [frozenset(r) for r in race]},
    )


# A = {0, 1, 2, 4}, B = {3, 4} (post 4 in both), posts 5 and 6 in no group.
OVERLAPPING = _split([{"A"}, {"A"}, {"A"}, {"B"}, {"A", "B"}, set(), set()])


def test_training_groups_add_the_ungrouped() -> None:
    names, members = training_groups(OVERLAPPING, "race")
    assert names == ["A", "B", UNGROUPED]
    assert members.sum(axis=0).tolist() == [4, 2, 2]
    assert members[4].tolist() == [True, True, False] and members[5].tolist() == [False, False, True]
    names, members = training_groups(_split([{"A"}, {"B"}]), "race")
    assert names == ["A", "B"]  # nobody is ungrouped: no empty group


def test_balanced_weights_by_hand_with_overlap() -> None:
    _, members = training_groups(OVERLAPPING, "race")
    # w_i = Σ_{g∋i} 1/(G·n_g) with G = 3, n = (4, 2, 2), then scaled to mean 1 (the raw sum is 1)
    raw = np.array([1 / 12, 1 / 12, 1 / 12, 1 / 6, 1 / 12 + 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(group_balanced_weights(members), raw * 7)


def test_balanced_loss_is_the_mean_of_group_means() -> None:
    rng = np.random.default_rng(0)
    members = rng.random((200, 5)) < [0.5, 0.2, 0.05, 0.3, 0.0]  # overlapping, one group empty
    members[~members.any(axis=1), 0] = True
    losses = rng.exponential(size=200)
    weights = group_balanced_weights(members)
    group_means = [losses[members[:, g]].mean() for g in range(4)]  # the empty group 4 is left out
    assert np.mean(weights * losses) == pytest.approx(np.mean(group_means))


def test_balanced_sampling_gives_each_group_equal_expected_weight() -> None:
    # Without overlap, drawing examples with probability ∝ w puts 1/G of the draws in every group.
    sizes = [150, 30, 5, 15]
    members = np.zeros((sum(sizes), 4), dtype=bool)
    members[np.arange(sum(sizes)), np.repeat(np.arange(4), sizes)] = True
    probabilities = group_balanced_weights(members) / sum(sizes)
    np.testing.assert_allclose(probabilities @ members, [0.25] * 4)


def test_balanced_weights_need_every_example_in_a_group() -> None:
    with pytest.raises(ConfigError, match="at least one training group"):
        group_balanced_weights(np.array([[True, False], [False, False]]))


def test_dro_weights_follow_the_exponentiated_gradient() -> None:
    members = np.array([[True, False], [True, False], [False, True]])
    dro = GroupDRO(["high", "low"], members, step_size=0.5)
    losses = torch.tensor([1.0, 1.0, 0.2])
    for step in range(1, 4):
        dro.loss(losses, np.arange(3))
        # q_high / q_low = exp(η · Σ_t (loss_high - loss_low)) from uniform
        expected = 1 / (1 + math.exp(-0.5 * step * 0.8))
        assert dro.weights["high"] == pytest.approx(expected)
    dro.loss(losses[[0, 1]], np.array([0, 1]))  # "low" absent from the batch: its loss counts as 0
    assert dro.weights["high"] == pytest.approx(1 / (1 + math.exp(-0.5 * (3 * 0.8 + 1.0))))


def test_dro_finds_the_minimax_point_where_erm_follows_the_majority() -> None:
    # 18 examples want θ = 1, 2 want θ = -1, squared loss: ERM gives the mean 0.8; the worst-group
    # minimiser is the midpoint 0, where both groups' losses are equal and q is uniform.
    targets = torch.tensor([1.0] * 18 + [-1.0] * 2)
    members = np.zeros((20, 2), dtype=bool)
    members[:18, 0] = members[18:, 1] = True
    results = {}
    for robust in (False, True):
        theta = torch.tensor(2.0, requires_grad=True)  # where the minority's loss is the higher
        optimizer = torch.optim.SGD([theta], lr=0.05)
        dro = GroupDRO(["majority", "minority"], members, step_size=0.1)
        for step in range(500):
            losses = (theta - targets) ** 2
            loss = dro.loss(losses, np.arange(20)) if robust else losses.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if robust and step == 0:
                assert dro.weights["minority"] > 0.5  # q moves toward the group with the higher loss
        results[robust] = theta.item()
    assert results[False] == pytest.approx(0.8, abs=1e-4)
    assert results[True] == pytest.approx(0.0, abs=1e-3)
    assert dro.weights["minority"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weighting": "fair"}, "group weighting must be one of"),
        ({"attribute": ""}, "needs an attribute name"),
        ({"dro_step_size": 0.0}, "dro_step_size must be a finite number > 0"),
        ({"dro_step_size": float("nan")}, "dro_step_size must be a finite number > 0"),
    ],
)
def test_bad_objectives_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"weighting": "group_dro", "attribute": "race", **kwargs}
    with pytest.raises(ConfigError, match=message):
        GroupObjective(**values)  # type: ignore[arg-type]


def test_group_objectives_train_and_cache_apart_from_plain_fft(tmp_path: Path) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(save_tiny_bert(tmp_path / "bert")), seed=0, cache=cache)
    dataset = tiny_dataset()
    entries = {
        name: train_fft(
            dataset, base_dir=base, config=CONFIG, cache=cache, progress=False, objective=objective
        )
        for name, objective in [
            ("fft", None),
            ("balanced", GroupObjective("balanced", "race")),
            ("group_dro", GroupObjective("group_dro", "race", dro_step_size=0.05)),
        ]
    }
    assert len(set(entries.values())) == 3
    metas = {name: json.loads((path / "meta.json").read_text()) for name, path in entries.items()}
    # a plain fine-tune's key has exactly the parts it had before group objectives existed
    assert set(metas["fft"]["key_parts"]) == {
        "kind", "method", "base_sha256", "data", "config", "trainer", "runtime", "versions"
    }  # fmt: skip
    assert "group_dro_weights" not in metas["fft"] and "group_dro_weights" not in metas["balanced"]
    assert metas["balanced"]["key_parts"]["objective"] == {"weighting": "balanced", "attribute": "race"}
    assert metas["group_dro"]["key_parts"]["objective"]["dro_step_size"] == 0.05
    # the balanced loss weights are part of the examples' digest
    digests = {name: meta["key_parts"]["data"]["train_sha256"] for name, meta in metas.items()}
    assert digests["balanced"] != digests["fft"] == digests["group_dro"]
    q = metas["group_dro"]["group_dro_weights"]
    assert set(q) == {"A", "B", UNGROUPED} and sum(q.values()) == pytest.approx(1.0)
    assert q != pytest.approx({g: 1 / 3 for g in q})  # the weights moved during training
    again = train_fft(
        dataset,
        base_dir=base,
        config=CONFIG,
        cache=cache,
        progress=False,
        objective=GroupObjective("group_dro", "race", dro_step_size=0.05),
    )
    assert again == entries["group_dro"]


def test_dro_on_one_group_is_plain_mean_loss() -> None:
    members = np.ones((4, 1), dtype=bool)
    losses = torch.tensor([0.3, 1.2, 0.1, 2.0], requires_grad=True)
    loss = GroupDRO(["all"], members).loss(losses, np.arange(4))
    assert loss.item() == pytest.approx(losses.mean().item())


def test_fit_rejects_a_group_dro_that_does_not_fit_the_examples(tmp_path: Path) -> None:
    source = str(save_tiny_bert(tmp_path / "bert"))
    train, val = tiny_dataset()["train"], tiny_dataset()["val"]
    names, members = training_groups(train, "race")
    model, tokenizer = load_classifier(source), load_processor(source)
    with pytest.raises(DataError, match=r"Group DRO has 10 rows for 96 examples"):
        fit(model, tokenizer, train, val, CONFIG, group_dro=GroupDRO(names, members[:10]), progress=False)
    with pytest.raises(ConfigError, match="Group DRO takes no per-example loss weights"):
        dro = GroupDRO(names, members)
        fit(model, tokenizer, train, val, CONFIG, weights=np.ones(96), group_dro=dro, progress=False)
