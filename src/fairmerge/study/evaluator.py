"""Scores models on the study's validation and test splits and turns scores into tidy metrics.

Inputs are encoded once per split (texts tokenized, images decoded); every model (baseline, sweep
point, injection) is scored on the same encoded inputs, and scores are cached per point so a
resumed run does no forward pass twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.evaluation import evaluate_scores, score_split
from fairmerge.fairness.metrics import MIN_NEGATIVES, MIN_POSITIVES, Thresholds
from fairmerge.inference import EncodedInputs, InputProcessor, encode_inputs
from fairmerge.precision import Precision
from fairmerge.study.config import SHARED_SEED
from fairmerge.study.score_cache import ScoreCache


def evaluation_subset(
    split: TextSplit, max_samples: int | None, attributes: list[str], seed: int
) -> TextSplit:
    """At most ``max_samples`` posts, keeping group-targeting posts first (the whole split if None).

    Used only by small-budget profiles: every post that targets a group of ``attributes`` is kept
    (so group gaps stay estimable) and the rest is filled with a seeded uniform sample of the
    other posts. Overall accuracy on such a subset over-weights targeted posts; the run says so.
    Selection never looks at labels, so changing labels cannot change which posts are scored.
    """
    if max_samples is None or max_samples >= len(split):
        return split
    rng = np.random.default_rng(seed)
    targeted = np.zeros(len(split), dtype=bool)
    for attribute in attributes:
        targeted |= np.fromiter((bool(m) for m in split.groups[attribute]), dtype=bool, count=len(split))
    first, rest = np.flatnonzero(targeted), np.flatnonzero(~targeted)
    if len(first) >= max_samples:
        keep = rng.choice(first, size=max_samples, replace=False)
    else:
        keep = np.concatenate([first, rng.choice(rest, size=max_samples - len(first), replace=False)])
    return split.subset(np.sort(keep))


def evaluation_view(
    dataset: GroupedTextDataset, max_val: int | None, max_test: int | None, attributes: list[str]
) -> GroupedTextDataset:
    """The dataset with val and test cut to :func:`evaluation_subset` (unchanged when both are None).

    The whole study runs on this view: the fine-tunes' early stopping and the sweeps see the same
    validation posts, and test is the posts each selected model is reported on.
    """
    if max_val is None and max_test is None:
        return dataset
    splits = dict(dataset.splits)
    for name, limit in (("val", max_val), ("test", max_test)):
        splits[name] = evaluation_subset(dataset[name], limit, attributes, seed=SHARED_SEED)
    return dataclasses.replace(dataset, splits=splits)


@dataclass
class SplitEvaluator:
    """One split, its encoded inputs, and the knobs that turn scores into metrics."""

    name: str
    split: TextSplit
    encoded: EncodedInputs
    attributes: list[str]
    thresholds: Thresholds
    """How many posts, positives and negatives a group needs to enter each gap (the config's)."""
    batch_size: int
    cache: ScoreCache
    precision: Precision = "fp32"

    @classmethod
    def build(
        cls,
        name: str,
        split: TextSplit,
        tokenizer: InputProcessor,
        *,
        attributes: list[str],
        max_length: int,
        min_group_size: int,
        batch_size: int,
        cache: ScoreCache,
        precision: Precision = "fp32",
        min_positives: int = MIN_POSITIVES,
        min_negatives: int = MIN_NEGATIVES,
    ) -> SplitEvaluator:
        """``tokenizer`` is the model's input processor (``fairmerge.models.load_processor``);
        ``precision`` is the forward passes' (``fairmerge.precision``); ``min_group_size``,
        ``min_positives`` and ``min_negatives`` decide which groups enter each gap."""
        encoded = encode_inputs(tokenizer, split, max_length=max_length)
        thresholds = Thresholds(min_group_size, min_positives, min_negatives)
        return cls(name, split, encoded, attributes, thresholds, batch_size, cache, precision)

    @property
    def min_group_size(self) -> int:
        return self.thresholds.min_group_size

    @property
    def threshold_options(self) -> dict[str, int]:
        """The group thresholds as keyword arguments of the ``fairmerge.fairness`` functions."""
        return dataclasses.asdict(self.thresholds)

    def score(self, model: torch.nn.Module) -> np.ndarray:
        """P(y=1) of every example under ``model`` as it is (one forward pass per batch, uncached)."""
        return score_split(model, self.encoded, batch_size=self.batch_size, precision=self.precision)

    def cache_key(self, key: str) -> str:
        """The score-cache key of a point's scores on this split (and these posts)."""
        return f"{key}|{self.name}-{self.ids_digest}"

    @property
    def ids_digest(self) -> str:
        """Short hash of the evaluated posts' ids: cached scores are only reused for the same posts."""
        return hashlib.sha256("\n".join(self.split.ids).encode()).hexdigest()[:12]

    def metrics(
        self, scores: np.ndarray, *, threshold: float = 0.5, n_resamples: int = 0, seed: int = 0
    ) -> pd.DataFrame:
        """Tidy group metrics (attribute, group, metric, value, ci_low, ci_high) with a split column."""
        frame = evaluate_scores(
            self.split,
            scores,
            threshold=threshold,
            attributes=self.attributes,
            **self.threshold_options,
            n_resamples=n_resamples,
            seed=seed,
        )
        frame.insert(0, "split", self.name)
        return frame
