"""The study's configuration: one YAML file validated once at the edge into typed objects (pydantic v2).

A config names the dataset, the base model, the attributes, the training budgets of every fine-tune
and the sweep / selection knobs. ``fast:`` holds overrides (same structure) applied by ``--fast``;
``overrides`` (``--set sweep.lambdas='[0,0.5,1]'``) change any key. Unknown keys and wrong types
are a :class:`ConfigError` naming the full key path, raised before any data is read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from fairmerge.data.intersections import SEPARATOR, intersection_name
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import MIN_GROUP_SIZE, MIN_NEGATIVES, MIN_POSITIVES
from fairmerge.search.config import SearchConfig
from fairmerge.sweep.selection import rule_names
from fairmerge.training import PROBE_CONFIG, TrainConfig
from fairmerge.training.config import describe_validation_error
from fairmerge.training.subgroups import STRATEGIES
from fairmerge.vectors.merge import validate_merge_args

SHARED_SEED = 0
"""The seed of what every run seed shares, fixed so that a seed's results do not depend on which
other seeds run: the linear probe's sample and fit (one probed θ_base serves every seed), the
val/test subsets of ``evaluation.max_val_samples`` / ``max_test_samples`` and the bootstrap of
the comparisons with FFT over seeds. (It was ``StudyConfig.seed``, default 0, and a literal 0.)"""


@dataclass(frozen=True)
class DerivedSeeds:
    """Every seed a study uses, named, from the one seed a user sets: the run seed.

    What varies between seeds follows the run seed itself; what every seed shares follows
    :data:`SHARED_SEED`. These are the values the study has always used (no number changed).
    """

    run: int
    head: int
    """θ_base's random classification head (recipes with ``head: random``)."""
    finetune: int
    """``TrainConfig.seed`` of FFT, LoRA and every subgroup fine-tune: sample, batches, dropout."""
    merge: int
    """The merge engine's seed (DARE's drop masks, ``sweep.method``)."""
    evaluation: int
    """This seed's metric bootstrap, per-group TPE search and ThresholdOptimizer draws."""
    probe: int
    """The linear-probed θ_base (``subgroups.probe``): its initial head, sample and fit; shared."""
    evaluation_subsets: int
    """The val/test subsets of ``evaluation.max_val_samples`` / ``max_test_samples``; shared."""
    comparisons: int
    """The bootstrap of the comparisons with FFT over seeds and posts; shared."""

    @classmethod
    def of(cls, run: int) -> DerivedSeeds:
        per_seed = {"head": run, "finetune": run, "merge": run, "evaluation": run}
        shared = {"probe": SHARED_SEED, "evaluation_subsets": SHARED_SEED, "comparisons": SHARED_SEED}
        return cls(run, **per_seed, **shared)


def _without_seed(value: Any) -> Any:
    """A fine-tune section: every field but ``seed``, which is the run seed."""
    if isinstance(value, TrainConfig):
        seeded = value.seed != TrainConfig().seed
    else:
        seeded = isinstance(value, Mapping) and "seed" in value
    if seeded:
        raise ValueError("seed is the run seed: set `seeds` (or --seeds), not a fine-tune's seed")
    return value


TrainSection = Annotated[
    TrainConfig,
    BeforeValidator(_without_seed),
    PlainSerializer(lambda config: {k: v for k, v in config.to_dict().items() if k != "seed"}),
]
"""A fine-tune's hyper-parameters: the fields of :class:`fairmerge.training.TrainConfig` but ``seed``."""


class Section(BaseModel):
    """Common settings: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetSection(Section):
    name: str = "hatexplain"
    options: dict[str, Any] = Field(default_factory=lambda: {"label_scheme": "hate"})


Head = Literal["random", "linear_probe", "frozen"]
"""θ_base's head and whether subgroup fine-tunes may move it.

``random``: the pretrained body plus a seeded random head, every fine-tune trains its own head.
``linear_probe``: a head fitted on the train split with the body frozen (LP-FT); fine-tunes start
from it and train everything. ``frozen``: the linear-probed head, kept fixed by the subgroup
fine-tunes, so τ_g touches the body only.
"""
Convention = Literal["sum", "mean"]
"""λ's convention: ``sum`` θ_base + λ·Σ_g τ_g (the study's), ``mean`` θ_base + (λ/G)·Σ_g τ_g."""


class Recipe(Section):
    """How one family of subgroup vectors is made and merged; unset fields follow the main recipe."""

    strategy: str = "targeted"
    head: Head | None = None
    convention: Convention | None = None

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        return _check_strategy(value)


def _recipe(value: Any) -> Any:
    return {"strategy": value} if isinstance(value, str) else value


class SubgroupSection(Section):
    """How subgroup fine-tunes are made: the main recipe and the recipes compared against it."""

    strategy: str = "targeted"
    head: Head = "random"
    method: Literal["fft", "lora"] = "fft"
    compare: list[Annotated[Recipe, BeforeValidator(_recipe)]] = Field(
        default_factory=lambda: [Recipe(strategy="targeted+background"), Recipe(strategy="balanced")]
    )
    min_train_size: int = Field(50, ge=1)
    attributes: list[str] | None = Field(
        None,
        description="the attributes whose groups get a subgroup vector (an intersection such as "
        "race×gender included); None: the study's attributes without the intersections",
    )
    train: TrainSection = Field(default_factory=TrainConfig)
    probe: TrainSection = Field(
        default_factory=lambda: PROBE_CONFIG,
        description="the linear probe's budget (head linear_probe/frozen)",
    )

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        return _check_strategy(value)


def _check_strategy(value: str) -> str:
    if value not in STRATEGIES:
        raise ValueError(f"unknown strategy {value!r}; expected one of {list(STRATEGIES)}")
    return value


class BaselineSection(Section):
    """Reference families trained next to FFT and LoRA, evaluated and compared with FFT like them.

    ``families``: FFT with group-balanced loss weights (``fft[balanced]``) or with online Group DRO
    (``fft[group_dro]``) over the groups of ``attribute``; ``lora_ranks``: LoRA at other ranks
    (``lora[r=64]``) with ``lora``'s α, chosen on validation (``training.lora.at_rank``).
    Each is a TrainConfig of its own only
    through the objective or the rank, so the cache keys of FFT and LoRA do not change.
    """

    families: list[Literal["balanced", "group_dro"]] = Field(default_factory=list)
    attribute: str | None = Field(
        None, description="the groups the objectives weigh; None: the first attribute"
    )
    dro_step_size: float = Field(
        1.0,
        gt=0.0,
        allow_inf_nan=False,
        description="Group DRO's η: the paper's 0.01 barely moves the group weights q in one epoch of "
        "the studies' budgets (≈ 50 steps); η = 1 moves them (measured on UTKFace)",
    )
    lora_ranks: list[Annotated[int, Field(strict=True, ge=1)]] = Field(default_factory=list)

    @field_validator("families", "lora_ranks")
    @classmethod
    def _each_once(cls, values: list[Any]) -> list[Any]:
        if len(set(values)) != len(values):
            raise ValueError(f"{values} names a family more than once")
        return values


Lambda = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
SweepMethod = Literal["task_arithmetic", "ties", "dare"]
"""Merge methods of :mod:`fairmerge.vectors.merge` a study can sweep (``inject`` is not a merge)."""


class SweepSection(Section):
    lambdas: list[Lambda] = Field(
        default_factory=lambda: [round(0.1 * i, 1) for i in range(11)], min_length=1
    )
    refine_rounds: int = Field(1, ge=0)
    injection_lambdas: list[Lambda] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1)
    compare_lambdas: list[Lambda] = Field(
        default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], min_length=1
    )
    convention: Convention = "sum"
    inject_all_groups: bool = True
    worst_group_criterion: Literal["accuracy", "eod"] = "accuracy"
    pergroup_trials: int = Field(16, ge=1)
    method: SweepMethod = Field(
        "task_arithmetic",
        description="how the subgroup vectors are merged onto θ_base (merge, merge[recipe], merge_pergroup)",
    )
    density: float | None = Field(
        None, description="ties / dare: the share of each vector kept, in (0, 1]; null for task_arithmetic"
    )

    @model_validator(mode="after")
    def _engine_accepts_method(self) -> SweepSection:
        try:
            validate_merge_args(1, 0.0, method=self.method, density=self.density)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def merge_options(self, seeds: DerivedSeeds) -> dict[str, Any]:
        """Keyword arguments of the merge engine (``InPlaceMerger``, ``merge_checkpoints``) for one seed."""
        return {"method": self.method, "density": self.density, "seed": seeds.merge}


class SelectionSection(Section):
    rule: str = Field("constrained", description="a registered selection rule (fairmerge.sweep.selection)")
    epsilon: float = Field(0.1, ge=0.0, le=1.0)
    delta: float = Field(0.02, ge=0.0, le=1.0)
    sensitivity: bool = Field(
        True, description="test each family's pick under every rule (sensitivity table)"
    )

    @field_validator("rule")
    @classmethod
    def _registered_rule(cls, rule: str) -> str:
        """Checked when the config is validated, so a rule registered by then is accepted."""
        if rule not in rule_names():
            raise ValueError(f"unknown selection rule {rule!r}; expected one of {list(rule_names())}")
        return rule


class EvaluationSection(Section):
    min_group_size: int = Field(MIN_GROUP_SIZE, ge=1, description="posts a group needs to enter DPD")
    min_positives: int = Field(
        MIN_POSITIVES, ge=1, description="positives a group needs to enter the TPR gap"
    )
    min_negatives: int = Field(
        MIN_NEGATIVES, ge=1, description="negatives a group needs to enter the FPR gap"
    )
    n_resamples: int = Field(1000, ge=0)
    batch_size: int = Field(128, ge=1)
    max_length: int = Field(64, ge=2)
    calibrate: bool = True
    calibration_objective: Literal["accuracy", "balanced_accuracy"] = "accuracy"
    threshold_optimizer_attribute: str | None = "race"
    max_val_samples: int | None = Field(None, ge=1)
    max_test_samples: int | None = Field(None, ge=1)
    n_permutations: int = Field(1000, ge=1, description="permutations of the gaps' noise floors (test)")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "auto",
        description="scoring forward passes (fairmerge.precision); auto uses the device's fast precision "
        "only where it passes the check on θ_base (study/stages/precision.py); the choice is recorded",
    )
    precision_min_agreement: float = Field(
        0.999, ge=0.0, le=1.0, description="auto: share of val decisions of θ_base that must agree with fp32"
    )
    precision_max_rate_shift: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="auto: every group rate of θ_base on val must move by less than this",
    )


class DeclaredComparison(Section):
    """One comparison with FFT on test: a model label, an attribute (``all`` for accuracy), a metric."""

    model: str = "merge"
    attribute: str = "race"
    metric: Literal["accuracy", "dpd", "eod"] = "eod"

    @property
    def label(self) -> str:
        return f"{self.model}/{self.attribute}/{self.metric}"


def _default_secondary() -> list[DeclaredComparison]:
    return [
        DeclaredComparison(model="merge", attribute="race", metric="dpd"),
        DeclaredComparison(model="merge", attribute="all", metric="accuracy"),
        DeclaredComparison(model="merge_pergroup", attribute="race", metric="eod"),
    ]


class PowerSection(Section):
    """The simulated power of the primary comparison, at a true difference of ``effect``."""

    effect: float = Field(0.1, gt=0.0, le=1.0, description="the true |Δ| of the primary metric simulated")
    simulations: int = Field(500, ge=1, description="simulated studies (Monte Carlo SE ≤ 0.5/√simulations)")


class StudyConfig(Section):
    """Everything that determines a study run."""

    name: str = "hatexplain-minilm"
    model: str = "default"
    attributes: list[str] = Field(default_factory=lambda: ["race", "gender"], min_length=1)
    intersections: list[list[str]] = Field(
        default_factory=list,
        description="intersectional attributes, e.g. [[race, gender]]: each is added to attributes as "
        "race×gender (groups such as Asian×female) and evaluated like any attribute",
    )
    seeds: list[Annotated[int, Field(strict=True, ge=0, lt=2**32)]] = Field(
        default_factory=lambda: [0],
        min_length=1,
        description="the run seeds, each once; every other seed derives from them (DerivedSeeds); "
        "--seeds overrides",
    )
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    fft: TrainSection = Field(default_factory=TrainConfig)
    lora: TrainSection = Field(default_factory=TrainConfig)
    subgroups: SubgroupSection = Field(default_factory=SubgroupSection)
    sweep: SweepSection = Field(default_factory=SweepSection)
    selection: SelectionSection = Field(default_factory=SelectionSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    primary: DeclaredComparison = Field(
        default_factory=DeclaredComparison, description="the one comparison tested at α, unadjusted"
    )
    secondary: list[DeclaredComparison] = Field(
        default_factory=_default_secondary, description="the declared secondary family (Holm over these only)"
    )
    power: PowerSection = Field(default_factory=PowerSection)
    baselines: BaselineSection = Field(default_factory=BaselineSection)
    exploratory_seeds: Literal["first", "all"] = Field(
        "first",
        description="seeds that run the exploratory parts, the recipe comparison (subgroups.compare), the "
        "all-group injection (sweep.inject_all_groups) and the selection-sensitivity table "
        "(selection.sensitivity): the first seed only, or every seed; base, FFT, LoRA, merge, per-group "
        "merge, inject:worst and ThresholdOptimizer run on every seed",
    )
    requires: str | None = None
    search: SearchConfig | None = Field(
        None,
        description="the coefficient searches of issue #20 (docs/search.md); none by default "
        "(`fairmerge run search` runs them)",
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (for provenance and cache keys)."""
        return self.model_dump(mode="json")

    @model_validator(mode="before")
    @classmethod
    def _intersections_are_attributes(cls, data: Any) -> Any:
        """Each intersection joins ``attributes`` (once: a dumped config already lists it)."""
        if not isinstance(data, dict) or not data.get("intersections"):
            return data
        attributes = data.get(
            "attributes", cls.model_fields["attributes"].get_default(call_default_factory=True)
        )
        if not isinstance(attributes, list) or not all(
            isinstance(i, list | tuple) for i in data["intersections"]
        ):
            return data  # the field validators name the wrong type
        names = [intersection_name([str(a) for a in i]) for i in data["intersections"]]
        return {**data, "attributes": [*attributes, *(n for n in names if n not in attributes)]}

    @model_validator(mode="after")
    def _intersections_and_baselines_known(self) -> StudyConfig:
        declared = self.declared_attributes()
        for attributes in self.intersections:
            if len(attributes) < 2 or len(set(attributes)) != len(attributes):
                raise ValueError(f"intersections: {attributes} needs two or more distinct attributes")
            unknown = [a for a in attributes if a not in declared]
            if unknown:
                raise ValueError(f"intersections: {unknown} not in attributes {declared}")
        unknown = [a for a in self.subgroups.attributes or [] if a not in self.attributes]
        if unknown:
            raise ValueError(f"subgroups.attributes: {unknown} not in attributes {self.attributes}")
        if self.baselines.attribute is not None and self.baselines.attribute not in self.attributes:
            raise ValueError(
                f"baselines.attribute {self.baselines.attribute!r} not in attributes {self.attributes}"
            )
        return self

    def declared_attributes(self) -> list[str]:
        """The attributes without the intersections."""
        return [a for a in self.attributes if SEPARATOR not in a]

    def vector_attributes(self) -> list[str]:
        """The attributes whose groups get a subgroup vector."""
        return list(self.subgroups.attributes or self.declared_attributes())

    def baseline_attribute(self) -> str:
        """The attribute whose groups ``fft[balanced]`` and ``fft[group_dro]`` weigh."""
        return self.baselines.attribute or self.attributes[0]

    def baseline_models(self) -> list[str]:
        """The extra reference families' labels: ``fft[balanced]``, ``fft[group_dro]``, ``lora[r=64]``."""
        return [f"fft[{f}]" for f in self.baselines.families] + [
            f"lora[r={r}]" for r in self.baselines.lora_ranks
        ]

    @field_validator("seeds")
    @classmethod
    def _each_seed_once(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            raise ValueError(f"seed(s) {repeated} given more than once (seeds, --seeds); each seed runs once")
        return seeds

    @staticmethod
    def derived_seeds(run_seed: int) -> DerivedSeeds:
        """Every seed the run of ``run_seed`` uses, named."""
        return DerivedSeeds.of(run_seed)

    def seed_configs(self, seeds: Sequence[int]) -> list[tuple[int, StudyConfig]]:
        """Each seed with the config it runs: past the first, without the exploratory parts
        unless ``exploratory_seeds`` is ``all`` (they are reported from the first seed)."""
        later = self
        if self.exploratory_seeds == "first":
            later = self.model_copy(
                update={
                    "subgroups": self.subgroups.model_copy(update={"compare": []}),
                    "sweep": self.sweep.model_copy(update={"inject_all_groups": False}),
                    "selection": self.selection.model_copy(update={"sensitivity": False}),
                }
            )
        return [(seed, self if index == 0 else later) for index, seed in enumerate(seeds)]

    def main_recipe(self) -> ResolvedRecipe:
        sub = self.subgroups
        return ResolvedRecipe(sub.strategy, sub.head, self.sweep.convention, "")

    def compared_recipes(self) -> list[ResolvedRecipe]:
        """The compared recipes with unset fields filled from the main one, each with its label name."""
        main = self.main_recipe()
        out = []
        for recipe in self.subgroups.compare:
            head, convention = recipe.head or main.head, recipe.convention or main.convention
            parts = [recipe.strategy]
            parts += [head] if head != main.head else []
            parts += [convention] if convention != main.convention else []
            out.append(ResolvedRecipe(recipe.strategy, head, convention, "/".join(parts)))
        return out

    def compared_models(self) -> list[str]:
        """The model labels the study compares with FFT on test."""
        families = ["lora", *self.baseline_models(), "merge", "merge_pergroup", "inject:worst"]
        families += [f"merge[{r.name}]" for r in self.compared_recipes()]
        if self.evaluation.threshold_optimizer_attribute in self.attributes:
            families.append("threshold_optimizer")
        if self.evaluation.calibrate:
            families += [
                "fft@calibrated",
                *(f"{f}@calibrated" for f in families if f != "threshold_optimizer"),
            ]
        return families

    @model_validator(mode="after")
    def _declared_comparisons_exist(self) -> StudyConfig:
        for where, comparison in [("primary", self.primary)] + [
            (f"secondary.{i}", c) for i, c in enumerate(self.secondary)
        ]:
            self._check_comparison(where, comparison)
        labels = [c.label for c in (self.primary, *self.secondary)]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"secondary: {repeated} declared twice (the primary is not repeated there)")
        return self

    @model_validator(mode="after")
    def _search_attributes_exist(self) -> StudyConfig:
        unknown = [a for a in (self.search.attributes if self.search else []) if a not in self.attributes]
        if unknown:
            raise ValueError(
                f"search.objectives name attribute {unknown[0]!r}; expected one of {self.attributes}"
            )
        return self

    def _check_comparison(self, where: str, comparison: DeclaredComparison) -> None:
        wanted = "all" if comparison.metric == "accuracy" else "one of " + ", ".join(self.attributes)
        if (comparison.metric == "accuracy") != (comparison.attribute == "all") or (
            comparison.metric != "accuracy" and comparison.attribute not in self.attributes
        ):
            raise ValueError(f"{where}.attribute {comparison.attribute!r}: expected {wanted}")
        if comparison.model not in self.compared_models():
            raise ValueError(f"{where}.model {comparison.model!r}: expected one of {self.compared_models()}")


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe with every field set; ``name`` labels its family (``merge[name]``), empty for the main one."""

    strategy: str
    head: str
    convention: str
    name: str

    @property
    def base_head(self) -> str:
        """The head θ_base is built with: a frozen head is the linear-probed one."""
        return "linear_probe" if self.head == "frozen" else self.head

    @property
    def trainable(self) -> str:
        return "body" if self.head == "frozen" else "all"

    @property
    def key(self) -> tuple[str, str]:
        """What its fine-tunes depend on (the convention only changes the merge)."""
        return (self.strategy, self.head)


def _deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_update(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_override(text: str) -> dict[str, Any]:
    """``sweep.lambdas=[0, 0.5]`` → ``{"sweep": {"lambdas": [0, 0.5]}}`` (the value is read as YAML)."""
    key, sep, raw = text.partition("=")
    path = [part.strip() for part in key.split(".")]
    if not sep or not all(path):
        raise ConfigError(f"--set {text!r}: expected dotted.key=value, e.g. sweep.lambdas='[0,0.5,1]'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.__class__.__name__})") from None
    nested: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        nested = {part: nested}
    return nested


def builtin_config_path(name: str = "default") -> Path:
    """Path of a config shipped with the package (``default``, ``sbic``, ``mhs-distilbert`` …)."""
    path = Path(str(resources.files("fairmerge") / "configs" / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"no built-in config {name!r}; available: {builtin_config_names()}")
    return path


def builtin_config_names() -> list[str]:
    folder = Path(str(resources.files("fairmerge") / "configs"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _read_yaml(source: str | Path | None) -> tuple[dict[str, Any], str]:
    if source is None:
        source = builtin_config_path("default")
    elif not Path(source).exists() and str(source) in builtin_config_names():
        source = builtin_config_path(str(source))
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (built-in configs: {builtin_config_names()})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        # keys a file omits take StudyConfig's defaults, which are not the `default` study's
        raise ConfigError(
            f"config file {path} is empty; copy a built-in config to start from "
            f"(fairmerge run default is {builtin_config_path('default')}) or pass no config for the default"
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return raw, path.name


def validate_config(raw: Mapping[str, Any], where: str = "config") -> StudyConfig:
    """A :class:`StudyConfig` from plain values; the first problems are named by their full key path."""
    if "seed" in raw:
        raise ConfigError(
            f"{where}: seed: not a key any more; the run seeds are `seeds: [0, 1, 2]` (or --seeds) and "
            f"what every seed shares uses the fixed seed {SHARED_SEED} (docs/configuration.md)"
        )
    try:
        return StudyConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where, StudyConfig)) from None


def load_config(
    source: str | Path | StudyConfig | None = None,
    *,
    fast: bool = False,
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
) -> StudyConfig:
    """The study config of ``source`` (a YAML path, a built-in name, a StudyConfig, or None = default).

    ``fast`` applies the file's ``fast:`` profile (a StudyConfig object has none); ``overrides`` are
    ``dotted.key=value`` strings applied last, then ``seeds`` (``--seeds``; None or empty keeps the
    config's). Both profiles of a file are validated, so an error in ``fast:`` is reported whichever
    is run. An empty file is refused: it would mean StudyConfig's defaults, not the ``default`` study.
    """
    if isinstance(source, StudyConfig):
        if fast:
            raise ConfigError("--fast needs a config file with a 'fast:' profile, not a config object")
        raw, where = source.to_dict(), "config"
        fast_overrides: dict[str, Any] = {}
    else:
        raw, where = _read_yaml(source)
        fast_overrides = raw.pop("fast", None) or {}
        if not isinstance(fast_overrides, dict):
            raise ConfigError(f"{where}: fast: must be a mapping of overrides")
    changes: dict[str, Any] = {}
    for text in overrides:
        changes = _deep_update(changes, parse_override(text))
    if seeds:
        changes["seeds"] = list(seeds)
    full = _deep_update(raw, changes)
    fast_variant = _deep_update(_deep_update(raw, fast_overrides), changes)
    config = validate_config(full, where)
    if fast_overrides:
        fast_config = validate_config(fast_variant, f"{where} (fast profile)")
        if fast:
            return fast_config
    return config
