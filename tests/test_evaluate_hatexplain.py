"""Metrics on the real HateXplain test split: gold group sizes, overlap, small groups, fairlearn."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from fairmerge.data import load_dataset
from fairmerge.data.types import TextSplit
from fairmerge.evaluation import evaluate_scores
from fairmerge.fairness import UndefinedMetricWarning

# Posts named as targets by >= 2 of 3 annotators in the official test split (data/SOURCES.md).
GOLD_TEST_SIZES = {
    ("race", "African"): 315,
    ("race", "Arab"): 67,
    ("race", "Asian"): 36,
    ("race", "Caucasian"): 52,
    ("race", "Hispanic"): 35,
    ("gender", "Women"): 147,
    ("gender", "Men"): 6,
    ("religion", "Islam"): 194,
    ("religion", "Jewish"): 188,
}


@pytest.fixture(scope="module")
def test_split() -> TextSplit:
    data_dir = Path(
        os.environ.get("FAIRMERGE_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    if not data_dir.is_dir():
        pytest.fail(f"real data directory {data_dir} is missing: set FAIRMERGE_DATA_DIR")
    return load_dataset("hatexplain", data_dir=data_dir)["test"]


def test_metrics_on_hatexplain_test(test_split: TextSplit) -> None:
    rng = np.random.default_rng(0)
    scores = np.clip(0.35 * test_split.labels + rng.random(len(test_split)) * 0.65, 0, 1)
    with pytest.warns(UndefinedMetricWarning, match="dpd of gender"):
        frame = evaluate_scores(test_split, scores, n_resamples=200, seed=0)
    values = frame.set_index(["attribute", "group", "metric"])["value"]
    assert values["all", "all", "n"] == 1924
    for (attribute, group), size in GOLD_TEST_SIZES.items():
        assert values[attribute, group, "n"] == size, (attribute, group)
    # Men (6 posts) is reported but does not qualify: gender has one qualifying group, no gaps.
    assert values["gender", "all", "n_groups"] == 1
    assert np.isnan(values["gender", "all", "dpd"]) and np.isnan(values["gender", "all", "eod"])
    assert values["race", "all", "n_groups"] == 5
    rates = frame[frame.metric.isin(["accuracy", "tpr", "fpr", "dpd", "eod"]) & frame.value.notna()]
    assert (rates.ci_low <= rates.ci_high).all()

    # Race targets overlap on some posts; on the posts with exactly one race target, fairlearn agrees.
    race = test_split.groups["race"]
    assert any(len(m) > 1 for m in race)
    single = np.array([len(m) == 1 for m in race])
    subset = test_split.subset(single)
    sub = evaluate_scores(
        subset,
        scores[single],
        attributes=["race"],
        min_group_size=1,
        min_positives=1,
        min_negatives=1,
        n_resamples=0,
    )
    sub_values = sub.set_index(["attribute", "group", "metric"])["value"]
    sensitive = [next(iter(m)) for m in subset.groups["race"]]
    predictions = (scores[single] > 0.5).astype(int)
    dpd = demographic_parity_difference(subset.labels, predictions, sensitive_features=sensitive)
    eod = equalized_odds_difference(subset.labels, predictions, sensitive_features=sensitive)
    assert abs(sub_values["race", "all", "dpd"] - dpd) <= 1e-12
    assert abs(sub_values["race", "all", "eod"] - eod) <= 1e-12
