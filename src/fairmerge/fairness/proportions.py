"""Score intervals for binomial proportions and their differences, vectorised over groups.

Every rate fairmerge reports (accuracy, selection rate, TPR, FPR of a group) is a count of
successes over a count of trials. For those the **Wilson score interval** (Wilson 1927, "Probable
inference, the law of succession, and statistical inference", JASA 22:209–212) keeps close to
nominal coverage where the Wald interval — and the basic bootstrap, which behaves like it — loses a
point or more even at n in the thousands, and much more at a small group's counts (Brown, Cai &
DasGupta 2001, "Interval estimation for a binomial proportion", Statist. Sci. 16:101–133). For a
difference of two proportions, **Newcombe's hybrid score interval** combines the two Wilson
intervals by the square-and-add rule (Newcombe 1998, "Interval estimation for the difference
between independent proportions", Stat. Med. 17:873–890, method 10).

scipy computes the Wilson interval one proportion at a time (``binomtest(k, n).proportion_ci``,
the reference of ``tests/test_fairness_proportions.py``); here it is one array expression over every
group at once, and scipy has no difference-of-proportions interval.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri


def wilson_interval(
    successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilson score interval of successes / trials, elementwise; NaN where trials is 0."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = float(ndtri(1 - (1 - confidence) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def difference_bounds(
    successes: np.ndarray, trials: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Newcombe hybrid score bounds of p_g − p_h for every ordered pair (g, h) of groups.

    Returns (lower, upper), each a G × G matrix (the diagonal is meaningless); ``level`` is the
    one-sided error of each bound, so the Wilson limits are taken at two-sided confidence
    1 − 2·level: lower = d − √((p_g − l_g)² + (u_h − p_h)²), upper = d + √((u_g − p_g)² + (p_h − l_h)²).
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    p = k / n
    low, high = wilson_interval(k, n, 1 - 2 * level)
    difference = p[:, None] - p[None, :]
    lower = difference - np.sqrt((p - low)[:, None] ** 2 + (high - p)[None, :] ** 2)
    upper = difference + np.sqrt((high - p)[:, None] ** 2 + (p - low)[None, :] ** 2)
    return lower, upper
