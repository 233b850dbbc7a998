"""UTKFace (aligned & cropped faces): binary age label, race and gender groups, content-keyed splits.

Source: ``utkface/UTKFace/`` (a folder of ``AGE_GENDER_RACE_TIMESTAMP.jpg.chip.jpg`` files) or the
official ``utkface/UTKFace.tar.gz`` in the data directory; an archive is extracted once into the
cache directory. Terms: non-commercial research use only.

Rules, in the order they apply:

1. **Names are parsed strictly.** A file whose name is not ``AGE_GENDER_RACE_TIMESTAMP.jpg.chip.jpg``
   (gender 0/1, race 0–4) is skipped and listed with its reason. That includes the three files
   without a race field: they are not used for gender either, so every image has both attributes
   and both attributes are measured on the same images.
2. **Files must be complete JPEGs.** A file without the JPEG start and end markers (empty,
   truncated, another format) is skipped and counted. A file that passes this check but that
   Pillow still cannot decode stops decoding with an error naming it (see ``data/images.py``).
3. **Byte-identical copies are merged before any split.** Copies whose names agree on age, gender
   and race count once (the first name in sorted order is kept); groups whose copies disagree on
   any of them are dropped whole, since which name is right is unknowable.
4. **The split is stratified and content-keyed.** Within each (label, race, gender) stratum the
   images are ordered by the sha256 of their bytes and cut 70/15/15 (quotas by largest remainder).
   File names and listing order play no part, so a file lands on the same side wherever it is
   stored and whatever it is called.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairmerge.atomic import atomic_directory
from fairmerge.data.hashing import sha256_file
from fairmerge.data.splits import DEFAULT_FRACTIONS
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.paths import default_cache_dir, resolve_data_dir

FOLDER = "utkface/UTKFace"
ARCHIVE = "utkface/UTKFace.tar.gz"
RACES = ("White", "Black", "Asian", "Indian", "Others")
GENDERS = ("male", "female")
_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg\.chip\.jpg$")
_NO_RACE = re.compile(r"^\d{1,3}_[01]_\d+\.jpg\.chip\.jpg$")
_HOW_TO_GET = (
    "Put the UTKFace 'Aligned & Cropped Faces' files in DATA_DIR/utkface/UTKFace/ "
    "or the official UTKFace.tar.gz at DATA_DIR/utkface/UTKFace.tar.gz"
)


@dataclass(frozen=True)
class FaceFile:
    """One parsed, readable image file."""

    name: str
    path: Path
    sha256: str
    age: int
    gender: int
    race: int

    @property
    def attributes(self) -> tuple[int, int, int]:
        return (self.age, self.gender, self.race)


@dataclass
class UTKFaceScan:
    """What a folder holds: parsed files, skipped files with reasons, and the duplicate structure."""

    folder: Path
    files_found: int
    parsed: list[FaceFile]
    skipped: list[tuple[str, str]]
    distinct_all: int
    kept: list[FaceFile] = field(default_factory=list)
    duplicate_groups: int = 0
    extra_copies: int = 0
    conflicting_groups: list[list[str]] = field(default_factory=list)
    digest: str = ""

    @property
    def conflicting_files(self) -> int:
        return sum(len(group) for group in self.conflicting_groups)


def parse_name(name: str) -> tuple[int, int, int] | str:
    """``(age, gender, race)`` from a strict UTKFace file name, else the reason it does not parse."""
    match = _NAME.match(name)
    if match:
        return int(match[1]), int(match[2]), int(match[3])
    if _NO_RACE.match(name):
        return "no race field (AGE_GENDER_TIMESTAMP): skipped for both attributes"
    if " " in name:
        return "name contains a space"
    return "name does not match AGE_GENDER_RACE_TIMESTAMP.jpg.chip.jpg"


def is_complete_jpeg(data: bytes) -> bool:
    """JPEG start-of-image marker at the start and end-of-image marker at the end (zero padding allowed)."""
    return data[:3] == b"\xff\xd8\xff" and data.rstrip(b"\x00")[-2:] == b"\xff\xd9"


_SCANS: dict[tuple[str, tuple[tuple[str, int, int], ...]], UTKFaceScan] = {}


def scan_folder(folder: Path) -> UTKFaceScan:
    """Parse, hash and deduplicate every file of ``folder`` (memoised on names, sizes and mtimes)."""
    if not folder.is_dir():
        raise DataError(f"UTKFace folder {folder} does not exist. {_HOW_TO_GET}")
    entries = sorted((e for e in os.scandir(folder) if e.is_file()), key=lambda e: e.name)
    signature = tuple((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries)
    memo_key = (str(folder.resolve()), signature)
    if memo_key in _SCANS:
        return _SCANS[memo_key]

    parsed: list[FaceFile] = []
    skipped: list[tuple[str, str]] = []
    hashes: set[str] = set()
    listing = hashlib.sha256()
    for entry in entries:
        path = Path(entry.path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            skipped.append((entry.name, f"unreadable: {exc.strerror or exc}"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        listing.update(f"{digest}  {entry.name}\n".encode())
        hashes.add(digest)
        fields = parse_name(entry.name)
        if isinstance(fields, str):
            skipped.append((entry.name, fields))
        elif not is_complete_jpeg(data):
            skipped.append((entry.name, "not a complete JPEG (empty, truncated or another format)"))
        else:
            parsed.append(FaceFile(entry.name, path, digest, *fields))
    scan = UTKFaceScan(folder, len(entries), parsed, skipped, len(hashes), digest=listing.hexdigest())
    _deduplicate(scan)
    _SCANS[memo_key] = scan
    return scan


def _deduplicate(scan: UTKFaceScan) -> None:
    by_content: dict[str, list[FaceFile]] = defaultdict(list)
    for face in scan.parsed:
        by_content[face.sha256].append(face)
    for copies in by_content.values():
        if len(copies) > 1:
            scan.duplicate_groups += 1
            scan.extra_copies += len(copies) - 1
            if len({c.attributes for c in copies}) > 1:
                scan.conflicting_groups.append(sorted(c.name for c in copies))
                continue
        scan.kept.append(min(copies, key=lambda c: c.name))
    scan.kept.sort(key=lambda c: c.sha256)


def stratified_content_split(
    keys: Sequence[str], strata: Sequence[object], fractions: tuple[float, float, float]
) -> np.ndarray:
    """Split name per item: within each stratum, items ordered by ``keys`` and cut by ``fractions``.

    Quotas are rounded by largest remainder, so each stratum's split sizes sum to its size; the
    order within a stratum depends on the keys only (here: content hashes), never on input order.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    names = np.empty(len(keys), dtype=object)
    members: dict[object, list[int]] = defaultdict(list)
    for i, stratum in enumerate(strata):
        members[stratum].append(i)
    for rows in members.values():
        rows.sort(key=lambda i: keys[i])
        exact = np.asarray(fractions) * len(rows)
        quota = np.floor(exact).astype(np.int64)
        for j in np.argsort(-(exact - quota), kind="stable")[: len(rows) - int(quota.sum())]:
            quota[j] += 1
        bounds = np.cumsum(quota)
        for position, i in enumerate(rows):
            names[i] = SPLITS[int(np.searchsorted(bounds, position, side="right"))]
    return names.astype(str)


def locate_folder(data_dir: str | os.PathLike[str] | None) -> tuple[Path, dict[str, str]]:
    """The image folder (extracting the official archive into the cache if only it is present)."""
    root = resolve_data_dir(data_dir)
    folder = root / FOLDER
    if folder.is_dir():
        return folder, {}
    archive = root / ARCHIVE
    if not archive.is_file():
        raise DataError(f"UTKFace not found: looked for {folder}/ and {archive}. {_HOW_TO_GET}")
    digest = sha256_file(archive)
    target = default_cache_dir() / "utkface" / f"archive-{digest[:16]}"
    if not target.is_dir():
        try:
            with tarfile.open(archive) as tar, atomic_directory(target) as tmp:
                tar.extractall(tmp, filter="data")
        except FileExistsError:
            pass  # another process extracted the same archive meanwhile
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"cannot extract {archive}: {exc}") from exc
    inner = target / "UTKFace"
    return (inner if inner.is_dir() else target), {ARCHIVE: digest}


def load_utkface(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    age_threshold: int = 30,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> GroupedTextDataset:
    """UTKFace with label ``age > age_threshold``, attributes race and gender, content-keyed splits.

    Example ids are file names; inputs are image paths (``modality="image"``). The notes list the
    counts (files found, parsed, skipped with reasons, duplicates, conflicting groups dropped).
    """
    if not isinstance(age_threshold, int) or isinstance(age_threshold, bool) or not 0 <= age_threshold < 116:
        raise ConfigError(f"age_threshold must be an integer age in [0, 116), got {age_threshold!r}")
    fractions = tuple(float(f) for f in fractions)  # type: ignore[assignment]
    folder, archive = locate_folder(data_dir)
    scan = scan_folder(folder)
    if not scan.kept:
        example = ", ".join(repr(name) for name, _ in scan.skipped[:3]) or "none"
        raise DataError(
            f"{folder}: no usable UTKFace image among {scan.files_found} file(s) "
            f"(names must be AGE_GENDER_RACE_TIMESTAMP.jpg.chip.jpg; skipped e.g. {example})"
        )
    faces = scan.kept
    labels = np.fromiter((face.age > age_threshold for face in faces), dtype=np.int64, count=len(faces))
    strata = [(int(y), face.race, face.gender) for y, face in zip(labels, faces, strict=True)]
    names = stratified_content_split([face.sha256 for face in faces], strata, fractions)
    splits: dict[str, TextSplit] = {}
    for split in SPLITS:
        rows = np.flatnonzero(names == split)
        if len(rows) == 0:
            continue
        splits[split] = TextSplit(
            ids=[faces[i].name for i in rows],
            texts=[str(faces[i].path) for i in rows],
            labels=labels[rows],
            groups={
                "race": [frozenset({RACES[faces[i].race]}) for i in rows],
                "gender": [frozenset({GENDERS[faces[i].gender]}) for i in rows],
            },
            modality="image",
        )
    provenance = archive or {FOLDER: scan.digest}
    return GroupedTextDataset(
        name="utkface",
        splits=splits,
        label_scheme=f"age > {age_threshold}",
        notes=_notes(scan, fractions),
        provenance=provenance,
    )


def _notes(scan: UTKFaceScan, fractions: tuple[float, float, float]) -> list[str]:
    notes = [
        f"files found: {scan.files_found} in {scan.folder}",
        f"files parsed (strict AGE_GENDER_RACE_TIMESTAMP.jpg.chip.jpg, complete JPEG): {len(scan.parsed)}",
        f"files skipped: {len(scan.skipped)}",
        *(f"  skipped {name!r}: {reason}" for name, reason in scan.skipped),
        f"distinct images among all files (sha256 of the bytes): {scan.distinct_all}",
        f"duplicate groups (byte-identical parsed files): {scan.duplicate_groups}, "
        f"holding {scan.extra_copies} extra copies",
        f"conflicting-label groups dropped (copies disagree on age, gender or race): "
        f"{len(scan.conflicting_groups)} ({scan.conflicting_files} files)",
        f"images kept: {len(scan.kept)}",
        "split: within each (label, race, gender) stratum, ordered by content sha256 and cut "
        + "/".join(f"{f:.0%}" for f in fractions),
        "terms: UTKFace is for non-commercial research use only",
    ]
    return notes
