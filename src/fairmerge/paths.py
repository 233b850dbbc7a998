"""Where data and caches live: explicit options first, then environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from fairmerge.errors import DataError

DATA_DIR_ENV = "FAIRMERGE_DATA_DIR"
CACHE_DIR_ENV = "FAIRMERGE_CACHE_DIR"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data directory from the argument or ``$FAIRMERGE_DATA_DIR``; it must exist."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not chosen:
        raise DataError(f"no data directory given: pass --data-dir DIR or set {DATA_DIR_ENV}")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"data directory {path} does not exist (from --data-dir or {DATA_DIR_ENV})")
    return path


def default_cache_dir() -> Path:
    """``$FAIRMERGE_CACHE_DIR``, else ``~/.cache/fairmerge``."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fairmerge"
