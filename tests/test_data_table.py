"""The generic CSV / Parquet loader: column mapping, multi-valued groups, labels, errors, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.data import load_dataset, read_table_split
from fairmerge.data.splits import hash_split
from fairmerge.data.table import load_table_dataset
from fairmerge.errors import DataError

ROWS = pd.DataFrame(
    {
        "post": ["a", "b", "c", "d", "e", "f"],
        "verdict": ["hate", "ok", "hate", "ok", "ok", "hate"],
        "race": ["black|asian", "", "white", None, "black", " asian | white "],
        "gender": ["women", "men", "", "women", None, "women"],
        "uid": ["007", "008", "009", "010", "011", "012"],
    }
)


def test_multi_valued_groups_and_positive_label(tmp_path: Path) -> None:
    file = tmp_path / "posts.csv"
    ROWS.to_csv(file, index=False)
    split = read_table_split(
        file,
        text_col="post",
        label_col="verdict",
        group_cols={"race": "race", "gender": "gender"},
        positive="hate",
        group_sep="|",
        id_col="uid",
    )
    assert split.ids[0] == "007"  # ids keep their spelling
    assert split.labels.tolist() == [1, 0, 1, 0, 0, 1]
    assert split.groups["race"] == [
        frozenset({"black", "asian"}),
        frozenset(),
        frozenset({"white"}),
        frozenset(),
        frozenset({"black"}),
        frozenset({"asian", "white"}),
    ]
    assert split.in_group("race", "asian").tolist() == [True, False, False, False, False, True]
    assert split.membership("gender").sum().to_dict() == {"men": 1, "women": 3}


def test_single_valued_cells_keep_separator_characters(tmp_path: Path) -> None:
    file = tmp_path / "posts.csv"
    ROWS.to_csv(file, index=False)
    split = read_table_split(
        file, text_col="post", label_col="verdict", group_cols={"race": "race"}, positive="hate"
    )
    assert split.groups["race"][0] == frozenset({"black|asian"})
    assert split.ids == [str(i) for i in range(6)]


def test_parquet_with_binary_and_numeric_labels(tmp_path: Path) -> None:
    file = tmp_path / "posts.parquet"
    frame = ROWS.assign(label=[1, 0, 1, 0, 0, 1], flag=[True, False, True, False, False, True])
    frame.to_parquet(file)
    by_int = read_table_split(file, text_col="post", label_col="label", group_cols={"g": "gender"})
    by_bool = read_table_split(file, text_col="post", label_col="flag", group_cols={"g": "gender"})
    by_value = read_table_split(
        file, text_col="post", label_col="label", group_cols={"g": "gender"}, positive=0
    )
    assert by_int.labels.tolist() == by_bool.labels.tolist() == [1, 0, 1, 0, 0, 1]
    assert by_value.labels.tolist() == [0, 1, 0, 1, 1, 0]


def test_missing_column_names_it_and_lists_columns(tmp_path: Path) -> None:
    file = tmp_path / "posts.csv"
    ROWS.to_csv(file, index=False)
    with pytest.raises(DataError) as info:
        read_table_split(
            file, text_col="text", label_col="verdict", group_cols={"race": "race"}, positive="hate"
        )
    assert "'text'" in str(info.value) and "post" in str(info.value) and "verdict" in str(info.value)


def test_label_errors(tmp_path: Path) -> None:
    file = tmp_path / "posts.csv"
    ROWS.to_csv(file, index=False)
    with pytest.raises(DataError, match="not binary"):
        read_table_split(file, text_col="post", label_col="verdict", group_cols={"race": "race"})
    with pytest.raises(DataError, match="never equals"), pytest.warns(UserWarning, match="never equals"):
        read_table_split(
            file, text_col="post", label_col="verdict", group_cols={"race": "race"}, positive="Hate"
        )
    with pytest.raises(DataError, match="in any split"):
        load_table_dataset(
            path=file,
            split_col=None,
            text_col="post",
            label_col="verdict",
            group_cols="race",
            positive="Hate",
        )
    with pytest.raises(DataError, match="does not exist"):
        read_table_split(
            tmp_path / "nope.csv", text_col="post", label_col="verdict", group_cols={"r": "race"}
        )


def test_dataset_from_split_files(tmp_path: Path) -> None:
    for name, rows in (("train", ROWS.iloc[:4]), ("val", ROWS.iloc[4:5]), ("test", ROWS.iloc[5:])):
        rows.to_csv(tmp_path / f"{name}.csv", index=False)
    dataset = load_dataset(
        "csv",
        tmp_path,
        train="train.csv",
        val="val.csv",
        test="test.csv",
        text_col="post",
        label_col="verdict",
        positive="hate",
        group_cols="race=race,gender",
        group_sep="|",
    )
    assert [len(dataset[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert dataset["train"].attributes == ["race", "gender"]
    assert set(dataset.provenance) == {"train.csv", "val.csv", "test.csv"}
    assert all(len(h) == 64 for h in dataset.provenance.values())


def test_dataset_from_one_file_with_or_without_split_column(tmp_path: Path) -> None:
    file = tmp_path / "all.csv"
    ROWS.assign(part=["train", "train", "validation", "test", "dev", "train"]).to_csv(file, index=False)
    common = {"text_col": "post", "label_col": "verdict", "positive": "hate", "group_cols": ["race"]}
    dataset = load_table_dataset(path=file, split_col="part", **common)  # type: ignore[arg-type]
    assert [len(dataset[s]) for s in ("train", "val", "test")] == [3, 2, 1]
    assert dataset["val"].texts == ["c", "e"]
    with pytest.raises(DataError, match="split_col=None"):
        load_table_dataset(path=file, **common)  # type: ignore[arg-type]
    hashed = load_table_dataset(path=file, split_col=None, **common)  # type: ignore[arg-type]
    expected = hash_split(ROWS["post"].tolist())
    for split in hashed.splits:
        assert hashed[split].texts == ROWS["post"][expected == split].tolist()


def test_hash_split_is_deterministic_and_near_fractions() -> None:
    keys = [f"post {i}" for i in range(20000)]
    first, second = hash_split(keys), hash_split(list(reversed(keys)))[::-1]
    assert (first == second).all()
    shares = {s: float(np.mean(first == s)) for s in ("train", "val", "test")}
    assert shares["train"] == pytest.approx(0.70, abs=0.01) and shares["test"] == pytest.approx(
        0.15, abs=0.01
    )
