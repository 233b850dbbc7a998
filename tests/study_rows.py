"""Compare metrics.csv rows of one model with the study's: the round trip of ``fairmerge evaluate``."""

from __future__ import annotations

import numpy as np
import pandas as pd

KEYS = ["attribute", "group", "metric"]


def assert_same_rows(mine: pd.DataFrame, study: pd.DataFrame, tolerance: float = 1e-6) -> float:
    """The same (attribute, group, metric) rows, values and intervals within ``tolerance``, NaN where
    the study has NaN: noise floors, the labels' DPD and the test-inverted gap intervals included.
    Returns the largest absolute difference (for the report)."""
    joined = mine.merge(study, on=KEYS, how="outer", suffixes=("", "_study"), indicator=True)
    assert (joined["_merge"] == "both").all(), joined.loc[joined["_merge"] != "both", [*KEYS, "_merge"]]
    assert len(joined) == len(study) > 60 and {"dpd_noise_floor", "labels_dpd"} <= set(joined["metric"])
    largest = 0.0
    for column in ("value", "ci_low", "ci_high"):
        ours, theirs = joined[column].to_numpy(float), joined[f"{column}_study"].to_numpy(float)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance, equal_nan=True, err_msg=column)
        largest = max(largest, float(np.nanmax(np.abs(ours - theirs))))
    return largest
