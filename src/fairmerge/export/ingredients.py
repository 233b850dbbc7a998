"""What a selected point is made of: the checkpoint it starts from and its weighted fine-tunes.

The fine-tunes are found, never trained: the study's own training stage computes every cache key
through a cache that only looks up, so the entries named here are exactly those the run used. A
missing entry stops the export before anything is written, naming the entries and the command
that recomputes them.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError, ModelError
from fairmerge.export.run_folder import RunFolder, SelectedPoint
from fairmerge.study.config import ResolvedRecipe
from fairmerge.study.timing import StageTimer
from fairmerge.study.training_stage import TrainedModels, train_models
from fairmerge.training import TrainingCache

INJECT = "inject"
MERGE_FAMILIES = ("merge", "merge_pergroup")


class _LookupOnlyCache(TrainingCache):
    """Answers a missing entry with its would-be path and remembers it; never trains or stores."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.missing: list[str] = []

    def lookup(self, kind: str, key: str) -> Path | None:
        found = super().lookup(kind, key)
        if found is None:
            self.missing.append(f"{kind}/{key[:12]}")
        return found or self.path(kind, key)

    def store(self, *args: object, **kwargs: object) -> Path:
        raise AssertionError("an export never trains")


@dataclass(frozen=True)
class Finetune:
    """One fine-tune of a point: its vector name, cache entry, and weight in the task arithmetic."""

    name: str
    path: Path
    weight: float


@dataclass(frozen=True)
class Ingredients:
    """θ = start + Σ weight_i·(finetune_i − base): what a selected point is made of.

    ``start`` is θ_base for a merge and θ_FFT for an injection; ``base`` is the θ_base the
    fine-tunes started from. ``weight`` is the effective per-vector coefficient (λ, λ/G under the
    ``mean`` convention, or λ_g); ``uniform`` says the study applied one λ to the summed vectors.
    """

    point: SelectedPoint
    start: Path
    start_name: str
    base: Path
    finetunes: list[Finetune]
    method: str
    convention: str
    scale: float = 1.0
    """1/G under the ``mean`` convention (the vectors are scaled before λ applies), else 1."""
    uniform: bool = True
    cache_entries: dict[str, Path] = field(default_factory=dict)


def find_ingredients(
    run: RunFolder, point: SelectedPoint, dataset: GroupedTextDataset, cache_root: Path
) -> Ingredients:
    """The cache entries and coefficients of ``point``; a DataError naming any missing entry."""
    method = run.config.sweep.method
    if method != "task_arithmetic" and point.label.family != INJECT:
        # TIES / DARE trim and re-sign the vectors with a seed: the export rebuilds only task arithmetic
        raise DataError(
            f"{point.label}: this run merged with sweep.method={method}; export rebuilds task-arithmetic "
            "points only (export an inject point, or rerun with sweep.method=task_arithmetic)"
        )
    cache = _LookupOnlyCache(cache_root / "training")
    config = dict(run.config.seed_configs(run.seeds))[point.seed]
    try:
        with _quiet():
            trained = train_models(config, dataset, point.seed, cache, StageTimer(), progress=False)
    except (ModelError, FileNotFoundError):  # θ_base is missing: nothing built on it has a key
        cache.missing.append("base (θ_base, and every fine-tune that starts from it)")
        trained = None
    if cache.missing or trained is None:
        shown = ", ".join(dict.fromkeys(cache.missing))
        raise DataError(
            f"the cache {cache_root} no longer holds what {point.label} (seed {point.seed}) needs: "
            f"{shown}; recompute them with: {run.rerun_command(point.seed, cache_root)}"
        )
    return _ingredients(run, point, trained)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the training stage's notes (cached entries, skipped groups): the run showed them."""
    training = logging.getLogger("fairmerge.training")
    level = training.level
    training.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        training.setLevel(level)


def _recipe_of(trained: TrainedModels, strategy: str | None) -> tuple[str, ResolvedRecipe]:
    name = strategy or ""
    if name not in trained.recipes:
        raise DataError(f"the run has no recipe {strategy!r}; it has {sorted(trained.recipes)}")
    return name, trained.recipes[name].recipe


def _ingredients(run: RunFolder, point: SelectedPoint, trained: TrainedModels) -> Ingredients:
    family = point.label.family
    entries = {"fft": trained.fft, "base": trained.base}
    if family == INJECT:
        group = run.worst_group(point.seed) if point.label.group == "worst" else point.label.group
        vectors = trained.main.finetunes
        if group is None or group not in vectors:
            raise DataError(f"{point.label}: no subgroup vector {group!r} in the run")
        lam = float(point.lam or 0.0)
        return Ingredients(
            point,
            trained.fft,
            "FFT",
            trained.main.base,
            [Finetune(group, vectors[group], lam)],
            "inject",
            "sum",
            cache_entries=entries | {f"subgroup {group}": vectors[group]},
        )
    if family not in MERGE_FAMILIES:
        raise DataError(f"{point.label}: only merge, merge_pergroup and inject families can be exported")
    name, recipe = _recipe_of(trained, point.label.strategy)
    models = trained.recipes[name]
    entries = {"base": models.base} | {f"subgroup {g}": p for g, p in models.finetunes.items()}
    if family == "merge_pergroup":
        lambdas = point.lambdas or {}
        finetunes = [Finetune(g, p, float(lambdas[g])) for g, p in models.finetunes.items()]
        return Ingredients(
            point,
            models.base,
            "θ_base",
            models.base,
            finetunes,
            "task_arithmetic",
            "per-group",
            uniform=False,
            cache_entries=entries,
        )
    scale = 1.0 if recipe.convention == "sum" else 1.0 / len(models.finetunes)
    lam = float(point.lam or 0.0)
    finetunes = [Finetune(g, p, lam * scale) for g, p in models.finetunes.items()]
    return Ingredients(
        point,
        models.base,
        "θ_base",
        models.base,
        finetunes,
        "task_arithmetic",
        recipe.convention,
        scale=scale,
        cache_entries=entries,
    )
