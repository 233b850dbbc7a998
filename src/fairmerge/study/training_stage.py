"""The study's fine-tunes for one seed: θ_base, FFT, LoRA, the extra reference families
(``baselines:``: ``fft[balanced]``, ``fft[group_dro]``, ``lora[r=64]``) and one fine-tune per
subgroup and recipe.

All of them go through the content-addressed training cache, so a re-run trains nothing twice.
A recipe's head decides its θ_base (a seeded random head, or a linear-probed head shared by every
seed, since the probe is a convex fit) and whether its subgroup fine-tunes may move that head.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fairmerge.data.types import GroupedTextDataset
from fairmerge.executors import Executor, Resources
from fairmerge.labels import ModelLabel
from fairmerge.study.config import ResolvedRecipe, StudyConfig
from fairmerge.study.timing import StageTimer
from fairmerge.training import TrainingCache, make_base_checkpoint, train_fft, train_lora, train_subgroups
from fairmerge.training.cache import META_FILE
from fairmerge.training.group_objectives import GroupObjective
from fairmerge.training.lora import at_rank


@dataclass(frozen=True)
class RecipeModels:
    """One recipe's θ_base and its subgroup fine-tunes by vector name."""

    recipe: ResolvedRecipe
    base: Path
    finetunes: dict[str, Path]


@dataclass(frozen=True)
class TrainedModels:
    """Checkpoint directories of one seed; ``recipes[""]`` is the main recipe."""

    base: Path
    fft: Path
    lora: Path
    recipes: dict[str, RecipeModels]
    vector_groups: dict[tuple[str, str], str]
    """(attribute, group) → vector name, for the groups that have a vector."""
    baselines: dict[str, Path]
    """The extra reference families by label (``fft[group_dro]``: its checkpoint)."""

    def references(self) -> dict[str, Path]:
        """θ_base, FFT, LoRA and the extra reference families by label: the λ-free models."""
        return {"base": self.base, "fft": self.fft, "lora": self.lora, **self.baselines}

    @property
    def main(self) -> RecipeModels:
        return self.recipes[""]

    def histories(self) -> dict[str, list[dict[str, float]]]:
        """Each fine-tune's validation history (train loss, val loss / accuracy per evaluation)."""
        out = {}
        for name, path in self.checkpoints().items():
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
            out[name] = list(meta.get("history") or [])
        return out

    def checkpoints(self) -> dict[str, Path]:
        """Every fine-tune by a readable name (for the training curves)."""
        named = {"fft": self.fft, "lora": self.lora, **self.baselines}
        for name, models in self.recipes.items():
            for vector, path in models.finetunes.items():
                named[f"{vector} [{name or models.recipe.strategy}]"] = path
        return named


def vector_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A readable name per (attribute, group): the group, or ``attribute:group`` where names clash."""
    pairs = list(dict.fromkeys(pairs))
    counts: dict[str, int] = {}
    for _, group in pairs:
        counts[group] = counts.get(group, 0) + 1
    return {(a, g): g if counts[g] == 1 else f"{a}:{g}" for a, g in pairs}


def eligible_groups(config: StudyConfig, dataset: GroupedTextDataset) -> list[tuple[str, str]]:
    """The (attribute, group) pairs of the vector attributes with >= ``subgroups.min_train_size``
    train posts."""
    train = dataset["train"]
    return [
        (attribute, group)
        for attribute in config.vector_attributes()
        for group in train.group_names(attribute)
        if int(train.in_group(attribute, group).sum()) >= config.subgroups.min_train_size
    ]


def _base(
    config: StudyConfig, dataset: GroupedTextDataset, seed: int, head: str, cache: TrainingCache
) -> Path:
    if head == "random":
        return make_base_checkpoint(config.model, seed=seed, cache=cache)
    # the probe is a convex fit: one probed θ_base serves every seed (its seed is a shared one)
    return make_base_checkpoint(
        config.model,
        seed=config.derived_seeds(seed).probe,
        cache=cache,
        head="linear_probe",
        dataset=dataset,
        probe_config=config.subgroups.probe.replace(seed=config.derived_seeds(seed).probe),
    )


def _train_reference(
    name: str,
    config: StudyConfig,
    dataset: GroupedTextDataset,
    seed: int,
    base: Path,
    cache: TrainingCache,
    progress: bool,
) -> Path:
    """FFT, LoRA or an extra reference family (``fft[balanced]``, ``lora[r=64]``) of ``seed``."""
    label = ModelLabel.parse(name)
    common: dict[str, Any] = {"base_dir": base, "cache": cache, "progress": progress}
    if label.family == "fft":
        objective = None
        if label.strategy is not None:
            objective = GroupObjective(
                label.strategy,  # type: ignore[arg-type]  # the config's Literal: balanced, group_dro
                config.baseline_attribute(),
                config.baselines.dro_step_size,
            )
        return train_fft(dataset, config=config.fft.replace(seed=seed), objective=objective, **common)
    lora = config.lora.replace(seed=seed)
    if label.strategy is not None:  # r=64: only the rank changes (α kept: at_rank says why)
        lora = at_rank(lora, int(label.strategy.removeprefix("r=")))
    return train_lora(dataset, config=lora, **common)


def reference_names(config: StudyConfig) -> list[str]:
    """The reference fine-tunes of ``config`` (FFT, LoRA, then the extra families)."""
    return ["fft", "lora", *config.baseline_models()]


def _train_recipe(
    recipe: ResolvedRecipe,
    config: StudyConfig,
    dataset: GroupedTextDataset,
    seed: int,
    base: Path,
    cache: TrainingCache,
    progress: bool,
    groups: list[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], Path]:
    """The subgroup fine-tunes of one recipe (or of the given groups only) from ``base``."""
    return train_subgroups(
        dataset,
        config.vector_attributes(),
        base_dir=base,
        config=config.subgroups.train.replace(seed=seed, trainable=recipe.trainable),
        strategy=recipe.strategy,
        min_train_size=config.subgroups.min_train_size,
        cache=cache,
        method=config.subgroups.method,
        progress=progress,
        groups=groups,
    )


def train_models(
    config: StudyConfig,
    dataset: GroupedTextDataset,
    seed: int,
    cache: TrainingCache,
    timer: StageTimer,
    *,
    progress: bool = True,
) -> TrainedModels:
    """Train (or fetch from the cache) every fine-tune the study needs for ``seed``."""
    recipes = _recipes(config)
    bases: dict[str, Path] = {}
    with timer("train: base"):
        for head in dict.fromkeys(r.base_head for r in recipes.values()):
            bases[head] = _base(config, dataset, seed, head, cache)
    main_base = bases[config.main_recipe().base_head]
    references = {}
    for name in reference_names(config):
        with timer(f"train: {name}"):
            references[name] = _train_reference(name, config, dataset, seed, main_base, cache, progress)
    fft, lora = references.pop("fft"), references.pop("lora")
    trained: dict[tuple[str, str], dict[tuple[str, str], Path]] = {}
    for recipe in recipes.values():
        if recipe.key in trained:
            continue  # another convention of the same fine-tunes
        with timer(f"train: subgroups ({recipe.strategy}, head {recipe.head})"):
            trained[recipe.key] = _train_recipe(
                recipe, config, dataset, seed, bases[recipe.base_head], cache, progress
            )
    names = vector_names(pair for dirs in trained.values() for pair in dirs)
    models = {
        name: RecipeModels(
            recipe, bases[recipe.base_head], {names[p]: path for p, path in trained[recipe.key].items()}
        )
        for name, recipe in recipes.items()
    }
    main = trained[config.main_recipe().key]
    return TrainedModels(main_base, fft, lora, models, {pair: names[pair] for pair in main}, references)


def _recipes(config: StudyConfig) -> dict[str, ResolvedRecipe]:
    return {"": config.main_recipe(), **{r.name: r for r in config.compared_recipes()}}


def _finetune_job(
    config: StudyConfig,
    dataset: GroupedTextDataset,
    cache: TrainingCache,
    seed: int,
    kind: str,
    recipe: str = "",
    group: tuple[str, str] | None = None,
) -> str:
    """One fine-tune of the study (an executor task): trained, or found in the cache; its directory."""
    if kind == "base":
        return str(_base(config, dataset, seed, recipe, cache))
    chosen = _recipes(config)[recipe]
    base = _base(config, dataset, seed, chosen.base_head, cache)
    if kind in reference_names(config):
        return str(_train_reference(kind, config, dataset, seed, base, cache, progress=False))
    trained = _train_recipe(chosen, config, dataset, seed, base, cache, False, [group] if group else None)
    return str(next(iter(trained.values())))


def train_on_executor(
    config: StudyConfig,
    dataset: GroupedTextDataset,
    seeds: Sequence[int],
    cache: TrainingCache,
    executor: Executor,
) -> int:
    """Every fine-tune of every seed as one executor task each (θ_base first: the rest start from it).

    Each task writes through the content-addressed training cache, so the seeds' own training stage
    then finds everything there. Returns the number of tasks.
    """
    # each task gets this process's thread count: float reductions depend on it, and a fine-tune
    # must come out the same whichever executor trained it
    resources = Resources(num_cpus=float(torch.get_num_threads()))
    groups = eligible_groups(config, dataset)
    bases: dict[tuple[str, int | None], dict[str, Any]] = {}  # one task per distinct θ_base
    jobs: list[dict[str, Any]] = []
    for seed, seed_config in config.seed_configs(seeds):
        common = {"config": seed_config, "dataset": dataset, "cache": cache, "seed": seed}
        recipes = _recipes(seed_config)
        for head in dict.fromkeys(r.base_head for r in recipes.values()):
            # a random head is seeded; the linear-probed θ_base is one for every seed (see _base)
            bases.setdefault(
                (head, seed if head == "random" else None), {**common, "kind": "base", "recipe": head}
            )
        jobs += [{**common, "kind": kind} for kind in reference_names(seed_config)]
        keys = {r.key: name for name, r in recipes.items()}  # a convention shares its recipe's fine-tunes
        jobs += [
            {**common, "kind": "subgroup", "recipe": name, "group": g}
            for name in keys.values()
            for g in groups
        ]
    executor.map(_finetune_job, list(bases.values()), resources=resources)
    executor.map(_finetune_job, jobs, resources=resources)
    return len(bases) + len(jobs)
