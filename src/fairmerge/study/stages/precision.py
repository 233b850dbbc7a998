"""Stage: the scoring precision of ``evaluation.precision: auto``, proven on θ_base before any sweep.

``auto`` offers the device's fast precision (bf16 autocast where it has bf16 units, see
:mod:`fairmerge.precision`). Before any point is scored, θ_base is scored on the validation posts
in fp32 and in that fast precision; the seed scores in the fast one only if

- the decisions agree on at least ``evaluation.precision_min_agreement`` of the posts, under every
  decision the study makes (argmax, and the validation-chosen threshold when calibrating, each
  precision with its own threshold), and
- no group rate (every registered rate of every group, and overall) moves by
  ``evaluation.precision_max_rate_shift`` or more;

otherwise it falls back to fp32. ``fp32`` and ``bf16`` asked for explicitly are used as they are.
The check's record (:class:`PrecisionCheck`) says what was measured and chosen. The run's
score-cache key holds the device's precision; auto's fp32 fallback scores in a sub-folder named
after it, so the two precisions' scores are never mixed, and θ_base's check scores are the
baseline stage's cache hits whichever is chosen.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairmerge.fairness import group_metrics
from fairmerge.fairness.calibration import choose_threshold, predict_at
from fairmerge.fairness.metrics import UndefinedMetricWarning
from fairmerge.fairness.registry import rate_names
from fairmerge.labels import ModelLabel
from fairmerge.precision import ResolvedPrecision, resolve_precision
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.points import Candidate, PointEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need

BASE = Candidate(ModelLabel("base"), None, None, start="base")


@dataclass(frozen=True)
class PrecisionCheck:
    """What ``evaluation.precision`` resolved to for one seed, and the measurement behind it."""

    requested: str
    offered: ResolvedPrecision
    """The device's precision for the request (``auto``: its fast one where it has one)."""
    chosen: ResolvedPrecision
    checked: bool
    """False where there was nothing to check (fp32/bf16 asked for, or a device without bf16)."""
    agreement: float | None = None
    """Lowest share of validation posts with the same decision in both precisions, over decisions."""
    max_rate_shift: float | None = None
    """Largest |rate_fast − rate_fp32| over groups, rates and decisions (inf: defined in one only)."""
    min_agreement: float | None = None
    max_rate_tolerance: float | None = None
    n_posts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON values (an infinite rate shift, a rate defined in one precision only,
        becomes the string ``"inf"``: JSON has no infinity)."""
        return {k: "inf" if v == float("inf") else v for k, v in asdict(self).items()}

    @property
    def summary(self) -> str:
        """One line for the console and the report."""
        if not self.checked:
            return f"scoring precision {self.chosen} (requested {self.requested}; nothing to check)"
        verdict = "passed" if self.chosen == self.offered else "failed: fp32"
        return (
            f"scoring precision {self.chosen}: {self.offered} vs fp32 on θ_base, {self.n_posts} val posts, "
            f"decisions agree {self.agreement:.4%} (need ≥ {self.min_agreement:.2%}), largest group-rate "
            f"shift {self.max_rate_shift:.4f} (need < {self.max_rate_tolerance}) — {verdict}"
        )


def _rates(labels: np.ndarray, predictions: np.ndarray, split: SplitEvaluator) -> pd.Series:
    memberships = split.split.memberships(split.attributes)
    with warnings.catch_warnings():  # undefined rates are compared as such; the baselines warn of them
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        frame = group_metrics(
            labels,
            predictions,
            memberships,
            n_resamples=0,
            min_group_size=split.thresholds.min_group_size,
            min_positives=split.thresholds.min_positives,
            min_negatives=split.thresholds.min_negatives,
        )
    frame = frame[frame.metric.isin(rate_names())]
    return frame.set_index(["attribute", "group", "metric"])["value"]


def _rate_shift(fp32: pd.Series, fast: pd.Series) -> float:
    """Largest |Δ| of the rates; a rate defined in one precision and not the other is an inf shift."""
    both = pd.concat([fp32, fast], axis=1, keys=["fp32", "fast"])
    defined = both.notna()
    if (defined.fp32 != defined.fast).any():
        return float("inf")
    shifts = (both.fast - both.fp32).abs()[defined.fp32]
    return float(shifts.max()) if len(shifts) else 0.0


def compare_precisions(
    fp32: np.ndarray,
    fast: np.ndarray,
    split: SplitEvaluator,
    *,
    calibrate: bool,
    objective: Literal["accuracy", "balanced_accuracy"],
) -> tuple[float, float]:
    """(lowest decision agreement, largest group-rate shift) of two score vectors of one model on
    ``split``, over the argmax decision and, with ``calibrate``, each precision's chosen threshold."""
    labels = split.split.labels
    thresholds = [(0.5, 0.5)]
    if calibrate:
        thresholds.append(
            (choose_threshold(labels, fp32, objective), choose_threshold(labels, fast, objective))
        )
    agreement, shift = 1.0, 0.0
    for low, fast_threshold in thresholds:
        reference, candidate = predict_at(fp32, low), predict_at(fast, fast_threshold)
        agreement = min(agreement, float(np.mean(reference == candidate)))
        shift = max(shift, _rate_shift(_rates(labels, reference, split), _rates(labels, candidate, split)))
    return agreement, shift


def _scoring_in(
    evaluator: PointEvaluator, precision: ResolvedPrecision, offered: ResolvedPrecision, cache: ScoreCache
) -> PointEvaluator:
    """``evaluator`` scoring in ``precision``. The run's score-cache key already holds the device's
    precision (``offered``); scores in another one (auto's fp32) go to a sub-folder named after it."""
    if precision != offered:
        cache = ScoreCache(cache.root / f"precision={precision}", enabled=cache.enabled)
    val = replace(evaluator.val, precision=precision, cache=cache)
    test = replace(evaluator.test, precision=precision, cache=cache)
    return replace(evaluator, scorer=replace(evaluator.scorer, val=val, test=test, _kept={}))


def choose_precision(context: SeedContext, state: SeedState) -> tuple[PrecisionCheck, PointEvaluator]:
    """The seed's :class:`PrecisionCheck` and the evaluator that scores in its chosen precision."""
    lab = need(state.lab, "the workspace")
    evaluation = context.config.evaluation
    offered = resolve_precision(evaluation.precision, lab.workspace.model.device)
    if evaluation.precision != "auto" or offered == "fp32":
        check = PrecisionCheck(evaluation.precision, offered, offered, checked=False)
        return check, _scoring_in(lab.evaluator, offered, offered, context.score_cache)
    scores = {
        precision: _scoring_in(lab.evaluator, precision, offered, context.score_cache).scorer.scores(
            BASE, "val"
        )
        for precision in ("fp32", offered)
    }
    agreement, shift = compare_precisions(
        scores["fp32"],
        scores[offered],
        lab.evaluator.val,
        calibrate=evaluation.calibrate,
        objective=evaluation.calibration_objective,
    )
    passed = agreement >= evaluation.precision_min_agreement and shift < evaluation.precision_max_rate_shift
    chosen: ResolvedPrecision = offered if passed else "fp32"
    check = PrecisionCheck(
        "auto",
        offered,
        chosen,
        checked=True,
        agreement=agreement,
        max_rate_shift=shift,
        min_agreement=evaluation.precision_min_agreement,
        max_rate_tolerance=evaluation.precision_max_rate_shift,
        n_posts=len(scores["fp32"]),
    )
    return check, _scoring_in(lab.evaluator, chosen, offered, context.score_cache)


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab = need(state.lab, "the workspace")
    check, evaluator = choose_precision(context, state)
    if context.console is not None:
        context.console.print(check.summary, markup=False)
    return replace(state, lab=replace(lab, evaluator=evaluator), precision=check)


STAGE = Stage(
    "evaluate: precision",
    "evaluation.precision auto: score θ_base on val in fp32 and bf16, keep bf16 only if decisions agree",
    run,
)
