"""Where data, caches and models live: explicit options first, then environment variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fairmerge.errors import DataDirectoryError, ModelError

DATA_DIR_ENV = "FAIRMERGE_DATA_DIR"
CACHE_DIR_ENV = "FAIRMERGE_CACHE_DIR"
TRAINING_SUBDIR = "training"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The data directory from the argument or ``$FAIRMERGE_DATA_DIR``; it must exist."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not chosen:
        raise DataDirectoryError(f"no data directory given: pass --data-dir DIR or set {DATA_DIR_ENV}")
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataDirectoryError(f"data directory {path} does not exist (from --data-dir or {DATA_DIR_ENV})")
    return path


def anchor_env_dirs(start: str | os.PathLike[str] | None = None) -> None:
    """Make relative ``$FAIRMERGE_DATA_DIR`` and ``$FAIRMERGE_CACHE_DIR`` absolute, against ``start``
    (default: the working directory). Called where a command or a test session starts, before
    any code changes directory, so a relative path means the same everywhere (and in Ray workers)."""
    base = Path(start) if start is not None else Path.cwd()
    for name in (DATA_DIR_ENV, CACHE_DIR_ENV):
        value = os.environ.get(name)
        if value and not Path(value).expanduser().is_absolute():
            os.environ[name] = os.path.normpath(base / Path(value).expanduser())


def default_cache_dir() -> Path:
    """``$FAIRMERGE_CACHE_DIR``, else ``~/.cache/fairmerge``."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fairmerge"


def training_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Training cache of the cache root ``cache_dir`` (default :func:`default_cache_dir`):
    ``ROOT/training``. ``run``, ``train`` and ``cache`` all take the root as ``--cache-dir``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / TRAINING_SUBDIR


def hub_offline() -> bool:
    """Whether ``$HF_HUB_OFFLINE`` forbids downloads (huggingface_hub reads 1/true/yes/on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an id the hub library rejects is not in its cache either
        return False


def check_model_source(name: str, resolved: str | None = None) -> None:
    """Fail at once, naming the folder, when a model argument cannot be loaded without a download
    that will not happen: a path-like name (starting with ``.``, ``/`` or ``~``, not shaped like a
    Hub id ``name`` or ``org/name``, or whose first part is a local folder) that does not exist, or
    a Hub id missing from the local Hub cache while ``$HF_HUB_OFFLINE`` is set.

    ``resolved`` is the name after :func:`fairmerge.models.resolve_model_name` (embedded models).
    """
    text = resolved or name
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"model {name!r}: {path} is a file; give the checkpoint folder")
        return
    first = text.split("/", 1)[0]
    if text.startswith((".", "/", "~")) or not _HUB_ID.match(text) or ("/" in text and Path(first).is_dir()):
        raise ModelError(f"model folder {text} does not exist")
    if hub_offline() and not _in_hub_cache(text):
        raise ModelError(
            f"model {name!r}: no local folder {path}, and it is not in the Hugging Face cache while "
            "the hub is offline (HF_HUB_OFFLINE)"
        )
