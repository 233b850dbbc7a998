"""The ``search:`` section of a study config: which searchers run, on what budget, against what.

Checked like the rest of :class:`fairmerge.study.config.StudyConfig` (unknown keys are errors).
Whether each objective's attribute is one the study evaluates is checked where the section is
nested (the study knows its attributes); here only the names' shape is checked.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

Method = Literal["grid", "tpe", "nsga2", "learned", "orthogonal"]
METHODS: tuple[str, ...] = get_args(Method)
BlockScheme = Literal["whole", "quarters"]
"""``whole``: one λ per group; ``quarters``: one per group and block (embeddings, lower half,
upper half, head; see :func:`fairmerge.search.problem.block_of`)."""


def _all_methods() -> list[Method]:
    return ["grid", "tpe", "nsga2", "learned", "orthogonal"]


_OBJECTIVE = re.compile(r"^(accuracy|[A-Za-z0-9_]+_(dpd|eod))$")


class SearchConfig(BaseModel):
    """Budget, objectives and reference point shared by every searcher (one evaluation = one model
    scored on the whole validation split; a learned pass = one forward+backward over it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    methods: list[Method] = Field(default_factory=lambda: _all_methods(), min_length=1)
    budget: int = Field(40, ge=4, description="validation model evaluations per method and seed")
    objectives: list[str] = Field(
        default_factory=lambda: ["accuracy", "race_dpd", "race_eod"],
        min_length=2,
        description="accuracy first (maximised), then gaps '<attribute>_dpd' / '<attribute>_eod' (minimised)",
    )
    reference_point: list[float] = Field(
        default_factory=lambda: [0.5, 0.5, 0.5],
        description="hypervolume reference in (accuracy, 1 − gap, ...) coordinates, one per objective",
    )
    blocks: BlockScheme = "whole"
    low: float = Field(0.0, ge=-5.0, le=5.0, description="smallest coefficient searched")
    high: float = Field(1.0, ge=-5.0, le=5.0, description="largest coefficient searched")
    mus: list[float] = Field(
        default_factory=lambda: [0.0, 0.5, 2.0, 8.0],
        min_length=1,
        description="fairness weights μ of the learned searches (one run each; they trace a front)",
    )
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    batch_size: int = Field(64, ge=2, description="posts per gradient step of the learned searches")
    population_size: int | None = Field(None, ge=2, description="NSGA-II population (default: budget // 4)")
    n_resamples: int = Field(1000, ge=0, description="bootstrap resamples of the test hypervolume")
    decimals: int = Field(4, ge=1, le=8, description="coefficients are rounded to this many decimals")

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"search.methods lists a method twice: {self.methods}")
        bad = [o for o in self.objectives if not _OBJECTIVE.match(o)]
        if bad:
            raise ValueError(f"search.objectives: {bad[0]!r} is not 'accuracy' or '<attribute>_dpd|eod'")
        if self.objectives[0] != "accuracy" or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(
                f"search.objectives must start with 'accuracy' and not repeat: {self.objectives}"
            )
        if len(self.reference_point) != len(self.objectives):
            raise ValueError(
                f"search.reference_point has {len(self.reference_point)} values for "
                f"{len(self.objectives)} objectives"
            )
        if any(not 0.0 <= r < 1.0 for r in self.reference_point):
            raise ValueError(f"search.reference_point values must lie in [0, 1), got {self.reference_point}")
        if not self.low < self.high:
            raise ValueError(f"search.low ({self.low}) must be below search.high ({self.high})")
        learned = {"learned", "orthogonal"} & set(self.methods)
        if learned and self.budget < 2 * len(self.mus):
            raise ValueError(
                f"search.budget {self.budget} is too small for {len(self.mus)} μ values "
                f"(each learned run needs a pass and a scoring: budget >= {2 * len(self.mus)})"
            )
        if any(mu < 0 for mu in self.mus):
            raise ValueError(f"search.mus must be >= 0, got {self.mus}")
        return self

    @property
    def attributes(self) -> list[str]:
        """The attributes the gap objectives name (to check against the study's)."""
        return sorted({o.rsplit("_", 1)[0] for o in self.objectives[1:] if o.endswith(("_dpd", "_eod"))})

    def fast(self) -> SearchConfig:
        """Every method on a small budget (``fairmerge run --fast``)."""
        mus = self.mus[:2] if len(self.mus) > 2 else self.mus
        return self.model_copy(update={"budget": max(8, 2 * len(mus)), "mus": mus, "n_resamples": 200})
