"""Measuring Hate Speech (Kennedy et al. 2020; Berkeley D-Lab), the study's own dataset.

Published schema (``ucberkeley-dlab/measuring-hate-speech`` on the Hugging Face hub, file
``measuring-hate-speech.parquet``): one row per (comment, annotator) with ``comment_id``, ``text``,
``hate_speech_score`` (a per-comment IRT score, repeated on every row), ``hatespeech`` and boolean
``target_<attribute>_<group>`` columns (``target_race_black``, ``target_gender_women``, …) next to
per-attribute summaries (``target_race``) that we do not use.

Aggregation per comment:

- label: 1 when ``hate_speech_score > threshold`` (default 0.5). The dataset's authors read scores
  above 0.5 as (approximately) hate speech and below -1 as counter / supportive speech; the
  threshold is an option so the neutral band can be moved;
- groups: a ``target_*`` group counts when more than ``min_target_share`` (default 0.5, a strict
  majority) of the comment's annotators ticked it;
- attributes: race, religion, origin, gender, sexual_orientation (``target_sexuality_*``), age,
  disability — whatever ``target_<attribute>_<group>`` columns the file has (the original
  131-column schema has 53 ``target_*`` columns: 46 groups and 7 per-attribute summaries; its CSV
  writes booleans as ``true``/``false``, which pandas reads as booleans);
- splits: a ``split`` column when the file has one, else 70/15/15 by sha256 of ``comment_id``.
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
from fairmerge.errors import ConfigError, DataError

HF_REPO = "ucberkeley-dlab/measuring-hate-speech"
HF_FILE = "measuring-hate-speech.parquet"
CANDIDATES = (
    "mhs/measuring-hate-speech.parquet",
    "mhs/measuring-hate-speech.csv",
    "mhs/measuring-hate-speech.csv.gz",
    "measuring-hate-speech.parquet",
    "measuring-hate-speech.csv",
)
REQUIRED = ("comment_id", "text", "hate_speech_score")
#: MHS attribute prefix → our attribute name (shared with HateXplain where they mean the same).
ATTRIBUTE_NAMES = {"sexuality": "sexual_orientation"}


def target_column(column: str) -> tuple[str, str] | None:
    """``target_race_middle_eastern`` → ('race', 'middle_eastern'); None for other columns and for
    per-attribute summaries such as ``target_race``."""
    if not column.startswith("target_"):
        return None
    attribute, _, group = column[len("target_") :].partition("_")
    if not attribute or not group:
        return None
    return ATTRIBUTE_NAMES.get(attribute, attribute), group


def locate_mhs(
    data_dir: str | os.PathLike[str] | None, path: str | os.PathLike[str] | None, download: bool
) -> Path:
    """The MHS file: ``path``, else the data directory, else a download from the hub when online."""
    how = (
        f"Get {HF_FILE} from https://huggingface.co/datasets/{HF_REPO} and put it at "
        f"DATA_DIR/{CANDIDATES[0]}, or pass path=FILE"
    )
    found, where = local_or_downloadable("MHS", data_dir, path, CANDIDATES, download=download, how_to_get=how)
    if found is not None:
        return found
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise DataError(
            f"MHS data file not found {where}, and huggingface_hub is not installed. {how}."
        ) from exc
    try:
        return Path(hf_hub_download(repo_id=HF_REPO, filename=HF_FILE, repo_type="dataset"))
    except Exception as exc:  # network, auth or hub errors all mean the same thing to the user
        raise DataError(f"MHS data file not found {where} and the download failed ({exc}). {how}.") from exc


def _as_float(values: pd.Series) -> pd.Series:
    """Booleans, 0/1 numbers or 'True'/'False' strings as floats (NaN where unanswered)."""
    if values.dtype == bool:
        return values.astype(float)
    lowered = values.astype("string").str.strip().str.lower()
    return pd.to_numeric(lowered.replace({"true": "1", "false": "0"}), errors="coerce").astype(float)


def load_mhs(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    threshold: float = 0.5,
    min_target_share: float = 0.5,
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    download: bool = True,
) -> GroupedTextDataset:
    """Measuring Hate Speech aggregated per comment (see the module docstring for every rule)."""
    if not 0.0 <= float(min_target_share) < 1.0:
        raise ConfigError(f"min_target_share must be in [0, 1), got {min_target_share!r}")
    file = locate_mhs(data_dir, path, download)
    header = table_columns(file)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(f"{file}: missing column(s) {missing}; columns found: {header}")
    targets = {c: parsed for c in header if (parsed := target_column(c)) is not None}
    if not targets:
        raise DataError(f"{file}: no target_<attribute>_<group> columns; columns found: {header}")
    has_split = "split" in header
    frame = read_table(
        file, [*REQUIRED, *targets, *(["split"] if has_split else [])], text_columns=["comment_id", "text"]
    )
    frame["comment_id"] = frame["comment_id"].astype(str)
    for column in targets:
        frame[column] = _as_float(frame[column])
    score = pd.to_numeric(frame["hate_speech_score"], errors="coerce")
    if score.isna().any():
        raise DataError(f"{file}: hate_speech_score has {int(score.isna().sum())} non-numeric or empty cells")
    frame["hate_speech_score"] = score

    aggregations: dict[str, tuple[str, str]] = {
        "text": ("text", "first"),
        "score": ("hate_speech_score", "mean"),
        **{column: (column, "mean") for column in targets},
    }
    if has_split:
        aggregations["split"] = ("split", "first")
    comments = frame.groupby("comment_id", sort=True).agg(**aggregations)  # type: ignore[call-overload]

    attributes = sorted({attribute for attribute, _ in targets.values()})
    groups: dict[str, list[frozenset[str]]] = {}
    share = {c: (comments[c] > min_target_share).to_numpy() for c in targets}
    for attribute in attributes:
        columns = [(c, g) for c, (a, g) in targets.items() if a == attribute]
        groups[attribute] = [frozenset(g for c, g in columns if share[c][i]) for i in range(len(comments))]
    full = TextSplit(
        ids=comments.index.tolist(),
        texts=comments["text"].astype(str).tolist(),
        labels=(comments["score"] > threshold).to_numpy(dtype=np.int64),
        groups=groups,
    )
    if has_split:
        assignment = np.array([canonical_split(v, "split") for v in comments["split"].tolist()])
        split_note = "splits from the file's split column"
    else:
        assignment = hash_split(comments.index.tolist(), split_fractions)
        split_note = "splits: {:.0%}/{:.0%}/{:.0%} by sha256 of comment_id".format(*split_fractions)
    notes = [
        f"{len(frame)} annotation rows over {len(comments)} comments",
        f"label: 1 when the comment's hate_speech_score > {threshold}",
        f"groups: a target_<attribute>_<group> column counts when more than {min_target_share:.0%} of "
        f"the comment's annotators ticked it "
        f"({len(targets)} group columns over {len(attributes)} attributes)",
        split_note,
    ]
    root = optional_data_dir(data_dir) if path is None else None
    return GroupedTextDataset(
        name="mhs",
        splits={s: full.subset(assignment == s) for s in SPLITS},
        label_scheme=f"hate_speech_score > {threshold}",
        notes=notes,
        provenance=provenance([file], root),
    )
