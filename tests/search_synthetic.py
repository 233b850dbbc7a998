"""A synthetic two-coefficient problem whose Pareto front is known (helper, not tests).

accuracy = 0.5 + 0.4·x0 − 0.1·x1, race DPD = 0.4·x0² + 0.3·x1, race EOD = 0.3·x0 + 0.3·x1 on
[0, 1]²: x1 only hurts, so the Pareto set is {x1 = 0} and the front is
{(0.5 + 0.4t, 0.4t², 0.3t) : t ∈ [0, 1]}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fairmerge.search import CoefficientSpace, Evaluations, objectives_of
from fairmerge.search.hypervolume import hypervolume

OBJECTIVES = objectives_of(["accuracy", "race_dpd", "race_eod"])
REFERENCE = (0.5, 0.5, 0.5)


def tidy(accuracy: float, dpd: float, eod: float) -> pd.DataFrame:
    """The rows a study's tidy metrics hold for these headline values (intervals ±0.01)."""
    rows = [
        ("all", "all", "accuracy", accuracy),
        ("race", "all", "dpd", dpd),
        ("race", "all", "eod", eod),
        ("race", "all", "worst_group_accuracy", accuracy - 0.1),
    ]
    frame = pd.DataFrame(rows, columns=["attribute", "group", "metric", "value"])
    frame["ci_low"], frame["ci_high"] = frame.value - 0.01, frame.value + 0.01
    return frame


def synthetic_values(x: tuple[float, ...]) -> tuple[float, float, float]:
    x0, x1 = x
    return 0.5 + 0.4 * x0 - 0.1 * x1, 0.4 * x0**2 + 0.3 * x1, 0.3 * x0 + 0.3 * x1


class SpyScorer:
    """The synthetic score function, recording every (coefficients, split) it is asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[float, ...], str]] = []

    def __call__(self, coefficients: tuple[float, ...], split: str) -> pd.DataFrame:
        self.calls.append((coefficients, split))
        shift = 0.02 if split == "test" else 0.0  # test differs from val, so a mix-up shows
        accuracy, dpd, eod = synthetic_values(coefficients)
        return tidy(accuracy - shift, dpd + shift, eod)


def synthetic_evaluations() -> tuple[Evaluations, SpyScorer]:
    spy = SpyScorer()
    space = CoefficientSpace(("race:A", "race:B"))
    return Evaluations(spy, space, OBJECTIVES), spy


def true_front_hypervolume() -> float:
    t = np.linspace(0.0, 1.0, 301)  # fine enough: the HV converges from below as O(1/n)
    front = np.stack([0.5 + 0.4 * t, 1 - 0.4 * t**2, 1 - 0.3 * t], axis=1)
    return hypervolume(front, REFERENCE)
