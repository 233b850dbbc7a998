"""``fairmerge cache clear`` deletes only what the cache wrote (issue #22 item 1)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from fairmerge.cli import main
from fairmerge.training import TrainingCache


def _clear(root: Path, *extra: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["fairmerge", "cache", "clear", "--cache-dir", str(root), *extra])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _store(cache: TrainingCache, kind: str, key: str) -> Path:
    def build(folder: Path) -> dict[str, str]:
        (folder / "model.safetensors").write_bytes(b"weights")
        return {"description": "test entry"}

    return cache.store(kind, key, build)


def test_a_users_folder_in_the_cache_root_survives_a_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's case: ``echo y | fairmerge cache clear`` over a results folder of the user's."""
    results = tmp_path / "training" / "experiments" / "run1" / "results.csv"
    results.parent.mkdir(parents=True)
    results.write_text("x\n")
    assert _clear(tmp_path, stdin="y\n", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert results.read_text() == "x\n"
    assert "deleted 0 entries" in out and "left 1 path(s)" in out and "experiments" in out


def test_only_entries_and_leftovers_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = TrainingCache(tmp_path / "training")
    entry = _store(cache, "fft", "a" * 64)
    kept_entry = _store(cache, "lora", "b" * 64)
    no_meta = tmp_path / "training" / "fft" / "mine"  # a folder without meta.json under a kind
    no_meta.mkdir()
    (no_meta / "notes.txt").write_text("mine\n")
    foreign_meta = tmp_path / "training" / "fft" / ("c" * 64)  # meta.json that does not name this entry
    foreign_meta.mkdir()
    (foreign_meta / "meta.json").write_text(json.dumps({"kind": "fft", "key": "other"}))
    user_file = tmp_path / "training" / "fft" / "readme.txt"
    user_file.write_text("mine\n")
    leftover = tmp_path / "training" / "fft" / f".{'d' * 64}.abc_1234.tmp"  # an interrupted write
    leftover.mkdir()
    assert _clear(tmp_path, "--kind", "fft", "--yes", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert not entry.exists() and not leftover.exists()
    assert kept_entry.is_dir() and no_meta.is_dir() and foreign_meta.is_dir() and user_file.is_file()
    assert "deleted 1 entries and 1 leftovers" in out and "left 3 path(s)" in out
    assert [e.key for e in cache.entries()] == ["b" * 64]


def test_clearing_everything_removes_empty_kind_folders_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TrainingCache(tmp_path / "training")
    _store(cache, "base", "e" * 64)
    _store(cache, "subgroup", "f" * 64)
    (tmp_path / "training" / "subgroup" / "keep.txt").write_text("mine\n")
    assert _clear(tmp_path, "--yes", monkeypatch=monkeypatch) == 0
    assert sorted(p.name for p in (tmp_path / "training").iterdir()) == ["subgroup"]
    assert [p.name for p in (tmp_path / "training" / "subgroup").iterdir()] == ["keep.txt"]


def test_a_no_at_the_prompt_deletes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _store(TrainingCache(tmp_path / "training"), "fft", "a" * 64)
    assert _clear(tmp_path, stdin="n\n", monkeypatch=monkeypatch) == 1
    assert entry.is_dir()
