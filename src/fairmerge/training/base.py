"""θ_base as a file: the pretrained body with a seeded random head, or with a linear-probed head.

Every fine-tune starts from this one directory, so the task vectors of different subgroups share
the same head; otherwise τ_g would differ by random heads and their sums would be meaningless.

``head="linear_probe"`` is the first stage of LP-FT (Kumar et al., ICLR 2022): the head is fitted on
the train split with the body frozen (a logistic regression on the frozen features, regularisation
chosen on the val split; see ``probe``), so every fine-tune starts from one sensible head instead of
adapting the body to a random one. The probe is a cached entry of kind ``probe``; its key covers the
random base, the data and the probe config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from transformers import set_seed

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ConfigError
from fairmerge.models import load_classifier, load_processor, resolve_model_name
from fairmerge.training.cache import TrainingCache, cache_key, hash_checkpoint, library_versions
from fairmerge.training.config import TrainConfig
from fairmerge.training.finetune import run_finetune
from fairmerge.training.runtime import is_main_process, wait_for_everyone

HeadInit = Literal["random", "linear_probe"]
HEAD_INITS: tuple[str, ...] = ("random", "linear_probe")
PROBE_CONFIG = TrainConfig(max_train_samples=4000, trainable="head")
"""The linear probe's defaults; of its fields only the sample cap, max_length, batch sizes and seed count."""


def make_base_checkpoint(
    model_name: str | None,
    *,
    seed: int,
    cache: TrainingCache,
    num_labels: int = 2,
    head: str = "random",
    dataset: GroupedTextDataset | None = None,
    probe_config: TrainConfig | None = None,
    progress: bool = True,
) -> Path:
    """θ_base's checkpoint directory, built once per inputs: the model with a head from ``seed``.

    ``model_name`` is a Hugging Face id, a local directory, or None / "default" for the embedded
    MiniLM. Local models are identified by the hash of their files; hub ids by their name.
    ``head="linear_probe"`` then fits that head on ``dataset``'s train split with the body frozen
    (``probe_config``, default ``PROBE_CONFIG``; ``trainable`` is forced to 'head'). The fit is convex,
    so its result does not depend on ``seed`` beyond the sample drawn by ``probe_config.seed``; pass
    one ``seed`` for every study seed to share a single probed θ_base (and its cost).
    """
    if head not in HEAD_INITS:
        raise ConfigError(f"unknown head {head!r}; expected one of {list(HEAD_INITS)}")
    random_base = _random_base(model_name, seed=seed, cache=cache, num_labels=num_labels)
    if head == "random":
        return random_base
    if dataset is None:
        raise ConfigError("head='linear_probe' needs the dataset whose train split the head is fitted on")
    probe = (probe_config or PROBE_CONFIG).replace(trainable="head")
    return run_finetune(
        "probe",
        dataset,
        dataset["train"],
        dataset["val"],
        base_dir=random_base,
        config=probe,
        cache=cache,
        method="fft",
        key_extra={"head": "linear_probe"},
        description="linear probe",
        progress=progress,
        linear_probe=True,
    )


def _random_base(model_name: str | None, *, seed: int, cache: TrainingCache, num_labels: int) -> Path:
    """The pretrained model with a head initialised from ``seed``, saved once per (model, seed)."""
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
        load_processor(source).save_pretrained(tmp)  # tokenizer, or image input format
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
