"""Tiny random BERT checkpoints for the task-vector tests (helper module, not tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

WORDS = ["hello", "world", "good", "bad", "people", "group", "post", "text"]


def tiny_bert_config() -> BertConfig:
    return BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
        num_labels=2,
    )


def tiny_bert(seed: int = 0, dtype: torch.dtype = torch.float32) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_bert_config()).to(dtype).eval()


def finetuned_from(base: torch.nn.Module, seed: int, scale: float = 0.05) -> BertForSequenceClassification:
    """A copy of ``base`` with every float weight moved by seeded noise (a stand-in for a fine-tune)."""
    model = tiny_bert()
    model.load_state_dict(base.state_dict())
    model = model.to(next(base.parameters()).dtype)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator) * scale
            param.add_(noise.to(param.dtype))
    return model.eval()


def save_tokenizer(directory: Path) -> None:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}).save_pretrained(str(directory))


def save(
    model: torch.nn.Module, directory: Path, *, shard: str | None = None, tokenizer: bool = True
) -> Path:
    """``save_pretrained`` (optionally sharded) plus a tokenizer; returns the directory."""
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(str(directory), **kwargs)
    if tokenizer:
        save_tokenizer(directory)
    return directory


def input_ids() -> dict[str, torch.Tensor]:
    ids = torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 9, 10, 11, 3]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}
