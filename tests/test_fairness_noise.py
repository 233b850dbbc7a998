"""The within-label noise floor: calibrated under unequal base rates, the floor is its null's quantile."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fairmerge.errors import ConfigError
from fairmerge.fairness import group_metrics
from fairmerge.fairness.noise import noise_floor


def _data(rng: np.random.Generator, n: int = 300, effect: float = 0.0) -> tuple[np.ndarray, np.ndarray, dict]:
    group = rng.integers(0, 3, n)
    labels = (rng.random(n) < np.array([0.7, 0.4, 0.2])[group]).astype(int)  # unequal base rates
    rate = np.where(labels == 1, 0.7, 0.2) + effect * (group == 0)
    predictions = (rng.random(n) < rate).astype(int)
    return labels, predictions, {"a": pd.DataFrame({f"g{k}": group == k for k in range(3)})}


def _value(frame: pd.DataFrame, metric: str) -> float:
    return float(frame.loc[frame["metric"] == metric, "value"].iloc[0])


def test_no_effect_gives_uniform_p_values_under_unequal_base_rates() -> None:
    """Equal TPR and FPR, base rates 0.7 / 0.4 / 0.2: the old whole-row null fails this for EOD."""
    rng = np.random.default_rng(0)
    p = {"dpd": [], "eod": []}
    for i in range(150):
        labels, predictions, membership = _data(rng)
        frame = noise_floor(labels, predictions, membership, n_permutations=99, seed=i, min_group_size=20)
        for gap in p:
            p[gap].append(_value(frame, f"{gap}_perm_p"))
    for gap, values in p.items():
        values = np.asarray(values)
        assert 0.01 <= np.mean(values <= 0.05) <= 0.11, gap
        assert 0.4 <= np.mean(values <= 0.5) <= 0.6, gap
        assert stats.kstest(values, "uniform").pvalue > 0.001, gap


def test_floor_is_the_quantile_of_the_permutation_null() -> None:
    rng = np.random.default_rng(1)
    labels, predictions, membership = _data(rng, n=200)
    b = 60
    frame = noise_floor(labels, predictions, membership, n_permutations=b, seed=3, min_group_size=20)
    # The same permutations by hand: shuffle cells within each label, recompute the gap with group_metrics.
    cell = (1 - labels) + 2 * (1 - predictions)
    rng = np.random.default_rng(3)
    shuffled = np.broadcast_to(cell, (b, labels.size)).copy()
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        shuffled[:, rows] = rng.permuted(shuffled[:, rows], axis=1)
    assert (shuffled % 2 == (1 - labels)).all()  # every post keeps its label
    null = {"dpd": [], "eod": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in shuffled:
            y, p = (row % 2 == 0).astype(int), (row < 2).astype(int)
            gaps = group_metrics(y, p, membership, min_group_size=20, n_resamples=0)
            for gap in null:
                null[gap].append(float(gaps.loc[gaps["metric"] == gap, "value"].iloc[0]))
        observed = group_metrics(labels, predictions, membership, min_group_size=20, n_resamples=0)
    for gap, values in null.items():
        assert _value(frame, f"{gap}_noise_floor") == pytest.approx(np.quantile(values, 0.95), abs=1e-12)
        value = float(observed.loc[observed["metric"] == gap, "value"].iloc[0])
        expected_p = (1 + np.sum(np.asarray(values) >= value - 1e-12)) / (1 + b)
        assert _value(frame, f"{gap}_perm_p") == pytest.approx(expected_p)


def test_overlapping_groups_and_posts_in_no_group_get_the_reference_permutations() -> None:
    """Only member rows are gathered: the null must still be the whole-array within-label shuffle."""
    rng = np.random.default_rng(5)
    n, b = 240, 36
    labels = (rng.random(n) < 0.4).astype(int)
    predictions = (rng.random(n) < np.where(labels == 1, 0.6, 0.3)).astype(int)
    index = np.arange(n)
    membership = {
        "a": pd.DataFrame({"x": index < 90, "y": (index >= 60) & (index < 150)}),  # overlap; 90 in none
        "b": pd.DataFrame({"u": index % 2 == 0, "v": index % 3 == 0}),
    }
    options = {"min_group_size": 20, "min_positives": 5, "min_negatives": 5}
    frame = noise_floor(labels, predictions, membership, n_permutations=b, seed=8, chunk_size=15, **options)
    cell = (1 - labels) + 2 * (1 - predictions)
    draws = np.random.default_rng(8)
    null: dict[tuple[str, str], list[float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in (15, 15, 6):  # noise_floor's chunks, each shuffled as one array per label
            shuffled = np.broadcast_to(cell, (size, n)).copy()
            for label in (0, 1):
                rows = np.flatnonzero(labels == label)
                shuffled[:, rows] = draws.permuted(shuffled[:, rows], axis=1)
            for row in shuffled:
                y, p = (row % 2 == 0).astype(int), (row < 2).astype(int)
                gaps = group_metrics(y, p, membership, n_resamples=0, **options)
                for _, g in gaps[gaps["metric"].isin(["dpd", "eod"])].iterrows():
                    null.setdefault((g["attribute"], g["metric"]), []).append(float(g["value"]))
    for (attribute, gap), values in null.items():
        row = frame[(frame["attribute"] == attribute) & (frame["metric"] == f"{gap}_noise_floor")]
        assert float(row["value"].iloc[0]) == pytest.approx(np.nanquantile(values, 0.95), abs=1e-12)


def test_a_real_effect_sits_above_the_floor() -> None:
    labels, predictions, membership = _data(np.random.default_rng(2), n=600, effect=0.25)
    frame = noise_floor(labels, predictions, membership, n_permutations=200, min_group_size=20)
    gaps = group_metrics(labels, predictions, membership, min_group_size=20, n_resamples=0)
    assert float(gaps.loc[gaps["metric"] == "dpd", "value"].iloc[0]) > _value(frame, "dpd_noise_floor")
    assert _value(frame, "dpd_perm_p") < 0.01 and _value(frame, "eod_perm_p") < 0.01
    assert list(frame.columns) == ["attribute", "group", "metric", "value", "ci_low", "ci_high"]


def test_undefined_gap_has_nan_floor_and_p() -> None:
    labels = np.array([0, 1] * 50)
    predictions = labels.copy()
    membership = {"a": pd.DataFrame({"big": np.arange(100) < 90, "small": np.arange(100) >= 90})}
    frame = noise_floor(labels, predictions, membership, n_permutations=20)
    assert frame["value"].isna().all()
    with pytest.raises(ConfigError):
        noise_floor(labels, predictions, membership, n_permutations=0)
