"""The report's "How to read this" box, stated from the configuration the run used (never fixed text).

Interval method, multiple-comparison correction and the thresholds that qualify a group are read
from the run's config (``provenance.config``) and from the comparison rows' own ``method`` text,
so the box cannot drift from the code that made the numbers.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from fairmerge.fairness.metrics import MIN_GROUP_SIZE, MIN_NEGATIVES, MIN_POSITIVES
from fairmerge.report.tables import is_missing

ALPHA = 0.05  # the family-wise level every comparison is tested at (fairmerge.study.verdict.classify)


def _label(comparison: Mapping[str, Any]) -> str:
    metric = {"accuracy": "accuracy", "dpd": "DPD", "eod": "EOD"}.get(str(comparison.get("metric")), "?")
    attribute = comparison.get("attribute", "race")
    where = "" if attribute == "all" else f"{attribute} "
    return f"{comparison.get('model', 'merge')} {where}{metric}"


def how_to_read(config: Mapping[str, Any], comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The box's HTML list, from ``config`` (``StudyConfig.to_dict()``) and the comparison rows."""
    evaluation = config.get("evaluation") or {}
    min_size = evaluation.get("min_group_size", MIN_GROUP_SIZE)
    min_pos = evaluation.get("min_positives", MIN_POSITIVES)
    min_neg = evaluation.get("min_negatives", MIN_NEGATIVES)
    resamples = evaluation.get("n_resamples") or 1000
    permutations = evaluation.get("n_permutations", 1000)
    delta = (config.get("selection") or {}).get("delta")
    primary = config.get("primary")
    secondary = list(config.get("secondary") or [])
    methods = sorted(
        {str(r["method"]) for r in comparisons if r.get("method") and not is_missing(r.get("ci_low"))}
    )
    items = [
        "<b>DPD</b> (demographic parity difference) is the largest gap in the rate of positive predictions "
        "between the groups of one attribute. Groups differ in base rate, so even a perfect classifier has "
        "a DPD: every DPD stands next to the labels' own DPD on the same posts.",
        "<b>EOD</b> (equalized odds difference) is the larger of the TPR gap and the FPR gap between groups: "
        "errors compared at equal true labels.",
        f"A group enters DPD with at least {min_size} test posts, the TPR gap with at least {min_pos} "
        f"positives and the FPR gap with at least {min_neg} negatives "
        "(<code>evaluation.min_group_size / min_positives / min_negatives</code>). A gap with fewer than two "
        "qualifying groups is undefined: n/a with its reason, never 0.",
        "Per-model brackets on test: Wilson score intervals for accuracy and every group rate; for DPD and "
        "EOD, pairwise score bounds on the group differences (Newcombe), whose lower end is 0 unless the "
        f"zero-gap permutation test rejects (validation gaps: basic bootstrap, {resamples} resamples). "
        "Each gap "
        f"sits next to its noise floor, the 95th percentile of the gap over {permutations} permutations of "
        "group membership within each label (docs/statistics.md, sections 2 and 3).",
        "Differences to FFT (Δ = model − FFT on the same posts, mean over seeds): "
        + ("; ".join(html.escape(m) for m in methods) if methods else "no comparison was made")
        + f". The interval is the {1 - ALPHA:.0%} fiducial interval of Δ (seed spread plus the paired post "
        "bootstrap's variance); the p-value is its dual (docs/statistics.md, "
        "section 4).",
        (
            f"The declared primary comparison ({html.escape(_label(primary))}) is tested alone at "
            f"α = {ALPHA:g}; "
            if isinstance(primary, Mapping)
            else "No primary comparison is declared; "
        )
        + (
            f"Holm's correction runs over the {len(secondary)} declared secondary comparisons only ("
            + ", ".join(html.escape(_label(s)) for s in secondary)
            + "); "
            if secondary
            else "no secondary comparison is declared; "
        )
        + "every other comparison is exploratory: its interval is shown and no claim is made.",
        _selection_item(delta),
    ]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _selection_item(delta: Any) -> str:
    kept = f" A model keeps accuracy when its Δaccuracy interval ends above −δ = −{delta:g}." if delta else ""
    return (
        "λ, per-group λ and decision thresholds are chosen on the <b>validation</b> split; the test split is "
        "evaluated once, at the selected points. A model at λ = 0 is θ_base (or FFT) itself, not an edit."
        + kept
    )
