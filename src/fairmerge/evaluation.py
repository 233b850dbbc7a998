"""Score a split with a classifier and turn scores into group-fairness metrics and prediction tables.

``score_split`` runs the model once (tokenized texts in length-bucketed batches, or images decoded
once); everything after it
works on the cached scores, so re-thresholding or re-bootstrapping never runs the model again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel

from fairmerge.atomic import atomic_write_text
from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError, DataError, ModelError
from fairmerge.fairness.calibration import Objective, choose_threshold, predict_at
from fairmerge.fairness.metrics import (
    CONTRACT_COLUMNS,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    check_options,
    group_metrics,
)
from fairmerge.fairness.reported import GapIntervals, reported_metrics
from fairmerge.inference import EncodedInputs, encode_inputs, positive_scores, predict_logits
from fairmerge.models import DEFAULT_MODEL, load_classifier, load_processor, pick_device, resolve_model_name
from fairmerge.precision import Precision

METRICS_FILE = "metrics.csv"
PREDICTIONS_FILE = "predictions.csv"
"""Columns of ``metrics.csv`` (DESIGN.md contract)."""


def score_split(
    model: torch.nn.Module,
    encoded: EncodedInputs,
    batch_size: int = 128,
    progress: bool = False,
    precision: Precision = "fp32",
) -> np.ndarray:
    """P(y = 1) for every example of ``encoded``, in its order (float64).

    ``precision``: the forward pass's ``fp32``/``bf16``/``auto`` (:mod:`fairmerge.precision`).
    """
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    if num_labels != 2:
        raise ModelError(f"expected a two-class classifier, the model has {num_labels} labels")
    logits = predict_logits(model, encoded, batch_size=batch_size, progress=progress, precision=precision)
    return positive_scores(logits)


def evaluate_scores(
    split: TextSplit,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    attributes: Sequence[str] | None = None,
    min_group_size: int = 30,
    n_resamples: int = 1000,
    seed: int = 0,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Group metrics (see :func:`fairmerge.fairness.group_metrics`) of ``score > threshold``."""
    scores = _check_scores(split, scores)
    memberships = split.memberships(list(attributes) if attributes is not None else None)
    return group_metrics(
        split.labels,
        predict_at(scores, threshold),
        memberships,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
        n_resamples=n_resamples,
        seed=seed,
    )


def split_metrics(
    split: TextSplit,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    attributes: Sequence[str] | None = None,
    thresholds: Thresholds = Thresholds(),
    n_resamples: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    gap_intervals: GapIntervals = "inverted",
) -> pd.DataFrame:
    """The reported rows (:func:`fairmerge.fairness.reported.reported_metrics`) of ``score > threshold``:
    group metrics, noise floors, the labels' DPD and, with ``"inverted"``, test-inverted gap intervals.

    The one computation behind the study's metric rows and ``fairmerge evaluate`` / ``fm.evaluate``.
    """
    scores = _check_scores(split, scores)
    return reported_metrics(
        split.labels,
        predict_at(scores, threshold),
        split.memberships(list(attributes) if attributes is not None else None),
        thresholds=thresholds,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
        gap_intervals=gap_intervals,
    )


@dataclass(frozen=True)
class CalibratedEvaluation:
    """Metrics of one model at a threshold chosen on validation and applied unchanged to test."""

    threshold: float
    val: pd.DataFrame
    test: pd.DataFrame


def evaluate_calibrated(
    val: TextSplit,
    val_scores: np.ndarray,
    test: TextSplit,
    test_scores: np.ndarray,
    *,
    objective: Objective = "accuracy",
    attributes: Sequence[str] | None = None,
    min_group_size: int = 30,
    n_resamples: int = 1000,
    seed: int = 0,
) -> CalibratedEvaluation:
    """Choose the decision threshold on validation only, then evaluate both splits with it."""
    threshold = choose_threshold(val.labels, _check_scores(val, val_scores), objective)

    def evaluate(split: TextSplit, scores: np.ndarray) -> pd.DataFrame:
        return evaluate_scores(
            split,
            scores,
            threshold=threshold,
            attributes=attributes,
            min_group_size=min_group_size,
            n_resamples=n_resamples,
            seed=seed,
        )

    return CalibratedEvaluation(threshold, evaluate(val, val_scores), evaluate(test, test_scores))


def predictions_frame(split: TextSplit, scores: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """One row per example: ``id, label, prediction, score, groups``.

    ``groups`` lists every targeted group as ``attribute:group`` joined by ``|`` (empty if none).
    """
    scores = _check_scores(split, scores)
    groups = [
        "|".join(f"{a}:{g}" for a in split.attributes for g in sorted(split.groups[a][i]))
        for i in range(len(split))
    ]
    return pd.DataFrame(
        {
            "id": split.ids,
            "label": split.labels,
            "prediction": predict_at(scores, threshold),
            "score": scores,
            "groups": groups,
        }
    )


ModelLike = PreTrainedModel | str | os.PathLike[str] | None
"""A loaded classifier, a checkpoint folder, a Hugging Face id, or None for the embedded default."""


@dataclass(frozen=True)
class Evaluation:
    """A model's group metrics on a split, with the scores and per-example predictions behind them."""

    metrics: pd.DataFrame
    scores: np.ndarray
    predictions: pd.DataFrame


def evaluate_model(
    model: ModelLike,
    split: TextSplit,
    *,
    tokenizer_path: str | os.PathLike[str] | None = None,
    attributes: Sequence[str] | None = None,
    max_length: int = 128,
    batch_size: int = 128,
    threshold: float = 0.5,
    min_group_size: int = 30,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    n_resamples: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    device: str | None = None,
    progress: bool = False,
    precision: Precision = "fp32",
) -> Evaluation:
    """Score ``split`` (texts or images) with ``model`` and compute its group metrics.

    The one evaluation path: ``fairmerge evaluate``, :func:`evaluate_checkpoint` and
    ``fm.evaluate`` all run it. The input processor (tokenizer or image format) comes from
    ``tokenizer_path`` if given, else from the model's own folder; a processor that does not fit the
    split's modality is a DataError. ``attributes`` limits the metrics to those attributes.
    The rows are :func:`split_metrics`' with test-inverted gap intervals, as the study reports test:
    with the study's settings (``fairmerge evaluate --dataset``) they reproduce its test rows.
    """
    if len(split) == 0:
        raise DataError("the split to evaluate has no examples")
    if max_length < 2 or batch_size < 1:
        raise ConfigError(f"max_length must be >= 2 and batch_size >= 1, got {max_length} and {batch_size}")
    thresholds = Thresholds(min_group_size, min_positives, min_negatives)
    check_options(**dataclasses.asdict(thresholds), n_resamples=n_resamples)
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be >= 1, got {n_permutations}")
    classifier: torch.nn.Module
    if isinstance(model, PreTrainedModel):
        source = tokenizer_path if tokenizer_path is not None else model.name_or_path
        processor = load_processor(_str_or_none(source))
        classifier = model
        if device is not None:
            torch.nn.Module.to(classifier, pick_device(device))
    else:
        path = _str_or_none(model)
        processor = load_processor(_str_or_none(tokenizer_path) if tokenizer_path is not None else path)
        classifier = load_classifier(path, device=device)
    encoded = encode_inputs(processor, split, max_length=max_length)  # a modality mismatch fails here
    scores = score_split(classifier, encoded, batch_size=batch_size, progress=progress, precision=precision)
    metrics = split_metrics(
        split,
        scores,
        threshold=threshold,
        attributes=attributes,
        thresholds=thresholds,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
    )
    return Evaluation(metrics, scores, predictions_frame(split, scores, threshold))


def evaluate_checkpoint(
    model_path: ModelLike,
    split: TextSplit,
    out_dir: str | os.PathLike[str],
    *,
    split_name: str = "test",
    model_name: str | None = None,
    tokenizer_path: str | os.PathLike[str] | None = None,
    attributes: Sequence[str] | None = None,
    max_length: int = 128,
    batch_size: int = 128,
    threshold: float = 0.5,
    min_group_size: int = 30,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    n_resamples: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    precision: Precision = "fp32",
) -> pd.DataFrame:
    """Evaluate a classifier (text or image, matching ``split.modality``) on ``split`` with
    :func:`evaluate_model` and write the result.

    Writes ``out_dir/metrics.csv`` (DESIGN.md format; ``model`` = the checkpoint's directory name
    unless ``model_name`` is given, ``lambda`` empty) and ``out_dir/predictions.csv``. Everything is
    computed before anything is written, and each file is written atomically, so bad input leaves
    no output behind. Returns the metrics frame.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    result = evaluate_model(
        model_path,
        split,
        tokenizer_path=tokenizer_path,
        attributes=attributes,
        max_length=max_length,
        batch_size=batch_size,
        threshold=threshold,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
        device=device,
        progress=progress,
        precision=precision,
    )
    metrics = result.metrics
    metrics.insert(0, "split", split_name)
    metrics.insert(0, "lambda", np.nan)
    metrics.insert(0, "model", model_name or _checkpoint_name(model_path))
    atomic_write_text(out / PREDICTIONS_FILE, result.predictions.to_csv(index=False))
    atomic_write_text(out / METRICS_FILE, metrics[CONTRACT_COLUMNS].to_csv(index=False))
    return metrics


def _check_scores(split: TextSplit, scores: np.ndarray) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (len(split),):
        raise DataError(f"scores have shape {array.shape}, expected ({len(split)},) for this split")
    if not np.isfinite(array).all():
        raise DataError("scores contain NaN or infinite values")
    return array


def _str_or_none(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(path)


def _checkpoint_name(model_path: ModelLike) -> str:
    """Directory name of a local checkpoint, the hub id otherwise, the short name for the default."""
    if isinstance(model_path, PreTrainedModel):
        return Path(str(model_path.name_or_path)).name or type(model_path).__name__
    if model_path is None or resolve_model_name(str(model_path)) != str(model_path):
        return DEFAULT_MODEL.split(":", 1)[1]
    path = Path(str(model_path))
    return path.resolve().name if path.exists() else str(model_path)
