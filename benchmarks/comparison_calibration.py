"""Measured calibration of the study's model-vs-FFT comparison over seeds and posts.

Simulates two coupled classifiers over seeds (``fairmerge.fairness.simulation``: a seed's shift of
each group's rates, a post difficulty shared by both models and every seed) on bootstrap copies of
the HateXplain test split's own posts (real race memberships, group sizes and class counts), and
runs the study's own comparison code (``fairmerge.fairness.compare_all``, primary merge vs FFT on
race EOD) on each simulated study. Scenarios: true ΔEOD 0 (the null: the method is the reference
in distribution), −0.1 and −0.2 (the method narrows the African group's TPR/FPR deficit).

Prints coverage of the nominal 95 % intervals of Δaccuracy, ΔDPD and ΔEOD per scenario (with SE),
the type-I error in the null scenario, and the primary's power. LAST line: one JSON object with
``coverage_delta_eod``, ``coverage_delta_dpd``, ``coverage_delta_accuracy`` (minimum over scenarios,
true Δ = 0 included), ``type1_error`` (maximum over the null scenario's metrics), ``power_eod_01``,
``power_eod_02`` (primary, ``--seeds`` seeds), each with its binomial ``*_se``, ``replicates``,
``coverage_se`` (the SE a 95 % coverage has at ``replicates``) and ``seconds``.
``--replicates`` (default 1000: the SE of a 95 % coverage is 0.007, so the minimum over three scenarios of
an exactly calibrated interval stays above 0.94 about four times in five) and ``--resamples`` are flags.
Also prints, on the same simulated studies, the plug-in Satterthwaite t interval the fiducial one replaced.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from fairmerge.data import load_dataset  # noqa: E402
from fairmerge.fairness import compare_all  # noqa: E402
from fairmerge.fairness.simulation import (  # noqa: E402
    CoupledModels,
    Population,
    draw_predictions,
    effect_for,
    true_deltas,
)

METRICS = ("accuracy", "dpd", "eod")
TARGETS = (0.0, 0.1, 0.2)  # true |ΔEOD| of the scenarios
PRIMARY = {"model": "merge", "attribute": "race", "metric": "eod"}


def population() -> Population:
    split = load_dataset("hatexplain", os.environ.get("FAIRMERGE_DATA_DIR", "/work/shared/data"))["test"]
    return Population.from_split(split.labels, split.membership("race"))


def run_chunk(args: tuple[Population, float, int, int, int, int]) -> list[dict[str, float]]:
    """Simulated studies ``first .. first + count``: each row Δ, interval and p per metric."""
    pop, effect, n_seeds, resamples, first, count = args
    rows = []
    for r in range(first, first + count):
        rng = np.random.default_rng([r, round(abs(effect) * 1e4)])
        labels, members, method, reference = draw_predictions(
            pop, CoupledModels(), kind="eod", effect=effect, n_seeds=n_seeds, rng=rng
        )
        membership = pd.DataFrame(members.astype(bool), columns=[f"g{j}" for j in range(members.shape[1])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = compare_all(
                labels,
                {"race": membership},
                {"merge": dict(enumerate(method))},
                dict(enumerate(reference)),
                primary=PRIMARY,
                n_resamples=resamples,
                seed=r,
            )
        rows.append(
            {
                f"{row['metric']}_{k}": float(row[k])
                for row in table.to_dict(orient="records")
                for k in ("delta", "ci_low", "ci_high", "p_value", "se", "df")
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000, help="simulated studies per scenario")
    parser.add_argument("--resamples", type=int, default=400, help="post bootstrap resamples per comparison")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per simulated study (study default)")
    args = parser.parse_args()
    start = time.perf_counter()
    pop = population()
    models = CoupledModels()
    print(f"HateXplain test split, race: {pop.labels.size} posts; shifted group column {pop.shifted}")
    print(f"models: {models}; {args.seeds} seeds, {args.replicates} replicates, {args.resamples} resamples")
    scenarios = []
    for target in TARGETS:
        effect = effect_for(pop, models, kind="eod", target=target) if target else 0.0
        scenarios.append((target, effect, true_deltas(pop, models, kind="eod", effect=effect)))
    jobs, per = [], max(1, args.replicates // 8)
    for _, effect, _ in scenarios:
        for first in range(0, args.replicates, per):
            jobs.append((pop, effect, args.seeds, args.resamples, first, min(per, args.replicates - first)))
    with ProcessPoolExecutor(max_workers=2) as pool:
        chunks = list(pool.map(run_chunk, jobs))
    results: dict[float, pd.DataFrame] = {}
    for _, effect, _ in scenarios:
        mine = [row for job, chunk in zip(jobs, chunks, strict=True) if job[1] == effect for row in chunk]
        results[effect] = pd.DataFrame(mine)
    coverage: dict[str, list[tuple[float, int]]] = {m: [] for m in METRICS}
    type1, type1_n, power = 0.0, 1, {}
    for target, effect, truth in scenarios:
        frame = results[effect]
        n = len(frame)
        print(
            f"\ntrue ΔEOD −{target:.1f} (effect {effect:+.3f}): truth "
            + ", ".join(f"Δ{k} {v:+.4f}" for k, v in truth.items())
        )
        for metric in METRICS:
            low, high = frame[f"{metric}_ci_low"], frame[f"{metric}_ci_high"]
            defined = ~(low.isna() | high.isna())
            hit = float(((low <= truth[metric] + 1e-12) & (truth[metric] - 1e-12 <= high))[defined].mean())
            reject = float((frame[f"{metric}_p_value"] < 0.05)[defined].mean())
            width = float((high - low)[defined].median())
            coverage[metric].append((hit, int(defined.sum())))
            print(
                f"  Δ{metric:8s} coverage {hit:.3f} (SE {np.sqrt(hit * (1 - hit) / defined.sum()):.3f}, "
                f"{int(defined.sum())} defined)  rejects {reject:.3f}  median width {width:.3f}"
            )
            old = _satterthwaite(frame[defined], metric, truth[metric])
            print(
                f"  {'':9s} plug-in Satterthwaite t (before): coverage {old['coverage']:.3f}  "
                f"rejects {old['rejects']:.3f}  median width {old['width']:.3f}"
            )
            if target == 0.0 and reject >= type1:
                type1, type1_n = reject, int(defined.sum())
        detected = (frame["eod_p_value"] < 0.05) & (frame["eod_delta"] < 0)
        power[target] = float(detected.mean())
        power_se = np.sqrt(power[target] * (1 - power[target]) / n)
        print(f"  primary (ΔEOD) detected: {power[target]:.3f} (SE {power_se:.3f})")
    se = float(np.sqrt(0.95 * 0.05 / args.replicates))
    minima = {m: min(coverage[m]) for m in METRICS}  # (coverage, defined studies) of the worst scenario
    elapsed = time.perf_counter() - start
    print(f"\nSE of a 95 % coverage at {args.replicates} replicates: {se:.4f}; {elapsed:.1f} s")
    for metric, (value, n) in minima.items():
        print(f"min coverage Δ{metric}: {value:.3f} (SE {_se(value, n):.4f})")
    print(f"type-I error (max over the null's metrics): {type1:.3f} (SE {_se(type1, type1_n):.4f})")
    print(
        json.dumps(
            {
                "bench": "comparison_calibration",
                **{
                    f"coverage_delta_{m}{suffix}": round(x, 4 if suffix else 3)
                    for m, (value, n) in minima.items()
                    for suffix, x in (("", value), ("_se", _se(value, n)))
                },
                "type1_error": round(type1, 3),
                "type1_error_se": round(_se(type1, type1_n), 4),
                "power_eod_01": round(power[0.1], 3),
                "power_eod_01_se": round(_se(power[0.1], args.replicates), 4),
                "power_eod_02": round(power[0.2], 3),
                "power_eod_02_se": round(_se(power[0.2], args.replicates), 4),
                "seeds": args.seeds,
                "replicates": args.replicates,
                "resamples": args.resamples,
                "coverage_se": round(se, 4),
                "seconds": round(elapsed, 1),
            }
        )
    )


def _satterthwaite(frame: pd.DataFrame, metric: str, truth: float) -> dict[str, float]:
    """The interval the fiducial one replaced, Δ̄ ± t_{0.975, ν}·SE, on the same simulated studies."""
    delta, se, df = (frame[f"{metric}_{k}"].to_numpy() for k in ("delta", "se", "df"))
    half = stats.t.ppf(0.975, df) * se
    return {
        "coverage": float(np.mean(np.abs(delta - truth) <= half + 1e-12)),
        "rejects": float(np.mean(np.abs(delta) > half)),
        "width": float(np.median(2 * half)),
    }


def _se(rate: float, n: int) -> float:
    """Binomial standard error of a rate measured over ``n`` simulated studies."""
    return float(np.sqrt(rate * (1 - rate) / max(n, 1)))


if __name__ == "__main__":
    main()
