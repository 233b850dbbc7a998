"""sha256 of data files, so every result can be traced to the exact bytes it was computed from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (as stored: a ``.gz`` file is hashed compressed)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def provenance(paths: Iterable[Path], root: Path | None = None) -> dict[str, str]:
    """``{name: sha256}`` for each file; names are relative to ``root`` when the file lies under it."""
    result: dict[str, str] = {}
    for path in paths:
        name = str(path)
        if root is not None:
            try:
                name = path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                name = str(path.resolve())
        result[name] = sha256_file(path)
    return result
