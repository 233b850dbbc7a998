"""Locating data files: a missing file is an error that says where we looked and how to get it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fairmerge.errors import DataError
from fairmerge.paths import DATA_DIR_ENV, resolve_data_dir


def require_file(data_dir: Path, relative: str, how_to_get: str) -> Path:
    """``data_dir / relative``, or a DataError naming the file, the directory, and where to get it."""
    path = data_dir / relative
    if not path.is_file():
        raise DataError(f"missing data file {relative!r}: looked for {path}. {how_to_get}")
    return path


def find_first(data_dir: Path | None, candidates: Sequence[str]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``data_dir``) that exists, else None."""
    if data_dir is None:
        return None
    for relative in candidates:
        path = data_dir / relative
        if path.is_file():
            return path
    return None


def optional_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The data directory when one is given or set in the environment; None when neither is."""
    if data_dir is None and not os.environ.get(DATA_DIR_ENV):
        return None
    return resolve_data_dir(data_dir)


def is_offline() -> bool:
    """True when the user asked Hugging Face tooling (and us) not to use the network."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "FAIRMERGE_OFFLINE")
    )
