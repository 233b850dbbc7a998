"""Per-run cache of model scores, so an interrupted study resumes without re-running forward passes.

Training results live in the training cache; this one holds the cheap-to-store, costly-to-recompute
P(y=1) vectors of every evaluated point (one ``.npy`` per point and split), keyed by the config's
fingerprint and the seed, so a changed config never reuses stale scores.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from fairmerge.atomic import atomic_write_bytes


class ScoreCache:
    """Directory of ``<key>.npy`` files; ``enabled=False`` turns it into a pass-through."""

    def __init__(self, root: Path, *, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=+-]", "_", key)
        return self.root / f"{safe}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The cached array for ``key`` (None when absent or the cache is off)."""
        path = self._path(key)
        return np.load(path) if self.enabled and path.is_file() else None

    def store(self, key: str, value: np.ndarray) -> None:
        """Cache ``value`` under ``key`` (atomically; nothing when the cache is off)."""
        if self.enabled:
            buffer = io.BytesIO()
            np.save(buffer, value)
            atomic_write_bytes(self._path(key), buffer.getvalue())
