"""Output targets that fairmerge may write or replace, checked before any work.

fairmerge never deletes a file it did not write. An output folder carries a marker
(``.fairmerge-output.json``) listing the files fairmerge put there; an existing target is replaced
only when it is such a folder and holds nothing else, or when the user passes ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fairmerge.atomic import atomic_directory, atomic_write_text
from fairmerge.errors import OutputError

MARKER = ".fairmerge-output.json"
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_ERRNO_TEXT = re.compile(r"\[Errno \d+\] ([^:']+)")
_SAFETENSORS_IO = re.compile(r"I/O error: (.+?) \(os error (\d+)\)")


def _foreign_files(path: Path, limit: int = 4) -> list[str]:
    """Up to ``limit`` files under the folder ``path`` that its fairmerge marker does not list
    (any file, without a marker; an empty folder has none)."""
    try:
        listed = set(json.loads((path / MARKER).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    files = (p for p in path.rglob("*") if p.name != MARKER and not p.is_dir())
    foreign = (name for name in (str(p.relative_to(path)) for p in files) if name not in listed)
    return list(itertools.islice(foreign, limit))


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing ancestor."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def _check_parent_writable(path: Path, flag: str) -> None:
    """The closest existing ancestor of ``path`` is a folder in which a file can be created."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{flag} {path}: {ancestor} is a file, not a folder")
    try:  # a real probe: os.access says yes to root on /proc, and knows nothing of quotas
        probe = tempfile.mkdtemp(dir=ancestor, prefix=".fairmerge-probe-")
        os.rmdir(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"{flag} {path}: cannot write in {ancestor} ({reason})") from None


def _check_name(raw: str | os.PathLike[str], flag: str) -> Path:
    if not os.fspath(raw).strip():
        raise OutputError(f"{flag} is empty; give an output path")
    path = Path(raw)
    resolved = path.expanduser().resolve()
    cwd = Path.cwd().resolve()
    if path.name in ("", ".", "..") or resolved == cwd or resolved in cwd.parents:
        raise OutputError(
            f"{flag} {path} is the current folder or one of its parents; give a new folder name"
        )
    return path.expanduser()


def check_output_dir(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    flag: str = "--out",
    what: str = "fairmerge output",
) -> Path:
    """Check before any work that folder ``path`` can be written and replaced; return it.

    Raises :class:`OutputError` (exit 2, naming the path) when ``path`` exists and is not an earlier
    fairmerge output holding only its own files (unless ``overwrite``), when it is empty, ``.`` or a
    parent of the working directory, when it goes through a file, or when its parent is not writable.
    """
    path = _check_name(path, flag)
    if (path.exists() or path.is_symlink()) and not overwrite:
        if not path.is_dir():
            raise OutputError(
                f"{flag} {path} is an existing file, not an earlier {what}; pass --overwrite to replace it"
            )
        foreign = _foreign_files(path)
        if foreign:
            shown = ", ".join(foreign[:3]) + (" and more" if len(foreign) > 3 else "")
            raise OutputError(
                f"{flag} {path} is not an earlier {what}: it holds files fairmerge did not write ({shown}); "
                "pass --overwrite to replace it, or choose another folder"
            )
    _check_parent_writable(path, flag)
    return path


def check_new_output(
    path: str | os.PathLike[str], *, overwrite: bool = False, flag: str = "--output"
) -> Path:
    """Check before any work that ``path`` (a file or folder to create) can be written: absent (or
    ``overwrite``), not through a file, with a writable parent. Raises :class:`OutputError`."""
    path = _check_name(path, flag)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{flag} {path} already exists; pass --overwrite to replace it")
    _check_parent_writable(path, flag)
    return path


def check_output_file(
    path: str | os.PathLike[str], *, overwrite: bool = False, flag: str = "--output"
) -> Path:
    """:func:`check_new_output` for a file: a folder at ``path`` is refused even with ``overwrite``."""
    if Path(path).expanduser().is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name")
    return check_new_output(path, overwrite=overwrite, flag=flag)


def _write_marker(folder: Path) -> None:
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())
    atomic_write_text(folder / MARKER, json.dumps({"tool": "fairmerge", "files": files}, indent=1) + "\n")


@contextlib.contextmanager
def output_directory(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    flag: str = "--out",
    what: str = "fairmerge output",
) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` atomically when the block succeeds.

    The folder gets the fairmerge marker listing its files. An existing ``path`` is checked again
    (it may have changed during a long run) with :func:`check_output_dir` before it is replaced.
    On any exception nothing at ``path`` changes; a failed write (full disk, read-only
    filesystem) is an :class:`OutputError` naming ``path``.
    """
    path = check_output_dir(path, overwrite=overwrite, flag=flag, what=what)
    with writing(path, flag), atomic_directory(path, overwrite=True) as tmp:
        yield tmp
        _write_marker(tmp)
        check_output_dir(path, overwrite=overwrite, flag=flag, what=what)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], flag: str = "--output") -> Iterator[None]:
    """Turn a refused write (full disk, quota, read-only filesystem, permissions) in the block into
    an :class:`OutputError` naming ``path``: an ``OSError``, ``shutil.copytree``'s list of them, or
    safetensors' own error for a failed write."""
    from safetensors import SafetensorError

    try:
        yield
    except shutil.Error as exc:  # copytree: one (source, target, reason) per failed file
        failures = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [("", "", str(exc))]
        first = _ERRNO_TEXT.search(str(failures[0][-1]))
        reason = first[1] if first else str(failures[0][-1])
        more = f"; {len(failures) - 1} more file(s) failed" if len(failures) > 1 else ""
        raise OutputError(f"{flag} {path}: cannot write ({reason}{more})") from None
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        raise OutputError(f"{flag} {path}: cannot write ({exc.strerror or exc})") from None
    except SafetensorError as exc:
        found = _SAFETENSORS_IO.search(str(exc))
        if found is None or int(found[2]) not in _WRITE_ERRORS:
            raise
        raise OutputError(f"{flag} {path}: cannot write ({found[1]})") from None
