"""Scores models on the study's validation and test splits and turns scores into tidy metrics.

Texts are tokenized once per split; every model (baseline, sweep point, injection) is scored on the
same encoded inputs, and scores are cached per point so a resumed run does no forward pass twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from fairmerge.data.types import TextSplit
from fairmerge.evaluation import evaluate_scores, score_split
from fairmerge.inference import EncodedTexts, encode_texts
from fairmerge.study.score_cache import ScoreCache


def random_subset(split: TextSplit, max_samples: int | None, seed: int) -> TextSplit:
    """A seeded uniform subsample (the whole split when ``max_samples`` is None).

    Uniform rather than label-stratified on purpose: which posts are evaluated must not depend on
    the labels, so changing test labels can never change which test posts are scored.
    """
    if max_samples is None or max_samples >= len(split):
        return split
    rng = np.random.default_rng(seed)
    return split.subset(np.sort(rng.choice(len(split), size=max_samples, replace=False)))


@dataclass
class SplitEvaluator:
    """One split, its encoded texts, and the knobs that turn scores into metrics."""

    name: str
    split: TextSplit
    encoded: EncodedTexts
    attributes: list[str]
    min_group_size: int
    batch_size: int
    cache: ScoreCache

    @classmethod
    def build(
        cls,
        name: str,
        split: TextSplit,
        tokenizer: PreTrainedTokenizerBase,
        *,
        attributes: list[str],
        max_length: int,
        min_group_size: int,
        batch_size: int,
        cache: ScoreCache,
    ) -> SplitEvaluator:
        encoded = encode_texts(tokenizer, split.texts, max_length=max_length)
        return cls(name, split, encoded, attributes, min_group_size, batch_size, cache)

    def scores(
        self, model: PreTrainedModel, key: str, prepare: Callable[[], object] = lambda: None
    ) -> np.ndarray:
        """P(y=1) of every example under ``model``, cached under ``key``.

        ``prepare`` (e.g. writing a λ's weights into ``model``) runs only when the scores are not
        cached yet.
        """

        def compute() -> np.ndarray:
            prepare()
            return score_split(model, self.encoded, batch_size=self.batch_size)

        return self.cache.get_or_compute(f"{key}|{self.name}-{self.ids_digest}", compute)

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
            min_group_size=self.min_group_size,
            n_resamples=n_resamples,
            seed=seed,
        )
        frame.insert(0, "split", self.name)
        return frame
