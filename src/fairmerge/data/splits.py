"""Deterministic splits for datasets without official ones, and canonical split names."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from fairmerge.data.types import SPLITS
from fairmerge.errors import DataError

DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)
_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


def hash_unit(key: str, salt: str = "fairmerge") -> float:
    """A number in [0, 1) fixed by ``key``: the same post lands in the same split on every machine."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(keys: Iterable[str], fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> np.ndarray:
    """Split name ('train'/'val'/'test') per key, by hashing the key (no RNG, no order dependence)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    cut_train, cut_val = fractions[0], fractions[0] + fractions[1]
    units = np.fromiter((hash_unit(k) for k in keys), dtype=np.float64)
    return np.where(units < cut_train, "train", np.where(units < cut_val, "val", "test"))


def canonical_split(value: object, column: str) -> str:
    """Map a split cell (train / val / validation / dev / test) to one of SPLITS."""
    name = _ALIASES.get(str(value).strip().lower())
    if name is None:
        raise DataError(
            f"split column {column!r} has value {value!r}; expected one of {sorted(_ALIASES)} "
            f"(mapped to {list(SPLITS)})"
        )
    return name
