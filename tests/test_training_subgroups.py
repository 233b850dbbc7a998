"""Subgroup training sets (sizes and class balance, on hand-made and real HateXplain data) and fine-tunes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
)

from fairmerge.data import load_dataset
from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError
from fairmerge.training import (
    TrainConfig,
    TrainingCache,
    make_base_checkpoint,
    subgroup_training_set,
    train_subgroups,
)
from fairmerge.training.subgroups import background_mask, subgroup_validation_set


def _hand_split() -> TextSplit:
    """50 posts: A 10 (8 hateful), B 5 (1), gender-only 5 (0), background 30 (6) -> π = 15/50 = 0.3."""
    labels = [1] * 8 + [0] * 2 + [1] + [0] * 4 + [0] * 5 + [1] * 6 + [0] * 24
    race = [frozenset({"A"})] * 10 + [frozenset({"B"})] * 5 + [frozenset()] * 35
    gender = [frozenset()] * 15 + [frozenset({"Women"})] * 5 + [frozenset()] * 30
    return TextSplit(
        ids=[str(i) for i in range(50)],
        texts=[f"post {i}" for i in range(50)],
        labels=np.array(labels),
        groups={"race": race, "gender": gender},
    )


def _weighted_rate(split: TextSplit, weights: np.ndarray | None) -> float:
    w = np.ones(len(split)) if weights is None else weights
    return float((w * split.labels).sum() / w.sum())


def test_strategies_follow_the_documented_rules() -> None:
    split = _hand_split()
    assert background_mask(split).sum() == 30  # gender-only posts are not background
    targeted, weights = subgroup_training_set(split, "race", "A", "targeted")
    assert (len(targeted), weights) == (10, None)
    # A: rate 0.8 > 0.3 -> add round(8 / 0.3 - 10) = 17 background negatives
    mixed, weights = subgroup_training_set(split, "race", "A", "targeted+background", seed=0)
    assert weights is None and len(mixed) == 27 and mixed.labels.sum() == 8
    added = [i for i in mixed.ids if int(i) >= 20]
    assert len(added) == 17 and all(split.labels[int(i)] == 0 for i in added)
    assert mixed.ids != subgroup_training_set(split, "race", "A", "targeted+background", seed=1)[0].ids
    # B: rate 0.2 < 0.3 -> add round((0.3 * 5 - 1) / 0.7) = 1 background positive
    mixed_b, _ = subgroup_training_set(split, "race", "B", "targeted+background", seed=0)
    assert len(mixed_b) == 6 and mixed_b.labels.sum() == 2
    balanced, weights = subgroup_training_set(split, "race", "A", "balanced")
    assert len(balanced) == 10 and weights is not None
    assert set(np.round(weights, 6)) == {0.375, 3.5} and _weighted_rate(balanced, weights) == pytest.approx(
        0.3
    )
    everything, weights = subgroup_training_set(split, "race", "A", "leave-one-in")
    assert len(everything) == 50 and weights is not None
    assert weights[:10].sum() == pytest.approx(weights[10:].sum())  # the group carries half the weight
    with pytest.raises(ConfigError, match="unknown subgroup strategy"):
        subgroup_training_set(split, "race", "A", "oversample")


def test_background_shortage_takes_all_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    split = _hand_split()
    labels = split.labels.copy()
    labels[15:20], labels[20:26] = 1, 0  # π = 14/50: B (0.2) needs a hateful background post; none left
    split = TextSplit(split.ids, split.texts, labels, split.groups)
    with caplog.at_level(logging.WARNING, logger="fairmerge.training"):
        mixed, _ = subgroup_training_set(split, "race", "B", "targeted+background")
    assert len(mixed) == 5
    assert "race/B" in caplog.text and "only 0 exist" in caplog.text


@pytest.fixture(scope="module")
def hatexplain(data_dir: Path) -> GroupedTextDataset:
    return load_dataset("hatexplain", data_dir)


@pytest.mark.parametrize("attribute", ["race", "gender"])
def test_strategy_sizes_and_balance_on_hatexplain(hatexplain: GroupedTextDataset, attribute: str) -> None:
    train = hatexplain["train"]
    pi = train.labels.mean()
    background = background_mask(train)
    summary = hatexplain.summary().query("split == 'train' and attribute == @attribute").set_index("group")
    for group in train.group_names(attribute):
        n, p = int(summary.loc[group, "n"]), int(summary.loc[group, "positives"])
        if n < 50:
            continue
        targeted, _ = subgroup_training_set(train, attribute, group, "targeted")
        assert len(targeted) == n
        mixed, _ = subgroup_training_set(train, attribute, group, "targeted+background", seed=0)
        extra = mixed.subset(~np.isin(mixed.ids, targeted.ids))
        assert background[np.isin(train.ids, extra.ids)].all()
        needed_class = 0 if p / n > pi else 1
        wanted = round(p / pi - n) if needed_class == 0 else round((pi * n - p) / (1 - pi))
        available = int((background & (train.labels == needed_class)).sum())
        assert len(extra) == min(wanted, available) and (extra.labels == needed_class).all()
        if wanted <= available:
            assert abs(mixed.labels.mean() - pi) <= 1 / len(mixed)
        balanced, weights = subgroup_training_set(train, attribute, group, "balanced")
        assert len(balanced) == n and _weighted_rate(balanced, weights) == pytest.approx(pi)
    if attribute == "race":  # targeted posts skew hateful: African 65 %, far above π ≈ 0.31
        assert summary.loc["African", "positive_rate"] > 2 * pi


def test_train_subgroups_skips_small_groups_and_validates_on_the_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TrainingCache(tmp_path / "cache")
    base = make_base_checkpoint(str(save_tiny_bert(tmp_path / "tiny")), seed=0, cache=cache)
    dataset = tiny_dataset(n_train=150, n_val=66)  # A, B: 50 train and 22 val posts each
    dataset.splits["train"].groups["race"][0] = frozenset({"C"})  # a group of one
    config = TrainConfig(epochs=1, batch_size=16)
    with caplog.at_level(logging.WARNING, logger="fairmerge.training"):
        paths = train_subgroups(
            dataset,
            ["race"],
            base_dir=base,
            config=config,
            strategy="balanced",
            min_train_size=20,
            cache=cache,
        )
    assert set(paths) == {("race", "A"), ("race", "B")}
    assert "skipping race/C: 1 train posts < min_train_size 20" in caplog.text
    meta = json.loads((paths[("race", "A")] / "meta.json").read_text())
    assert meta["key_parts"]["data"]["strategy"] == "balanced"
    assert meta["n_train"] == 49 and meta["val"]["n"] == 22 and "race/A posts" in meta["val"]["note"]
    again = train_subgroups(
        dataset, ["race"], base_dir=base, config=config, strategy="balanced", min_train_size=20, cache=cache
    )
    assert again == paths  # cached
    val, note = subgroup_validation_set(dataset["val"].subset(np.arange(30)), "race", "A")
    assert len(val) == 30 and "whole val split" in note


def test_unknown_subgroup_method_is_rejected_before_any_work(tmp_path: Path) -> None:
    from fairmerge.training import TrainConfig, TrainingCache, train_subgroups

    with pytest.raises(ConfigError, match="method"):
        train_subgroups(
            None,  # type: ignore[arg-type]
            ["race"],
            base_dir=tmp_path,
            config=TrainConfig(),
            cache=TrainingCache(tmp_path),
            method="qlora",  # type: ignore[arg-type]
        )
