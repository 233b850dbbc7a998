"""Searching merge coefficients for accuracy and fairness together (issue #20).

Searchers over one coefficient per subgroup vector (optionally per layer block), all spending the
same budget of validation model evaluations through one cached scorer: a uniform λ grid, the
study's per-group TPE, NSGA-II, learned coefficients (gradient descent with a soft-gap term, a μ
sweep) and learned coefficients over orthonormalised vectors. Their fronts are ranked by
hypervolume on validation and test. See docs/search.md.
"""

from fairmerge.search.config import METHODS, SearchConfig
from fairmerge.search.front import front_frame, score_front_on_test, select_from_front, write_front_csv
from fairmerge.search.hypervolume import front_hypervolume, hypervolume
from fairmerge.search.learned import Learner, MergedParameters, learned_search
from fairmerge.search.memory import estimate_learned_memory
from fairmerge.search.orthogonal import orthonormal_basis, orthonormalise
from fairmerge.search.problem import (
    BlockMerger,
    CoefficientSpace,
    Evaluations,
    Objective,
    ScoredPoint,
    SearchResult,
    objectives_of,
)
from fairmerge.search.samplers import grid_search, nsga2_search, tpe_search
from fairmerge.search.surrogates import group_targets
from fairmerge.search.table import (
    ResampledObjectives,
    hypervolume_table,
    summary_records,
    write_hypervolume_csv,
)

__all__ = [
    "METHODS",
    "BlockMerger",
    "CoefficientSpace",
    "Evaluations",
    "Learner",
    "MergedParameters",
    "Objective",
    "ResampledObjectives",
    "ScoredPoint",
    "SearchConfig",
    "SearchResult",
    "estimate_learned_memory",
    "front_frame",
    "front_hypervolume",
    "grid_search",
    "group_targets",
    "hypervolume",
    "hypervolume_table",
    "learned_search",
    "nsga2_search",
    "objectives_of",
    "orthonormal_basis",
    "orthonormalise",
    "score_front_on_test",
    "select_from_front",
    "summary_records",
    "tpe_search",
    "write_front_csv",
    "write_hypervolume_csv",
]
