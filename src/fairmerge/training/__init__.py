"""Fine-tuning from a shared θ_base: full fine-tuning, LoRA and per-subgroup fine-tunes, cached.

``make_base_checkpoint`` saves θ_base (the pretrained model with a seeded random head, or with a
linear-probed head) once; ``train_fft``, ``train_lora`` and ``train_subgroups`` start from that
directory and return checkpoint directories from the content-addressed ``TrainingCache`` (each
entry's ``meta.json`` holds its training history); ``finetune_vector`` turns one into τ. See
``loop`` for how to launch on several GPUs.
"""

from fairmerge.training.base import HEAD_INITS, PROBE_CONFIG, make_base_checkpoint
from fairmerge.training.cache import CacheEntry, TrainingCache
from fairmerge.training.config import TrainConfig
from fairmerge.training.finetune import stratified_subsample, train_fft, train_lora
from fairmerge.training.loop import FitResult, fit
from fairmerge.training.lora import ADAPTER_DIR, lora_target_modules, merge_lora
from fairmerge.training.subgroups import STRATEGIES, subgroup_training_set, train_subgroups
from fairmerge.training.vectors import finetune_vector

__all__ = [
    "ADAPTER_DIR",
    "HEAD_INITS",
    "PROBE_CONFIG",
    "STRATEGIES",
    "CacheEntry",
    "FitResult",
    "TrainConfig",
    "TrainingCache",
    "finetune_vector",
    "fit",
    "lora_target_modules",
    "make_base_checkpoint",
    "merge_lora",
    "stratified_subsample",
    "subgroup_training_set",
    "train_fft",
    "train_lora",
    "train_subgroups",
]
