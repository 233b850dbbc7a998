"""SBIC dev file on the real data: per-post aggregation, target rule, deterministic split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.sbic import load_sbic, normalise_group


@pytest.fixture(scope="module")
def sbic(data_dir: Path) -> GroupedTextDataset:
    return load_sbic(data_dir)


def test_posts_and_split_sizes(sbic: GroupedTextDataset) -> None:
    # SOURCES.md: 16,738 annotation rows over 4,673 posts; 7 posts have no offensiveYN answer at all.
    sizes = {s: len(sbic[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 4673 - 7
    assert sizes == {"train": 3262, "val": 711, "test": 693}
    assert "16738 annotation rows over 4673 posts; 7 posts dropped" in sbic.notes[0]
    assert {s: int(sbic[s].labels.sum()) for s in sbic.splits} == {"train": 1815, "val": 391, "test": 406}
    ids = [i for s in sbic.splits.values() for i in s.ids]
    assert len(set(ids)) == len(ids)
    assert sbic.provenance["sbic/SBFv2.dev.csv.gz"] == (
        "b5869c6118970f0c4fb151a22b68c9e6d427e44a9245dbe3ff8847afd2d895ca"
    )


def test_split_is_deterministic(sbic: GroupedTextDataset, data_dir: Path) -> None:
    again = load_dataset("sbic", data_dir)
    assert all(again[s].ids == sbic[s].ids for s in ("train", "val", "test"))


def test_groups_by_majority_of_annotators(sbic: GroupedTextDataset, data_dir: Path) -> None:
    assert set(sbic["train"].attributes) == {
        "body",
        "culture",
        "disabled",
        "gender",
        "race",
        "social",
        "victim",
    }
    assert int(sbic["train"].in_group("race", "black folks").sum()) == 409
    assert int(sbic["test"].in_group("gender", "women").sum()) == 54
    # a looser rule (any annotator) can only add memberships
    loose = load_sbic(data_dir, min_target_share=0.0)
    strict_n = sum(int(sbic[s].membership("race").to_numpy().sum()) for s in sbic.splits)
    loose_n = sum(int(loose[s].membership("race").to_numpy().sum()) for s in loose.splits)
    assert loose_n > strict_n
    targeted = np.zeros(len(sbic["train"]), dtype=bool)
    for attribute in sbic["train"].attributes:
        targeted |= sbic["train"].membership(attribute).any(axis=1).to_numpy()
    assert sbic["train"].labels[targeted].mean() > 0.95  # SBIC only asks for targets of offensive posts


def test_normalise_group() -> None:
    assert normalise_group("  Black   Folks ") == "black folks"
