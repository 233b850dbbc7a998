"""The one model in memory, the states it is reset to, and the vectors merged into it.

:class:`Workspace` is the only code that writes the model's weights: it loads named states (θ_base,
FFT, LoRA, a recipe's θ_base) and writes a candidate's coefficients on top through the
:class:`~fairmerge.vectors.InPlaceMerger` of its family (the coefficient searches':
:class:`~fairmerge.search.BlockMerger`, one per layer block). :class:`Lab` bundles it with the evaluator
that scores candidates on val and test and the recipes' subgroup vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor
from transformers import PreTrainedModel

from fairmerge.models import checkpoint_key_map
from fairmerge.search import BlockMerger, CoefficientSpace
from fairmerge.search.config import BlockScheme
from fairmerge.study.candidate import Candidate
from fairmerge.study.points import PointEvaluator
from fairmerge.study.training_stage import RecipeModels
from fairmerge.training import finetune_vector
from fairmerge.vectors import CheckpointReader, InPlaceMerger, TaskVector


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
    """The one model in memory, the named states it can be reset to (base, FFT, LoRA), and the
    vector sets merged on top of them: the only code that writes the model's weights.

    A candidate is written by :meth:`materialise`; the workspace knows what the model holds (a state,
    possibly with one vector set's coefficients on top), so it reloads only what changed.
    """

    model: PreTrainedModel
    states: Mapping[str, Mapping[str, Tensor]]
    keys: dict[str, str] | None = None
    """Checkpoint → model tensor names (:func:`renamed_keys`)."""
    loaded: str | None = None
    mergers: dict[str, tuple[str, InPlaceMerger | BlockMerger]] = field(default_factory=dict)
    """Family → (the state it starts from, the merger of its vectors)."""
    active: str | None = None
    """The family whose coefficients are written on top of ``loaded`` (None: the state as it is)."""

    def load(self, name: str, *, always: bool = False) -> None:
        """Load state ``name`` (skipped when it is what the model holds, unless ``always``)."""
        if always or self.loaded != name or self.active is not None:
            self.model.load_state_dict(self.states[name], strict=False)
            self.loaded, self.active = name, None

    def add_vectors(
        self, family: str, start: str, vectors: Sequence[TaskVector | Mapping[str, Tensor]], **options: Any
    ) -> None:
        """Hold ``family``'s vectors, merged onto state ``start`` by :class:`InPlaceMerger` with
        ``options`` (``uniform``, the merge method's); its candidates can then be materialised."""
        self.load(start)  # the merger writes the state's values into the tensors it touches
        merger = InPlaceMerger(self.model, self.states[start], list(vectors), **options)
        self.mergers[family] = (start, merger)

    def add_blocks(
        self,
        family: str,
        start: str,
        vectors: Mapping[str, Mapping[str, Tensor]],
        space: CoefficientSpace,
        scheme: BlockScheme,
    ) -> None:
        """Hold ``family``'s vectors with one coefficient per vector and layer block of ``space``
        (:class:`~fairmerge.search.BlockMerger`, the coefficient searches'), merged onto ``start``
        until :meth:`release`."""
        self.load(start, always=True)
        self.mergers[family] = (start, BlockMerger(self.model, self.states[start], vectors, space, scheme))

    def release(self, family: str) -> None:
        """Reset the tensors ``family``'s merger touches to its start state and forget the merger."""
        start, merger = self.mergers.pop(family)
        merger.restore()
        self.load(start, always=True)

    def materialise(self, candidate: Candidate) -> PreTrainedModel:
        """Write ``candidate`` into the model (its start state, plus its coefficients on its family's
        vectors) and return the model."""
        if candidate.coefficients is None:
            self.load(candidate.start)
            return self.model
        if candidate.family not in self.mergers:
            raise RuntimeError(f"the workspace holds no vectors of {candidate.family!r}")
        start, merger = self.mergers[candidate.family]
        if self.active != candidate.family or self.loaded != start:
            self.load(start)
        merger.set_coefficients(list(candidate.coefficients))
        self.active = candidate.family
        return self.model


@dataclass(frozen=True)
class Lab:
    """The workspace and the evaluator of one seed, and each recipe's subgroup vectors."""

    workspace: Workspace
    evaluator: PointEvaluator
    vectors: Mapping[str, Mapping[str, TaskVector]]
    """Recipe name → vector name → lazy vector, as read from the checkpoints."""

    def for_merger(self, recipe: str) -> dict[str, Any]:
        """A recipe's vectors named as the model names its tensors."""
        return {group: for_model(v, self.workspace.keys) for group, v in self.vectors[recipe].items()}
