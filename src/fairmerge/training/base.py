"""θ_base as a file: the pretrained model with its seeded, initialised classification head.

Every fine-tune starts from this one directory, so the task vectors of different subgroups share
the same head initialisation; otherwise τ_g would differ by random heads and their sums would be
meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import set_seed

from fairmerge.models import load_classifier, load_tokenizer, resolve_model_name
from fairmerge.training.cache import TrainingCache, cache_key, hash_checkpoint, library_versions
from fairmerge.training.runtime import is_main_process, wait_for_everyone


def make_base_checkpoint(
    model_name: str | None, *, seed: int, cache: TrainingCache, num_labels: int = 2
) -> Path:
    """Save the model with a head initialised from ``seed`` once per (model, seed); return its directory.

    ``model_name`` is a Hugging Face id, a local directory, or None / "default" for the embedded
    MiniLM. Local models are identified by the hash of their files; hub ids by their name.
    """
    source = resolve_model_name(model_name)
    identity: dict[str, Any] = (
        {"files_sha256": hash_checkpoint(source)} if Path(source).is_dir() else {"hub_id": source}
    )
    key = cache_key(
        {
            "kind": "base",
            "model": identity,
            "seed": seed,
            "num_labels": num_labels,
            "versions": library_versions(),
        }
    )
    found = cache.lookup("base", key)
    if found is not None:
        return found

    def build(tmp: Path) -> dict[str, Any]:
        set_seed(seed)  # the head's initial weights are drawn from the torch RNG in from_pretrained
        model = load_classifier(source, num_labels=num_labels, device="cpu")
        model.save_pretrained(tmp)
        load_tokenizer(source).save_pretrained(tmp)
        return {
            "description": f"base {model_name or 'default'} seed={seed}",
            "model": model_name,
            "source": source,
            "model_type": model.config.model_type,
            "parameters": sum(p.numel() for p in model.parameters()),
            "seed": seed,
            "num_labels": num_labels,
            "versions": library_versions(),
        }

    path = cache.store("base", key, build) if is_main_process() else cache.path("base", key)
    wait_for_everyone()
    return path
