"""Measured coverage of the nominal 95 % intervals of accuracy, DPD and EOD at HateXplain's sizes.

Simulates classifiers whose per-group rates are known, at the default test split's race group
sizes and class balance (read from the data: ``FAIRMERGE_DATA_DIR``, default /work/shared/data),
and counts how often each interval method covers the true value. Two families of scenarios, each
with true gaps 0, 0.1 and 0.3:

- ``eod``: every group has TPR 0.70 and FPR 0.15 except African, whose TPR is lowered and FPR
  raised by the gap (so TPR gap = FPR gap = EOD = gap; DPD follows from the class balance);
- ``dpd``: predictions ignore the label, every group selects 35 % of its posts except African,
  which selects 35 % + gap (DPD = EOD = gap).

Each replicate draws every group's labels (Bernoulli at the group's real positive rate) and
predictions anew, so the truth is the population value over the groups that qualify. Intervals
come from the same bootstrap draw ``group_metrics`` makes (checked against it on the first
replicate), with 1,000 resamples. Also prints the mean estimated EOD at a true EOD of 0 for
several ``min_positives`` / ``min_negatives`` (point estimates only). Runs on 2 processes.

Per replicate it also runs the permutation tests of a zero gap (``noise_floor``: within-label for
EOD and the DPD floor, label-free for DPD's zero) and builds the intervals ``metrics.csv``'s test
rows carry (method ``reported``): the Wilson score interval for accuracy
(``fairmerge.fairness.metrics.rate_intervals``) and, for DPD and EOD, the pairwise score bounds
with the zero-gap test (``fairmerge.fairness.gap_intervals``). The ``eod`` scenario at gap 0 has
equal TPR and FPR in every group but the race groups' real, unequal base rates: the noise floor's
rejection rate there at α = 0.05 is its false-positive rate.

LAST line: one JSON object; ``coverage_dpd`` / ``coverage_eod`` / ``coverage_accuracy`` are the
reported intervals' minimum coverage over EVERY scenario (true 0 included), each with ``*_se`` and
``median_width_*`` (over every replicate of every scenario); ``coverage_accuracy`` comes from
20,000 exact-count replicates per scenario (:func:`accuracy_coverage`; the 1,000 per-post draws'
minimum is ``coverage_accuracy_per_post_draws``); ``coverage_*_basic`` the basic
bootstrap's minimum for comparison; ``noise_fpr_dpd`` / ``noise_fpr_eod`` (with ``noise_fpr_se``),
the within-label test's rejection rate in the ``eod`` scenario at gap 0 (equal TPR and FPR, unequal
base rates); ``label_free_fpr_dpd``, the label-free test's in the ``dpd`` scenario at gap 0;
``mean_bias_eod_at_zero``. ``--replicates`` (default 1000: SE of a 95 % coverage 0.007, so that the
minimum over six scenarios of an exactly calibrated interval is not often below 0.94).
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
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fairmerge.data import load_dataset  # noqa: E402
from fairmerge.fairness import group_metrics  # noqa: E402
from fairmerge.fairness.bootstrap import INTERVALS, bootstrap_interval, bootstrap_sums  # noqa: E402
from fairmerge.fairness.gap_intervals import invert, pairwise_bounds  # noqa: E402
from fairmerge.fairness.metrics import (  # noqa: E402
    DEFAULT_INTERVAL,
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    _attribute_metrics,
    _design,
    _jackknife,
    _Layout,
    _rates,
    rate_intervals,
)
from fairmerge.fairness.noise import noise_floor  # noqa: E402

REPLICATES, RESAMPLES, GAPS, CONFIDENCE = 1000, 1000, (0.0, 0.1, 0.3), 0.95
PERMUTATIONS = 500
ACCURACY_REPLICATES = 20_000  # exact-count replicates of the accuracy interval: SE 0.0015 at 95 %
REPORTED = "reported"  # what metrics.csv's test rows carry: Wilson rates, gap_intervals' DPD / EOD
TPR, FPR, SELECTION, SHIFTED = 0.70, 0.15, 0.35, "African"
METRICS = ("accuracy", "dpd", "eod", "tpr_gap", "fpr_gap", "worst_group_accuracy")


@dataclass(frozen=True)
class Population:
    groups: list[str]
    sizes: np.ndarray  # posts per group; the last entry is the posts that target no race group
    positive_rate: np.ndarray


def population() -> Population:
    split = load_dataset("hatexplain", os.environ.get("FAIRMERGE_DATA_DIR", "/work/shared/data"))["test"]
    membership = split.membership("race")
    groups = [str(g) for g in membership.columns]
    mask = membership.to_numpy()
    sizes = [int(mask[:, j].sum()) for j in range(len(groups))]
    rates = [float(split.labels[mask[:, j]].mean()) for j in range(len(groups))]
    rest = ~mask.any(axis=1)
    return Population(
        groups, np.array([*sizes, int(rest.sum())]), np.array([*rates, float(split.labels[rest].mean())])
    )


def rates_for(pop: Population, scenario: str, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """P(ŷ = 1 | y = 1) and P(ŷ = 1 | y = 0) per group (last: no race group)."""
    k = len(pop.sizes)
    shifted = pop.groups.index(SHIFTED)
    if scenario == "eod":
        tpr, fpr = np.full(k, TPR), np.full(k, FPR)
        tpr[shifted] -= gap
        fpr[shifted] += gap
    else:
        tpr = fpr = np.full(k, SELECTION)
        tpr = fpr = np.where(np.arange(k) == shifted, SELECTION + gap, SELECTION)
    return tpr, fpr


def truth(pop: Population, tpr: np.ndarray, fpr: np.ndarray, thresholds: Thresholds) -> dict[str, float]:
    """Population values over the groups that qualify at the expected counts."""
    pi = pop.positive_rate
    selection = pi * tpr + (1 - pi) * fpr
    accuracy = pi * tpr + (1 - pi) * (1 - fpr)
    g = slice(0, len(pop.groups))
    positives, negatives = pop.sizes * pi, pop.sizes * (1 - pi)
    sized = pop.sizes[g] >= thresholds.min_group_size
    with_pos = np.round(positives[g]) >= thresholds.min_positives
    with_neg = np.round(negatives[g]) >= thresholds.min_negatives

    def spread(values: np.ndarray, keep: np.ndarray) -> float:
        return float(values[g][keep].max() - values[g][keep].min()) if keep.sum() >= 2 else float("nan")

    tpr_gap, fpr_gap = spread(tpr, with_pos), spread(fpr, with_neg)
    return {
        "accuracy": float((accuracy * pop.sizes).sum() / pop.sizes.sum()),
        "dpd": spread(selection, sized),
        "tpr_gap": tpr_gap,
        "fpr_gap": fpr_gap,
        "eod": max(tpr_gap, fpr_gap),
        "worst_group_accuracy": float(accuracy[g][sized].min()),
    }


def draw(
    pop: Population, tpr: np.ndarray, fpr: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    group = np.repeat(np.arange(len(pop.sizes)), pop.sizes)
    labels = (rng.random(group.size) < pop.positive_rate[group]).astype(np.int64)
    p = np.where(labels == 1, tpr[group], fpr[group])
    predictions = (rng.random(group.size) < p).astype(np.int64)
    members = (group[:, None] == np.arange(len(pop.groups))[None, :]).astype(np.int64)
    return labels, predictions, members


def intervals(
    labels: np.ndarray, predictions: np.ndarray, members: np.ndarray, thresholds: Thresholds, seed: int
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Per method and metric: (estimate, low, high), from one bootstrap draw like group_metrics'."""
    stacked = np.concatenate([np.ones((labels.size, 1), dtype=np.int64), members], axis=1)
    layout = _Layout(
        [("all", "all"), *(("race", str(j)) for j in range(members.shape[1]))],
        {"race": slice(1, stacked.shape[1])},
    )
    design = _design(labels, predictions, stacked)
    columns = stacked.shape[1]
    counts = design.sum(axis=0).reshape(4, columns)
    qualifies = thresholds.qualifying(counts)
    point_rates = _rates(counts)
    point = {**{k[1]: v for k, v in _attribute_metrics(point_rates, qualifies, layout).items()}}
    point["accuracy"] = point_rates["accuracy"][0]
    boot_counts = bootstrap_sums(design, n_resamples=RESAMPLES, seed=seed).reshape(RESAMPLES, 4, columns)
    boot_rates = _rates(np.moveaxis(boot_counts, 1, 0))
    boot = {k[1]: v for k, v in _attribute_metrics(boot_rates, qualifies, layout).items()}
    boot["accuracy"] = boot_rates["accuracy"][:, 0]
    jack_rates, jack_attr = _jackknife(design, counts, qualifies, layout)
    jack = {k[1]: v for k, v in jack_attr.items()}
    jack["accuracy"] = jack_rates["accuracy"][:, 0]
    estimates = np.array([point[m] for m in METRICS], dtype=np.float64)
    samples = np.stack([boot[m] for m in METRICS], axis=1)
    leave_one_out = np.stack([jack[m] for m in METRICS], axis=1)
    out: dict[str, dict[str, tuple[float, float, float]]] = {}
    for method in INTERVALS:  # every metric at once: each column is its own interval
        low, high = bootstrap_interval(
            samples, estimates, CONFIDENCE, method=method, jackknife=leave_one_out, support=(0.0, 1.0)
        )
        out[method] = {m: (float(estimates[j]), float(low[j]), float(high[j])) for j, m in enumerate(METRICS)}
    wilson_low, wilson_high = rate_intervals(counts, CONFIDENCE)["accuracy"]
    out[REPORTED] = {**out["basic"], "accuracy": (point["accuracy"], wilson_low[0], wilson_high[0])}
    return out


def race_membership(members: np.ndarray) -> dict[str, pd.DataFrame]:
    """The simulated 0/1 group matrix as the ``memberships`` mapping of the fairness functions."""
    return {"race": pd.DataFrame(members.astype(bool), columns=[str(j) for j in range(members.shape[1])])}


def perm_p(
    labels: np.ndarray,
    predictions: np.ndarray,
    membership: dict[str, pd.DataFrame],
    thresholds: Thresholds,
    seed: int,
) -> dict[str, float]:
    """Permutation p-values: ``dpd``/``eod`` of the noise floor (within-label), ``dpd_zero`` label-free."""
    options = {
        "n_permutations": PERMUTATIONS,
        "seed": seed,
        "min_group_size": thresholds.min_group_size,
        "min_positives": thresholds.min_positives,
        "min_negatives": thresholds.min_negatives,
    }
    within, free = (
        dict(zip(frame["metric"], frame["value"], strict=True))
        for frame in (
            noise_floor(labels, predictions, membership, **options),
            noise_floor(np.zeros_like(labels), predictions, membership, **options),
        )
    )
    return {
        "dpd": float(within["dpd_perm_p"]),
        "eod": float(within["eod_perm_p"]),
        "dpd_zero": float(free["dpd_perm_p"]),
    }


def run_scenario(args: tuple[Population, str, float, Thresholds, int]) -> dict[str, object]:
    pop, scenario, gap, thresholds, replicates = args
    tpr, fpr = rates_for(pop, scenario, gap)
    true = truth(pop, tpr, fpr, thresholds)
    rng = np.random.default_rng([int(gap * 1000), len(scenario), thresholds.min_positives])
    covered = {m: {k: 0 for k in METRICS} for m in (*INTERVALS, REPORTED)}
    widths: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in (*INTERVALS, REPORTED)}
    rejected = {"dpd": 0, "eod": 0, "dpd_zero": 0}
    defined = {k: 0 for k in METRICS}
    estimates: dict[str, list[float]] = {k: [] for k in METRICS}
    for r in range(replicates):
        labels, predictions, members = draw(pop, tpr, fpr, rng)
        result = intervals(labels, predictions, members, thresholds, seed=r)
        membership = race_membership(members)
        if r == 0:  # the benchmark's path is group_metrics' path
            check_against_group_metrics(labels, predictions, membership, thresholds, result, seed=r)
        tests = perm_p(labels, predictions, membership, thresholds, seed=r)
        for gap_name in rejected:
            rejected[gap_name] += int(tests[gap_name] < 1 - CONFIDENCE)
        bounds = pairwise_bounds(labels, predictions, membership, confidence=CONFIDENCE, **vars(thresholds))
        for gap_name, test in (("dpd", "dpd_zero"), ("eod", "eod")):
            estimate = result["basic"][gap_name][0]
            result[REPORTED][gap_name] = (
                estimate,
                *invert(*bounds["race", gap_name], tests[test], CONFIDENCE),
            )
        for metric in METRICS:
            estimate = result["percentile"][metric][0]
            if np.isnan(estimate):
                continue
            defined[metric] += 1
            estimates[metric].append(estimate)
            for method in (*INTERVALS, REPORTED):
                _, low, high = result[method][metric]
                covered[method][metric] += int(low - 1e-12 <= true[metric] <= high + 1e-12)
                widths[method][metric].append(high - low)
    return {
        "scenario": scenario,
        "gap": gap,
        "truth": true,
        "coverage": {
            m: {k: covered[m][k] / defined[k] if defined[k] else float("nan") for k in METRICS}
            for m in (*INTERVALS, REPORTED)
        },
        "widths": widths,
        "noise_fpr": {k: v / replicates for k, v in rejected.items()},
        "defined": defined,
        "bias": {
            k: float(np.mean(estimates[k]) - true[k]) if estimates[k] else float("nan") for k in METRICS
        },
    }


def accuracy_coverage(pop: Population, scenario: str, gap: float, replicates: int) -> float:
    """Coverage of the reported accuracy interval (Wilson), from confusion counts drawn directly.

    Per group, positives ~ Bin(n, π), TP ~ Bin(positives, TPR), FP ~ Bin(negatives, FPR): the same
    counts :func:`draw` produces, without the posts, so that ``replicates`` = 20,000 take a second.
    A rate's interval needs only these counts; 1,000 replicates (SE 0.007) cannot tell a coverage
    of 0.947 from 0.933, and the ``eod`` scenario at gap 0 puts the true accuracy exactly halfway
    between two attainable values (1,570.5 / 1,956), where a lattice statistic's coverage dips.
    """
    tpr, fpr = rates_for(pop, scenario, gap)
    true = truth(pop, tpr, fpr, Thresholds())["accuracy"]
    rng = np.random.default_rng([int(gap * 1000), len(scenario), replicates])
    positives = rng.binomial(pop.sizes, pop.positive_rate, size=(replicates, pop.sizes.size))
    tp = rng.binomial(positives, tpr)
    fp = rng.binomial(pop.sizes - positives, fpr)
    counts = np.stack([tp, fp, positives - tp, pop.sizes - positives - fp]).sum(axis=2)  # (4, replicates)
    low, high = rate_intervals(counts[:, None, :], CONFIDENCE)["accuracy"]
    return float(np.mean((low[0] - 1e-12 <= true) & (true <= high[0] + 1e-12)))


def check_against_group_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    membership: dict[str, pd.DataFrame],
    thresholds: Thresholds,
    result: dict[str, dict[str, tuple[float, float, float]]],
    seed: int,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = group_metrics(
            labels,
            predictions,
            membership,
            min_group_size=thresholds.min_group_size,
            min_positives=thresholds.min_positives,
            min_negatives=thresholds.min_negatives,
            n_resamples=RESAMPLES,
            seed=seed,
        )
    row = frame[(frame.attribute == "race") & (frame.group == "all") & (frame.metric == "eod")].iloc[0]
    mine = result[DEFAULT_INTERVAL]["eod"]
    if not np.allclose([row.value, row.ci_low, row.ci_high], mine, equal_nan=True):
        raise AssertionError(f"benchmark path differs from group_metrics: {mine} vs {row.tolist()}")


def bias_at_zero(pop: Population, minimum: int, replicates: int = 1000) -> float:
    """Mean estimated EOD when every group has the same TPR and FPR (true EOD 0)."""
    thresholds = Thresholds(MIN_GROUP_SIZE, minimum, minimum)
    tpr, fpr = rates_for(pop, "eod", 0.0)
    rng = np.random.default_rng(minimum)
    values = []
    for _ in range(replicates):
        labels, predictions, members = draw(pop, tpr, fpr, rng)
        stacked = np.concatenate([np.ones((labels.size, 1), dtype=np.int64), members], axis=1)
        layout = _Layout(
            [("all", "all"), *(("race", str(j)) for j in range(members.shape[1]))],
            {"race": slice(1, stacked.shape[1])},
        )
        counts = _design(labels, predictions, stacked).sum(axis=0).reshape(4, -1)
        values.append(
            float(_attribute_metrics(_rates(counts), thresholds.qualifying(counts), layout)["race", "eod"])
        )
    return float(np.nanmean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replicates",
        type=int,
        default=REPLICATES,
        help="replicates per scenario (1000: SE of a 95%% coverage 0.007)",
    )
    replicates = parser.parse_args().replicates
    start = time.perf_counter()
    pop = population()
    defaults = Thresholds(MIN_GROUP_SIZE, MIN_POSITIVES, MIN_NEGATIVES)
    print("race groups of the HateXplain test split (posts, positive rate):")
    for name, n, pi in zip(pop.groups, pop.sizes, pop.positive_rate, strict=False):
        print(f"  {name:10s} {n:4d}  {pi:.2f}")
    print(f"  (no race)  {pop.sizes[-1]:4d}  {pop.positive_rate[-1]:.2f}")
    print(
        f"thresholds: min_group_size {defaults.min_group_size}, min_positives {defaults.min_positives}, "
        f"min_negatives {defaults.min_negatives}; {replicates} replicates, {RESAMPLES} resamples"
    )
    jobs = [(pop, s, g, defaults, replicates) for s in ("eod", "dpd") for g in GAPS]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run_scenario, jobs))
        minima = (1, 5, 10, 20, 30)
        biases = dict(zip(minima, pool.map(bias_at_zero, [pop] * len(minima), minima), strict=True))
    for result in results:
        truth_text = ", ".join(f"{k} {v:.3f}" for k, v in result["truth"].items())  # type: ignore[attr-defined]
        print(f"\nscenario {result['scenario']}, gap {result['gap']}: truth {truth_text}")
        print("  coverage of nominal 95% " + " ".join(f"{m:>22s}" for m in METRICS))
        for method in (*INTERVALS, REPORTED):
            cov = result["coverage"][method]  # type: ignore[index]
            print(f"  {method:24s}" + " ".join(f"{cov[m]:22.3f}" for m in METRICS))
        for method in ("basic", REPORTED):
            width = result["widths"][method]  # type: ignore[index]
            print(f"  median width, {method:10s}" + " ".join(f"{np.median(width[m]):22.3f}" for m in METRICS))
        bias = result["bias"]
        print("  mean bias of the estimate " + " ".join(f"{bias[m]:+20.3f}" for m in METRICS))  # type: ignore[index]
    print("\nmean estimated EOD at a true EOD of 0, by min_positives = min_negatives:")
    for minimum, value in biases.items():
        print(f"  {minimum:3d}: {value:.3f}")

    def coverage(metric: str, method: str) -> tuple[float, float]:
        """Minimum coverage over every scenario (true zero included), and its binomial SE."""
        values = [(r["coverage"][method][metric], r["defined"][metric]) for r in results]  # type: ignore[index]
        value, n = min(values)
        return round(float(value), 3), round(float(np.sqrt(max(value * (1 - value), 0.0475) / n)), 4)

    nulls = [r for r in results if r["gap"] == 0.0 and r["scenario"] == "eod"]
    fpr = {k: nulls[0]["noise_fpr"][k] for k in ("dpd", "eod")}  # type: ignore[index]
    fpr_se = float(np.sqrt(0.05 * 0.95 / replicates))
    label_free = next(r for r in results if r["gap"] == 0.0 and r["scenario"] == "dpd")
    fpr["dpd_zero"] = label_free["noise_fpr"]["dpd_zero"]  # type: ignore[index]
    print(
        f"\nnoise floor at α = 0.05 under unequal base rates (eod scenario, gap 0: equal TPR and FPR): "
        f"FPR DPD {fpr['dpd']:.3f}, EOD {fpr['eod']:.3f} (SE {fpr_se:.3f}, {replicates} replicates)"
    )
    print(
        f"label-free test of DPD = 0 (the inverted DPD interval's test; dpd scenario, gap 0): "
        f"FPR {fpr['dpd_zero']:.3f} (SE {fpr_se:.3f})"
    )

    def median_width(metric: str, method: str) -> float:
        """Median interval width over every replicate of every scenario."""
        return round(float(np.median([w for r in results for w in r["widths"][method][metric]])), 4)  # type: ignore[index]

    for name in ("dpd", "eod", "accuracy"):
        value, se = coverage(name, REPORTED)
        basic, basic_se = coverage(name, DEFAULT_INTERVAL)
        print(
            f"min coverage {name}: {value:.3f} (SE {se:.4f}; basic bootstrap {basic:.3f}, "
            f"SE {basic_se:.4f}); median width {median_width(name, REPORTED):.4f} "
            f"(basic {median_width(name, DEFAULT_INTERVAL):.4f})"
        )

    exact = {(s, g): accuracy_coverage(pop, s, g, ACCURACY_REPLICATES) for s in ("eod", "dpd") for g in GAPS}
    accuracy = min(exact.values())
    accuracy_se = float(np.sqrt(max(accuracy * (1 - accuracy), 0.0475) / ACCURACY_REPLICATES))
    print(
        f"accuracy (Wilson) from exact counts, {ACCURACY_REPLICATES} replicates per scenario: "
        + ", ".join(f"{s} {g}: {v:.4f}" for (s, g), v in exact.items())
        + f"; minimum {accuracy:.4f} (SE {accuracy_se:.4f})"
    )

    zero = next(r for r in results if r["scenario"] == "eod" and r["gap"] == 0.0)
    elapsed = time.perf_counter() - start
    print(f"\n{elapsed:.1f} s")
    print(
        json.dumps(
            {
                "bench": "ci_coverage",
                "interval": "Wilson (accuracy), pairwise score bounds with the zero-gap test (DPD, EOD)",
                "replicates": replicates,
                "resamples": RESAMPLES,
                "permutations": PERMUTATIONS,
                **{
                    f"coverage_{m}{suffix}": coverage(m, REPORTED)[i]
                    for m in ("dpd", "eod")
                    for i, suffix in enumerate(("", "_se"))
                },
                "coverage_accuracy": round(accuracy, 4),
                "coverage_accuracy_se": round(accuracy_se, 4),
                "coverage_accuracy_replicates": ACCURACY_REPLICATES,
                "coverage_accuracy_per_post_draws": coverage("accuracy", REPORTED)[0],
                **{f"median_width_{m}": median_width(m, REPORTED) for m in ("dpd", "eod", "accuracy")},
                "coverage_dpd_basic": coverage("dpd", DEFAULT_INTERVAL)[0],
                "coverage_eod_basic": coverage("eod", DEFAULT_INTERVAL)[0],
                "coverage_accuracy_basic": coverage("accuracy", DEFAULT_INTERVAL)[0],
                "noise_fpr_dpd": round(fpr["dpd"], 3),
                "noise_fpr_eod": round(fpr["eod"], 3),
                "noise_fpr_se": round(fpr_se, 4),
                "label_free_fpr_dpd": round(fpr["dpd_zero"], 3),
                "mean_bias_eod_at_zero": round(float(zero["bias"]["eod"]), 3),  # type: ignore[index]
                "seconds": round(elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
