"""The cached scorer: a (candidate, split) pair in, its scores or its metric frame out.

On a miss in the score cache it asks the workspace to write the candidate into the model
(:meth:`fairmerge.study.stages.workspace.Workspace.materialise`, the only code that writes weights)
and runs one forward pass over the split; scores already computed in this run are kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import torch

from fairmerge.study.candidate import Candidate
from fairmerge.study.evaluator import SplitEvaluator

SplitName = Literal["val", "test"]


class WeightWriter(Protocol):
    """What the scorer needs of the workspace: the model holding a candidate's weights."""

    @property
    def model(self) -> torch.nn.Module: ...

    def materialise(self, candidate: Candidate) -> torch.nn.Module: ...


@dataclass
class CandidateScorer:
    """Scores candidates of one seed on the study's val and test splits (cached per candidate)."""

    val: SplitEvaluator
    test: SplitEvaluator
    workspace: WeightWriter
    seed: int
    shared: frozenset[str] = frozenset()
    """Score keys of models that do not depend on the seed (a linear-probed θ_base): scored once."""
    _kept: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def split(self, name: SplitName) -> SplitEvaluator:
        return self.val if name == "val" else self.test

    def key(self, candidate: Candidate) -> str:
        """The candidate's score key in this seed (``shared|…`` for a seed-independent model)."""
        key = candidate.key
        return f"shared|{key}" if key in self.shared else f"seed{self.seed}|{key}"

    def scores(self, candidate: Candidate, split: SplitName) -> np.ndarray:
        """P(y=1) of ``candidate`` on ``split``: kept, cached, or computed from its materialised weights."""
        evaluator = self.split(split)
        key = evaluator.cache_key(self.key(candidate))
        if key in self._kept:
            return self._kept[key]
        scores = evaluator.cache.load(key)
        if scores is None:
            scores = np.asarray(evaluator.score(self.workspace.materialise(candidate)))
            evaluator.cache.store(key, scores)
        self._kept[key] = scores
        return scores

    def frame(
        self, candidate: Candidate, split: SplitName, *, threshold: float = 0.5, n_resamples: int = 0
    ) -> pd.DataFrame:
        """The candidate's tidy group metrics on ``split`` (intervals from ``n_resamples`` draws)."""
        scores = self.scores(candidate, split)
        return self.split(split).metrics(scores, threshold=threshold, n_resamples=n_resamples, seed=self.seed)
