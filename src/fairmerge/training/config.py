"""Hyper-parameters of one fine-tune, validated up front and loadable from YAML."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from fairmerge.errors import ConfigError

Method = Literal["fft", "lora"]
Trainable = Literal["all", "body", "head"]
DEFAULT_LEARNING_RATES: dict[str, float] = {"fft": 5e-5, "lora": 5e-4}
"""Used when ``learning_rate`` is None: LoRA's few parameters want a ~10× larger step than FFT."""

SELECT_BY = ("loss", "accuracy")
TRAINABLE = ("all", "body", "head")
_DEVICE = re.compile(r"^(cpu|cuda)$")
_FLOAT_FIELDS = ("learning_rate", "weight_decay", "warmup_ratio", "grad_clip", "lora_dropout")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a fine-tune besides the data and the base weights.

    Defaults suit the embedded MiniLM on HateXplain (short posts: 64 tokens cover ~99 % of them).
    ``learning_rate=None`` means the method's default (5e-5 for FFT, 5e-4 for LoRA).
    ``max_train_samples`` caps each fine-tune's training set by a stratified, seeded subsample.
    ``epochs`` is a maximum: the validation split is scored every ``eval_every_steps`` optimizer
    steps (None: at the end of every epoch), the evaluation with the best ``select_by`` score
    (lowest validation loss or highest validation accuracy) is kept, and with ``patience`` = k
    training stops after k evaluations in a row without improvement (None: never early).
    ``trainable`` says what is trained: ``all`` weights, the ``body`` only (the classification head
    keeps θ_base's values, so τ has no head) or the ``head`` only (a linear probe; body frozen).
    ``device`` is None (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``; accelerate's state is
    process-wide, so one process trains on one device type (bf16 autocast on CUDA when supported).
    ``lora_target_modules=None`` picks the attention projections for the architecture.
    """

    learning_rate: float | None = None
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    max_length: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 0
    select_by: Literal["loss", "accuracy"] = "loss"
    patience: int | None = None
    eval_every_steps: int | None = None
    trainable: Trainable = "all"
    max_train_samples: int | None = None
    grad_clip: float | None = 1.0
    device: str | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.lora_target_modules is not None and not isinstance(self.lora_target_modules, tuple):
            object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        self._validate()

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping of field names; unknown keys are an error (typos must not pass)."""
        if not isinstance(values, Mapping):
            kind = type(values).__name__
            raise ConfigError(f"training config must be a mapping of field names, got {kind}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training config key(s) {unknown}; valid keys: {sorted(known)}")
        values = dict(values)
        for name in _FLOAT_FIELDS:
            # PyYAML reads "5e-5" (no dot) as a string; accept it as the number it obviously is.
            if isinstance(values.get(name), str):
                try:
                    values[name] = float(values[name])
                except ValueError:
                    raise ConfigError(f"{name} must be a number, got {values[name]!r}") from None
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Load a YAML file: either the fields at top level or under a ``train:`` section."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"training config {path} is not valid YAML: {exc}") from exc
        if values is None:
            values = {}
        if isinstance(values, Mapping) and isinstance(values.get("train"), Mapping):
            values = values["train"]
        try:
            return cls.from_mapping(values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def resolved(self, method: Method) -> TrainConfig:
        """This config with ``learning_rate`` filled in for ``method`` ('fft' or 'lora')."""
        if self.learning_rate is not None:
            return self
        return self.replace(learning_rate=DEFAULT_LEARNING_RATES[method])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        out = dataclasses.asdict(self)
        if out["lora_target_modules"] is not None:
            out["lora_target_modules"] = list(out["lora_target_modules"])
        return out

    # ---- validation --------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.learning_rate is not None:
            _positive_float("learning_rate", self.learning_rate)
        for name in ("epochs", "batch_size", "eval_batch_size", "lora_r", "lora_alpha"):
            _positive_int(name, getattr(self, name))
        _positive_int("max_length", self.max_length, minimum=2)
        _int("seed", self.seed)
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        _float_in("weight_decay", self.weight_decay, 0.0, math.inf)
        _float_in("warmup_ratio", self.warmup_ratio, 0.0, 1.0, right_open=True)
        _float_in("lora_dropout", self.lora_dropout, 0.0, 1.0, right_open=True)
        if self.select_by not in SELECT_BY:
            raise ConfigError(f"select_by must be one of {list(SELECT_BY)}, got {self.select_by!r}")
        for name in ("max_train_samples", "patience", "eval_every_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.trainable not in TRAINABLE:
            raise ConfigError(f"trainable must be one of {list(TRAINABLE)}, got {self.trainable!r}")
        if self.grad_clip is not None:
            _positive_float("grad_clip", self.grad_clip)
        if self.device is not None and not (isinstance(self.device, str) and _DEVICE.match(self.device)):
            raise ConfigError(f"device must be null (auto), 'cpu' or 'cuda', got {self.device!r}")
        if self.lora_target_modules is not None and (
            not self.lora_target_modules
            or not all(isinstance(m, str) and m for m in self.lora_target_modules)
        ):
            raise ConfigError(
                f"lora_target_modules must be null (auto) or a non-empty list of module names, "
                f"got {self.lora_target_modules!r}"
            )


def _int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    _int(name, value)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _positive_float(name: str, value: Any) -> None:
    if _number(name, value) <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")


def _float_in(name: str, value: Any, low: float, high: float, *, right_open: bool = False) -> None:
    number = _number(name, value)
    if number < low or number > high or (right_open and number == high):
        bracket = ")" if right_open else "]"
        raise ConfigError(f"{name} must be in [{low}, {high}{bracket}, got {value}")
