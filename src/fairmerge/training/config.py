"""Hyper-parameters of one fine-tune, validated up front (pydantic v2) and loadable from YAML."""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fairmerge.errors import ConfigError

Method = Literal["fft", "lora"]
Trainable = Literal["all", "body", "head"]
DEFAULT_LEARNING_RATES: dict[str, float] = {"fft": 5e-5, "lora": 5e-4}
"""Used when ``learning_rate`` is None: LoRA's few parameters want a ~10× larger step than FFT."""

SELECT_BY = ("loss", "accuracy")
TRAINABLE = ("all", "body", "head")


def _number(value: Any) -> Any:
    """A real number: PyYAML reads "5e-5" (no dot) as a string, so numeric strings are accepted."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {value!r}")
    return value


Number = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
"""A finite float; booleans are refused, numeric strings accepted."""
StrictInt = Annotated[int, Field(strict=True)]
"""An integer proper: ``true`` and ``1.0`` are refused."""


class TrainConfig(BaseModel):
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
    ``seed`` is the run seed: it draws the training sample, the batch order, dropout and LoRA's
    initial weights. A study sets it from its run seed (``fairmerge.study.config.DerivedSeeds``);
    its fine-tune sections cannot.

    :meth:`from_mapping`, :meth:`from_yaml` and :meth:`replace` raise :class:`ConfigError` naming
    the field; the constructor raises pydantic's ``ValidationError`` (a ``ValueError``). Inside a
    study config the fields are validated with the study (errors name ``fft.epochs`` …).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: Annotated[Number, Field(gt=0)] | None = None
    epochs: Annotated[StrictInt, Field(ge=1)] = 3
    batch_size: Annotated[StrictInt, Field(ge=1)] = 32
    eval_batch_size: Annotated[StrictInt, Field(ge=1)] = 128
    max_length: Annotated[StrictInt, Field(ge=2)] = 64
    weight_decay: Annotated[Number, Field(ge=0)] = 0.01
    warmup_ratio: Annotated[Number, Field(ge=0, lt=1)] = 0.1
    seed: Annotated[StrictInt, Field(ge=0)] = 0
    select_by: Literal["loss", "accuracy"] = "loss"
    patience: Annotated[StrictInt, Field(ge=1)] | None = None
    eval_every_steps: Annotated[StrictInt, Field(ge=1)] | None = None
    trainable: Trainable = "all"
    max_train_samples: Annotated[StrictInt, Field(ge=1)] | None = None
    grad_clip: Annotated[Number, Field(gt=0)] | None = 1.0
    device: Literal["cpu", "cuda"] | None = None
    lora_r: Annotated[StrictInt, Field(ge=1)] = 8
    lora_alpha: Annotated[StrictInt, Field(ge=1)] = 16
    lora_dropout: Annotated[Number, Field(ge=0, lt=1)] = 0.1
    lora_target_modules: (
        Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)] | None
    ) = None

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping of field names; unknown keys are an error (typos must not pass)."""
        if not isinstance(values, Mapping):
            kind = type(values).__name__
            raise ConfigError(f"training config must be a mapping of field names, got {kind}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "training config", cls)) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Load a YAML file: either the fields at top level or under a ``train:`` section."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
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
        return self.from_mapping({**dict(self), **changes})

    def resolved(self, method: Method) -> TrainConfig:
        """This config with ``learning_rate`` filled in for ``method`` ('fft' or 'lora')."""
        if self.learning_rate is not None:
            return self
        return self.replace(learning_rate=DEFAULT_LEARNING_RATES[method])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists), in field order (part of the cache keys)."""
        return self.model_dump(mode="json")


def describe_validation_error(
    exc: ValidationError, where: str, model: type[BaseModel], *, limit: int = 3
) -> str:
    """One line naming the first problems of ``exc`` (raised validating ``model``) by their full
    dotted key path; an unknown key also lists the keys valid at its place."""
    problems = []
    for error in exc.errors()[:limit]:
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if not loc and error["type"] == "value_error":
            problems.append(message)  # a check across sections: its message names the keys
            continue
        key = ".".join(str(part) for part in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            message = "unknown key" + (f"; expected one of {known}" if known else "")
        elif error["type"] != "value_error" and not isinstance(error.get("input"), dict | list):
            message += f", got {str(error.get('input'))[:40]!r}"
        problems.append(f"{key}: {message}")
    more = f" (and {exc.error_count() - limit} more)" if exc.error_count() > limit else ""
    return f"{where}: " + "; ".join(problems) + more


def _fields_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str] | None:
    """The field names of the model found at ``loc`` inside ``model``, if it is one."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue  # an item of a list section: same model
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional, list and Annotated), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
