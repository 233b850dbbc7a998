"""The study's configuration: one YAML file, validated up front, with a ``--fast`` profile.

A config names the dataset, the base model, the attributes, the training budgets of every fine-tune
and the sweep / selection knobs. ``fast:`` holds overrides (same structure) applied by ``--fast``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from fairmerge.errors import ConfigError

SelectionRule = Literal["accuracy", "constrained", "fairest", "worst_group"]
SELECTION_RULES: tuple[str, ...] = ("accuracy", "constrained", "fairest", "worst_group")
STRATEGIES: tuple[str, ...] = ("targeted", "targeted+background", "balanced", "leave-one-in")


@dataclass
class DatasetSection:
    name: str = "hatexplain"
    options: dict[str, Any] = field(default_factory=lambda: {"label_scheme": "hate"})


@dataclass
class SubgroupSection:
    """How subgroup fine-tunes are made: the main strategy and the ones compared against it."""

    strategy: str = "targeted"
    method: Literal["fft", "lora"] = "fft"
    compare: list[str] = field(default_factory=lambda: ["targeted+background", "balanced"])
    min_train_size: int = 50
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepSection:
    lambdas: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    refine_rounds: int = 1
    injection_lambdas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    compare_lambdas: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    inject_all_groups: bool = True
    worst_group_criterion: Literal["accuracy", "eod"] = "accuracy"
    pergroup_trials: int = 16


@dataclass
class SelectionSection:
    rule: SelectionRule = "constrained"
    epsilon: float = 0.1
    delta: float = 0.02


@dataclass
class EvaluationSection:
    min_group_size: int = 30
    n_resamples: int = 1000
    batch_size: int = 128
    max_length: int = 64
    calibrate: bool = True
    calibration_objective: Literal["accuracy", "balanced_accuracy"] = "accuracy"
    threshold_optimizer_attribute: str | None = "race"
    max_val_samples: int | None = None
    max_test_samples: int | None = None


@dataclass
class StudyConfig:
    """Everything that determines a study run."""

    name: str = "hatexplain-minilm"
    model: str = "default"
    attributes: list[str] = field(default_factory=lambda: ["race", "gender"])
    seed: int = 0
    dataset: DatasetSection = field(default_factory=DatasetSection)
    fft: dict[str, Any] = field(default_factory=dict)
    lora: dict[str, Any] = field(default_factory=dict)
    subgroups: SubgroupSection = field(default_factory=SubgroupSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    selection: SelectionSection = field(default_factory=SelectionSection)
    evaluation: EvaluationSection = field(default_factory=EvaluationSection)
    requires: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """Stable hash of the config (used to key the run's stage cache)."""
        import hashlib

        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value."""
        if not self.attributes:
            raise ConfigError("attributes: at least one attribute is needed (e.g. [race, gender])")
        if self.selection.rule not in SELECTION_RULES:
            raise ConfigError(f"selection.rule {self.selection.rule!r}: expected one of {SELECTION_RULES}")
        for strategy in [self.subgroups.strategy, *self.subgroups.compare]:
            if strategy not in STRATEGIES:
                raise ConfigError(f"subgroups strategy {strategy!r}: expected one of {STRATEGIES}")
        if self.subgroups.method not in ("fft", "lora"):
            raise ConfigError(f"subgroups.method {self.subgroups.method!r}: expected 'fft' or 'lora'")
        lambdas = [*self.sweep.lambdas, *self.sweep.injection_lambdas, *self.sweep.compare_lambdas]
        if not self.sweep.lambdas or any(not 0.0 <= lam <= 2.0 for lam in lambdas):
            raise ConfigError("sweep.lambdas / injection_lambdas must be non-empty and within [0, 2]")
        if self.sweep.worst_group_criterion not in ("accuracy", "eod"):
            raise ConfigError("sweep.worst_group_criterion: expected 'accuracy' or 'eod'")
        if not 0 <= self.selection.epsilon <= 1 or not 0 <= self.selection.delta <= 1:
            raise ConfigError("selection.epsilon and selection.delta must lie in [0, 1]")
        if self.evaluation.n_resamples < 0 or self.evaluation.min_group_size < 1:
            raise ConfigError("evaluation.n_resamples must be >= 0 and evaluation.min_group_size >= 1")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate a (nested) dataclass from a dict, rejecting unknown keys by name."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if is_dataclass(current) and isinstance(value, dict):
            kwargs[name] = _build(type(current), value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def builtin_config_path(name: str = "default") -> Path:
    """Path of a config shipped with the package (``default``, ``sbic``, ``mhs-distilbert`` …)."""
    path = Path(str(resources.files("fairmerge") / "configs" / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"no built-in config {name!r}; available: {builtin_config_names()}")
    return path


def builtin_config_names() -> list[str]:
    folder = Path(str(resources.files("fairmerge") / "configs"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_config(path: str | Path | None = None, *, fast: bool = False) -> StudyConfig:
    """Read a study config (the embedded default when ``path`` is None), applying ``fast:`` if asked.

    ``path`` may also be the name of a built-in config (e.g. ``sbic``).
    """
    if path is None:
        path = builtin_config_path("default")
    elif not Path(path).exists() and str(path) in builtin_config_names():
        path = builtin_config_path(str(path))
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (built-in configs: {builtin_config_names()})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    fast_overrides = raw.pop("fast", {}) or {}
    if fast:
        raw = _deep_update(raw, fast_overrides)
    config: StudyConfig = _build(StudyConfig, raw, str(path.name))
    config.validate()
    return config
