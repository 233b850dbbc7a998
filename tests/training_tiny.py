"""Tiny random-initialised models and a tiny grouped dataset for the training tests (helper, not tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    DistilBertConfig,
    LlamaConfig,
    PretrainedConfig,
    Qwen2Config,
)

from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.models import load_tokenizer


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one thread: on a shared 2-core machine two torch threads per process spin against
    the other processes' threads and run several times slower (measured: 6x for MiniLM steps)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_SIZES = {
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 128,
}


def tiny_config(model_type: str, vocab_size: int = 100) -> PretrainedConfig:
    """A 2-layer, 16-wide random config of the given architecture."""
    if model_type == "bert":
        return BertConfig(vocab_size=vocab_size, hidden_size=16, **_SIZES)
    if model_type == "distilbert":
        return DistilBertConfig(
            vocab_size=vocab_size, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=128
        )
    decoder = {
        "vocab_size": vocab_size,
        "hidden_size": 16,
        "num_key_value_heads": 1,
        "pad_token_id": 0,
        **_SIZES,
    }
    if model_type == "llama":
        return LlamaConfig(**decoder)
    if model_type == "qwen2":
        return Qwen2Config(**decoder)
    raise ValueError(model_type)


def tiny_model(model_type: str, seed: int = 0) -> torch.nn.Module:
    config = tiny_config(model_type)
    config.num_labels = 2
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config)


def save_tiny_bert(path: Path) -> Path:
    """A random 2-layer BERT with the embedded MiniLM's tokenizer, saved as a pretrained model dir."""
    tokenizer = load_tokenizer(None)
    config = tiny_config("bert", vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    from transformers import BertModel

    BertModel(config).save_pretrained(path)  # a backbone without head, like a pretrained encoder
    tokenizer.save_pretrained(path)
    return path


_WORDS = ["group_a", "group_b", "people", "they", "awful", "lovely", "weather", "today", "always", "never"]


def tiny_split(n: int, seed: int) -> TextSplit:
    """Posts mentioning group a / b / nobody; label 1 mostly for 'awful' posts (learnable, noisy)."""
    rng = np.random.default_rng(seed)
    texts, labels, race = [], [], []
    for i in range(n):
        group = ("A", "B", None)[i % 3]
        bad = rng.random() < (0.7 if group else 0.2)
        words = list(rng.choice(_WORDS[2:], size=int(rng.integers(2, 12))))
        words.insert(0, "awful" if bad else "lovely")
        if group:
            words.append(f"group_{group.lower()}")
        texts.append(" ".join(words))
        labels.append(int(bad))
        race.append(frozenset({group}) if group else frozenset())
    return TextSplit(
        ids=[f"p{seed}-{i}" for i in range(n)],
        texts=texts,
        labels=np.array(labels),
        groups={"race": race, "gender": [frozenset()] * n},
    )


def tiny_dataset(n_train: int = 96, n_val: int = 48) -> GroupedTextDataset:
    return GroupedTextDataset(
        name="tiny",
        splits={"train": tiny_split(n_train, 1), "val": tiny_split(n_val, 2), "test": tiny_split(n_val, 3)},
        label_scheme="toy",
        provenance={"tiny.csv": "0" * 64},
    )
