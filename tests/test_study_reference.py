"""No number changes: the ``--fast`` study's metrics equal a stored reference, row for row.

``tests/data/fast_reference.csv.gz`` is ``metrics.csv`` of a ``fairmerge run --fast``, regenerated
(stats2 branch) for the within-label noise-floor null and the test-inverted gap intervals, and again
(coverage branch) for Wilson rate intervals and pairwise score bounds on the test gaps; every point
value equals the first reference's (made before the study became a pipeline of stages). It is an fp32
run (tests/fp32_study.py). Rates are ratios
of counts, intervals and noise floors come from seeded resampling, so every value, interval and
noise floor (model, λ, split, attribute, group, metric) must match to 1e-12.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "data" / "fast_reference.csv.gz"
KEY = ["model", "lambda", "split", "attribute", "group", "metric"]
VALUES = ["value", "ci_low", "ci_high"]


def compare_with_reference(metrics: pd.DataFrame) -> list[str]:
    """Every difference between ``metrics`` and the reference, in words (empty when identical).

    Rows of models the reference does not have (a family added since) are not compared: every
    reference row must still be there with the same values, and no new row may join a reference model.
    """
    reference = pd.read_csv(REFERENCE)
    metrics = metrics[metrics["model"].isin(set(reference["model"]))]
    keyed = [frame.assign(lam=frame["lambda"].round(6).fillna(-1.0)) for frame in (reference, metrics)]
    key = ["model", "lam", "split", "attribute", "group", "metric"]
    merged = keyed[0].merge(keyed[1], on=key, how="outer", suffixes=("_ref", ""), indicator=True)
    problems = [
        f"{'missing' if side == 'left_only' else 'extra'} row {tuple(row[key])}"
        for side in ("left_only", "right_only")
        for _, row in merged[merged["_merge"] == side].head(5).iterrows()
    ]
    both = merged[merged["_merge"] == "both"]
    for column in VALUES:
        ref, new = both[f"{column}_ref"].to_numpy(float), both[column].to_numpy(float)
        same = np.isclose(ref, new, rtol=0, atol=1e-12, equal_nan=True)
        problems += [
            f"{column} of {tuple(row[key])}: {row[f'{column}_ref']!r} → {row[column]!r}"
            for _, row in both[~same].head(5).iterrows()
        ]
    return problems


@pytest.mark.slow
def test_fast_study_metrics_equal_the_stored_reference(fast_study: tuple[Path, Path]) -> None:
    out, _ = fast_study
    metrics = pd.read_csv(out / "metrics.csv")
    problems = compare_with_reference(metrics)
    assert not problems, "\n".join(problems)


def test_the_comparison_sees_a_changed_value() -> None:
    reference = pd.read_csv(REFERENCE)
    assert compare_with_reference(reference) == []
    changed = reference.copy()
    changed.loc[changed.index[0], "value"] += 1e-9
    assert len(compare_with_reference(changed)) == 1
    assert compare_with_reference(reference.iloc[1:])[0].startswith("missing row")
    extra = reference.iloc[:1].assign(metric="new_metric")
    assert compare_with_reference(pd.concat([reference, extra]))[0].startswith("extra row")


def test_the_comparison_ignores_rows_of_a_new_model() -> None:
    reference = pd.read_csv(REFERENCE)
    new_family = reference[reference["model"] == reference["model"].iloc[0]].assign(model="new_family")
    assert compare_with_reference(pd.concat([reference, new_family])) == []
