"""UTKFace loader on the real folder: strict names, duplicates, conflicts, content-keyed stratified split."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fairmerge.cli import app
from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.utkface import FOLDER, GENDERS, RACES, parse_name, scan_folder
from fairmerge.errors import DataError


@pytest.fixture(scope="module")
def utk(data_dir: Path) -> GroupedTextDataset:
    return load_dataset("utkface", data_dir)


def _real_files(data_dir: Path, n: int, start: int = 0) -> list[Path]:
    return sorted((data_dir / FOLDER).iterdir())[start : start + n]


def _folder_with(tmp_path: Path, files: list[tuple[str, bytes]]) -> Path:
    folder = tmp_path / FOLDER
    folder.mkdir(parents=True)
    for name, data in files:
        (folder / name).write_bytes(data)
    return tmp_path


def test_counts_on_the_real_folder_match_sources(data_dir: Path) -> None:
    scan = scan_folder(data_dir / FOLDER)
    # SOURCES.md: 20,110 files; 20,105 strict parses; 19,777 distinct; 321 groups / 333 extra; 220 conflicts.
    assert scan.files_found == 20110
    assert len(scan.parsed) == 20105
    assert scan.distinct_all == 19777
    assert (scan.duplicate_groups, scan.extra_copies) == (321, 333)
    assert len(scan.conflicting_groups) == 220
    assert sorted(name for name, _ in scan.skipped) == [
        "24_0_1_20170116220224657 .jpg.chip.jpg",
        "39_1_20170116174525125.jpg.chip.jpg",
        "55_0_0_20170116232725357jpg.chip.jpg",
        "61_1_20170109142408075.jpg.chip.jpg",
        "61_1_20170109150557335.jpg.chip.jpg",
    ]
    assert sum("no race field" in reason for _, reason in scan.skipped) == 3
    # Label counts of the strict-parse files (SOURCES.md).
    assert Counter(f.race for f in scan.parsed) == {0: 8541, 1: 3843, 2: 2908, 3: 3363, 4: 1450}
    assert Counter(f.gender for f in scan.parsed) == {0: 10511, 1: 9594}
    assert sum(f.age > 30 for f in scan.parsed) == 9363
    # Distinct parsed images minus the dropped conflicting groups.
    assert len(scan.kept) == 20105 - 333 - 220
    assert len({f.sha256 for f in scan.kept}) == len(scan.kept)


def test_dataset_splits_labels_and_groups(utk: GroupedTextDataset) -> None:
    assert utk.modality == "image"
    assert utk.label_scheme == "age > 30"
    sizes = {s: len(utk[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 19552
    assert sizes["train"] / 19552 == pytest.approx(0.70, abs=0.005)
    assert set(utk.attributes) == {"race", "gender"}
    for split in utk.splits.values():
        assert split.group_names("race") == sorted(RACES)
        assert split.group_names("gender") == sorted(GENDERS)
        for name, label, race, gender in zip(
            split.ids, split.labels, split.groups["race"], split.groups["gender"], strict=True
        ):
            age, g, r = parse_name(name)  # type: ignore[misc]
            assert label == int(age > 30)
            assert race == {RACES[r]} and gender == {GENDERS[g]}
    ids = [i for s in utk.splits.values() for i in s.ids]
    assert len(set(ids)) == len(ids)
    # Stratified: each split's positive rate within a race group is that group's overall rate ± rounding.
    frame = utk.summary()
    for (_, group), rows in frame[frame["attribute"] == "race"].groupby(["attribute", "group"]):
        rates = rows.set_index("split")["positive_rate"]
        assert rates.max() - rates.min() < 0.01, group
    assert "duplicate groups (byte-identical parsed files): 321, holding 333 extra copies" in utk.notes
    assert any(n.startswith("conflicting-label groups dropped") and ": 220 " in n for n in utk.notes)


def test_split_is_deterministic(utk: GroupedTextDataset, data_dir: Path) -> None:
    again = load_dataset("utkface", data_dir)
    for split in ("train", "val", "test"):
        assert again[split].ids == utk[split].ids


def test_split_is_keyed_on_content_not_names(tmp_path: Path, data_dir: Path) -> None:
    files = _real_files(data_dir, 300, start=5000)
    blobs = [(f.name, f.read_bytes()) for f in files if isinstance(parse_name(f.name), tuple)]
    original = load_dataset("utkface", _folder_with(tmp_path / "a", blobs))
    # Same images, other names (new timestamps, reversed order): every image keeps its side.
    renamed = [
        (f"{n.split('_')[0]}_{n.split('_')[1]}_{n.split('_')[2]}_{9000 + k}.jpg.chip.jpg", b)
        for k, (n, b) in enumerate(reversed(blobs))
    ]
    moved = load_dataset("utkface", _folder_with(tmp_path / "b", renamed))

    def side_by_content(dataset: GroupedTextDataset) -> dict[str, str]:
        return {
            hashlib.sha256(Path(p).read_bytes()).hexdigest(): name
            for name, split in dataset.splits.items()
            for p in split.texts
        }

    assert side_by_content(original) == side_by_content(moved)
    assert set(original["train"].ids).isdisjoint(moved["train"].ids)  # the names really differ


def test_duplicates_merge_and_conflicts_drop(tmp_path: Path, data_dir: Path) -> None:
    files = _real_files(data_dir, 40, start=100)
    blobs = [(f.name, f.read_bytes()) for f in files]
    first, second = blobs[0], blobs[1]
    age, gender, race = parse_name(first[0])  # type: ignore[misc]
    agreeing = (f"{age}_{gender}_{race}_1.jpg.chip.jpg", first[1])
    age2, gender2, race2 = parse_name(second[0])  # type: ignore[misc]
    conflicting = (f"{age2 + 1}_{gender2}_{race2}_2.jpg.chip.jpg", second[1])
    dataset = load_dataset("utkface", _folder_with(tmp_path, [*blobs, agreeing, conflicting]))
    ids = [i for s in dataset.splits.values() for i in s.ids]
    assert len(ids) == 40 - 1  # first: one copy kept; second: both copies dropped
    assert second[0] not in ids and conflicting[0] not in ids
    assert "duplicate groups (byte-identical parsed files): 2, holding 2 extra copies" in dataset.notes


def test_truncated_jpeg_is_skipped_and_counted(tmp_path: Path, data_dir: Path) -> None:
    files = _real_files(data_dir, 30, start=200)
    blobs = [(f.name, f.read_bytes()) for f in files]
    name, data = blobs[3]
    blobs[3] = (name, data[: len(data) // 2])
    dataset = load_dataset("utkface", _folder_with(tmp_path, blobs))
    assert name not in [i for s in dataset.splits.values() for i in s.ids]
    assert f"  skipped {name!r}: not a complete JPEG (empty, truncated or another format)" in dataset.notes


def test_folder_without_parseable_images_is_one_line_error(tmp_path: Path, data_dir: Path) -> None:
    real = _real_files(data_dir, 2)[0].read_bytes()
    root = _folder_with(tmp_path, [("face.jpg", real), ("39_1_20170116174525125.jpg.chip.jpg", real)])
    with pytest.raises(DataError, match="no usable UTKFace image among 2 file") as info:
        load_dataset("utkface", root)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="UTKFace not found"):
        load_dataset("utkface", tmp_path / "utkface")  # a data dir without the folder


def test_official_archive_is_extracted_once(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRMERGE_CACHE_DIR", str(tmp_path / "cache"))
    files = _real_files(data_dir, 60, start=300)
    source = _folder_with(tmp_path / "folder", [(f.name, f.read_bytes()) for f in files])
    archive_root = tmp_path / "archive"
    (archive_root / "utkface").mkdir(parents=True)
    with tarfile.open(archive_root / "utkface" / "UTKFace.tar.gz", "w:gz") as tar:
        tar.add(source / FOLDER, arcname="UTKFace")
    from_folder = load_dataset("utkface", source)
    from_archive = load_dataset("utkface", archive_root)
    assert {s: d.ids for s, d in from_archive.splits.items()} == {
        s: d.ids for s, d in from_folder.splits.items()
    }
    assert list(from_archive.provenance) == ["utkface/UTKFace.tar.gz"]
    assert (tmp_path / "cache" / "utkface").is_dir()
    shutil.rmtree(source)


def test_age_threshold_option(tmp_path: Path, data_dir: Path) -> None:
    files = _real_files(data_dir, 50, start=700)
    dataset = load_dataset(
        "utkface", _folder_with(tmp_path, [(f.name, f.read_bytes()) for f in files]), age_threshold=40
    )
    labels = np.concatenate([s.labels for s in dataset.splits.values()])
    ages = [parse_name(i)[0] for s in dataset.splits.values() for i in s.ids]  # type: ignore[index]
    assert labels.tolist() == [int(a > 40) for a in ages]
    assert dataset.label_scheme == "age > 40"


def test_cli_summary(tmp_path: Path, data_dir: Path) -> None:
    files = _real_files(data_dir, 80, start=900)
    root = _folder_with(tmp_path, [(f.name, f.read_bytes()) for f in files])
    result = CliRunner().invoke(
        app, ["data", "summary", "utkface", "--data-dir", str(root)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    for text in ("files found: 80", "files parsed", "duplicate groups", "conflicting-label groups dropped"):
        assert text in result.output
    assert "train: n=" in result.output and "race" in result.output and "female" in result.output
