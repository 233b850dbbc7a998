"""One seed of the study, as a sequence of stages that take values and return values.

The order mirrors the paper (FFT and LoRA baselines, subgroup task vectors, the uniform-λ merge
θ_base + λ·Σ τ_g, injection θ_FFT + λ·τ_g) and adds what it left open: per-group coefficients,
validation-only selection under explicit rules, calibrated decision thresholds, subgroup
training-set strategies, a post-processing baseline and the empirical λ–DPD bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from torch import Tensor
from transformers import PreTrainedModel

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError
from fairmerge.labels import ModelLabel
from fairmerge.models import checkpoint_key_map, load_classifier, load_processor
from fairmerge.study.config import StudyConfig
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.points import MetricLedger, Point, PointEvaluator
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.side_tables import (
    VectorGeometry,
    bound_table,
    degenerate_points,
    pergroup_bound,
    strategy_table,
)
from fairmerge.study.sweeps import FamilySweep, injection_sweeps, merge_sweep, pergroup_search, worst_group
from fairmerge.study.testing import (
    SelectedModel,
    baselines_on_test,
    families_on_test,
    pergroup_on_test,
    selection_sensitivity,
    threshold_optimizer_on_test,
)
from fairmerge.study.timing import StageTimer
from fairmerge.study.training_stage import RecipeModels, train_models
from fairmerge.training import TrainingCache, finetune_vector
from fairmerge.vectors import CheckpointReader, TaskVector


@dataclass
class SeedOutcome:
    """Everything one seed produced, ready to be written out."""

    seed: int
    metrics: pd.DataFrame
    selected: dict[str, SelectedModel]
    worst_group: dict[str, str]
    similarity: pd.DataFrame
    bound: pd.DataFrame
    pergroup_bound: pd.DataFrame
    strategies: pd.DataFrame
    degenerate: pd.DataFrame
    pergroup_trials: pd.DataFrame
    sensitivity: pd.DataFrame
    test_predictions: dict[str, np.ndarray]
    test_labels: np.ndarray
    test_memberships: dict[str, pd.DataFrame]
    timings: StageTimer
    checkpoints: dict[str, str] = field(default_factory=dict)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    """Each fine-tune's validation curve (for plots/training_curves.png)."""
    vectors: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Subgroup vector name → (attribute, group)."""


def load_state(path: Path) -> dict[str, Tensor]:
    """Every tensor of a checkpoint directory (safetensors or .bin, single or sharded)."""
    reader = CheckpointReader(path)
    return {key: reader.get(key) for key in reader.specs}


@dataclass
class ModelSlot:
    """The one model in memory and the named states it can be reset to (base, FFT, LoRA)."""

    model: PreTrainedModel
    states: Mapping[str, Mapping[str, Tensor]]
    loaded: str | None = None

    def loader(self, name: str, *, always: bool = False) -> Callable[[], None]:
        """A function that loads state ``name`` (skipped when it is already loaded, unless ``always``)."""

        def load() -> None:
            if always or self.loaded != name:
                self.model.load_state_dict(self.states[name], strict=False)
                self.loaded = name

        return load


def _vectors(models: RecipeModels) -> dict[str, TaskVector]:
    """A recipe's subgroup vectors by name, read lazily from their checkpoints (no head keys when the
    head was frozen): a sweep holds their sum, the per-group search streams them."""
    return {name: finetune_vector(models.base, path) for name, path in models.finetunes.items()}


def _merged(vectors: Mapping[str, TaskVector], convention: str) -> list[TaskVector]:
    """The vectors a uniform merge sums: as they are (``sum``) or each scaled by 1/G (``mean``)."""
    if convention == "sum":
        return list(vectors.values())
    return [(1.0 / len(vectors)) * vector for vector in vectors.values()]


def _renamed_keys(model: PreTrainedModel) -> dict[str, str] | None:
    """Checkpoint name → the loaded model's name, or None when they are the same (most models)."""
    mapping = checkpoint_key_map(model)
    return None if all(k == v for k, v in mapping.items()) else mapping


def _for_model(tensors: Mapping[str, Tensor] | TaskVector, keys: dict[str, str] | None) -> Any:
    """Tensors read from checkpoint files, named as the loaded model names them.

    transformers 5 renames some architectures' tensors on load (ViT's ``attention.attention.query``
    becomes ``attention.q_proj``); files keep the saved names. Renaming reads the tensors, so a lazy
    vector stays lazy only where no rename is needed.
    """
    return tensors if keys is None else {keys.get(k, k): t for k, t in tensors.items()}


def _state_name(models: RecipeModels, main: RecipeModels) -> str:
    return "base" if models.base == main.base else f"base/{models.recipe.base_head}"


def _evaluators(
    config: StudyConfig, dataset: GroupedTextDataset, base_dir: Path, score_cache: ScoreCache
) -> tuple[SplitEvaluator, SplitEvaluator]:
    evaluation = config.evaluation
    processor = load_processor(str(base_dir))  # a tokenizer, or an image model's input format
    built = []
    for name in ("val", "test"):  # the dataset is already the evaluation view (run.py)
        built.append(
            SplitEvaluator.build(
                name,
                dataset[name],
                processor,
                attributes=config.attributes,
                max_length=evaluation.max_length,
                min_group_size=evaluation.min_group_size,
                batch_size=evaluation.batch_size,
                cache=score_cache,
                precision=config.evaluation.precision,
            )
        )
    return built[0], built[1]


def run_seed(
    config: StudyConfig,
    dataset: GroupedTextDataset,
    seed: int,
    *,
    training_cache: TrainingCache,
    score_cache: ScoreCache,
    console: Console,
) -> SeedOutcome:
    """The whole study for one seed."""
    timer = StageTimer(console)
    trained = train_models(config, dataset, seed, training_cache, timer)
    if not trained.main.finetunes:
        raise DataError(
            f"no subgroup of {config.attributes} has >= {config.subgroups.min_train_size} training posts"
        )

    with timer("evaluate: set-up"):
        val, test = _evaluators(config, dataset, trained.base, score_cache)
        model = load_classifier(str(trained.base))
        keys = _renamed_keys(model)
        states: dict[str, Mapping[str, Tensor]] = {
            name: _for_model(load_state(getattr(trained, name)), keys) for name in ("base", "fft", "lora")
        }
        for models in trained.recipes.values():
            name = _state_name(models, trained.main)
            if name not in states:
                states[name] = _for_model(load_state(models.base), keys)
        slot = ModelSlot(model, states)
        vectors = {name: _vectors(models) for name, models in trained.recipes.items()}
        for_merger = {
            name: {group: _for_model(vector, keys) for group, vector in by_group.items()}
            for name, by_group in vectors.items()
        }
        main = ""
        ledger = MetricLedger()
        evaluator = PointEvaluator(
            val,
            test,
            slot.model,
            seed,
            ledger,
            calibrate=config.evaluation.calibrate,
            calibration_objective=config.evaluation.calibration_objective,
            test_resamples=config.evaluation.n_resamples,
            test_permutations=config.evaluation.n_permutations,
            shared=frozenset(
                _state_name(m, trained.main)
                for m in trained.recipes.values()
                if m.recipe.base_head != "random"
            ),
        )

    with timer("evaluate: baselines (val)"):
        for name in ("base", "fft", "lora"):
            evaluator.validate(Point(ModelLabel(name), None, None, name), slot.loader(name, always=True))
    fft_val = ledger.rows(ModelLabel("fft"), "val")
    policy = SelectionPolicy.from_fft(
        config.selection, fft_val, config.attributes, config.evaluation.min_group_size
    )

    def family_sweep(recipe: str, label: ModelLabel, lambdas: list[float], refine: int) -> FamilySweep:
        models = trained.recipes[recipe]
        start = _state_name(models, trained.main)
        slot.loader(start)()
        return merge_sweep(
            evaluator,
            policy,
            slot.model,
            slot.states[start],
            [_for_model(v, keys) for v in _merged(vectors[recipe], models.recipe.convention)],
            label,
            lambdas,
            refine_rounds=refine,
            load_start=slot.loader(start),
            base_key=start,
        )

    sweep_config = config.sweep
    with timer("sweep: merge (val)"):
        merged = family_sweep(main, ModelLabel("merge"), sweep_config.lambdas, sweep_config.refine_rounds)

    with timer("sweep: per-group coefficients (val)"):
        slot.loader("base")()
        pergroup_point, pergroup_merger, trials = pergroup_search(
            evaluator,
            policy,
            slot.model,
            slot.states["base"],
            for_merger[main],
            uniform_lambda=policy.select_family(ModelLabel("merge"), ledger).lam,
            n_trials=sweep_config.pergroup_trials,
            high=max(sweep_config.lambdas),
        )

    with timer("sweep: injection (val)"):
        worst = worst_group(
            fft_val,
            config.attributes,
            trained.vector_groups,
            min_group_size=config.evaluation.min_group_size,
            criterion=sweep_config.worst_group_criterion,
        )
        slot.loader("fft")()
        names = list(vectors[main]) if sweep_config.inject_all_groups else [worst["label"]]
        injected = injection_sweeps(
            evaluator,
            slot.model,
            slot.states["fft"],
            for_merger[main],
            names,
            sweep_config.injection_lambdas,
            load_start=slot.loader("fft"),
        )

    with timer("sweep: strategies (val)"):
        compared = {
            recipe.name: family_sweep(
                recipe.name, ModelLabel("merge", strategy=recipe.name), sweep_config.compare_lambdas, 0
            )
            for recipe in config.compared_recipes()
        }

    with timer("select + test"):
        predictions = baselines_on_test(
            evaluator, lambda name: slot.loader(name, always=True), ("base", "fft", "lora")
        )
        families = [merged, injected[worst["label"]], *compared.values()]
        selected, family_predictions = families_on_test(evaluator, policy, families)
        predictions.update(family_predictions)

        def prepare_pergroup() -> None:
            slot.loader("base")()
            pergroup_merger.set_coefficients(list(pergroup_point.coefficients or ()))

        pergroup_selected, pergroup_predictions = pergroup_on_test(
            evaluator,
            pergroup_point,
            prepare_pergroup,
            rule=config.selection.rule,
            n_trials=sweep_config.pergroup_trials,
        )
        pergroup_merger.restore()
        selected.update(pergroup_selected)
        predictions.update(pergroup_predictions)
        predictions.update(
            threshold_optimizer_on_test(
                evaluator, config.evaluation.threshold_optimizer_attribute, config.attributes
            )
        )

    sensitivity = pd.DataFrame()
    if config.selection.sensitivity:
        with timer("selection sensitivity (test)"):
            sensitivity = selection_sensitivity(evaluator, policy, families[:2], config.attributes)

    metrics = ledger.table()
    geometry = VectorGeometry.of(vectors[main])
    bound = bound_table(
        metrics,
        geometry.merged_norm(trained.main.recipe.convention),
        config.attributes,
        base_grid=sweep_config.lambdas,
        min_group_size=config.evaluation.min_group_size,
    )
    base_val = ledger.rows(ModelLabel("base"), "val")
    base_accuracy = float(
        base_val[(base_val.attribute == "all") & (base_val.metric == "accuracy")].value.iloc[0]
    )
    recipe_labels = [(trained.main.recipe, ModelLabel("merge"))] + [
        (r, ModelLabel("merge", strategy=r.name)) for r in config.compared_recipes()
    ]
    return SeedOutcome(
        seed=seed,
        metrics=metrics,
        selected=selected,
        worst_group=worst,
        similarity=geometry.similarity(),
        bound=bound,
        pergroup_bound=pergroup_bound(trials, geometry.norms(), bound, config.attributes),
        strategies=strategy_table(
            metrics, recipe_labels, evaluator.decisions, config.attributes, ledger, base_accuracy
        ),
        degenerate=degenerate_points(
            ledger,
            [label.with_decision(d) for _, label in recipe_labels for d in evaluator.decisions],
            base_accuracy,
        ),
        pergroup_trials=trials,
        sensitivity=sensitivity,
        test_predictions=predictions,
        test_labels=test.split.labels,
        test_memberships=test.split.memberships(config.attributes),
        timings=timer,
        checkpoints={"base": str(trained.base), "fft": str(trained.fft), "lora": str(trained.lora)},
        histories=trained.histories(),
        vectors={name: pair for pair, name in trained.vector_groups.items()},
    )
