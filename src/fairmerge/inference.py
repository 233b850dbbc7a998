"""Encode inputs once, batch them, and score them with a classifier (texts or images).

Texts are tokenized once; sorting by length and padding each batch to its own longest sequence
removes almost all padding (the study's script padded every batch to a fixed length). Images are
decoded once per resolution into uint8 tensors (:func:`fairmerge.data.images.decode_images`) and
normalised batch by batch. Either way the encoded inputs are reused for every model evaluated on
them, which is what makes λ sweeps cheap. ``encode_inputs`` picks the encoding from the model's
processor and refuses a processor that does not fit the split's modality; everything downstream
(``length_bucketed_batches``, ``collate``, ``predict_logits``, the training loop) is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from fairmerge.data.images import ImageInputFormat, decode_images
from fairmerge.data.types import TextSplit
from fairmerge.errors import DataError
from fairmerge.precision import Precision, autocast, resolve_precision


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids of a list of texts (no padding) plus the tokenizer's pad id."""

    input_ids: list[list[int]]
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def subset(self, indices: Sequence[int] | np.ndarray) -> EncodedTexts:
        return EncodedTexts([self.input_ids[i] for i in np.asarray(indices)], self.pad_token_id)


@dataclass(frozen=True)
class EncodedImages:
    """Decoded images (``n × 3 × H × W`` uint8) and the normalisation a model expects.

    All images have the same size, so ``lengths`` is constant and length-bucketed batching reduces
    to a plain (seeded) shuffle for training and the original order for inference.
    """

    pixels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    augment: str = "none"

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.ones(len(self), dtype=np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray) -> EncodedImages:
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return EncodedImages(self.pixels[index], self.mean, self.std, self.augment)

    def collate(self, indices: np.ndarray, *, train: bool = False) -> dict[str, torch.Tensor]:
        """``pixel_values`` (float32, normalised) for the given rows; flips only when training with them."""
        batch = self.pixels[torch.as_tensor(indices, dtype=torch.long)]
        if train and self.augment == "flip":
            flip = torch.rand(len(batch)) < 0.5  # torch RNG: seeded by the training loop
            batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        pixel_values = batch.to(torch.float32).mul_(1 / 255).sub_(self.mean).div_(self.std)
        return {"pixel_values": pixel_values}


CHARS_PER_TOKEN = 32
"""Characters kept per token of ``max_length`` before tokenizing (subword tokens average about 4)."""

EncodedInputs = EncodedTexts | EncodedImages
InputProcessor = PreTrainedTokenizerBase | ImageInputFormat
"""What turns a split's inputs into model inputs: a tokenizer (texts) or an image format (images)."""


def encode_images(image_format: ImageInputFormat, paths: Sequence[str]) -> EncodedImages:
    """Decode (or fetch from the cache) the images at ``image_format.size`` px."""
    return EncodedImages(
        pixels=decode_images(paths, image_format.size),
        mean=torch.tensor(image_format.mean, dtype=torch.float32).view(1, 3, 1, 1),
        std=torch.tensor(image_format.std, dtype=torch.float32).view(1, 3, 1, 1),
        augment=image_format.augment,
    )


def encode_inputs(processor: InputProcessor, split: TextSplit, *, max_length: int) -> EncodedInputs:
    """The split's inputs as the model's processor wants them; a modality mismatch is a DataError.

    ``max_length`` applies to texts only.
    """
    if isinstance(processor, ImageInputFormat):
        if split.modality != "image":
            raise DataError(
                f"an image model cannot score a {split.modality} dataset: use a text model or image inputs"
            )
        return encode_images(processor, split.texts)
    if split.modality != "text":
        raise DataError(
            f"a text model cannot score an {split.modality} dataset: use an image classifier "
            "(e.g. embedded:efficientnet-lite0) or a text dataset"
        )
    return encode_texts(processor, split.texts, max_length=max_length)


def encode_texts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_length: int
) -> EncodedTexts:
    """Tokenize ``texts`` once, truncated to ``max_length`` tokens, without padding.

    Each text is first cut to ``max_length * CHARS_PER_TOKEN`` characters, so a huge cell (a 30 MB
    CSV field) costs what a long post costs instead of gigabytes and a tokenizer that Ctrl-C cannot
    interrupt.
    """
    limit = max_length * CHARS_PER_TOKEN
    encoded = tokenizer(
        [text[:limit] for text in texts], truncation=True, max_length=max_length, padding=False
    )
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("tokenizer has no pad token id")
    return EncodedTexts([list(ids) for ids in encoded["input_ids"]], int(pad_id))


def length_bucketed_batches(
    lengths: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    bucket_factor: int = 50,
) -> list[np.ndarray]:
    """Index batches whose members have similar lengths.

    Without ``shuffle`` examples are sorted by length (best for inference). With ``shuffle`` the
    data is shuffled, cut into chunks of ``bucket_factor`` batches, each chunk sorted by length and
    split into batches, and the batch order shuffled: training stays stochastic while padding stays
    low.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    chunk = batch_size * bucket_factor
    batches: list[np.ndarray] = []
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(encoded: EncodedInputs, indices: np.ndarray, *, train: bool = False) -> dict[str, torch.Tensor]:
    """Model inputs for the given rows: right-padded ``input_ids`` and ``attention_mask`` for texts,
    normalised ``pixel_values`` for images (``train`` enables the images' augmentation, if any)."""
    if isinstance(encoded, EncodedImages):
        return encoded.collate(indices, train=train)
    rows = [encoded.input_ids[i] for i in indices]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), encoded.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, row in enumerate(rows):
        input_ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[k, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    encoded: EncodedInputs,
    *,
    batch_size: int = 128,
    progress: bool = False,
    description: str = "scoring",
    precision: Precision = "fp32",
) -> np.ndarray:
    """Logits (n × num_labels, float32) in the original order of ``encoded``.

    ``precision`` (``fp32``, ``bf16``, ``auto``; see :mod:`fairmerge.precision`) sets the forward
    pass's autocast; ``auto`` is bf16 where the CPU (avx512_bf16/AMX) or CUDA device supports it.
    """
    device = next(model.parameters()).device
    resolved = resolve_precision(precision, device)
    was_training = model.training
    model.eval()
    num_labels = int(getattr(model, "config").num_labels or 2)  # noqa: B009  (nn.Module types .config as a Tensor)
    out = np.empty((len(encoded), num_labels), dtype=np.float32)
    batches = length_bucketed_batches(encoded.lengths, batch_size)
    for idx in tqdm(batches, desc=description, disable=not progress, unit="batch", leave=False):
        batch = {k: v.to(device) for k, v in collate(encoded, idx).items()}
        with autocast(resolved, device):
            logits = model(**batch).logits
        out[idx] = logits.float().cpu().numpy()
    model.train(was_training)
    return out


def positive_scores(logits: np.ndarray) -> np.ndarray:
    """P(label = 1) from two-class logits (softmax), as float64."""
    logits = logits.astype(np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"expected n × 2 logits, got shape {logits.shape}")
    return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))
