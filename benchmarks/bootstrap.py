"""Bootstrap CIs for every group metric and gap: 2,000 posts, 10 overlapping groups, 1,000 resamples.

Runs on one core (BLAS threads pinned to 1 before numpy loads). Predictions and memberships are
synthetic with a fixed seed: the cost depends only on the sizes, not on the model. Prints the best
of several timed runs of the full ``group_metrics`` call and, as reference, the same percentile
intervals from a plain per-resample loop (index the posts, compute each group's rates). Also times
the permutation noise floor (``noise_floor``, 1,000 permutations), which the study computes for
every test-evaluated model. Last one JSON line (ratio = fairmerge ÷ loop).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fairmerge.fairness import group_metrics, noise_floor  # noqa: E402

N, GROUPS, RESAMPLES, REPEATS = 2000, 10, 1000, 5


def loop_reference(
    labels: np.ndarray, predictions: np.ndarray, members: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Percentile intervals of per-group rates and gaps, one resample at a time."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(RESAMPLES):
        idx = rng.integers(0, N, N)
        y, p, m = labels[idx], predictions[idx], members[idx]
        row = []
        for j in range(m.shape[1]):
            yg, pg = y[m[:, j]], p[m[:, j]]
            row += [np.mean(yg == pg), pg.mean(), pg[yg == 1].mean(), pg[yg == 0].mean()]
        rates = np.array(row).reshape(-1, 4)
        spread = rates.max(axis=0) - rates.min(axis=0)
        stats.append([*row, spread[1], max(spread[2], spread[3]), rates[:, 0].min()])
    return np.percentile(np.array(stats), [2.5, 97.5], axis=0)


def main() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    predictions = np.where(rng.random(N) < 0.8, labels, 1 - labels)
    membership = pd.DataFrame(rng.random((N, GROUPS)) < 0.15, columns=[f"g{i}" for i in range(GROUPS)])
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = group_metrics(labels, predictions, {"attr": membership}, n_resamples=RESAMPLES, seed=0)
        times.append(time.perf_counter() - start)
    with_ci = int(frame["ci_low"].notna().sum())
    best = min(times)
    floor_times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        noise_floor(labels, predictions, {"attr": membership}, n_permutations=RESAMPLES, seed=0)
        floor_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    loop_reference(labels, predictions, membership.to_numpy())
    loop = time.perf_counter() - start
    print(f"posts {N}, groups {GROUPS} (overlapping), resamples {RESAMPLES}, one core")
    print(
        f"group_metrics with bootstrap CIs for {with_ci} metrics: best {best:.3f} s, "
        f"median {float(np.median(times)):.3f} s over {REPEATS} runs"
    )
    print(f"reference, plain loop over resamples: {loop:.3f} s; ratio fairmerge / loop {best / loop:.4f}")
    print(f"noise_floor with {RESAMPLES} permutations: best {min(floor_times):.3f} s")
    print(
        json.dumps(
            {
                "bench": "bootstrap",
                "n": N,
                "groups": GROUPS,
                "resamples": RESAMPLES,
                "seconds": round(best, 4),
                "median_seconds": round(float(np.median(times)), 4),
                "loop_seconds": round(loop, 3),
                "ratio_vs_loop": round(best / loop, 4),
                "noise_floor_seconds": round(min(floor_times), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
