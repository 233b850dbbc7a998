"""Minimum detectable differences: the normal approximation has the power it claims; undefined is NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import ConfigError
from fairmerge.fairness import minimum_detectable_difference


def _split() -> tuple[np.ndarray, dict[str, pd.DataFrame]]:
    # Three groups: 200 posts (120 positives), 60 (40), 40 (25); plus 100 posts of no group.
    sizes, positives = (200, 60, 40, 100), (120, 40, 25, 30)
    labels = np.concatenate(
        [np.r_[np.ones(p), np.zeros(n - p)] for n, p in zip(sizes, positives, strict=True)]
    ).astype(int)
    group = np.repeat(np.arange(4), sizes)
    membership = pd.DataFrame({f"g{k}": group == k for k in range(3)})
    tiny = pd.DataFrame({"m": np.arange(labels.size) < 5, "w": np.arange(labels.size) >= 350})
    return labels, {"race": membership, "gender": tiny}


def test_mde_uses_the_two_smallest_qualifying_groups() -> None:
    labels, memberships = _split()
    mde = minimum_detectable_difference(labels, memberships, min_positives=20, min_negatives=20)
    multiplier = 1.959964 + 0.841621
    assert mde["race"]["dpd"] == pytest.approx(multiplier * np.sqrt(2 * (0.25 / 40 + 0.25 / 60)), rel=1e-5)
    # TPR: positives 120, 40, 25 -> 25 and 40; FPR: negatives 80, 20, 15 -> g2 (15) does not qualify.
    assert mde["race"]["tpr_gap"] == pytest.approx(
        multiplier * np.sqrt(2 * (0.25 / 25 + 0.25 / 40)), rel=1e-5
    )
    assert mde["race"]["fpr_gap"] == pytest.approx(
        multiplier * np.sqrt(2 * (0.25 / 20 + 0.25 / 80)), rel=1e-5
    )
    assert mde["race"]["eod"] == max(mde["race"]["tpr_gap"], mde["race"]["fpr_gap"])
    assert np.isnan(mde["gender"]["dpd"]) and np.isnan(mde["gender"]["eod"])


def test_a_change_of_one_mde_is_detected_about_80_percent_of_the_time() -> None:
    labels, memberships = _split()
    mde = minimum_detectable_difference(labels, memberships)["race"]["dpd"]
    rng = np.random.default_rng(0)
    n_a, n_b, reps = 40, 60, 4000
    # Two independently evaluated models; the method shifts group a's rate by the MDE.
    ref = rng.binomial(n_a, 0.5, reps) / n_a - rng.binomial(n_b, 0.5, reps) / n_b
    new = rng.binomial(n_a, 0.5 + mde, reps) / n_a - rng.binomial(n_b, 0.5, reps) / n_b
    se = np.sqrt(2 * (0.25 / n_a + 0.25 / n_b))
    power = np.mean(np.abs(new - ref) / se > 1.959964)
    assert 0.74 <= power <= 0.86


def test_bad_options() -> None:
    labels, memberships = _split()
    with pytest.raises(ConfigError):
        minimum_detectable_difference(labels, memberships, power=1.0)
    with pytest.raises(ConfigError):
        minimum_detectable_difference(labels, memberships, rate=0.0)
