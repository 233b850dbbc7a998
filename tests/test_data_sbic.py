"""SBIC on the real files: the official aggregated dev/test split (default) and the raw dev file
split by post hash (split_source=dev-hash); counts checked against SOURCES.md."""

from __future__ import annotations

import ast
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.sbic import AGG_DEV_FILE, AGG_TEST_FILE, load_sbic, normalise_group, post_id, split_groups
from fairmerge.data.splits import hash_unit
from fairmerge.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def official(data_dir: Path) -> GroupedTextDataset:
    return load_sbic(data_dir)


@pytest.fixture(scope="module")
def sbic(data_dir: Path) -> GroupedTextDataset:
    """The loader as it was before the official files: raw dev annotations, majority targets."""
    return load_sbic(data_dir, split_source="dev-hash", min_target_share=0.5)


def test_official_files_are_the_ones_sources_md_names(data_dir: Path) -> None:
    # SOURCES.md: sha256 of the uncompressed official files
    expected = {
        AGG_DEV_FILE: "b8fcf3a992a0de47c41191d00058c659b3e2744e2d051bbbb23d458deb5b35a2",
        AGG_TEST_FILE: "12982a534e60a2275f134d07038d1bfd46b252835f269959ec7ed6216f5ee53a",
    }
    for relative, digest in expected.items():
        assert hashlib.sha256(gzip.decompress((data_dir / relative).read_bytes())).hexdigest() == digest


def test_official_split_sizes_and_labels(official: GroupedTextDataset, data_dir: Path) -> None:
    # SOURCES.md: dev 4,666 / test 4,691 posts; offensiveYN >= 0.5 in 2,612 / 2,710
    assert len(official["test"]) == 4691 and int(official["test"].labels.sum()) == 2710
    dev = pd.read_csv(data_dir / AGG_DEV_FILE)
    test = pd.read_csv(data_dir / AGG_TEST_FILE)
    shared = set(dev["post"]) & set(test["post"])
    assert len(shared) == 10  # posts in both official files: dropped from train/val
    assert (
        "dev 4666 posts, test 4691 posts; 10 dev posts that are also in the test file dropped"
        in (official.notes[0])
    )
    assert {s: len(official[s]) for s in official.splits} == {"train": 3725, "val": 931, "test": 4691}
    assert len(official["train"]) + len(official["val"]) == 4666 - 10
    dropped_positive = int((dev.loc[dev["post"].isin(shared), "offensiveYN"] >= 0.5).sum())
    assert int(official["train"].labels.sum()) + int(official["val"].labels.sum()) == 2612 - dropped_positive
    assert {s: int(official[s].labels.sum()) for s in official.splits} == {
        "train": 2067,
        "val": 540,
        "test": 2710,
    }
    ids = [i for s in official.splits.values() for i in s.ids]
    assert len(set(ids)) == len(ids) == 4666 - 10 + 4691
    assert official["test"].ids == [post_id(p) for p in test["post"]]  # every test post, in file order
    assert set(official.provenance) == {AGG_DEV_FILE, AGG_TEST_FILE}


def test_official_train_val_rule_is_the_documented_hash(official: GroupedTextDataset) -> None:
    for split, expected in (("train", True), ("val", False)):
        assert all((hash_unit(text) < 0.8) == expected for text in official[split].texts)
    assert "80%/20% by sha256 of the post text" in official.notes[3]


def test_official_groups_any_annotator(official: GroupedTextDataset, data_dir: Path) -> None:
    test = pd.read_csv(data_dir / AGG_TEST_FILE)
    # SOURCES.md: targetCategory contains race in 819 test posts, gender in 503
    assert int(test["targetCategory"].str.contains("'race'|\"race\"").sum()) == 819
    assert int(test["targetCategory"].str.contains("'gender'|\"gender\"").sum()) == 503
    assert set(official["test"].attributes) == {
        "body",
        "culture",
        "disabled",
        "gender",
        "race",
        "social",
        "victim",
    }
    # measured: the group -> attribute map differs a little from the posts' own category lists
    # (a post listing race may name a group whose usual category is culture, and vice versa)
    race = {s: int(official[s].membership("race").any(axis=1).sum()) for s in official.splits}
    gender = {s: int(official[s].membership("gender").any(axis=1).sum()) for s in official.splits}
    assert race == {"train": 601, "val": 146, "test": 791}
    assert gender == {"train": 384, "val": 102, "test": 506}
    assert int(official["test"].in_group("race", "black folks").sum()) == 676
    assert int(official["test"].in_group("gender", "women").sum()) == 415
    # any named target counts: every test post with an answer naming 'black folks' is in the group
    named = [split_groups(ast.literal_eval(cell)) for cell in test["targetMinority"]]
    assert sum("black folks" in groups for groups in named) == 676
    assert sum("women" in groups for groups in named) == 415


def test_aggregated_lists_are_distinct_answers_without_counts(data_dir: Path) -> None:
    # why the official rule is "any annotator": each dev post's targetMinority list is exactly the
    # set of distinct answers in the raw dev annotations, each listed once, whatever its count
    agg = pd.read_csv(data_dir / AGG_DEV_FILE)
    raw = pd.read_csv(data_dir / "sbic/SBFv2.dev.csv.gz", usecols=["post", "targetMinority"])
    answers = raw.dropna().groupby("post")["targetMinority"].agg(set).to_dict()
    lists = [ast.literal_eval(cell) for cell in agg["targetMinority"]]
    assert all(len(set(entries)) == len(entries) for entries in lists)
    assert all(
        set(entries) == answers.get(post, set()) for post, entries in zip(agg["post"], lists, strict=True)
    )
    counts = raw.dropna().groupby(["post", "targetMinority"]).size()
    assert int((counts > 1).sum()) > 500  # many answers were given by several annotators


def test_official_attributes_agree_with_raw_row_level_map(
    official: GroupedTextDataset, sbic: GroupedTextDataset
) -> None:
    def attribute_map(dataset: GroupedTextDataset) -> dict[str, str]:
        return {
            g: a
            for split in dataset.splits.values()
            for a in split.attributes
            for gs in split.groups[a]
            for g in gs
        }

    ours, raw = attribute_map(official), attribute_map(sbic)
    for group in ("black folks", "asian folks", "latino/latina folks", "women", "gay men", "jewish folks"):
        assert ours[group] == raw[group]
    assert ours["jewish folks"] == "culture" and ours["asian folks"] == "race"


def test_official_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="min_target_share must be 0 with split_source=official"):
        load_sbic(data_dir, min_target_share=0.5)
    with pytest.raises(ConfigError, match="split_source must be one of"):
        load_dataset("sbic", data_dir, split_source="train")
    with pytest.raises(ConfigError, match="val_fraction"):
        load_sbic(data_dir, val_fraction=1.0)
    with pytest.raises(ConfigError, match="val_fraction applies to split_source=official"):
        load_sbic(data_dir, split_source="dev-hash", val_fraction=0.3)
    (tmp_path / "sbic").mkdir()
    with pytest.raises(DataError, match=r"missing data file 'sbic/SBIC.v2.agg.dev.csv.gz'"):
        load_sbic(tmp_path)
    shutil.copyfile(data_dir / AGG_DEV_FILE, tmp_path / AGG_DEV_FILE)
    pd.read_csv(data_dir / AGG_TEST_FILE).drop(columns=["targetMinority"]).to_csv(tmp_path / AGG_TEST_FILE)
    with pytest.raises(DataError) as info:
        load_sbic(tmp_path)
    assert AGG_TEST_FILE in str(info.value) and "['targetMinority']" in str(info.value)
    assert "\n" not in str(info.value)
    broken = pd.read_csv(data_dir / AGG_TEST_FILE)
    broken.loc[3, "targetMinority"] = "[black folks"
    broken.to_csv(tmp_path / AGG_TEST_FILE, index=False)
    with pytest.raises(DataError, match=r"column 'targetMinority', row 5: expected a list of strings"):
        load_sbic(tmp_path)


def test_dev_hash_posts_and_split_sizes(sbic: GroupedTextDataset) -> None:
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


def test_split_is_deterministic(
    official: GroupedTextDataset, sbic: GroupedTextDataset, data_dir: Path
) -> None:
    again = load_dataset("sbic", data_dir)
    assert all(again[s].ids == official[s].ids for s in ("train", "val", "test"))
    again = load_dataset("sbic", data_dir, split_source="dev-hash", min_target_share=0.5)
    assert all(again[s].ids == sbic[s].ids for s in ("train", "val", "test"))


def test_dev_hash_groups_by_majority_of_annotators(sbic: GroupedTextDataset, data_dir: Path) -> None:
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
    loose = load_sbic(data_dir, split_source="dev-hash", min_target_share=0.0)
    strict_n = sum(int(sbic[s].membership("race").to_numpy().sum()) for s in sbic.splits)
    loose_n = sum(int(loose[s].membership("race").to_numpy().sum()) for s in loose.splits)
    assert loose_n > strict_n
    targeted = np.zeros(len(sbic["train"]), dtype=bool)
    for attribute in sbic["train"].attributes:
        targeted |= sbic["train"].membership(attribute).any(axis=1).to_numpy()
    assert sbic["train"].labels[targeted].mean() > 0.95  # SBIC only asks for targets of offensive posts


def test_normalise_group() -> None:
    assert normalise_group("  Black   Folks ") == "black folks"
