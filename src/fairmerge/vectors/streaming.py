"""Out-of-core merging: read each tensor of the base and the vectors, merge it, write it, drop it.

Inputs are read lazily (``safe_open`` per tensor read, so mapped pages leave memory with the
tensor), outputs are streamed into safetensors shards whose headers are planned from the base's
shapes, so peak memory is a few tensors (one per input plus the result) whatever the size of the
model. The output directory appears only when complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from fairmerge.atomic import atomic_directory
from fairmerge.errors import VectorError
from fairmerge.vectors.checkpoint_io import (
    DEFAULT_MAX_SHARD_BYTES,
    CheckpointReader,
    TensorSpec,
    copy_non_weight_files,
    write_checkpoint_tensors,
)
from fairmerge.vectors.checks import check_specs
from fairmerge.vectors.kernels import Term
from fairmerge.vectors.task_vector import TaskVector

MergeKey = Callable[[str, torch.Tensor, list[Term]], torch.Tensor]
"""Merges one tensor: (key, base tensor, one term per vector) → merged tensor in the base dtype."""


def check_vectors_against(
    specs: Mapping[str, TensorSpec], vectors: Sequence[TaskVector], what: str
) -> list[str]:
    """:func:`check_specs` of the vectors against a merge target; the keys the vectors change."""
    return check_specs(
        specs, [v.specs for v in vectors], what, [f"vector {i}" for i in range(1, len(vectors) + 1)]
    )


def _same_checkpoint(a: CheckpointReader, b: CheckpointReader) -> bool:
    try:
        return a.path.resolve() == b.path.resolve()
    except OSError:
        return False


def vector_term(vector: TaskVector, key: str, weight: float, base: CheckpointReader) -> Term:
    """The term a vector contributes for ``key``.

    A vector made from checkpoints against this same base contributes its fine-tuned tensor
    (δ = θ_ft − θ_base formed inside the merge kernel), so the base is read once, not twice.
    """
    source = vector.source
    if source is not None and source.dtype is None and _same_checkpoint(source.base, base):
        return Term(source.finetuned.get(key), weight, finetuned=True)
    return Term(vector[key], weight)


def stream_merge(
    base: CheckpointReader,
    vectors: Sequence[TaskVector],
    weights: Sequence[float],
    merge_key: MergeKey,
    out_dir: str | os.PathLike[str],
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write ``merge_key(base[k], terms)`` for every tensor of ``base`` into a new HF checkpoint dir.

    Tensors the vectors do not hold (integer buffers, an excluded head) are copied from the base;
    config, tokenizer and other non-weight files of the base directory are copied as they are.
    """
    if len(weights) != len(vectors):
        raise VectorError(f"{len(weights)} weights for {len(vectors)} vectors")
    changed = set(check_vectors_against(base.specs, vectors, f"base {base.path}"))
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise VectorError(f"output {out_dir} already exists (pass --overwrite to replace it)")
    # Tied copies in ``.bin`` files share storage; safetensors stores them once and
    # transformers re-ties them from the config on load.
    specs = {k: s for k, s in base.specs.items() if k not in base.aliases}

    def merged(key: str) -> torch.Tensor:
        tensor = base.get(key)
        if key not in changed:
            return tensor
        terms = [vector_term(v, key, w, base) for v, w in zip(vectors, weights, strict=True)]
        return merge_key(key, tensor, terms)

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        # No tensor is kept in this frame between yields, so inputs are freed as soon as merged.
        for key in tqdm(specs, desc="merging", unit="tensor", disable=not progress):
            yield key, merged(key)

    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        copy_non_weight_files(base.directory, tmp)
        write_checkpoint_tensors(tmp, specs, tensors(), max_shard_bytes=max_shard_bytes)
    return out_dir
