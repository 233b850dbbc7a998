"""Group-fairness metrics with overlapping groups, bootstrap intervals, and decision thresholds."""

from fairmerge.fairness.metrics import (
    ATTRIBUTE_METRICS,
    GROUP_METRICS,
    OVERALL,
    UndefinedMetricWarning,
    group_metrics,
    headline,
)

__all__ = [
    "ATTRIBUTE_METRICS",
    "GROUP_METRICS",
    "OVERALL",
    "UndefinedMetricWarning",
    "group_metrics",
    "headline",
]
