"""Locating data files: a missing file is an error that says where we looked and how to get it."""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from fairmerge.errors import DataError
from fairmerge.paths import DATA_DIR_ENV, resolve_data_dir


def require_file(data_dir: Path, relative: str, how_to_get: str) -> Path:
    """``data_dir / relative``, or a DataError naming the file, the directory, and where to get it."""
    path = data_dir / relative
    if not path.is_file():
        raise DataError(f"missing data file {relative!r}: looked for {path}. {how_to_get}")
    return path


@contextlib.contextmanager
def reading(path: str | os.PathLike[str], kind: str = "") -> Iterator[None]:
    """Turn a parser's failure on an empty, truncated or corrupt file read in the block into a
    one-line :class:`DataError` that names the file (``kind``: what it should be, e.g. ``CSV``)."""
    what = f" as {kind}" if kind else ""
    try:
        yield
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"data file {path} is not valid JSON ({exc})") from None
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        ValueError,
        SyntaxError,
        EOFError,
        OSError,
        zlib.error,
    ) as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        raise DataError(f"data file {path} cannot be read{what}; truncated or corrupt? ({reason})") from None


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


def local_or_downloadable(
    label: str,
    data_dir: str | os.PathLike[str] | None,
    path: str | os.PathLike[str] | None,
    candidates: Sequence[str],
    *,
    download: bool,
    how_to_get: str,
) -> tuple[Path | None, str]:
    """A local ``label`` file (``path``, else the first candidate in the data directory), or None.

    None means the caller may download; it is only returned when downloading is allowed and the
    machine is not marked offline, otherwise a DataError says where we looked and how to get the
    file. The second value describes where we looked, for the caller's own error messages.
    """
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"{label} file {file} (from path=) does not exist")
        return file, str(file)
    root = optional_data_dir(data_dir)
    found = find_first(root, candidates)
    where = f"in {root}" if root is not None else "(no data directory given)"
    if found is not None:
        return found, where
    if not download or is_offline():
        reason = "downloads are off" if not download else "offline (HF_HUB_OFFLINE is set)"
        raise DataError(
            f"{label} data file not found: looked for {', '.join(candidates)} {where}; "
            f"{reason}. {how_to_get}."
        )
    return None, where
