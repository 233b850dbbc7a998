"""Simulated power and MDE of the comparison test actually used, on the real HateXplain test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.data import load_dataset
from fairmerge.errors import ConfigError
from fairmerge.fairness import compare_to_reference
from fairmerge.fairness.power import simulated_mde, simulated_power
from fairmerge.fairness.simulation import CoupledModels, Population, draw_predictions, effect_for


@pytest.fixture(scope="module")
def race(data_dir: Path) -> tuple[np.ndarray, pd.DataFrame]:
    split = load_dataset("hatexplain", data_dir)["test"]
    return split.labels, split.membership("race")


def test_the_shortcut_matches_the_full_procedure(race: tuple[np.ndarray, pd.DataFrame]) -> None:
    """Power from the fast path (mean V_posts) equals power from running compare_to_reference in full."""
    labels, membership = race
    fast = simulated_power(labels, membership, metric="eod", n_seeds=3, effect=0.2, simulations=150)
    pop, models = Population.from_split(labels, membership), CoupledModels()
    shift = effect_for(pop, models, kind="eod", target=0.2)
    rng = np.random.default_rng(11)
    hits = []
    for r in range(150):
        y, members, method, reference = draw_predictions(
            pop, models, kind="eod", effect=shift, n_seeds=3, rng=rng
        )
        result = compare_to_reference(
            y, pd.DataFrame(members.astype(bool)), method, reference, metric="eod", n_resamples=300, seed=r
        )
        hits.append(result["p_value"] < 0.05 and result["delta"] < 0)
    full = float(np.mean(hits))
    assert abs(fast["power"] - full) < 3 * np.hypot(fast["se"], np.sqrt(full * (1 - full) / 150)) + 0.02


def test_more_seeds_more_power_and_a_smaller_mde(race: tuple[np.ndarray, pd.DataFrame]) -> None:
    labels, membership = race
    null = simulated_power(labels, membership, metric="eod", n_seeds=3, effect=0.0, simulations=200)
    assert null["power"] <= 0.06  # one-sided share of a two-sided 5 % test
    three = simulated_power(labels, membership, metric="eod", n_seeds=3, effect=0.15, simulations=150)
    ten = simulated_power(labels, membership, metric="eod", n_seeds=10, effect=0.15, simulations=150)
    assert ten["power"] > three["power"] + 0.15
    assert simulated_mde(labels, membership, metric="accuracy", n_seeds=5, simulations=100) < 0.1
    with pytest.raises(ConfigError):
        simulated_mde(labels, membership, metric="eod", n_seeds=3, power=1.0)


def test_undefined_gap_has_nan_mde(race: tuple[np.ndarray, pd.DataFrame]) -> None:
    labels, _ = race
    tiny = pd.DataFrame({"m": np.arange(labels.size) < 5, "w": np.arange(labels.size) >= 10})
    assert np.isnan(simulated_mde(labels, tiny, metric="eod", n_seeds=3, simulations=20))
    assert np.isnan(
        simulated_power(labels, tiny, metric="eod", n_seeds=3, effect=0.1, simulations=20)["power"]
    )
