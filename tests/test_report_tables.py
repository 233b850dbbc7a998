"""Display formatting of the report's tables: CIs, n/a for undefined values, model labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import DataError
from fairmerge.report.frames import parse_model, validate_metrics
from fairmerge.report.tables import (
    fmt_estimate,
    fmt_lambda,
    fmt_number,
    format_metric_table,
    strategy_display,
)


@pytest.mark.parametrize("missing", [None, math.nan, np.float64("nan"), pd.NA])
def test_missing_values_are_na_not_zero(missing: object) -> None:
    assert fmt_number(missing) == "n/a"
    assert fmt_estimate(missing, std=0.1, low=0.1, high=0.2) == "n/a"
    assert fmt_lambda(missing) == "n/a"


def test_values_with_and_without_ci() -> None:
    assert fmt_estimate(0.8321, low=0.81, high=0.849) == "0.832 [0.810, 0.849]"
    assert fmt_estimate(0.0, low=math.nan, high=math.nan) == "0.000"
    assert fmt_estimate(0.5, std=0.01, low=0.4, high=math.nan) == "0.500 ± 0.010"
    assert fmt_number(np.int64(315)) == "315"
    assert [fmt_lambda(v) for v in (0.3, 0.30000000000000004, 1.0, 0.125)] == ["0.3", "0.3", "1.0", "0.125"]
    assert fmt_lambda({"African": 0.3, "Arab": 0.7}) == "African=0.3, Arab=0.7"


def test_metric_table_merges_ci_and_spread_columns() -> None:
    frame = pd.DataFrame(
        {
            "model": ["fft", "merge"],
            "lambda": [math.nan, 0.5],
            "accuracy": [0.83, 0.7],
            "accuracy_ci_low": [0.81, math.nan],
            "accuracy_ci_high": [0.85, math.nan],
            "sexual_orientation_eod": [math.nan, 0.2],
            "sexual_orientation_eod_ci_low": [math.nan, 0.1],
            "sexual_orientation_eod_ci_high": [math.nan, 0.3],
            "race_eod_mean": [0.5, 0.4],
            "race_eod_std": [0.01, math.nan],
        }
    )
    out = format_metric_table(frame, ["race", "sexual_orientation"])
    assert list(out.columns) == ["model", "λ", "accuracy", "sexual_orientation EOD", "race EOD (mean ± std)"]
    assert out.to_dict("records") == [
        {
            "model": "fft",
            "λ": "n/a",
            "accuracy": "0.830 [0.810, 0.850]",
            "sexual_orientation EOD": "n/a",
            "race EOD (mean ± std)": "0.500 ± 0.010",
        },
        {
            "model": "merge",
            "λ": "0.5",
            "accuracy": "0.700",
            "sexual_orientation EOD": "0.200 [0.100, 0.300]",
            "race EOD (mean ± std)": "0.400",
        },
    ]


def test_strategy_table_adds_missing_references_once() -> None:
    strategies = pd.DataFrame(
        {
            "strategy": ["targeted", "fft"],
            "decision": ["argmax", "argmax"],
            "lambda": [0.3, math.nan],
            "accuracy": [0.7, 0.83],
        }
    )
    summary = {
        "headline": [
            {"model": "fft", "accuracy": 0.83, "extra": 1},
            {"model": "lora@calibrated", "accuracy": 0.8},
            {"model": "merge", "lambda": 0.3, "accuracy": 0.7},
        ]
    }
    out = strategy_display(strategies, summary["headline"], [])
    assert out[["strategy", "decision"]].values.tolist() == [
        ["targeted", "argmax"],
        ["fft", "argmax"],
        ["lora (reference)", "calibrated"],
    ]
    assert "extra" not in out.columns


def test_model_labels_split_into_family_target_decision() -> None:
    lab = parse_model("inject:Native American@calibrated")
    assert (lab.family, lab.target, lab.calibrated, lab.decision) == (
        "inject",
        "Native American",
        True,
        "calibrated",
    )
    assert parse_model("fft") == parse_model("fft")
    assert (parse_model("fft").target, parse_model("fft").decision) == (None, "argmax")


def test_metrics_without_tidy_columns_are_rejected() -> None:
    with pytest.raises(DataError, match="missing columns"):
        validate_metrics(pd.DataFrame({"model": ["fft"]}))
    with pytest.raises(DataError, match="'lambda' must be numeric"):
        validate_metrics(
            pd.DataFrame(
                {
                    c: ["x"]
                    for c in (
                        "model",
                        "lambda",
                        "split",
                        "attribute",
                        "group",
                        "metric",
                        "value",
                        "ci_low",
                        "ci_high",
                    )
                }
            )
        )
