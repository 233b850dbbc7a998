"""The one model in memory, the states it is reset to, and the vectors merged into it.

:class:`Workspace` loads named states (θ_base, FFT, LoRA, a recipe's θ_base) into the model; the
sweeps' :class:`~fairmerge.vectors.InPlaceMerger` add vectors on top. :class:`Lab` bundles it with
the evaluator that scores the model on val and test and the recipes' subgroup vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from transformers import PreTrainedModel

from fairmerge.models import checkpoint_key_map
from fairmerge.study.points import MetricLedger, PointEvaluator
from fairmerge.study.training_stage import RecipeModels
from fairmerge.training import finetune_vector
from fairmerge.vectors import CheckpointReader, TaskVector


def load_state(path: Path) -> dict[str, Tensor]:
    """Every tensor of a checkpoint directory (safetensors or .bin, single or sharded)."""
    reader = CheckpointReader(path)
    return {key: reader.get(key) for key in reader.specs}


def renamed_keys(model: PreTrainedModel) -> dict[str, str] | None:
    """Checkpoint name → the loaded model's name, or None when they are the same (most models)."""
    mapping = checkpoint_key_map(model)
    return None if all(k == v for k, v in mapping.items()) else mapping


def for_model(tensors: Mapping[str, Tensor] | TaskVector, keys: dict[str, str] | None) -> Any:
    """Tensors read from checkpoint files, named as the loaded model names them.

    transformers 5 renames some architectures' tensors on load (ViT's ``attention.attention.query``
    becomes ``attention.q_proj``); files keep the saved names. Renaming reads the tensors, so a lazy
    vector stays lazy only where no rename is needed.
    """
    return tensors if keys is None else {keys.get(k, k): t for k, t in tensors.items()}


def recipe_vectors(models: RecipeModels) -> dict[str, TaskVector]:
    """A recipe's subgroup vectors by name, read lazily from their checkpoints (no head keys when the
    head was frozen): a sweep holds their sum, the per-group search streams them."""
    return {name: finetune_vector(models.base, path) for name, path in models.finetunes.items()}


def merged_vectors(vectors: Mapping[str, TaskVector], convention: str) -> list[TaskVector]:
    """The vectors a uniform merge sums: as they are (``sum``) or each scaled by 1/G (``mean``)."""
    if convention == "sum":
        return list(vectors.values())
    return [(1.0 / len(vectors)) * vector for vector in vectors.values()]


def state_name(models: RecipeModels, main: RecipeModels) -> str:
    """The workspace state a recipe starts from: the main θ_base, or its own linear-probed one."""
    return "base" if models.base == main.base else f"base/{models.recipe.base_head}"


@dataclass
class Workspace:
    """The one model in memory and the named states it can be reset to (base, FFT, LoRA)."""

    model: PreTrainedModel
    states: Mapping[str, Mapping[str, Tensor]]
    keys: dict[str, str] | None = None
    """Checkpoint → model tensor names (:func:`renamed_keys`)."""
    loaded: str | None = None

    def load(self, name: str, *, always: bool = False) -> None:
        """Load state ``name`` (skipped when it is already loaded, unless ``always``)."""
        if always or self.loaded != name:
            self.model.load_state_dict(self.states[name], strict=False)
            self.loaded = name

    def loader(self, name: str, *, always: bool = False) -> Callable[[], None]:
        """A function that loads state ``name``: run by the score cache only on a miss."""
        return lambda: self.load(name, always=always)


@dataclass(frozen=True)
class Lab:
    """The workspace, the evaluator and ledger of one seed, and each recipe's subgroup vectors."""

    workspace: Workspace
    evaluator: PointEvaluator
    ledger: MetricLedger
    vectors: Mapping[str, Mapping[str, TaskVector]]
    """Recipe name → vector name → lazy vector, as read from the checkpoints."""

    def for_merger(self, recipe: str) -> dict[str, Any]:
        """A recipe's vectors named as the model names its tensors."""
        return {group: for_model(v, self.workspace.keys) for group, v in self.vectors[recipe].items()}
