"""Target quality: precision and recall of weak against gold membership, flagged below 0.5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.fairness import hatexplain_target_quality, target_quality


def test_precision_recall_and_flag_from_memberships() -> None:
    gold = {"race": pd.DataFrame({"A": [1, 1, 0, 0, 0], "B": [0, 0, 1, 1, 0]}, dtype=bool)}
    weak = {"race": pd.DataFrame({"A": [1, 1, 1, 1, 0], "C": [0, 0, 0, 0, 1]}, dtype=bool)}
    table = target_quality(weak, gold).set_index("group")
    assert table.loc["A", ["gold_n", "weak_n", "both"]].tolist() == [2, 4, 2]
    assert table.loc["A", "precision"] == 0.5 and table.loc["A", "recall"] == 1.0
    assert not table.loc["A", "low_precision"]
    assert np.isnan(table.loc["B", "precision"]) and table.loc["B", "recall"] == 0.0  # nothing assigned
    assert table.loc["C", "precision"] == 0.0 and np.isnan(table.loc["C", "recall"])
    assert table.loc["C", "low_precision"]


def test_hatexplain_weak_targets_match_sources_md(data_dir: Path) -> None:
    table = hatexplain_target_quality(data_dir).set_index(["attribute", "group"])
    assert table.loc[("gender", "Men"), "precision"] == pytest.approx(0.04, abs=0.005)
    assert table.loc[("race", "Caucasian"), "precision"] == pytest.approx(0.45, abs=0.005)
    assert table.loc[("race", "Arab"), "precision"] == pytest.approx(0.47, abs=0.005)
    assert table.loc[("gender", "Women"), "precision"] == pytest.approx(0.59, abs=0.005)
    flagged = set(table.index[table["low_precision"]])
    assert {("gender", "Men"), ("race", "Caucasian"), ("race", "Arab")} <= flagged
    assert ("race", "African") not in flagged
