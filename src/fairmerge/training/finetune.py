"""Cached fine-tunes from θ_base: full fine-tuning (FFT), LoRA, and the runner both share with subgroups.

Each returns the directory of a Hugging Face checkpoint in the training cache; a second call with
the same inputs (base weights, examples, hyper-parameters, seed, device type, library versions)
returns the stored entry without training.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError, ModelError
from fairmerge.models import load_classifier, load_processor
from fairmerge.training.cache import TrainingCache, cache_key, hash_checkpoint, library_versions, split_digest
from fairmerge.training.config import Method, TrainConfig
from fairmerge.training.group_objectives import (
    GroupDRO,
    GroupObjective,
    group_balanced_weights,
    training_groups,
)
from fairmerge.training.loop import fit, training_runtime
from fairmerge.training.lora import ADAPTER_DIR, apply_lora, save_merged
from fairmerge.training.probe import fit_linear_probe
from fairmerge.training.runtime import is_main_process, wait_for_everyone

logger = logging.getLogger("fairmerge.training")


def train_fft(
    dataset: GroupedTextDataset,
    *,
    base_dir: str | os.PathLike[str],
    config: TrainConfig,
    cache: TrainingCache,
    progress: bool = True,
    objective: GroupObjective | None = None,
) -> Path:
    """Fine-tune all weights of θ_base on the train split (best epoch on val); return the checkpoint.

    ``objective`` trains with group-balanced weights or Group DRO (the ``fft[balanced]`` and
    ``fft[group_dro]`` baselines); None is plain FFT.
    """
    return run_finetune(
        "fft",
        dataset,
        dataset["train"],
        dataset["val"],
        base_dir=base_dir,
        config=config,
        cache=cache,
        method="fft",
        objective=objective,
        description="fft" if objective is None else f"fft[{objective.weighting}]",
        progress=progress,
    )


def train_lora(
    dataset: GroupedTextDataset,
    *,
    base_dir: str | os.PathLike[str],
    config: TrainConfig,
    cache: TrainingCache,
    progress: bool = True,
) -> Path:
    """LoRA fine-tune of θ_base on the train split; return the merged full checkpoint.

    The peft adapter is kept in the same cache entry under ``adapter/``.
    """
    return run_finetune(
        "lora",
        dataset,
        dataset["train"],
        dataset["val"],
        base_dir=base_dir,
        config=config,
        cache=cache,
        method="lora",
        description="lora",
        progress=progress,
    )


def run_finetune(
    kind: str,
    dataset: GroupedTextDataset,
    train: TextSplit,
    val: TextSplit,
    *,
    base_dir: str | os.PathLike[str],
    config: TrainConfig,
    cache: TrainingCache,
    method: Method,
    weights: np.ndarray | None = None,
    objective: GroupObjective | None = None,
    key_extra: dict[str, Any] | None = None,
    description: str,
    val_note: str = "val split",
    progress: bool = True,
    linear_probe: bool = False,
) -> Path:
    """Train (or fetch from the cache) one fine-tune of θ_base on ``train``, selected on ``val``.

    ``key_extra`` names what the examples stand for (e.g. attribute, group, strategy); the cache
    key also covers the exact examples, so it is descriptive rather than load-bearing.
    ``linear_probe`` fits only the head's output layer by logistic regression (``probe``) instead of
    running the training loop. ``objective`` weighs the groups of an attribute of ``train``
    (:mod:`fairmerge.training.group_objectives`); it enters the cache key only when given, so the
    keys of plain fine-tunes do not change.
    """
    base = Path(base_dir)
    if not (base / "config.json").is_file():
        raise ModelError(f"base checkpoint {base} is not a model directory (no config.json)")
    config = config.resolved(method)
    if weights is not None and len(weights) != len(train):
        raise ValueError(f"{len(weights)} loss weights for {len(train)} training examples")
    if config.max_train_samples is not None and len(train) > config.max_train_samples:
        keep = stratified_subsample(train.labels, config.max_train_samples, seed=config.seed)
        train = train.subset(keep)
        weights = None if weights is None else np.asarray(weights)[keep]
    group_dro = None
    if objective is not None:
        if weights is not None or linear_probe:
            raise ConfigError(f"{description}: a group objective takes no loss weights and no linear probe")
        names, members = training_groups(train, objective.attribute)
        if objective.weighting == "balanced":
            weights = group_balanced_weights(members)
        else:
            group_dro = GroupDRO(names, members, objective.dro_step_size)

    config_values = {k: v for k, v in config.to_dict().items() if k != "device"}
    if method == "fft":  # LoRA settings do not affect a full fine-tune
        config_values = {k: v for k, v in config_values.items() if not k.startswith("lora_")}
    runtime = training_runtime(config)
    key_parts = {
        "kind": kind,
        "method": method,
        "base_sha256": hash_checkpoint(base),
        "data": {
            "dataset": dataset.name,
            "label_scheme": dataset.label_scheme,
            "provenance": dict(sorted(dataset.provenance.items())),
            **(key_extra or {}),
            "train_sha256": split_digest(train, weights),
            "val_sha256": split_digest(val),
        },
        "config": config_values,
        **({"objective": objective.key()} if objective is not None else {}),
        "trainer": "logistic_regression" if linear_probe else "loop",
        "runtime": runtime,
        "versions": library_versions(),
    }
    key = cache_key(key_parts)
    found = cache.lookup(kind, key)
    if found is not None:
        message = f"{description}: cached, nothing to train ({found})"
        logger.info(message)
        if progress and is_main_process():
            tqdm.write(message, file=sys.stderr)
        return found

    tokenizer = load_processor(str(base))  # a tokenizer, or an image model's input format
    classifier = load_classifier(str(base), device="cpu")
    model: PreTrainedModel | PeftModel = apply_lora(classifier, config) if method == "lora" else classifier
    if linear_probe:
        if weights is not None or method != "fft":
            raise ConfigError("a linear probe takes no loss weights and no LoRA")
        result = fit_linear_probe(model, tokenizer, train, val, config, description=description)
    else:
        result = fit(
            model,
            tokenizer,
            train,
            val,
            config,
            weights=weights,
            group_dro=group_dro,
            progress=progress,
            description=description,
            val_note=val_note,
        )

    def build(tmp: Path) -> dict[str, Any]:
        if isinstance(model, PeftModel):
            model.save_pretrained(str(tmp / ADAPTER_DIR))
            save_merged(model, tmp, tokenizer)
        else:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        return {
            "description": f"{description} {dataset.name}/{dataset.label_scheme} seed={config.seed}",
            "base_dir": str(base),
            "config": config.to_dict(),
            "key_parts": key_parts,
            "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason,
            "stopped_early": result.stopped_early,
            "history": result.history,
            "val": {**result.best, "note": val_note, "n": result.n_val},
            "n_train": result.n_train,
            "train_seconds": round(result.train_seconds, 3),
            "samples_per_s": round(result.samples_per_s, 2),
            **({"group_dro_weights": result.group_weights} if result.group_weights is not None else {}),
        }

    path = cache.store(kind, key, build) if is_main_process() else cache.path(kind, key)
    wait_for_everyone()
    return path


def stratified_subsample(labels: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of ``n`` examples with the same class proportions.

    Written out (not sklearn's ``train_test_split``) because that refuses classes with a single
    member and returns an unsorted order; quotas are rounded by largest remainder so they sum to n.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    quota = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(chosen))
