"""MetricRows: the immutable value the stages hand their metric rows in (no shared ledger)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fairmerge.labels import ModelLabel
from fairmerge.study.metric_rows import MetricRows


def _frame(accuracy: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split": ["val"],
            "attribute": ["all"],
            "group": ["all"],
            "metric": ["accuracy"],
            "value": [accuracy],
        }
    )


def test_combining_builds_a_new_value_and_keeps_evaluation_order() -> None:
    merge, fft = ModelLabel("merge"), ModelLabel("fft")
    first = MetricRows.of(merge, 0.5, _frame(0.7), np.array([0, 1, 1]))
    constant = MetricRows.of(merge, 1.0, _frame(0.6), np.array([1, 1, 1]))  # labels every post alike
    both = first + constant + MetricRows.of(fft, None, _frame(0.8), np.array([1, 1, 1]))
    assert len(first.frame) == 1 and not first.constant  # the parts are unchanged
    assert list(both.frame["lambda"].fillna(-1)) == [0.5, 1.0, -1]
    assert both.is_constant(merge, 1.0) and not both.is_constant(merge, 0.5)
    assert both.accuracy(merge, 0.5) == 0.7 and both.accuracy(fft) == 0.8  # λ-free: lam=None
    assert math.isnan(both.accuracy(merge, 0.25)) and math.isnan(MetricRows().accuracy(fft))
    assert list(both.rows(merge, "val")["value"]) == [0.7, 0.6] and both.rows(merge, "test").empty
    assert MetricRows.concat([]).frame.empty
