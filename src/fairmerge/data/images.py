"""Images decoded once per resolution into uint8 tensors, kept in a content-addressed cache on disk.

``decode_images(paths, size)`` returns an ``n × 3 × size × size`` uint8 tensor. Each file is keyed by
the sha256 of its bytes, so a renamed or moved file is never decoded twice, and a fine-tune on a
subset of a split reuses what the split's decoding stored. The cache lives under
``$FAIRMERGE_CACHE_DIR/images/<size>px-bilinear/`` as shards (``<digest>.npy`` rows plus
``<digest>.keys.json``, the keys file written last so a half-written shard is never read).

``ImageInputFormat`` is a model's image input: resolution, normalisation, augmentation. It is read
from and written to the checkpoint's ``preprocessor_config.json`` (the keys of transformers'
``ViTImageProcessor``), so θ_base fixes the resolution every fine-tune and evaluation uses.
Hand-written rather than transformers' image processors because those resize and normalise on
every call (we decode once and normalise batches as tensors), and their fast variants need
torchvision, which does not install beside the pinned torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from fairmerge.atomic import atomic_file, atomic_write_text
from fairmerge.errors import DataError, ModelError
from fairmerge.paths import default_cache_dir

PROCESSOR_FILE = "preprocessor_config.json"
Augment = Literal["none", "flip"]
AUGMENTATIONS: tuple[Augment, ...] = ("none", "flip")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageInputFormat:
    """How a model wants its images: ``size``×``size`` RGB, ``(x/255 - mean) / std``, optional flips.

    ``augment="flip"`` flips training images left–right with probability ½ (off by default;
    evaluation never augments).
    """

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: Augment = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise ModelError(f"image size must be an integer >= 8, got {self.size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelError(f"image mean/std must be 3 numbers (std > 0), got {self.mean} / {self.std}")
        if self.augment not in AUGMENTATIONS:
            raise ModelError(f"augment must be one of {list(AUGMENTATIONS)}, got {self.augment!r}")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> ImageInputFormat:
        """Read ``preprocessor_config.json`` of a checkpoint directory."""
        file = Path(path) / PROCESSOR_FILE
        try:
            values: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read the image processor config {file}: {exc}") from exc
        size = values.get("size", values.get("crop_size"))
        if isinstance(size, dict):
            size = size.get("height", size.get("shortest_edge"))
        rescale = values.get("do_rescale", True) and values.get("rescale_factor", 1 / 255) > 0
        if not rescale:
            raise ModelError(f"{file}: images that are not rescaled to [0, 1] are not supported")
        normalize = values.get("do_normalize", True)
        return cls(
            size=int(size) if isinstance(size, int | float) else 0,
            mean=tuple(values.get("image_mean", IMAGENET_MEAN)) if normalize else (0.0, 0.0, 0.0),  # type: ignore[arg-type]
            std=tuple(values.get("image_std", IMAGENET_STD)) if normalize else (1.0, 1.0, 1.0),  # type: ignore[arg-type]
            augment=values.get("fairmerge_augment", "none"),
        )

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write ``preprocessor_config.json`` (readable by transformers' ``ViTImageProcessor`` too)."""
        values = {
            "image_processor_type": "ViTImageProcessor",
            "do_resize": True,
            "size": {"height": self.size, "width": self.size},
            "resample": 2,  # PIL bilinear, what decode_images uses
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.mean),
            "image_std": list(self.std),
            "fairmerge_augment": self.augment,
        }
        atomic_write_text(Path(path) / PROCESSOR_FILE, json.dumps(values, indent=2) + "\n")

    def replace(self, *, size: int | None = None, augment: Augment | None = None) -> ImageInputFormat:
        """A copy with another resolution and/or augmentation."""
        return ImageInputFormat(
            size=self.size if size is None else size,
            mean=self.mean,
            std=self.std,
            augment=self.augment if augment is None else augment,
        )


def check_image_files(paths: Sequence[str]) -> None:
    """A one-line DataError when some image files do not exist."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(missing[:3])
        raise DataError(f"{len(missing)} of {len(paths)} image file(s) do not exist, e.g. {shown}")


def decode_images(
    paths: Sequence[str],
    size: int,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """``len(paths) × 3 × size × size`` uint8 RGB tensor; files already in the cache are not decoded."""
    check_image_files(paths)
    store = ImageStore(Path(cache_dir) if cache_dir is not None else default_cache_dir() / "images", size)
    keys = [content_key(p) for p in paths]
    store.add({k: p for k, p in zip(keys, paths, strict=True) if k not in store}, workers=workers)
    return torch.from_numpy(store.gather(keys)).permute(0, 3, 1, 2).contiguous()


_KEYS: dict[tuple[str, int, int], str] = {}


def content_key(path: str) -> str:
    """sha256 of a file's bytes, memoised per (path, size, mtime) within the process."""
    stat = os.stat(path)
    memo = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _KEYS:
        with open(path, "rb") as handle:
            _KEYS[memo] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _KEYS[memo]


def decode_one(path: str, size: int) -> np.ndarray:
    """One file as a ``size × size × 3`` uint8 array (bilinear resize, antialiased by Pillow)."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from exc


class ImageStore:
    """Decoded images of one resolution, addressed by content hash, in append-only shards."""

    def __init__(self, root: Path, size: int) -> None:
        self.size = size
        self.folder = root / f"{size}px-bilinear"
        self.index: dict[str, tuple[str, int]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        if self.folder.is_dir():
            for keys_file in sorted(self.folder.glob("*.keys.json")):
                shard = keys_file.name.removesuffix(".keys.json")
                if not (self.folder / f"{shard}.npy").is_file():
                    continue
                for row, key in enumerate(json.loads(keys_file.read_text(encoding="utf-8"))):
                    self.index.setdefault(key, (shard, row))

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def add(self, todo: dict[str, str], *, workers: int | None = None) -> None:
        """Decode ``{key: path}`` and store the result as one new shard."""
        if not todo:
            return
        keys, paths = list(todo), list(todo.values())
        pixels = np.empty((len(paths), self.size, self.size, 3), dtype=np.uint8)
        threads = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:  # Pillow releases the GIL while decoding
            for i, array in enumerate(pool.map(lambda p: decode_one(p, self.size), paths)):
                pixels[i] = array
        shard = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.folder / f"{shard}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, pixels)
        atomic_write_text(self.folder / f"{shard}.keys.json", json.dumps(keys))
        self._arrays[shard] = pixels
        for row, key in enumerate(keys):
            self.index[key] = (shard, row)

    def gather(self, keys: Sequence[str]) -> np.ndarray:
        """The stored images of ``keys`` in order, as one ``n × size × size × 3`` array."""
        out = np.empty((len(keys), self.size, self.size, 3), dtype=np.uint8)
        for i, key in enumerate(keys):
            shard, row = self.index[key]
            if shard not in self._arrays:
                self._arrays[shard] = np.load(self.folder / f"{shard}.npy", mmap_mode="r")
            out[i] = self._arrays[shard][row]
        return out
