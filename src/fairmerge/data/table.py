"""Any CSV / TSV / Parquet file as a dataset, through a column mapping.

``read_table_split`` turns one file into a :class:`TextSplit`; ``load_table_dataset`` (registry name
``csv``) builds a whole dataset from train / val / test files, or from one file with a split column.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fairmerge.data.hashing import provenance
from fairmerge.data.sources import optional_data_dir, reading
from fairmerge.data.splits import DEFAULT_FRACTIONS, canonical_split, hash_split
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import DataError

PathLike = str | os.PathLike[str]
GroupColumns = Mapping[str, str] | Sequence[str] | str

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


def table_columns(path: PathLike) -> list[str]:
    """The column names of a CSV / TSV / Parquet file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    with _readable(path):
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, sep=_separator(path), nrows=0).columns)


def _readable(path: Path) -> contextlib.AbstractContextManager[None]:
    """A parser's failure on ``path`` as a one-line DataError naming it."""
    return reading(path, "Parquet" if _is_parquet(path) else "CSV")


def read_table(
    path: PathLike, columns: Sequence[str] | None = None, *, text_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.csv.gz``), TSV or Parquet file; check that ``columns`` exist.

    Columns are checked against the header before the body is parsed, so a wrong name fails fast
    with the list of the columns that are there. CSV columns in ``text_columns`` are read as
    strings (ids such as ``007`` and label values keep their spelling).
    """
    path = Path(path)
    found = table_columns(path)
    missing = [c for c in columns or [] if c not in found]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {found}")
    usecols = list(dict.fromkeys(columns)) if columns else None
    with _readable(path):
        if _is_parquet(path):
            return pd.read_parquet(path, columns=usecols)
        dtype = {c: "string" for c in text_columns if usecols is None or c in usecols}
        return pd.read_csv(path, sep=_separator(path), usecols=usecols, dtype=dtype)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def _separator(path: Path) -> str:
    return "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","


def parse_group_columns(group_cols: GroupColumns) -> dict[str, str]:
    """Attribute → column. Accepts a mapping, a list of columns (attribute = column name), or a
    string ``"race=col_a,gender=col_b"`` / ``"col_a,col_b"`` as typed on a command line."""
    if isinstance(group_cols, str):
        items = [part.strip() for part in group_cols.split(",") if part.strip()]
        mapping = {}
        for item in items:
            attribute, _, column = item.partition("=")
            mapping[attribute.strip()] = (column or attribute).strip()
    elif isinstance(group_cols, Mapping):
        mapping = {str(a): str(c) for a, c in group_cols.items()}
    else:
        mapping = {str(c): str(c) for c in group_cols}
    if not mapping:
        raise DataError("no group columns given: map at least one attribute to a column")
    return mapping


def binary_labels(values: pd.Series, column: str, positive: object = None) -> np.ndarray:
    """0/1 labels from a label column: already binary, or 1 where the cell equals ``positive``."""
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())[:5].tolist()
        count = int(values.isna().sum())
        raise DataError(f"label column {column!r} has {count} empty cells (rows {rows}...)")
    text = values.astype(str).str.strip()
    if positive is not None:
        wanted = str(positive).strip()
        hits = text == wanted
        if not hits.any():
            numeric = pd.to_numeric(text, errors="coerce")
            with contextlib.suppress(ValueError):
                hits = numeric == float(wanted)
        if not hits.any():
            warnings.warn(
                f"label column {column!r} never equals positive={positive!r} here; values found: "
                f"{sorted(text.unique().tolist())[:20]}",
                stacklevel=2,
            )
        elif text.nunique() > 2:
            classes = sorted(text.unique().tolist())
            warnings.warn(
                f"label column {column!r} has {len(classes)} classes {classes[:10]}; positive={positive!r} "
                "is scored against all the others together (one-vs-rest)",
                stacklevel=2,
            )
        return hits.to_numpy(dtype=np.int64)
    lowered = text.str.lower()
    unknown = sorted(set(lowered.unique()) - _TRUE - _FALSE)
    if unknown:
        raise DataError(
            f"label column {column!r} is not binary (values {unknown[:10]}...); "
            "pass positive=VALUE to name the positive class"
        )
    return lowered.isin(_TRUE).to_numpy(dtype=np.int64)


def group_sets(values: pd.Series, separator: str | None = None) -> list[frozenset[str]]:
    """Per-row group sets from a group column: empty cells → no group; ``separator`` splits cells."""
    result: list[frozenset[str]] = []
    for cell in values.tolist():
        if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
            result.append(frozenset())
            continue
        if isinstance(cell, float) and cell.is_integer():
            cell = int(cell)
        parts = str(cell).split(separator) if separator else [str(cell)]
        result.append(frozenset(p.strip() for p in parts if p.strip()))
    return result


def frame_to_split(
    frame: pd.DataFrame,
    *,
    text_col: str,
    label_col: str,
    group_cols: Mapping[str, str],
    positive: object = None,
    group_sep: str | None = None,
    id_col: str | None = None,
    source: str = "table",
    weak_groups: bool = False,
) -> TextSplit:
    """Build a TextSplit from an in-memory frame with the same column mapping as ``read_table_split``."""
    needed = [text_col, label_col, *group_cols.values(), *([id_col] if id_col else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; columns found: {list(frame.columns)}")
    texts = frame[text_col]
    if texts.isna().any():
        rows = np.flatnonzero(texts.isna().to_numpy())[:5].tolist()
        raise DataError(f"{source}: text column {text_col!r} has empty cells (rows {rows}...)")
    if id_col:
        ids = frame[id_col].astype(str).tolist()
        duplicated = frame[id_col][frame[id_col].duplicated()].astype(str).unique().tolist()
        if duplicated:
            raise DataError(f"{source}: id column {id_col!r} has duplicates, e.g. {duplicated[:5]}")
    else:
        ids = [str(i) for i in range(len(frame))]
    return TextSplit(
        ids=ids,
        texts=texts.astype(str).tolist(),
        labels=binary_labels(frame[label_col], label_col, positive),
        groups={attr: group_sets(frame[col], group_sep) for attr, col in group_cols.items()},
        weak_groups=weak_groups,
    )


def read_table_split(
    path: PathLike,
    *,
    text_col: str,
    label_col: str,
    group_cols: Mapping[str, str],
    positive: object = None,
    group_sep: str | None = None,
    id_col: str | None = None,
) -> TextSplit:
    """One CSV / Parquet file as a TextSplit.

    Parameters
    ----------
    text_col, label_col : column names of the text and the label.
    group_cols : attribute name → column holding that attribute's group(s).
    positive : the label value meaning "positive"; when None the column must already be binary
        (0/1, true/false).
    group_sep : separator inside multi-valued group cells (e.g. ``"|"``); None means one group per cell.
    id_col : column of example ids; row numbers when None.
    """
    mapping = parse_group_columns(group_cols)
    columns = [text_col, label_col, *mapping.values(), *([id_col] if id_col else [])]
    frame = read_table(path, columns, text_columns=columns)
    if frame.empty:
        raise DataError(f"data file {path} has a header but no rows")
    split = frame_to_split(
        frame,
        text_col=text_col,
        label_col=label_col,
        group_cols=mapping,
        positive=positive,
        group_sep=group_sep,
        id_col=id_col,
        source=str(path),
    )
    if positive is not None and not split.labels.any():  # a whole file without one positive: a typo
        found = sorted(frame[label_col].astype(str).str.strip().unique().tolist())[:20]
        raise DataError(
            f"label column {label_col!r} never equals positive={positive!r} in {path}; values: {found}"
        )
    return split


def load_table_dataset(
    data_dir: PathLike | None = None,
    *,
    path: PathLike | None = None,
    train: PathLike | None = None,
    val: PathLike | None = None,
    test: PathLike | None = None,
    split_col: str | None = "split",
    text_col: str = "text",
    label_col: str = "label",
    group_cols: GroupColumns = "group",
    positive: object = None,
    group_sep: str | None = None,
    id_col: str | None = None,
    name: str = "csv",
) -> GroupedTextDataset:
    """A dataset from ``train``/``val``/``test`` files, or from one ``path`` with a ``split_col``.

    With one file and ``split_col=None`` the rows are split 70/15/15 by a hash of the id (or text).
    Relative paths are resolved against ``data_dir`` (or ``$FAIRMERGE_DATA_DIR``) when one is set,
    else against the working directory.
    """
    mapping = parse_group_columns(group_cols)
    per_split = {s: f for s, f in (("train", train), ("val", val), ("test", test)) if f is not None}
    if path is not None and per_split:
        raise DataError("give either one file (path=) or per-split files (train=/val=/test=), not both")
    if path is None and not per_split:
        raise DataError("no table given: pass path=FILE (with a split column) or train=/val=/test= files")
    columns = [text_col, label_col, *mapping.values(), *([id_col] if id_col else [])]
    named = [path] if path is not None else list(per_split.values())
    # files given by absolute path need no data directory; relative ones resolve under it when set
    relative = any(not Path(f).expanduser().is_absolute() for f in named if f is not None)
    root = optional_data_dir(data_dir) if relative else None

    def build(frame: pd.DataFrame, source: str) -> TextSplit:
        with warnings.catch_warnings():  # a split without positives is checked for the whole dataset
            warnings.simplefilter("ignore", UserWarning)
            return frame_to_split(
                frame,
                text_col=text_col,
                label_col=label_col,
                group_cols=mapping,
                positive=positive,
                group_sep=group_sep,
                id_col=id_col,
                source=source,
            )

    splits: dict[str, TextSplit] = {}
    notes: list[str] = []
    used: list[Path] = []
    if path is not None:
        file = _resolve(path, root)
        used.append(file)
        try:
            frame = read_table(file, [*columns, *([split_col] if split_col else [])], text_columns=columns)
        except DataError as exc:
            if split_col and split_col in str(exc):
                raise DataError(f"{exc} (pass split_col=None to split the rows by hash instead)") from exc
            raise
        if split_col:
            names = np.array([canonical_split(v, split_col) for v in frame[split_col].tolist()])
            notes.append(f"splits from column {split_col!r} of {file.name}")
        else:
            keys = frame[id_col].astype(str) if id_col else frame[text_col].astype(str)
            names = hash_split(keys.tolist(), DEFAULT_FRACTIONS)
            notes.append("splits: 70/15/15 by sha256 of the " + ("id" if id_col else "text"))
        for split in SPLITS:
            rows = frame[names == split].reset_index(drop=True)
            if len(rows):
                splits[split] = build(rows, f"{file} [{split}]")
    else:
        for split, file_name in per_split.items():
            file = _resolve(file_name, root)
            used.append(file)
            splits[split] = build(read_table(file, columns, text_columns=columns), str(file))
    if positive is not None and not any(split.labels.any() for split in splits.values()):
        raise DataError(f"label column {label_col!r} never equals positive={positive!r} in any split")
    notes.extend(
        f"split {name!r} has no positive example" for name, sp in splits.items() if not sp.labels.any()
    )
    label_scheme = f"{label_col} == {positive!r}" if positive is not None else f"{label_col} (binary)"
    return GroupedTextDataset(
        name=name, splits=splits, label_scheme=label_scheme, notes=notes, provenance=provenance(used, root)
    )


def _resolve(path: PathLike, root: Path | None) -> Path:
    """Absolute paths as given; relative ones under the data directory when there is one."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or root is None:
        return candidate
    return root / candidate


def read_image_table_split(
    path: PathLike,
    *,
    image_col: str,
    label_col: str,
    group_cols: Mapping[str, str],
    positive: object = None,
    group_sep: str | None = None,
    id_col: str | None = None,
    allow_outside: bool = False,
) -> TextSplit:
    """One CSV / Parquet file of image paths as an image split (same columns as ``read_table_split``).

    ``image_col`` holds a path per row, relative to the table's folder. A path that leaves that
    folder (absolute, or through ``..``) is refused unless ``allow_outside``; one that does not
    exist or is not a file is a one-line DataError before any image is decoded.
    """
    split = read_table_split(
        path,
        text_col=image_col,
        label_col=label_col,
        group_cols=group_cols,
        positive=positive,
        group_sep=group_sep,
        id_col=id_col,
    )
    folder = Path(path).resolve().parent
    if not allow_outside:
        outside = [cell for cell in split.texts if not _stays_inside(cell, folder)]
        if outside:
            raise DataError(
                f"{path}: {len(outside)} image path(s) in column {image_col!r} lead outside the table's "
                f"folder {folder}, e.g. {outside[0]!r}; pass --allow-outside-paths (allow_outside=True) "
                "if the table is trusted"
            )
    paths = [str(_resolve(cell, folder)) for cell in split.texts]
    missing = [p for p in paths if not Path(p).exists()]
    folders = [p for p in paths if Path(p).is_dir()]
    for bad, problem in ((missing, "do not exist"), (folders, "are folders, not image files")):
        if bad:
            raise DataError(
                f"{path}: {len(bad)} of {len(paths)} image path(s) in column {image_col!r} {problem}, "
                f"e.g. {bad[0]}"
            )
    return dataclasses.replace(split, texts=paths, modality="image")


def _stays_inside(cell: str, folder: Path) -> bool:
    """Whether the relative path ``cell`` names something under ``folder`` (lexically: a symlink
    inside the folder may point elsewhere, as a user's own link)."""
    candidate = Path(cell).expanduser()
    if candidate.is_absolute():
        return False
    return Path(os.path.normpath(folder / candidate)).is_relative_to(folder)
