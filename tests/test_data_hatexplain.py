"""HateXplain on the real files: exact counts from SOURCES.md, gold / weak groups, the weak join."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.hatexplain import (
    ATTRIBUTES,
    TARGET_ATTRIBUTES,
    WeakJoin,
    join_key,
    load_hatexplain,
    mbib_clean,
    weak_join_report,
)
from fairmerge.errors import ConfigError, DataError

# SOURCES.md: posts with a target named by >= 2 of 3 annotators (test / val).
GOLD_COUNTS = {
    "race": {
        "African": (315, 310),
        "Arab": (67, 77),
        "Asian": (36, 34),
        "Caucasian": (52, 48),
        "Hispanic": (35, 35),
    },
    "gender": {"Women": (147, 151), "Men": (6, 6)},
    "religion": {"Islam": (194, 204), "Jewish": (188, 186)},
    "sexual_orientation": {"Homosexual": (182, 182)},
    "other": {"Refugee": (85, 77)},
}


@pytest.fixture(scope="module")
def hate(data_dir: Path) -> GroupedTextDataset:
    return load_hatexplain(data_dir)


@pytest.fixture(scope="module")
def join(data_dir: Path) -> WeakJoin:
    return weak_join_report(data_dir)


def test_official_split_sizes_and_hate_labels(hate: GroupedTextDataset) -> None:
    dataset = hate
    assert {s: len(dataset[s]) for s in ("train", "val", "test")} == {
        "train": 15383,
        "val": 1922,
        "test": 1924,
    }
    assert {s: int(dataset[s].labels.sum()) for s in ("train", "val", "test")} == {
        "train": 4748,
        "val": 593,
        "test": 594,
    }
    assert dataset.label_scheme == "hate"


def test_toxic_scheme_counts_offensive_as_positive(data_dir: Path) -> None:
    dataset = load_dataset("hatexplain", data_dir, label_scheme="toxic")
    # hatespeech + offensive (SOURCES.md: test 594 + 548, val 593 + 548, train 4748 + 4384)
    assert [int(dataset[s].labels.sum()) for s in ("train", "val", "test")] == [9132, 1141, 1142]
    african = dataset["test"].in_group("race", "African")
    assert int(african.sum()) == 315 and int(dataset["test"].labels[african].sum()) == 226 + 68


def test_gold_group_counts_match_sources(hate: GroupedTextDataset) -> None:
    dataset = hate
    for attribute, groups in GOLD_COUNTS.items():
        for group, (n_test, n_val) in groups.items():
            assert int(dataset["test"].in_group(attribute, group).sum()) == n_test, (attribute, group)
            assert int(dataset["val"].in_group(attribute, group).sum()) == n_val, (attribute, group)
    assert "Indigenous" not in dataset["test"].group_names("race")
    african = dataset["test"].in_group("race", "African")
    assert int(dataset["test"].labels[african].sum()) == 226  # 226 hate, 68 offensive, 21 normal


def test_every_attribute_present_and_every_name_mapped(hate: GroupedTextDataset) -> None:
    dataset = hate
    for split in dataset.splits.values():
        assert split.attributes == list(ATTRIBUTES)
        for attribute in ATTRIBUTES:
            for name in split.group_names(attribute):
                assert TARGET_ATTRIBUTES[name] == attribute
                assert name != "None"
    # overlapping membership: some test posts target two races
    races = dataset["test"].membership("race")
    assert (races.sum(axis=1) >= 2).any()


def test_weak_flag_only_on_train(hate: GroupedTextDataset) -> None:
    dataset = hate
    assert dataset["train"].weak_groups and not dataset["val"].weak_groups and not dataset["test"].weak_groups
    summary = dataset.summary()
    train_groups = summary[(summary.split == "train") & (summary.attribute != "all")]
    assert train_groups.weak_groups.all()
    assert not summary[summary.split == "test"].weak_groups.any()
    assert int(dataset["train"].in_group("race", "African").sum()) > 2000


def test_weak_join_beats_naive_baseline(join: WeakJoin) -> None:
    matched, total = join.coverage["train"]
    assert total == 15383
    assert matched / total > 0.99
    assert 0.55 < join.naive_coverage["train"] < 0.65  # the naive join SOURCES.md warns about
    assert matched / total > join.naive_coverage["train"] + 0.3
    assert join.coverage["val"] == (1922, 1922) and join.coverage["test"] == (1924, 1924)
    assert join.ambiguous["train"] == total - matched


def test_weak_precision_recall_against_gold(join: WeakJoin) -> None:
    quality = join.quality.set_index("group")
    # SOURCES.md: African 0.83/0.94, Hispanic 0.78/0.64, Asian 0.64/0.67, Women 0.59/0.88, Men 0.04/1.00
    for group, (precision, recall) in {
        "African": (0.83, 0.94),
        "Hispanic": (0.78, 0.64),
        "Asian": (0.64, 0.67),
        "Women": (0.59, 0.88),
        "Men": (0.04, 1.00),
    }.items():
        assert quality.loc[group, "precision"] == pytest.approx(precision, abs=0.006), group
        assert quality.loc[group, "recall"] == pytest.approx(recall, abs=0.006), group
    assert quality.loc["Men", "gold_n"] == 12 and quality.loc["Men", "weak_n"] == 271


def test_notes_and_provenance(hate: GroupedTextDataset) -> None:
    dataset = hate
    text = "\n".join(dataset.notes)
    assert "coverage train 15362/15383" in text and "naive" in text
    assert "919" in text and "dropped from the splits: train 0, val 0, test 0" in text
    assert "3846/3846" in text
    assert "African 0.83/0.94" in text
    assert dataset.provenance["hatexplain/mbib_092-HateXplain.csv.gz"] == (
        "dc553faf1b6ed7a87a7f643c8b96d8db65b20d4ac2cbe8e286522518e768517c"
    )
    assert dataset.provenance["hatexplain/post_id_divisions.json"] == (
        "c2fb0d89862e7897b11ea3e9380753f15a793482b4b70ad0532dfb1212212835"
    )
    assert len(dataset.provenance) == 5


def test_join_key_applies_mbib_cleaning() -> None:
    assert mbib_clean("<user> hi @bob, see https://x.co/a 😂!!") == " user hi see "
    assert join_key("<user> Hi  there 😂 ❤️ #tag") == join_key("user hi there tag")
    assert join_key("a linebreak b") == "a b"
    assert join_key("caf\u00e9") == "caf"  # MBIB drops non-ASCII letters; so must the key


def test_bad_label_scheme_and_options(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="label_scheme"):
        load_hatexplain(data_dir, label_scheme="offensive")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="accepts"):
        load_dataset("hatexplain", data_dir, scheme="hate")
    with pytest.raises(DataError, match="available"):
        load_dataset("hatexplian", data_dir)


def test_missing_file_names_file_place_and_source(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "hatexplain").mkdir()
    for file in (data_dir / "hatexplain").iterdir():
        if not file.name.startswith("weak_targets"):
            shutil.copy(file, tmp_path / "hatexplain" / file.name)
    with pytest.raises(DataError) as info:
        load_hatexplain(tmp_path)
    message = str(info.value)
    assert "weak_targets_final_hateXplain.csv.gz" in message
    assert str(tmp_path) in message and "netGed/WebScience24" in message
