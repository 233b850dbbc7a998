"""The metric registry: each rate and gap is declared once, and a new one is one declaration.

A toy metric (positive predictive value per group, and its gap per attribute) is registered; it then
appears in ``group_metrics`` frames, in ``metrics.csv``, in ``summary.json``'s headline and in the
report's headline table, with no other change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fp32_study import FP32

from fairmerge.fairness import group_metrics, registry
from fairmerge.fairness.registry import Gap, Rate, split_wide_column, wide_column

PPV = Rate("ppv", "PPV", ("tp",), ("tp", "fp"), "posts", "higher")
PPV_GAP = Gap("ppv_gap", "PPV gap", ("ppv",), "spread", headline=True)


def test_toy_metric_is_computed_per_group_and_per_attribute() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    predictions = np.array([1, 0, 1, 0, 1, 1, 1, 0])
    groups = pd.DataFrame({"a": [1, 1, 1, 1, 0, 0, 0, 0], "b": [0, 0, 0, 0, 1, 1, 1, 1]}, dtype=bool)
    with registry.registered(PPV, PPV_GAP):
        frame = group_metrics(labels, predictions, {"attr": groups}, min_group_size=1, n_resamples=0)
    values = frame.set_index(["attribute", "group", "metric"])["value"]
    # group a predicts 1 on posts 0, 2 (one true positive); group b on posts 4, 5, 6 (two)
    assert values["attr", "a", "ppv"] == 1 / 2
    assert values["attr", "b", "ppv"] == 2 / 3
    assert values["all", "all", "ppv"] == 3 / 5
    assert values["attr", "all", "ppv_gap"] == pytest.approx(2 / 3 - 1 / 2, abs=1e-15)
    assert "ppv" not in registry.rate_names()  # unregistered after the block


def test_registration_rejects_duplicates_and_unknown_sources() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Rate("accuracy", "accuracy", ("tp",), ("tp", "fp")))
    with pytest.raises(ValueError, match="unknown metrics"):
        registry.register(Gap("toy_gap", "toy", ("no_such_rate",), "spread"))
    with pytest.raises(ValueError, match="used by"):
        registry.unregister("tpr")


def test_wide_columns_are_built_and_parsed_in_one_place() -> None:
    assert wide_column("race", "dpd") == "race_dpd"
    assert wide_column("race", "dpd", "_ci_low") == "race_dpd_ci_low"
    # the longest attribute wins when one attribute's name prefixes another's
    assert split_wide_column("race_eth_dpd", ["race", "race_eth"]) == ("race_eth", "dpd")
    assert split_wide_column("accuracy", ["race"]) is None


@pytest.mark.slow
def test_toy_metric_reaches_metrics_csv_and_the_report(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path
) -> None:
    from fairmerge.study.run import run_study

    _, reference_cache = fast_study
    cache = tmp_path / "cache"
    shutil.copytree(reference_cache, cache)  # warm: the same fine-tunes and scores, new metrics
    out = tmp_path / "out"
    with registry.registered(PPV, PPV_GAP):
        summary = run_study(fast=True, data_dir=data_dir, out_dir=out, cache_dir=cache, overrides=FP32)
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"ppv", "ppv_gap"} <= set(metrics.metric)
    assert metrics[metrics.metric == "ppv_gap"].value.notna().any()
    assert "race_ppv_gap" in summary["headline"][0]
    report = (out / "report.html").read_text()
    assert "race PPV gap" in report
