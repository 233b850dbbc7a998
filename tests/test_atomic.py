"""Atomic writes and guarded output folders: complete or absent, never partial; usual
permissions; never a replaced file that fairmerge did not write."""

import json
import os
import stat
from pathlib import Path

import pytest

from fairmerge.atomic import atomic_directory, atomic_file, atomic_write_text
from fairmerge.errors import OutputError
from fairmerge.outputs_guard import MARKER, check_output_dir, check_output_file, output_directory


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_file_written_with_umask_permissions(tmp_path: Path) -> None:
    path = tmp_path / "a" / "out.txt"
    atomic_write_text(path, "hello")
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_atomic_file_gives_umask_permissions_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "tau.safetensors"
    with atomic_file(path) as tmp:
        tmp.write_bytes(b"1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "other.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tau.safetensors"]


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


def test_directory_overwrite_of_a_file_leaves_no_hidden_leftover(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "new.csv").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert target.is_dir()


def test_output_folder_gets_a_marker_listing_its_files(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "study"
    with output_directory(target) as tmp:
        (tmp / "metrics.csv").write_text("1")
        (tmp / "plots").mkdir()
        (tmp / "plots" / "a.png").write_bytes(b"png")
    marker = json.loads((target / MARKER).read_text())
    assert marker["files"] == ["metrics.csv", "plots/a.png"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()
    # an earlier fairmerge output is replaced without --overwrite
    with output_directory(target) as tmp:
        (tmp / "metrics.csv").write_text("2")
    assert (target / "metrics.csv").read_text() == "2"
    assert not (target / "plots").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["study"]


def test_a_user_folder_is_never_replaced_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "userdir"
    target.mkdir()
    (target / "precious.txt").write_text("precious")
    with pytest.raises(OutputError, match=r"userdir.*precious\.txt.*--overwrite"):
        check_output_dir(target)
    with pytest.raises(OutputError, match=r"precious\.txt"), output_directory(target) as tmp:
        (tmp / "metrics.csv").write_text("1")
    assert _tree(target) == {"precious.txt": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["userdir"]
    with output_directory(target, overwrite=True) as tmp:
        (tmp / "metrics.csv").write_text("1")
    assert sorted(_tree(target)) == [MARKER, "metrics.csv"]


def test_a_file_added_to_an_earlier_output_blocks_its_replacement(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with output_directory(target) as tmp:
        (tmp / "metrics.csv").write_text("1")
    (target / "notes.md").write_text("mine")
    with pytest.raises(OutputError, match=r"notes\.md"):
        check_output_dir(target)


def test_a_user_folder_created_during_the_run_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(OutputError, match=r"precious\.txt"), output_directory(target) as tmp:
        (tmp / "metrics.csv").write_text("1")
        target.mkdir()
        (target / "precious.txt").write_text("precious")
    assert _tree(target) == {"precious.txt": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("make", "name", "match"),
    [
        (lambda root: (root / "f").write_text("x"), "f", "existing file.*--overwrite"),
        (lambda root: (root / "f").write_text("x"), "f/out", "is a file, not a folder"),
        (lambda root: None, ".", "current folder"),
        (lambda root: None, "", "empty"),
        (lambda root: None, "..", "current folder"),
    ],
)
def test_bad_output_folders_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, name: str, match: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    make(work)
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    with pytest.raises(OutputError, match=match):
        check_output_dir(name)
    assert _tree(tmp_path) == before


def test_unwritable_parent_is_refused() -> None:
    with pytest.raises(OutputError, match="cannot write in /proc"):
        check_output_dir("/proc/fairmerge-out")
    with pytest.raises(OutputError, match="cannot write in /proc"):
        check_output_file("/proc/t.safetensors")


def test_output_file_checks(tmp_path: Path) -> None:
    existing = tmp_path / "tau.safetensors"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        check_output_file(existing)
    assert check_output_file(existing, overwrite=True) == existing
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_file(existing / "x.safetensors")
