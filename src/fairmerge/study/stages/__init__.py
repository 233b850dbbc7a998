"""The study of one seed as one ordered list of stages.

``STAGES`` is the only description of the pipeline: ``fairmerge run`` runs it in order (timings and
progress are named after each stage), ``fairmerge run --dry-run`` prints each stage's plan. A new
stage (a coefficient search, an export) is one module with a ``STAGE`` and one line here.
"""

from fairmerge.study.stages import (
    baselines,
    injection,
    merge_sweep,
    pergroup,
    postprocessing,
    precision,
    recipes,
    search,
    selection,
    sensitivity,
    setup,
    side_tables,
    target_quality,
    train,
)
from fairmerge.study.stages.base import SeedContext, SeedState, Stage

STAGES: tuple[Stage, ...] = (
    train.STAGE,
    setup.STAGE,
    precision.STAGE,
    baselines.STAGE,
    merge_sweep.STAGE,
    pergroup.STAGE,
    injection.STAGE,
    recipes.STAGE,
    selection.STAGE,
    search.STAGE,
    postprocessing.STAGE,
    sensitivity.STAGE,
    side_tables.STAGE,
    target_quality.STAGE,
)

__all__ = ["STAGES", "SeedContext", "SeedState", "Stage"]
