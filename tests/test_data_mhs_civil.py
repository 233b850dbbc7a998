"""MHS and Civil Comments loaders, offline: MHS on the real 99-row sample in its original schema, and
both on small files written here in the published schemas (edge cases the sample lacks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.civil_comments import load_civil_comments
from fairmerge.data.mhs import load_mhs, target_column
from fairmerge.errors import DataError


def _by_id(dataset: GroupedTextDataset) -> dict[str, tuple[int, dict[str, frozenset[str]]]]:
    """id → (label, groups) over all splits."""
    result = {}
    for split in dataset.splits.values():
        for i, example_id in enumerate(split.ids):
            result[example_id] = (int(split.labels[i]), {a: split.groups[a][i] for a in split.attributes})
    return result


def _mhs_rows() -> pd.DataFrame:
    """One row per (comment, annotator), as in ucberkeley-dlab/measuring-hate-speech."""
    rows = []

    def add(
        comment: int, score: float, text: str, black: list[bool], women: list[bool], gay: list[bool]
    ) -> None:
        for annotator, (b, w, g) in enumerate(zip(black, women, gay, strict=True)):
            rows.append(
                {
                    "comment_id": comment,
                    "annotator_id": 100 + annotator,
                    "platform": 1,
                    "hatespeech": 2.0 if score > 0.5 else 0.0,
                    "hate_speech_score": score,
                    "text": text,
                    "target_race_black": b,
                    "target_race_asian": False,
                    "target_race": b,  # per-attribute summary: not a group
                    "target_gender_women": w,
                    "target_gender": w,
                    "target_sexuality_gay": g,
                }
            )

    add(1, 1.2, "hateful about black people", [True, True, False], [True, False, False], [False] * 3)
    add(2, 0.3, "rude about women", [False, False], [True, False], [False, False])
    add(3, 0.5, "borderline about gay men", [False] * 3, [False] * 3, [True, True, True])
    add(4, -2.0, "supportive comment", [False] * 3, [False] * 3, [False] * 3)
    return pd.DataFrame(rows)


def test_target_column_parsing() -> None:
    assert target_column("target_race_middle_eastern") == ("race", "middle_eastern")
    assert target_column("target_gender_transgender_men") == ("gender", "transgender_men")
    assert target_column("target_sexuality_gay") == ("sexual_orientation", "gay")
    assert target_column("target_race") is None and target_column("hatespeech") is None


MHS_SAMPLE = "mhs/measuring-hate-speech.sample.csv"


def test_mhs_real_sample_in_original_schema(data_dir: Path) -> None:
    # SOURCES.md: 99 rows (99 comments, 99 annotators), 131 columns, booleans written true/false,
    # target_race true in 31 rows.
    file = data_dir / MHS_SAMPLE
    raw = pd.read_csv(file)
    assert raw.shape == (99, 131)
    body = file.read_text(encoding="utf-8")
    assert ",true," in body and ",false," in body and ",True," not in body  # lower-case booleans
    dataset = load_mhs(path=file)
    assert dataset.provenance[str(file)] == "849ab24ac9537aeb65936a0310102a2ac1e9ebef5f4a2dc188fb2e16e6bb2fd1"
    assert "99 annotation rows over 99 comments" in dataset.notes[0]
    assert "46 group columns over 7 attributes" in dataset.notes[2]  # 53 target_* = 46 groups + 7 summaries
    assert {s: len(dataset[s]) for s in dataset.splits} == {"train": 63, "val": 20, "test": 16}
    assert set(dataset["train"].attributes) == {
        "age",
        "disability",
        "gender",
        "origin",
        "race",
        "religion",
        "sexual_orientation",
    }
    examples = _by_id(dataset)
    assert sum(label for label, _ in examples.values()) == int((raw["hate_speech_score"] > 0.5).sum()) == 21
    # one annotator per comment, so a ticked box is a (1 of 1) majority: the comments with any race
    # group are exactly the 31 whose target_race summary is true
    race = {i for i, (_, groups) in examples.items() if groups["race"]}
    assert len(race) == 31
    assert race == set(raw.loc[raw["target_race"], "comment_id"].astype(str))
    assert sum("black" in groups["race"] for _, groups in examples.values()) == 15
    assert sum("women" in groups["gender"] for _, groups in examples.values()) == 24
    assert sum(bool(groups["sexual_orientation"]) for _, groups in examples.values()) == 18


def test_mhs_real_sample_from_data_dir_layout(data_dir: Path, tmp_path: Path) -> None:
    # the sample under the loader's own file name in a data directory loads the same way
    (tmp_path / "mhs").mkdir()
    shutil.copyfile(data_dir / MHS_SAMPLE, tmp_path / "mhs" / "measuring-hate-speech.csv")
    dataset = load_dataset("mhs", tmp_path, download=False)
    assert sum(len(s) for s in dataset.splits.values()) == 99
    assert "mhs/measuring-hate-speech.csv" in dataset.provenance


def test_mhs_real_sample_missing_column_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    file = tmp_path / "mhs.csv"
    pd.read_csv(data_dir / MHS_SAMPLE).drop(columns=["text"]).to_csv(file, index=False)
    with pytest.raises(DataError) as info:
        load_mhs(path=file)
    assert str(file) in str(info.value) and "['text']" in str(info.value)
    assert "\n" not in str(info.value)


def test_mhs_parquet_aggregates_per_comment(tmp_path: Path) -> None:
    (tmp_path / "mhs").mkdir()
    _mhs_rows().to_parquet(tmp_path / "mhs" / "measuring-hate-speech.parquet")
    dataset = load_dataset("mhs", tmp_path)
    examples = _by_id(dataset)
    assert sorted(examples) == ["1", "2", "3", "4"]
    assert [examples[i][0] for i in "1234"] == [1, 0, 0, 0]  # score > 0.5 (0.5 itself is not)
    assert examples["1"][1]["race"] == {"black"}  # 2 of 3 annotators
    assert examples["1"][1]["gender"] == frozenset()  # 1 of 3
    assert examples["2"][1]["gender"] == frozenset()  # 1 of 2 is not a majority
    assert examples["3"][1]["sexual_orientation"] == {"gay"}
    assert set(dataset["train"].attributes) == {"race", "gender", "sexual_orientation"}
    assert "mhs/measuring-hate-speech.parquet" in dataset.provenance
    assert "11 annotation rows over 4 comments" in dataset.notes[0]
    looser = _by_id(load_mhs(tmp_path, threshold=0.2, min_target_share=0.3))
    assert [looser[i][0] for i in "1234"] == [1, 1, 1, 0]
    assert looser["1"][1]["gender"] == {"women"} and looser["2"][1]["gender"] == {"women"}


def test_mhs_csv_with_string_booleans_and_split_column(tmp_path: Path) -> None:
    rows = _mhs_rows()
    rows["split"] = rows["comment_id"].map({1: "train", 2: "validation", 3: "test", 4: "train"})
    file = tmp_path / "mhs.csv"
    rows.to_csv(file, index=False)  # booleans become 'True' / 'False'
    dataset = load_mhs(path=file)
    assert dataset["train"].ids == ["1", "4"] and dataset["val"].ids == ["2"] and dataset["test"].ids == ["3"]
    assert dataset["train"].groups["race"] == [frozenset({"black"}), frozenset()]


def test_mhs_missing_file_offline_says_where_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        load_mhs(tmp_path)
    message = str(info.value)
    assert "mhs/measuring-hate-speech.parquet" in message and str(tmp_path) in message
    assert "huggingface.co/datasets/ucberkeley-dlab/measuring-hate-speech" in message and "offline" in message
    with pytest.raises(DataError, match="downloads are off"):
        load_mhs(tmp_path, download=False)


def test_mhs_missing_column_lists_columns(tmp_path: Path) -> None:
    file = tmp_path / "mhs.parquet"
    _mhs_rows().drop(columns=["hate_speech_score"]).to_parquet(file)
    with pytest.raises(DataError) as info:
        load_mhs(path=file)
    assert "hate_speech_score" in str(info.value) and "target_race_black" in str(info.value)


CIVIL = pd.DataFrame(
    {
        "id": [11, 12, 13, 14],
        "comment_text": ["you people are awful", "muslims are fine", "nice day", "both groups"],
        "split": ["train", "val", "test", "train"],
        "toxicity": [0.6, 0.5, 0.1, 0.2],
        "male": [0.7, 0.0, np.nan, 0.0],
        "female": [0.0, 0.5, np.nan, 0.9],
        "black": [0.0, 0.0, np.nan, 0.6],
        "white": [0.0, 0.0, np.nan, 0.6],
        "muslim": [0.0, 1.0, np.nan, 0.0],
        "identity_annotator_count": [10, 4, 0, 5],
    }
)


def test_civil_comments_wilds_schema(tmp_path: Path) -> None:
    (tmp_path / "civil_comments").mkdir()
    CIVIL.to_csv(tmp_path / "civil_comments" / "all_data_with_identities.csv", index=False)
    dataset = load_dataset("civil_comments", tmp_path)
    assert (
        dataset["train"].ids == ["11", "14"]
        and dataset["val"].ids == ["12"]
        and dataset["test"].ids == ["13"]
    )
    examples = _by_id(dataset)
    assert [examples[i][0] for i in ("11", "12", "13", "14")] == [1, 1, 0, 0]  # toxicity >= 0.5
    assert examples["11"][1]["gender"] == {"male"}
    assert examples["12"][1]["gender"] == frozenset() and examples["12"][1]["religion"] == {"muslim"}
    assert all(not groups for groups in examples["13"][1].values())  # unannotated identities: none
    assert examples["14"][1]["race"] == {"black", "white"}
    assert set(dataset["train"].attributes) == {"gender", "race", "religion"}


def test_civil_comments_jigsaw_schema_hash_split(tmp_path: Path) -> None:
    file = tmp_path / "train.parquet"
    CIVIL.drop(columns=["split"]).rename(columns={"toxicity": "target"}).to_parquet(file)
    dataset = load_civil_comments(path=file, threshold=0.55)
    assert sorted(_by_id(dataset)) == ["11", "12", "13", "14"]
    assert [_by_id(dataset)[i][0] for i in ("11", "12")] == [1, 0]
    assert "by sha256 of the id" in dataset.notes[-1]


def test_civil_comments_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        load_civil_comments(tmp_path)
    assert "civil_comments/all_data_with_identities.csv" in str(info.value) and "wilds" in str(info.value)
    file = tmp_path / "bad.csv"
    CIVIL.drop(columns=["comment_text"]).to_csv(file, index=False)
    with pytest.raises(DataError, match="comment_text"):
        load_civil_comments(path=file)
