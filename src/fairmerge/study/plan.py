"""``fairmerge run --dry-run``: what a study would do, from the config, the data and the cache alone.

Nothing is trained or evaluated. Each fine-tune's cache key is computed exactly as training would
compute it, through a cache that answers every lookup without building anything, so "cached" here
means the run will not train it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ModelError
from fairmerge.models import resolve_model_name
from fairmerge.study.comparisons import primary_power_on
from fairmerge.study.config import StudyConfig
from fairmerge.study.stages import STAGES
from fairmerge.study.timing import StageTimer
from fairmerge.study.training_stage import eligible_groups, reference_names, train_models
from fairmerge.training import TrainingCache
from fairmerge.vectors.memory import estimate_sweep_memory


@dataclass(frozen=True)
class PlannedFineTune:
    seed: int
    what: str
    cached: bool


@dataclass(frozen=True)
class StudyPlan:
    stages: tuple[str, ...]
    """What each stage of :data:`fairmerge.study.stages.STAGES` will do, in order."""
    finetunes: list[PlannedFineTune]
    references: list[str]
    """The reference families trained next to the edits: fft, lora, then ``baselines:`` (fft[balanced], …)."""
    lambda_points: dict[str, int]
    memory: str
    """The peak-memory estimate of the sweeps, from the model's config (or why there is none)."""
    power: str
    """The simulated power of the primary comparison at ``config.power.effect``, in words."""

    @property
    def to_train(self) -> int:
        return sum(not f.cached for f in self.finetunes)


class _LookupOnlyCache(TrainingCache):
    """A training cache that never builds: a missing entry is answered with its would-be path."""

    def lookup(self, kind: str, key: str) -> Path | None:
        return super().lookup(kind, key) or self.path(kind, key)

    def store(self, *args: object, **kwargs: object) -> Path:
        raise AssertionError("a dry run never stores")


def _subgroup_names(config: StudyConfig, dataset: GroupedTextDataset) -> list[str]:
    return [f"{attribute}/{group}" for attribute, group in eligible_groups(config, dataset)]


def _plan_seed(
    config: StudyConfig, dataset: GroupedTextDataset, seed: int, cache: _LookupOnlyCache
) -> list[PlannedFineTune]:
    try:
        trained = train_models(config, dataset, seed, cache, StageTimer(), progress=False)
    except ModelError:  # a θ_base is not built yet: nothing that starts from it can be cached
        recipes = [config.main_recipe(), *config.compared_recipes()]
        keys = dict.fromkeys(f"[{r.strategy}, head {r.head}]" for r in recipes)
        groups = _subgroup_names(config, dataset)
        names = ["base", *reference_names(config), *[f"{g} {k}" for k in keys for g in groups]]
        return [PlannedFineTune(seed, name, False) for name in names]
    finetunes = trained.references()  # base, fft, lora, then fft[balanced], lora[r=64], …
    for models in trained.recipes.values():
        for vector, path in models.finetunes.items():
            finetunes[f"{vector} [{models.recipe.strategy}, head {models.recipe.head}]"] = path
    return [PlannedFineTune(seed, name, path.is_dir()) for name, path in finetunes.items()]


def plan_study(
    config: StudyConfig, dataset: GroupedTextDataset, seeds: Sequence[int], cache: TrainingCache
) -> StudyPlan:
    """The stages, the fine-tunes (cached or to train) and the λ points of every swept family."""
    probe = _LookupOnlyCache(cache.root, enabled=cache.enabled)
    finetunes = [
        f
        for seed, seed_config in config.seed_configs(seeds)
        for f in _plan_seed(seed_config, dataset, seed, probe)
    ]
    sweep = config.sweep
    n_groups = len(_subgroup_names(config, dataset))
    points = {
        "merge": len(sweep.lambdas) + 2 * sweep.refine_rounds,
        "merge_pergroup": sweep.pergroup_trials,
        "inject": len(sweep.injection_lambdas) * (n_groups if sweep.inject_all_groups else 1),
    }
    points |= {f"merge[{r.name}]": len(sweep.compare_lambdas) for r in config.compared_recipes()}
    stages = tuple(stage.plan for stage in STAGES)
    return StudyPlan(
        stages,
        finetunes,
        reference_names(config),
        points,
        memory_plan(config, n_groups),
        power_plan(config, dataset, seeds),
    )


def power_plan(config: StudyConfig, dataset: GroupedTextDataset, seeds: Sequence[int]) -> str:
    """The primary comparison's simulated power, before anything is trained.

    Simulated at the test split's group sizes and class counts (the evaluation view's), with the
    config's seeds and thresholds, for the test the study runs (:func:`primary_power_on`): the
    same number ``summary.json``'s ``power`` reports after the run.
    """
    test, primary, effect = dataset["test"], config.primary, config.power.effect
    found = primary_power_on(
        test.labels,
        test.memberships([primary.attribute] if primary.attribute != "all" else None),
        config,
        n_seeds=len(seeds),
        seed=config.derived_seeds(seeds[0]).comparisons,
    )
    what = f"primary comparison {primary.label}: power to detect a true Δ of {-effect:+.2f}"
    where = f"with {len(seeds)} seeds at the test split's sizes ({config.power.simulations} simulations)"
    if np.isnan(found["power"]):
        return f"{what}: undefined (fewer than two groups qualify for the gap on test)"
    return f"{what} {where}: {found['power']:.2f} (SE {found['se']:.2f})"


def memory_plan(config: StudyConfig, n_vectors: int) -> str:
    """Peak host / device memory of the study's sweeps, computed from the model's config.

    Besides the merger (one model, a copy of the base and the summed vector, or streamed / LoRA
    vectors for the per-group search) the study keeps the FFT and LoRA states to reset the model.
    """
    try:
        model_config = AutoConfig.from_pretrained(resolve_model_name(config.model), trust_remote_code=False)
    except (OSError, ValueError) as exc:
        return f"memory estimate unavailable: the model's config cannot be read ({str(exc).splitlines()[0]})"
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    lora = config.subgroups.method == "lora"
    estimate = estimate_sweep_memory(
        model_config,
        dtype=dtype,
        n_vectors=max(n_vectors, 1),
        mode="lora" if lora else "streamed",
        device="cuda" if cuda else "cpu",
        lora_rank=config.lora.lora_r,
        extra={"fft and lora states": 2},
    )
    return estimate.describe()
