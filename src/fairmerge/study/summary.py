"""``summary.json`` as a typed object: what was selected on validation and what test said about it.

The schema is documented field by field in ``docs/outputs.md``; ``StudySummary.model_json_schema()``
gives it in JSON Schema form. Undefined numbers are written as ``null`` (never 0). Fields added after
the first release have defaults, so the report still reads an older ``summary.json``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fairmerge.study.outputs import to_json_safe


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionSettings(_Record):
    rule: str = Field(description="selection rule applied on validation")
    epsilon: float = Field(description="gap bound of the 'constrained' rule")
    delta: float = Field(description="accuracy margin to FFT of the 'fairest' rule")
    split: str = Field("val", description="the split every choice was made on")


class SelectedEntry(_Record):
    lam: float | None = Field(alias="lambda", description="the selected uniform λ (null when per-group)")
    lambdas: dict[str, float] | None = Field(description="per-group λ_g (merge_pergroup only)")
    rule: str
    feasible: bool = Field(description="False when no point met the rule's constraint")
    reason: str
    unedited: str | None = Field(
        None,
        description="θ_base or FFT when the selected point edits nothing (λ = 0, or every λ_g = 0): "
        "the family's test row then measures that model",
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WorstGroup(_Record):
    attribute: str
    group: str
    label: str = Field(description="name of the group's task vector")
    criterion: str = Field(description="'accuracy' or 'eod': how FFT's worst group was ranked on val")


class Comparison(_Record):
    """One method vs FFT on test; undefined numbers are null (never 0)."""

    model: str
    attribute: str = Field(description="'all' for accuracy")
    metric: str = Field(description="accuracy, dpd or eod")
    delta: float | None = Field(description="method − FFT, averaged over seeds")
    ci_low: float | None
    ci_high: float | None
    p_value: float | None = Field(description="two-sided; 0 difference is the null")
    p_holm: float | None = Field(
        description="primary: its own p; secondaries: Holm-adjusted among themselves; exploratory: null"
    )
    primary: bool = Field(description="the one comparison the config declared (not adjusted)")
    role: str | None = Field(None, description="primary, secondary (declared) or exploratory (no claim)")
    n_seeds: int | None = None
    se: float | None = Field(None, description="standard error of delta: sqrt(se_posts² + se_seeds²)")
    se_posts: float | None = Field(None, description="post-level part (paired bootstrap of the posts)")
    se_seeds: float | None = Field(None, description="between-seed part (spread of per-seed deltas / √S)")
    df: float | None = Field(
        None,
        description="Satterthwaite effective df (descriptive: the interval is fiducial); null = infinite",
    )
    labels_dpd: float | None = Field(
        None, description="DPD of the true labels on the same posts (DPD rows): the base-rate gap"
    )
    method: str | None = Field(None, description="how the interval was made (seeds, posts)")
    mde: float | str | None = Field(
        None,
        description="smallest |delta| this comparison's test detects with 80 % power (simulated); "
        "'out of reach' when no effect the simulation can make is detected",
    )
    seeds: Any = Field(None, description="the seeds both the model and FFT have")
    reason: str | None = Field(None, description="why a comparison is undefined, else empty")


class StudySummary(_Record):
    dataset: str = Field(description="dataset name (registry)")
    model: str = Field(description="base model: 'default' (bundled MiniLM), a Hub id or a local folder")
    label_scheme: str = Field(description="what label 1 means (e.g. 'hate': hate speech by >= 2 of 3)")
    attributes: list[str] = Field(description="protected attributes whose groups are compared")
    seeds: list[int] = Field(description="the seeds the study ran; seed-specific fields are the first seed's")
    selection: SelectionSettings = Field(description="the rule and knobs applied on validation")
    lambda_convention: str = Field(
        "sum", description="λ of the main merge: 'sum' θ_base + λ·Σ τ_g, or 'mean' θ_base + (λ/G)·Σ τ_g"
    )
    merge_method: str = Field(
        "task_arithmetic",
        description="sweep.method: how the merges combine the vectors (task_arithmetic, ties, dare)",
    )
    selected: dict[str, SelectedEntry] = Field(description="model label → what validation selected")
    selected_by_seed: dict[str, dict[str, SelectedEntry]] = Field(
        default_factory=dict,
        description="later seeds (seed → model label → what validation selected), so any seed's point "
        "can be rebuilt (fairmerge export --seed)",
    )
    worst_group: WorstGroup = Field(description="the group FFT serves worst on val (first seed)")
    worst_groups_by_seed: dict[str, str] = Field(
        default_factory=dict,
        description="seed → the group whose vector inject:worst injected (found on val per seed)",
    )
    headline: list[dict[str, Any]] = Field(description="test metrics of every model, with CIs")
    comparisons: list[Comparison] = Field(description="every model vs FFT on test, over seeds and posts")
    mde: dict[str, dict[str, float | str | None]] = Field(
        default_factory=dict,
        description="attribute → smallest ΔDPD / ΔEOD the comparison test detects (80 % power, α = 0.05), "
        "simulated for the test actually used at this split's sizes and the run's seeds; 'out of reach' "
        "when no simulated effect reaches 80 %, null when undefined",
    )
    power: dict[str, Any] | None = Field(
        None,
        description="simulated power of the primary comparison to detect the configured effect "
        "(power.effect) with the run's seeds: power, its Monte-Carlo se, effect, n_seeds, alpha",
    )
    recipes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per recipe (strategy × head × λ convention) and decision: the val-selected point, "
        "its test "
        "metrics, and degenerate flags",
    )
    degenerate_points: list[dict[str, Any]] = Field(
        default_factory=list,
        description="every swept val point that is a constant predictor or below θ_base's val accuracy",
    )
    training_curves: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="each fine-tune's validation history (first seed), drawn in plots/training_curves.png",
    )
    gap_groups: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per attribute and gap (dpd, tpr_gap, fpr_gap): which test groups entered it, "
        "and why not",
    )
    selection_sensitivity: list[dict[str, Any]] = Field(
        default_factory=list,
        description="sensitivity analysis: each family's test headline under every selection rule",
    )
    target_quality: list[dict[str, Any]] | None = Field(
        None,
        description="per subgroup vector: precision / recall of its weak training targets against gold "
        "val/test targets, flagged below 0.5 precision (null where training targets are gold)",
    )
    bound_checks: dict[str, dict[str, dict[str, int]]] = Field(
        default_factory=dict,
        description="uniform / per_group → attribute → held-out checks made, holding, vacuous (> 1)",
    )
    timings_s: dict[str, float] = Field(
        default_factory=dict,
        description="wall seconds per stage of fairmerge.study.stages.STAGES (first seed) and in total",
    )
    verdict: str = Field(description="written from the comparisons' intervals, never from point estimates")
    headline_text: str | None = Field(
        None,
        description="at most three sentences: the primary's answer with its interval, its simulated power, "
        "and which edit (if any) keeps accuracy within δ of FFT and is detectably fairer",
    )
    search: list[dict[str, Any]] | None = Field(
        None,
        description="the coefficient searchers ranked by test hypervolume of (accuracy, 1 − gap, ...) "
        "against search.reference_point, with a bootstrap interval over posts and seeds (hypervolume.csv); "
        "null without a search: section",
    )
    multi_seed: list[dict[str, Any]] | None = Field(
        None, description="mean / std / count over seeds per model and metric (several seeds only)"
    )
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="config, data hashes, checkpoints, package versions"
    )

    def unedited(self) -> dict[str, str]:
        """Model label → the model its selected point is when it edits nothing (θ_base, FFT)."""
        return {label: entry.unedited for label, entry in self.selected.items() if entry.unedited}

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values, λ under its contract name ``lambda``, NaN as null."""
        return to_json_safe(self.model_dump(mode="python", by_alias=True, exclude_none=False))
