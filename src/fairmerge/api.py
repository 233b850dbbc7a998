"""One-call evaluation for notebooks: a model and data in, the tidy group-metrics frame out."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from fairmerge.data import GroupedTextDataset, TextSplit, available_datasets, load_dataset
from fairmerge.errors import DataError
from fairmerge.evaluation import ModelLike, evaluate_model

DataLike = str | GroupedTextDataset | TextSplit | None


def _split_of(
    data: DataLike,
    split: str,
    data_dir: str | os.PathLike[str] | None,
    texts: Sequence[str] | None,
    labels: Sequence[int] | np.ndarray | None,
    groups: Mapping[str, Sequence[str | Iterable[str] | None]] | None,
) -> TextSplit:
    if data is None:
        if texts is None or labels is None:
            raise DataError("evaluate needs data (a dataset name, dataset or split) or texts and labels")
        memberships = {
            attribute: [
                frozenset() if g is None else frozenset([g] if isinstance(g, str) else g) for g in values
            ]
            for attribute, values in (groups or {}).items()
        }
        return TextSplit([str(i) for i in range(len(texts))], list(texts), np.asarray(labels), memberships)
    if isinstance(data, str):
        if data not in available_datasets():
            raise DataError(f"unknown dataset {data!r}; available: {available_datasets()}")
        data = load_dataset(data, data_dir)
    if isinstance(data, GroupedTextDataset):
        return data[split]
    return data


def evaluate(
    model: ModelLike = None,
    data: DataLike = None,
    *,
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    texts: Sequence[str] | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    groups: Mapping[str, Sequence[str | Iterable[str] | None]] | None = None,
    attributes: Sequence[str] | None = None,
    threshold: float = 0.5,
    min_group_size: int = 30,
    n_resamples: int = 1000,
    max_length: int = 128,
    batch_size: int = 128,
    seed: int = 0,
) -> pd.DataFrame:
    """Group metrics of ``model`` on ``data``: ``attribute, group, metric, value, ci_low, ci_high``.

    ``model`` is a loaded classifier, a checkpoint directory, a Hugging Face id, or None for the
    embedded default; text and image classifiers alike (the same path as ``fairmerge evaluate``:
    :func:`fairmerge.evaluation.evaluate_model`). ``data`` is a dataset name (read from
    ``data_dir``), a loaded dataset (its ``split``), a split, or None with ``texts``, ``labels`` and
    ``groups`` (attribute → one group name, several, or None per example).

    Example::

        import fairmerge as fm
        frame = fm.evaluate("runs/ft", "hatexplain", data_dir="../shared/data", split="val")
    """
    evaluated = _split_of(data, split, data_dir, texts, labels, groups)
    return evaluate_model(
        model,
        evaluated,
        attributes=attributes,
        threshold=threshold,
        min_group_size=min_group_size,
        n_resamples=n_resamples,
        max_length=max_length,
        batch_size=batch_size,
        seed=seed,
    ).metrics
