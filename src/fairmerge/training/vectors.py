"""The task vector of a cached fine-tune, with or without the head as its training config says."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fairmerge.errors import ModelError
from fairmerge.training.cache import META_FILE
from fairmerge.vectors import TaskVector


def finetune_vector(base_dir: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str]) -> TaskVector:
    """τ = checkpoint − base, read lazily; without head keys when the head was frozen (trainable 'body').

    A frozen head's delta is exactly zero, but a vector that carries it would still let a merge
    touch the head (and count it in norms), so such keys are left out rather than kept as zeros.
    """
    meta_path = Path(checkpoint_dir) / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{checkpoint_dir} is not a training-cache entry (cannot read {META_FILE}: {exc})"
        ) from exc
    trainable = meta.get("config", {}).get("trainable", "all")
    return TaskVector.from_checkpoints(base_dir, checkpoint_dir, include_head=trainable != "body")
