"""One fine-tune of θ_base per subgroup, and how each subgroup's training set is built.

Posts that target a group are mostly hateful, so a fine-tune on them alone learns "predict hate"
and the merged subgroup vectors drift towards the positive class (see FINDINGS). The strategies:

``targeted``
    The group's train posts only (the study's own recipe; the baseline).
``targeted+background``
    The group's posts plus a seeded random sample of *background* train posts — posts that target
    no group of any attribute — of the class the group lacks, exactly as many as needed for the
    union to have the train split's overall positive rate π. With ``n`` group posts of which ``p``
    are positive: if p/n > π add round(p/π − n) negatives; if p/n < π add round((π·n − p)/(1 − π))
    positives. When the background holds fewer posts of that class, all of them are taken and a
    warning says so.
``balanced``
    The group's posts with per-example loss weights: positives weigh π/r and negatives
    (1 − π)/(1 − r) (r = the group's positive rate), so each class's share of the total weight is
    the train split's class balance. A group with a single class cannot be rebalanced: unit
    weights and a warning.
``leave-one-in``
    Every train post, the group's posts up-weighted so that together they carry half of the total
    loss weight (weight (N − n)/n each, at least 1; N = train size). Costs an FFT per group.

Validation for a subgroup fine-tune uses that group's val posts, or the whole val split when the
group has fewer than ``MIN_VAL_GROUP_SIZE`` of them; the summary line says which.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np

from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError
from fairmerge.training.cache import TrainingCache
from fairmerge.training.config import Method, TrainConfig
from fairmerge.training.finetune import run_finetune

logger = logging.getLogger("fairmerge.training")

Strategy = Literal["targeted", "targeted+background", "balanced", "leave-one-in"]
STRATEGIES: tuple[str, ...] = ("targeted", "targeted+background", "balanced", "leave-one-in")
MIN_VAL_GROUP_SIZE = 20


def background_mask(split: TextSplit) -> np.ndarray:
    """Posts that target no group of any attribute."""
    mask = np.ones(len(split), dtype=bool)
    for members in split.groups.values():
        mask &= np.fromiter((not m for m in members), dtype=bool, count=len(split))
    return mask


def subgroup_training_set(
    split: TextSplit, attribute: str, group: str, strategy: str = "targeted", seed: int = 0
) -> tuple[TextSplit, np.ndarray | None]:
    """The examples (and loss weights, or None) a fine-tune for ``attribute``/``group`` trains on.

    See the module docstring for each strategy's rule.
    """
    _check_strategy(strategy)
    in_group = split.in_group(attribute, group)
    n = int(in_group.sum())
    if n == 0:
        raise ConfigError(f"group {attribute}/{group} has no posts in this split")
    labels = split.labels
    p = int(labels[in_group].sum())
    pi = float(labels.mean())
    rate = p / n
    name = f"{attribute}/{group}"

    if strategy == "targeted":
        return split.subset(in_group), None

    if strategy == "targeted+background":
        if rate > pi:
            needed_class, wanted = 0, round(p / pi - n)
        elif rate < pi:
            needed_class, wanted = 1, round((pi * n - p) / (1 - pi))
        else:
            return split.subset(in_group), None
        pool = np.flatnonzero(background_mask(split) & (labels == needed_class))
        if wanted > len(pool):
            logger.warning(
                "%s (targeted+background): needs %d background posts of class %d to reach the train "
                "positive rate %.3f, only %d exist; taking all of them",
                name,
                wanted,
                needed_class,
                pi,
                len(pool),
            )
            wanted = len(pool)
        rng = np.random.default_rng(seed)
        chosen = rng.choice(pool, size=wanted, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(in_group), chosen]))
        return split.subset(keep), None

    if strategy == "balanced":
        subset = split.subset(in_group)
        if p in (0, n):
            logger.warning(
                "%s (balanced): all %d posts are of class %d, cannot reweight to the train balance; "
                "using unit weights",
                name,
                n,
                int(p == n),
            )
            return subset, np.ones(n)
        weights = np.where(subset.labels == 1, pi / rate, (1 - pi) / (1 - rate))
        return subset, weights

    # leave-one-in
    weights = np.ones(len(split))
    weights[in_group] = max(1.0, (len(split) - n) / n)
    return split, weights


def subgroup_validation_set(val: TextSplit, attribute: str, group: str) -> tuple[TextSplit, str]:
    """The group's val posts (if at least ``MIN_VAL_GROUP_SIZE``), else the whole val split; and a note."""
    count = int(val.in_group(attribute, group).sum()) if attribute in val.groups else 0
    if count >= MIN_VAL_GROUP_SIZE:
        return val.subset(val.in_group(attribute, group)), f"val = {attribute}/{group} posts, n={count}"
    return val, f"val = whole val split, n={len(val)} ({attribute}/{group} has {count} val posts)"


def train_subgroups(
    dataset: GroupedTextDataset,
    attributes: list[str] | tuple[str, ...],
    *,
    base_dir: str | os.PathLike[str],
    config: TrainConfig,
    strategy: str = "targeted",
    min_train_size: int = 50,
    cache: TrainingCache,
    method: Method = "fft",
    progress: bool = True,
    groups: Collection[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], Path]:
    """Fine-tune θ_base once per group of ``attributes`` with ≥ ``min_train_size`` train posts.

    ``groups`` restricts the work to those (attribute, group) pairs (one task per group on a
    cluster); None trains every eligible group.

    Returns ``{(attribute, group): checkpoint_dir}``; smaller groups are skipped with a warning
    that gives their size. ``strategy`` picks the training set (module docstring). ``method``
    ``lora`` trains an adapter per group (for models too large to fine-tune fully) and returns its
    merged checkpoint, so the group's task vector is the exact ΔW = s·B·A (plus the head).
    """
    _check_strategy(strategy)
    if method not in ("fft", "lora"):
        raise ConfigError(f"method must be 'fft' or 'lora', got {method!r}")
    if isinstance(min_train_size, bool) or not isinstance(min_train_size, int) or min_train_size < 1:
        raise ConfigError(f"min_train_size must be an integer >= 1, got {min_train_size!r}")
    train, val = dataset["train"], dataset["val"]
    for attribute in attributes:
        train.group_names(attribute)  # raises DataError naming the attributes that exist
    results: dict[tuple[str, str], Path] = {}
    head = ", frozen head" if config.trainable == "body" else ""  # cache descriptions name the recipe
    for attribute in attributes:
        for group in train.group_names(attribute):
            if groups is not None and (attribute, group) not in groups:
                continue
            size = int(train.in_group(attribute, group).sum())
            if size < min_train_size:
                logger.warning(
                    "skipping %s/%s: %d train posts < min_train_size %d",
                    attribute,
                    group,
                    size,
                    min_train_size,
                )
                continue
            subset, weights = subgroup_training_set(train, attribute, group, strategy, seed=config.seed)
            val_subset, note = subgroup_validation_set(val, attribute, group)
            results[(attribute, group)] = run_finetune(
                "subgroup",
                dataset,
                subset,
                val_subset,
                base_dir=base_dir,
                config=config,
                cache=cache,
                method=method,
                weights=weights,
                key_extra={"attribute": attribute, "group": group, "strategy": strategy},
                description=f"{attribute}/{group} [{strategy}{head}]",
                val_note=note,
                progress=progress,
            )
    return results


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown subgroup strategy {strategy!r}; expected one of {list(STRATEGIES)}")
