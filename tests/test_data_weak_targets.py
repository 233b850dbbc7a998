"""The dataset registry's weak-target hook: HateXplain registers its measure, datasets with gold
train targets none, and the study's target-quality stage asks the registry by dataset name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from fairmerge.data import load_dataset
from fairmerge.data.registry import weak_target_quality
from fairmerge.fairness import hatexplain_target_quality
from fairmerge.study.stages.target_quality import vector_target_quality


def test_hatexplain_registers_its_weak_target_measure_and_gold_datasets_none(data_dir: Path) -> None:
    table = weak_target_quality("HateXplain", data_dir)
    assert table is not None
    pd.testing.assert_frame_equal(table, hatexplain_target_quality(data_dir))
    assert weak_target_quality("sbic", data_dir) is None
    assert weak_target_quality("utkface", data_dir) is None


def test_the_stage_scores_each_vector_group_through_the_registry(data_dir: Path) -> None:
    dataset = load_dataset("hatexplain", data_dir)
    assert dataset["train"].weak_groups
    context = SimpleNamespace(dataset=dataset, data_dir=data_dir)
    vectors = {("gender", "Men"): "gender=Men", ("race", "African"): "race=African"}
    rows = vector_target_quality(context, vectors)  # type: ignore[arg-type]
    assert rows is not None
    by_vector = {row["vector"]: row for row in rows}
    assert set(by_vector) == set(vectors.values())
    assert by_vector["gender=Men"]["flag"] == "low precision (< 0.5)"
    assert by_vector["race=African"]["flag"] == ""
