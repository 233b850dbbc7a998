"""Intersectional attributes: memberships are the AND of their attributes', on real and hand-made splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fairmerge.data import GroupedTextDataset, TextSplit, load_dataset
from fairmerge.data.intersections import (
    add_intersections,
    intersection_qualification,
    qualification_table,
    with_intersections,
)
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import MIN_GROUP_SIZE, MIN_NEGATIVES, MIN_POSITIVES

RACE_GENDER = ["race", "gender"]


@pytest.fixture(scope="module")
def hatexplain(data_dir: Path) -> GroupedTextDataset:
    return load_dataset("hatexplain", data_dir)


@pytest.fixture(scope="module")
def utkface(data_dir: Path) -> GroupedTextDataset:
    return load_dataset("utkface", data_dir)


def _assert_and_of_attributes(split: TextSplit) -> None:
    extended = add_intersections(split, [RACE_GENDER])
    for race in split.group_names("race"):
        for gender in split.group_names("gender"):
            expected = split.in_group("race", race) & split.in_group("gender", gender)
            got = extended.in_group("race×gender", f"{race}×{gender}")
            np.testing.assert_array_equal(got, expected, err_msg=f"{race}×{gender}")
    in_any = np.array([bool(m) for m in extended.groups["race×gender"]])
    race, gender = (split.groups[a] for a in RACE_GENDER)
    has_both = np.array([bool(r) and bool(g) for r, g in zip(race, gender, strict=True)])
    np.testing.assert_array_equal(in_any, has_both)


def test_hatexplain_memberships_are_the_and_of_race_and_gender(hatexplain: GroupedTextDataset) -> None:
    test = hatexplain["test"]
    races = test.groups["race"]
    # the real split has both cases the rule must handle: several races in one post, and none
    assert any(len(m) > 1 for m in races) and any(not m for m in races)
    _assert_and_of_attributes(test)


def test_utkface_memberships_are_the_and_of_race_and_gender(utkface: GroupedTextDataset) -> None:
    _assert_and_of_attributes(utkface["test"])


def test_overlapping_and_missing_groups_on_a_fixture() -> None:
    split = TextSplit(
        ids=["a", "b", "c", "d"],
        texts=["w", "x", "y", "z"],
        labels=np.array([1, 0, 1, 0]),
        groups={
            "race": [frozenset({"Asian", "Black"}), frozenset({"Asian"}), frozenset(), frozenset({"White"})],
            "gender": [
                frozenset({"female"}),
                frozenset({"female", "male"}),
                frozenset({"male"}),
                frozenset(),
            ],
        },
    )
    extended = add_intersections(split, [RACE_GENDER])
    assert extended.groups["race×gender"] == [
        frozenset({"Asian×female", "Black×female"}),
        frozenset({"Asian×female", "Asian×male"}),
        frozenset(),  # no race: in no combination
        frozenset(),  # no gender
    ]
    _assert_and_of_attributes(split)
    assert "race×gender" not in split.groups  # the original is untouched


def test_with_intersections_copies_the_dataset(utkface: GroupedTextDataset) -> None:
    extended = with_intersections(utkface, [RACE_GENDER])
    assert extended.attributes == ["race", "gender", "race×gender"]
    assert utkface.attributes == ["race", "gender"]
    assert extended.provenance == utkface.provenance and extended.name == utkface.name
    assert extended["train"].ids == utkface["train"].ids
    assert extended.notes[-1].startswith("intersectional attribute race×gender")
    assert with_intersections(utkface, []) is utkface


@pytest.mark.parametrize("name", ["hatexplain", "utkface"])
def test_qualification_applies_the_attribute_rules(
    name: str, hatexplain: GroupedTextDataset, utkface: GroupedTextDataset
) -> None:
    split = {"hatexplain": hatexplain, "utkface": utkface}[name]["test"]
    table = intersection_qualification(split, RACE_GENDER)
    combos = [f"{r}×{g}" for r in split.group_names("race") for g in split.group_names("gender")]
    assert table["group"].tolist() == combos  # every combination, including those nobody has
    for row in table.itertuples():
        race, gender = row.group.split("×")
        mask = split.in_group("race", race) & split.in_group("gender", gender)
        positives = int(split.labels[mask].sum())
        assert (row.n, row.positives, row.negatives) == (mask.sum(), positives, mask.sum() - positives)
        assert row.dpd == (row.n >= MIN_GROUP_SIZE)
        assert row.tpr_gap == (row.positives >= MIN_POSITIVES)
        assert row.fpr_gap == (row.negatives >= MIN_NEGATIVES)
        assert (row.reason == "") == (row.dpd and row.tpr_gap and row.fpr_gap)
        if not row.tpr_gap:
            assert f"{row.positives} positives < min_positives {MIN_POSITIVES}" in row.reason


def test_utkface_others_female_lacks_positives(utkface: GroupedTextDataset) -> None:
    table = intersection_qualification(utkface["test"], RACE_GENDER, min_positives=19).set_index("group")
    assert table.loc["Others×female", "reason"] == "18 positives < min_positives 19"
    assert table["dpd"].all()


def test_qualification_table_covers_every_split(utkface: GroupedTextDataset) -> None:
    table = qualification_table(utkface, [RACE_GENDER], min_positives=19)
    assert table.columns[0] == "split" and table["split"].unique().tolist() == ["train", "val", "test"]
    test = table[table["split"] == "test"].drop(columns="split").reset_index(drop=True)
    assert test.equals(intersection_qualification(utkface["test"], RACE_GENDER, min_positives=19))
    assert len(table) == 3 * 10 and qualification_table(utkface, []).empty


@pytest.mark.parametrize(
    ("intersection", "message"),
    [
        (["race"], "two or more distinct attributes"),
        (["race", "race"], "two or more distinct attributes"),
        ("race", "two or more distinct attributes"),
        (["race", "age"], r"unknown attribute\(s\) \['age'\]"),
    ],
)
def test_bad_intersections_are_config_errors(
    utkface: GroupedTextDataset, intersection: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        add_intersections(utkface["test"], [intersection])


def test_an_intersection_declared_twice_is_an_error(utkface: GroupedTextDataset) -> None:
    with pytest.raises(ConfigError, match="declared twice"):
        add_intersections(utkface["test"], [RACE_GENDER, RACE_GENDER])
