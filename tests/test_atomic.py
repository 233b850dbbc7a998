"""Atomic writes: complete or absent, never partial; usual permissions."""

import os
import stat
from pathlib import Path

import pytest

from fairmerge.atomic import atomic_directory, atomic_write_text


def test_file_written_with_umask_permissions(tmp_path: Path) -> None:
    path = tmp_path / "a" / "out.txt"
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_directory_is_absent_after_a_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half.csv").write_text("x")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_directory_overwrite_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "old.csv").write_text("1")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "new.csv").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new.csv"]
    with pytest.raises(FileExistsError), atomic_directory(target) as tmp:
        pass
