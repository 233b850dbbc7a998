"""The fiducial distribution of a seed mean whose variance is a known part plus an estimated seed part.

The study's comparison (:mod:`fairmerge.fairness.comparisons`) estimates Δ̄, the mean of S per-seed
differences, with Var(Δ̄) = V + σ²/S: V, the post-level variance every seed shares, comes from a
paired bootstrap of thousands of posts and is treated as known; σ² is estimated by the sample
variance s² of the S per-seed Δs, with S − 1 degrees of freedom. With S = 3 that estimate is very
noisy, and the usual plug-in Satterthwaite t interval, Δ̄ ± t_ν·√(V + s²/S) with ν computed from s²,
is liberal: when s² happens to be small, ν grows and the quantile shrinks just when the SE is
already too small. In a normal model with the shares the simulation of
``benchmarks/comparison_calibration.py`` has (seed part 6–15× the post part, S = 3) it covers
0.92–0.93 at nominal 0.95 (docs/statistics.md §4).

Here the interval comes instead from the generalized pivotal quantity (Weerahandi 1993, "Generalized
confidence intervals", JASA 88:899–905; Hannig, Iyer & Patterson 2006, "Fiducial generalized
confidence intervals", JASA 101:254–269):

    R = Δ̄ − Z · √(V + (S − 1) s² / (S U)),   Z ~ N(0, 1),  U ~ χ²_{S−1}, independent,

which is also the posterior of the mean under the reference prior p(μ, σ²) ∝ 1/σ² with V known.
The interval is [q_{α/2}, q_{1−α/2}] of R and the p-value 2·P(R on the far side of 0): duals. It is
exactly the t interval with S − 1 df when V = 0 and the normal interval when s² = 0 (one seed, or
identical seeds), and in between it is mildly conservative instead of liberal.

The tail P(Z·√(V + c/U) ≥ a), c = (S − 1)s²/S, is one integral over z on a finite range,
conditioning on Z (for z ≥ a/√V every U exceeds the bound):

    Φ̄(a/√V) + ∫₀^{a/√V} φ(z) · F_{χ²_{S−1}}(c z² / (a² − V z²)) dz,

computed with adaptive quadrature (scipy.integrate.quad), so tail probabilities keep their
relative accuracy far into the tail: a p-value has no resampling floor. Written here because scipy
has no distribution for this sum of a normal and a scaled t.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, optimize, special, stats

_Z_MAX = 40.0  # φ(40) underflows double precision: the integral beyond it is 0


def tail(a: float, post_variance: float, seed_variance: float, n_seeds: int) -> float:
    """P(R − Δ̄ ≥ a) for a ≥ 0: the upper tail of the pivot's spread (module docstring).

    ``post_variance`` is V; ``seed_variance`` is s²/S (the estimated seed part of Var(Δ̄)), with
    ``n_seeds`` − 1 degrees of freedom.
    """
    a, v, between = float(a), max(float(post_variance), 0.0), max(float(seed_variance), 0.0)
    if a < 0:
        raise ValueError(f"the tail is defined for a >= 0, got {a}")
    if between == 0.0 or n_seeds < 2:
        return float(special.ndtr(-a / np.sqrt(v))) if v > 0 else float(a == 0) / 2
    if v == 0.0:  # the classical t interval with S − 1 df
        return float(stats.t.sf(a / np.sqrt(between), n_seeds - 1))
    k, c = n_seeds - 1, (n_seeds - 1) * between  # c = (S − 1) s² / S
    edge = a / np.sqrt(v)

    def integrand(z: float) -> float:
        bound = c * z * z / max(a * a - v * z * z, 1e-300)
        return float(np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * special.chdtr(k, bound))

    # The χ² cdf climbs from 0 to 1 around bound = k, at z² = k a² / (c + k V): a breakpoint for quad
    # (when c ≪ V that climb is a near-step just below the edge).
    top = min(edge, _Z_MAX)
    turn = a * np.sqrt(k / (c + k * v))
    points = [turn] if 0.0 < turn < top else None
    inner, _ = integrate.quad(integrand, 0.0, top, points=points, limit=200, epsabs=1e-15, epsrel=1e-10)
    return float(special.ndtr(-edge)) + inner


def quantile(level: float, post_variance: float, seed_variance: float, n_seeds: int) -> float:
    """The a ≥ 0 with ``tail(a) = level`` (0 < level < 1/2): the half-width of a central interval."""
    if not 0.0 < level < 0.5:
        raise ValueError(f"level must be in (0, 1/2), got {level}")
    scale = np.sqrt(max(post_variance, 0.0) + max(seed_variance, 0.0))
    if scale == 0.0:
        return 0.0
    high = scale
    while tail(high, post_variance, seed_variance, n_seeds) > level:
        high *= 2.0
    return float(
        optimize.brentq(
            lambda a: tail(a, post_variance, seed_variance, n_seeds) - level,
            0.0,
            high,
            xtol=1e-14 * scale,
            rtol=1e-12,
        )
    )
