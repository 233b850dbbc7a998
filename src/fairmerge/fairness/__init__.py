"""Group-fairness metrics with overlapping groups, intervals, noise floors, comparisons and power."""

from fairmerge.fairness import registry
from fairmerge.fairness.comparisons import (
    COMPARISON_COLUMNS,
    compare_all,
    compare_to_reference,
    comparison_table,
    holm,
)
from fairmerge.fairness.metrics import (
    ATTRIBUTE_METRICS,
    GROUP_METRICS,
    OVERALL,
    UndefinedMetricWarning,
    group_metrics,
    headline,
    qualifying_groups,
)
from fairmerge.fairness.noise import NOISE_METRICS, noise_floor
from fairmerge.fairness.power import minimum_detectable_difference
from fairmerge.fairness.targets import hatexplain_target_quality, target_quality

__all__ = [
    "ATTRIBUTE_METRICS",
    "COMPARISON_COLUMNS",
    "GROUP_METRICS",
    "NOISE_METRICS",
    "OVERALL",
    "UndefinedMetricWarning",
    "compare_all",
    "compare_to_reference",
    "comparison_table",
    "group_metrics",
    "hatexplain_target_quality",
    "headline",
    "holm",
    "minimum_detectable_difference",
    "noise_floor",
    "qualifying_groups",
    "registry",
    "target_quality",
]
