"""Fast evaluation of many merge coefficients: one model edited in place, rules to select on validation.

- :class:`InPlaceMerger` (from :mod:`fairmerge.vectors`) writes θ = base + Σ λ_i τ_i into a model in place;
- :func:`sweep` evaluates a grid of uniform λ (with optional refinement near the best point);
  :func:`refined_grid` does the same for a caller that writes the weights itself;
- :func:`search_group_coefficients` searches one λ per subgroup vector (seeded TPE, fixed budget);
- :func:`points_from_metrics`, :func:`select_point`, :func:`pareto_front` choose on validation;
- :func:`dpd_bound_table` sets the observed DPD next to the empirical λ–DPD bound (docs/bound.md).
"""

from fairmerge.sweep.bound import dpd_bound_table, lipschitz_constants
from fairmerge.sweep.grid import refined_grid, sweep
from fairmerge.sweep.pergroup import GroupSearchResult, search_group_coefficients
from fairmerge.sweep.selection import (
    RULES,
    Selection,
    pareto_front,
    point_metrics,
    points_from_metrics,
    rule_scores,
    select_point,
)
from fairmerge.vectors.inplace import InPlaceMerger

__all__ = [
    "RULES",
    "GroupSearchResult",
    "InPlaceMerger",
    "Selection",
    "dpd_bound_table",
    "lipschitz_constants",
    "pareto_front",
    "point_metrics",
    "points_from_metrics",
    "refined_grid",
    "rule_scores",
    "search_group_coefficients",
    "select_point",
    "sweep",
]
