"""End to end: `fairmerge run utkface --fast` on the real UTKFace folder and the bundled image backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_the_image_study_runs_offline_end_to_end(utkface_fast_study: tuple[Path, Path]) -> None:
    out, _ = utkface_fast_study
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"base", "fft", "lora", "merge", "merge_pergroup", "inject:worst"} <= set(metrics.model)
    groups = metrics[metrics.metric == "n"]
    assert {"White", "Black", "Asian", "Indian", "Others"} <= set(groups[groups.attribute == "race"].group)
    assert {"male", "female"} <= set(groups[groups.attribute == "gender"].group)
    # UTKFace's groups are large: every race and gender gap is defined on test, with its noise floor
    test_gaps = metrics[
        (metrics.split == "test") & (metrics.model == "fft") & metrics.metric.isin(["dpd", "eod"])
    ]
    assert test_gaps.value.notna().all() and len(test_gaps) == 6
    # utkface declares race × gender: an attribute like the others, its groups' sizes next to them
    assert set(test_gaps.attribute) == {"race", "gender", "race×gender"}
    intersectional = set(groups[groups.attribute == "race×gender"].group)
    assert {"Asian×female", "White×male", "Others×female"} <= intersectional
    qualification = pd.read_csv(out / "intersections.csv")
    assert set(qualification.split) == {"train", "val", "test"} and len(qualification) == 3 * 10
    assert (qualification.attribute == "race×gender").all()
    left_out = ~qualification[["dpd", "tpr_gap", "fpr_gap"]].all(axis=1)
    assert (qualification.reason.notna() == left_out).all()  # each left-out combination says why
    fft_accuracy = metrics[
        (metrics.model == "fft")
        & (metrics.split == "test")
        & (metrics.attribute == "all")
        & (metrics.metric == "accuracy")
    ].value.iloc[0]
    assert fft_accuracy > 0.6  # the pretrained backbone transfers (majority class: 0.53)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "utkface" and summary["target_quality"] is None  # gold labels
    assert any(c["p_value"] is not None for c in summary["comparisons"])
    assert 'id="headline"' in (out / "report.html").read_text()
