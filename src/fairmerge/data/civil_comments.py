"""Civil Comments with identity annotations (Borkan et al. 2019), in the WILDS / Jigsaw schema.

Expected file: WILDS ``civilcomments_v1.0/all_data_with_identities.csv`` (or the Jigsaw "Unintended
Bias" ``train.csv``, or any CSV / Parquet with the same columns): text in ``comment_text`` or
``text``, toxicity in ``toxicity`` (or Jigsaw's ``target``), identity columns holding the share of
annotators who saw that identity mentioned (``male``, ``female``, ``black``, ``muslim``, …).

- label: 1 when toxicity >= ``threshold`` (default 0.5, the Jigsaw / WILDS convention);
- groups: an identity counts when its column is > ``identity_threshold`` (default 0.5); empty cells
  (comments without identity annotation) count as no identity;
- splits: the file's ``split`` column when it has one (WILDS: train / val / test), else 70/15/15 by
  sha256 of the comment id (or text).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fairmerge.data.hashing import provenance
from fairmerge.data.sources import local_or_downloadable, optional_data_dir
from fairmerge.data.splits import DEFAULT_FRACTIONS, canonical_split, hash_split
from fairmerge.data.table import read_table, table_columns
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import DataError
from fairmerge.paths import default_cache_dir

CANDIDATES = (
    "civil_comments/all_data_with_identities.csv",
    "civil_comments/all_data_with_identities.csv.gz",
    "civil_comments/all_data_with_identities.parquet",
    "civilcomments_v1.0/all_data_with_identities.csv",
    "civil_comments/train.csv",
)
TEXT_COLUMNS = ("comment_text", "text")
LABEL_COLUMNS = ("toxicity", "target")
#: Identity column → attribute (the identity columns of Civil Comments / WILDS).
IDENTITY_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(["male", "female", "transgender", "other_gender"], "gender"),
    **dict.fromkeys(
        ["heterosexual", "homosexual_gay_or_lesbian", "bisexual", "other_sexual_orientation"],
        "sexual_orientation",
    ),
    **dict.fromkeys(
        ["christian", "jewish", "muslim", "hindu", "buddhist", "atheist", "other_religion"], "religion"
    ),
    **dict.fromkeys(["black", "white", "asian", "latino", "other_race_or_ethnicity"], "race"),
    **dict.fromkeys(
        [
            "physical_disability",
            "intellectual_or_learning_disability",
            "psychiatric_or_mental_illness",
            "other_disability",
        ],
        "disability",
    ),
}
_HOW = (
    "Get WILDS civilcomments_v1.0 (pip install wilds; then "
    "wilds.get_dataset('civilcomments', download=True)) or Jigsaw's 'Unintended Bias in Toxicity "
    f"Classification' train.csv, and put it at DATA_DIR/{CANDIDATES[0]}, or pass path=FILE"
)


def locate_civil_comments(
    data_dir: str | os.PathLike[str] | None, path: str | os.PathLike[str] | None, download: bool
) -> Path:
    """The Civil Comments file: ``path``, else the data directory, else a WILDS download when online."""
    found, where = local_or_downloadable(
        "Civil Comments", data_dir, path, CANDIDATES, download=download, how_to_get=_HOW
    )
    if found is not None:
        return found
    try:
        import wilds  # the public source of the identity-annotated release
    except ImportError as exc:
        raise DataError(
            f"Civil Comments data file not found {where}; downloading needs the 'wilds' package. {_HOW}."
        ) from exc
    cache = default_cache_dir() / "data"
    try:
        wilds.get_dataset(dataset="civilcomments", download=True, root_dir=str(cache))
    except Exception as exc:  # network or archive errors all mean the same thing to the user
        raise DataError(f"Civil Comments download with wilds failed ({exc}). {_HOW}.") from exc
    file = cache / "civilcomments_v1.0" / "all_data_with_identities.csv"
    if not file.is_file():
        raise DataError(f"wilds finished but {file} is missing. {_HOW}.")
    return file


def load_civil_comments(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
    identity_threshold: float = 0.5,
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    download: bool = True,
) -> GroupedTextDataset:
    """Civil Comments with identity groups (see the module docstring for every rule)."""
    file = locate_civil_comments(data_dir, path, download)
    header = table_columns(file)
    text_col = next((c for c in TEXT_COLUMNS if c in header), None)
    label_col = next((c for c in LABEL_COLUMNS if c in header), None)
    if text_col is None or label_col is None:
        wanted = TEXT_COLUMNS if text_col is None else LABEL_COLUMNS
        raise DataError(f"{file}: missing column, expected one of {list(wanted)}; columns found: {header}")
    identities = [c for c in IDENTITY_ATTRIBUTES if c in header]
    if not identities:
        raise DataError(
            f"{file}: no identity columns (expected some of {sorted(IDENTITY_ATTRIBUTES)}); "
            f"columns found: {header}"
        )
    id_col = "id" if "id" in header else None
    split_col = "split" if "split" in header else None
    columns = [text_col, label_col, *identities, *[c for c in (id_col, split_col) if c]]
    frame = read_table(file, columns, text_columns=[text_col, *([id_col] if id_col else [])])
    toxicity = pd.to_numeric(frame[label_col], errors="coerce")
    usable = frame[text_col].notna() & toxicity.notna()
    dropped = int((~usable).sum())
    frame, toxicity = frame[usable].reset_index(drop=True), toxicity[usable].reset_index(drop=True)

    ids = frame[id_col].astype(str).tolist() if id_col else [str(i) for i in range(len(frame))]
    attributes = list(dict.fromkeys(IDENTITY_ATTRIBUTES[c] for c in identities))
    present = {
        c: (pd.to_numeric(frame[c], errors="coerce") > identity_threshold).to_numpy() for c in identities
    }
    groups = {
        attribute: [
            frozenset(c for c in identities if IDENTITY_ATTRIBUTES[c] == attribute and present[c][i])
            for i in range(len(frame))
        ]
        for attribute in attributes
    }
    full = TextSplit(
        ids=ids,
        texts=frame[text_col].astype(str).tolist(),
        labels=(toxicity >= threshold).to_numpy(dtype=np.int64),
        groups=groups,
    )
    if split_col:
        assignment = np.array([canonical_split(v, split_col) for v in frame[split_col].tolist()])
        split_note = f"splits from the file's {split_col!r} column"
    else:
        assignment = hash_split(ids if id_col else full.texts, split_fractions)
        split_note = "splits: {:.0%}/{:.0%}/{:.0%} by sha256 of the ".format(*split_fractions) + (
            "id" if id_col else "text"
        )
    notes = [
        f"{len(frame)} comments from {file.name}; {dropped} rows dropped for empty text or {label_col}",
        f"label: 1 when {label_col} >= {threshold}",
        f"groups: an identity column counts when > {identity_threshold}; "
        f"{len(identities)} identity columns found",
        split_note,
    ]
    root = optional_data_dir(data_dir) if path is None else None
    return GroupedTextDataset(
        name="civil_comments",
        splits={s: full.subset(assignment == s) for s in SPLITS},
        label_scheme=f"{label_col} >= {threshold}",
        notes=notes,
        provenance=provenance([file], root),
    )
