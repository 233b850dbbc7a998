"""Content-addressed store of trained checkpoints: the same inputs never train twice.

An entry is ``ROOT/<kind>/<key>/`` (kinds: ``base``, ``probe``, ``fft``, ``lora``, ``subgroup``) holding a
Hugging Face checkpoint plus ``meta.json``. ``key`` is the sha256 of a canonical JSON of everything
that determines the result (base weights, exact training and validation examples, hyper-parameters,
seed, device type and precision, library versions). Entries are written through
``fairmerge.atomic.atomic_directory``: an interrupted run leaves no entry, only a hidden temporary
directory that ``clear`` removes. ``clear`` deletes only what it can identify as the cache's own: an
entry whose ``meta.json`` names its kind and key, and the temporary folders of interrupted writes;
anything else under the root (a user's folder) is left and listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fairmerge.atomic import atomic_directory, atomic_write_text
from fairmerge.data.types import TextSplit
from fairmerge.outputs_guard import writing
from fairmerge.paths import training_cache_dir

logger = logging.getLogger("fairmerge.training")

META_FILE = "meta.json"
CODE_VERSION = 2
"""Bumped whenever the training code changes numerics, so stale entries are not reused."""

KINDS = ("base", "probe", "fft", "lora", "subgroup")
"""Kinds of entries (the ``kind`` of every ``store`` call in ``fairmerge.training``)."""
_IGNORED_IN_HASH = {META_FILE, "README.md"}
_LEFTOVER = re.compile(r"^\.[^/]+\.[a-z0-9_]{8}\.tmp$|^\.[^/]+\.old-\d+$")
"""Names of ``atomic_directory``'s temporary folders and ``replace_path``'s set-aside targets."""
_hash_memo: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


@dataclass(frozen=True)
class ClearResult:
    """What ``TrainingCache.clear`` did: entries and leftovers removed, paths it left alone."""

    removed: int
    leftovers: int
    kept: list[Path]


@dataclass(frozen=True)
class CacheEntry:
    """One stored result, as listed by ``TrainingCache.entries``."""

    kind: str
    key: str
    path: Path
    meta: dict[str, Any]
    size_bytes: int


class TrainingCache:
    """Where fine-tunes are stored; ``enabled=False`` ignores existing entries and retrains.

    With the cache disabled a fresh result still has to live somewhere (the functions return a
    checkpoint directory), so it replaces the entry of the same key.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else training_cache_dir()
        self.enabled = enabled

    def __repr__(self) -> str:
        return f"TrainingCache({str(self.root)!r}, enabled={self.enabled})"

    def path(self, kind: str, key: str) -> Path:
        """Directory of the entry ``kind``/``key`` (which may not exist)."""
        return self.root / kind / key

    def lookup(self, kind: str, key: str) -> Path | None:
        """The entry's directory if it is complete and the cache is enabled, else None."""
        path = self.path(kind, key)
        if self.enabled and (path / META_FILE).is_file():
            return path
        return None

    def store(self, kind: str, key: str, build: Callable[[Path], Mapping[str, Any]]) -> Path:
        """Run ``build(tmp_dir)`` (writes the checkpoint, returns its metadata) and publish atomically.

        ``meta.json`` is written last; the directory is renamed into place only if ``build``
        succeeded. If another process published the same key meanwhile, its entry is kept (the
        inputs were identical).
        """
        target = self.path(kind, key)
        corrupt = target.exists() and not (target / META_FILE).is_file()
        built = False
        new_root = [p for p in target.parents if not p.exists()] if not self.root.exists() else []
        try:
            with (
                writing(self.root, "cache entry in"),
                atomic_directory(target, overwrite=corrupt or not self.enabled) as tmp,
            ):
                meta = {"kind": kind, "key": key, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **build(tmp)}
                atomic_write_text(tmp / META_FILE, json.dumps(_jsonable(meta), indent=2, sort_keys=True))
                built = True
        except FileExistsError:
            if not built or not (target / META_FILE).is_file():
                raise
            logger.info("another process stored %s/%s first; keeping its entry", kind, key[:12])
        except BaseException:
            for folder in new_root:  # a failed first store leaves no empty cache behind (deepest first)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        return target

    def entries(self, kind: str | None = None) -> list[CacheEntry]:
        """Complete entries, optionally of one kind, sorted by kind and creation time."""
        found: list[CacheEntry] = []
        for kind_dir in self._kind_dirs(kind):
            for path in sorted(kind_dir.iterdir()):
                if path.is_symlink() or not path.is_dir() or not self._is_entry(path):
                    continue
                meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
                found.append(CacheEntry(kind_dir.name, path.name, path, meta, _tree_size(path)))
        return sorted(found, key=lambda e: (e.kind, str(e.meta.get("created", "")), e.key))

    def clear(self, kind: str | None = None) -> ClearResult:
        """Remove the entries (all, or those of one kind) and the leftovers of interrupted writes.

        Only what the cache wrote is removed: a folder whose ``meta.json`` names this kind and key,
        and hidden temporary folders of :func:`~fairmerge.atomic.atomic_directory`. Everything else
        (a user's files or folders, an entry without metadata) is kept and returned in ``kept``.
        """
        removed = leftovers = 0
        kept: list[Path] = []
        for kind_dir in self._kind_dirs(kind):
            for path in sorted(kind_dir.iterdir()):
                if path.is_dir() and not path.is_symlink() and self._is_entry(path):
                    removed += 1
                elif path.is_dir() and not path.is_symlink() and _LEFTOVER.match(path.name):
                    leftovers += 1
                else:
                    kept.append(path)
                    continue
                shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):  # only an empty kind folder goes
                kind_dir.rmdir()
        if kind is None and self.root.is_dir():
            kept += sorted(p for p in self.root.iterdir() if p.name not in KINDS)
        return ClearResult(removed, leftovers, kept)

    @staticmethod
    def _is_entry(path: Path) -> bool:
        """Whether ``path`` is an entry this cache wrote: its ``meta.json`` names its kind and key."""
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(meta, dict) and meta.get("kind") == path.parent.name and meta.get("key") == path.name
        )

    def _kind_dirs(self, kind: str | None) -> list[Path]:
        """The folders of the cache's kinds (or of ``kind``) that exist; never anything else."""
        kinds = [kind] if kind is not None else list(KINDS)
        return [self.root / k for k in kinds if (self.root / k).is_dir() and not (self.root / k).is_symlink()]


def cache_key(parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace) of ``parts``."""
    canonical = json.dumps(_jsonable(parts), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hash_checkpoint(path: str | os.PathLike[str]) -> str:
    """sha256 over the top-level files of a checkpoint directory (weights, config, tokenizer).

    ``meta.json`` and sub-directories (e.g. a LoRA entry's ``adapter/``) are left out. Memoised per
    process on (path, file names, sizes, mtimes), so a multi-GB base is read once.
    """
    root = Path(path).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint directory {root} does not exist")
    files = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in _IGNORED_IN_HASH
    )
    stats = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    memo_key = (str(root), stats)
    if memo_key not in _hash_memo:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode("utf-8") + b"\0")
            with file.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
        _hash_memo[memo_key] = digest.hexdigest()
    return _hash_memo[memo_key]


def split_digest(split: TextSplit, weights: np.ndarray | None = None) -> str:
    """sha256 of the exact examples (ids, texts, labels, optional loss weights) of a split."""
    digest = hashlib.sha256()
    digest.update(json.dumps([split.ids, split.texts], ensure_ascii=True).encode("utf-8"))
    digest.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    if weights is not None:
        digest.update(b"weights" + np.ascontiguousarray(weights, dtype=np.float64).tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose changes alter training numerics, plus our code version."""
    import peft
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "fairmerge_training": str(CODE_VERSION),
    }


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _jsonable(value: Any) -> Any:
    """Recursively convert tuples, paths and numpy scalars into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
