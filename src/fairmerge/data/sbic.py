"""Social Bias Frames (SBIC v2, Sap et al., ACL 2020), one example per post.

Two split sources (option ``split_source``):

``"official"`` (default): SBIC's own aggregated files, ``SBIC.v2.agg.dev.csv.gz`` and
``SBIC.v2.agg.tst.csv.gz`` (the aggregated train file is not obtainable here). It is the default
because its test set is SBIC's own held-out split (comparable with published results) and is 6.8x
larger than the dev-hash test split (4,691 vs 693 posts; 791 vs 101 race-targeted posts),
which is what per-group metrics need.

- test = the official test file, every post;
- train / val = the official dev file, split by the sha256 of the post text: a post goes to train
  when its hash unit (``splits.hash_unit``) is below ``1 - val_fraction``, else to val; default
  80/20. Not stratified: each post's side depends on its own text only, so the split is
  the same on every machine and for every subset of the file (the label rates of the two sides
  are in the notes). The posts that occur in both official files (10) are dropped from train/val,
  so no test post is trained or selected on;
- label: 1 (offensive) when the file's ``offensiveYN`` (the annotators' mean) is >= 0.5;
- groups: ``targetMinority`` lists every distinct answer once (checked against the raw dev
  annotations: the list is the set of distinct annotator cells, without counts), so the only rule
  the files support is "a group counts when any annotator named it" (``min_target_share`` must be
  0 here). Each answer is split on commas and normalised like the raw file;
- attribute of a group: the ``targetCategory`` it is most often listed with, counting first the
  posts with a single category (unambiguous), else every category of the post; votes come from
  the dev file; the test file's votes count only for group names the dev file never uses (no
  labels are used). On the frequent groups this agrees with the raw file's row-level map (98% of
  memberships; the names that differ have at most 17 posts).

``"dev-hash"`` (the earlier behaviour): the raw SBIC v2 dev annotations (``SBFv2.dev.csv.gz``,
one row per annotator and implied stereotype), aggregated per post and split 70/15/15 by hash:

- label: 1 when the mean over annotators of ``offensiveYN`` (0 / 0.5 / 1) is >= 0.5; posts where
  no annotator answered are dropped (counted in the notes);
- groups: each ``targetMinority`` cell split on commas and normalised; a group counts when named
  by more than ``min_target_share`` of the post's annotators (0.5 gives the earlier default, a
  strict majority; a post with one annotator then takes that annotator's targets);
- attribute of a group: its most frequent ``targetCategory`` over the file's rows;
- splits: ``split_fractions`` (70/15/15) by the sha256 of the post text.

``split_source="dev-hash", min_target_share=0.5`` reproduces the loader as it was before the
official files arrived.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from fairmerge.data.hashing import provenance
from fairmerge.data.sources import reading, require_file
from fairmerge.data.splits import DEFAULT_FRACTIONS, hash_split
from fairmerge.data.table import read_table
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.paths import resolve_data_dir

SPLIT_SOURCES = ("official", "dev-hash")
DEV_FILE = "sbic/SBFv2.dev.csv.gz"
AGG_DEV_FILE = "sbic/SBIC.v2.agg.dev.csv.gz"
AGG_TEST_FILE = "sbic/SBIC.v2.agg.tst.csv.gz"
DEFAULT_VAL_FRACTION = 0.2
_WHERE = (
    "It is the SBIC v2 dev split (16,738 rows): data/SBFv2.dev.csv of "
    "github.com/Master-Project-Hate-Speech/STITCHeD (blob 6a3f07dc), or SBIC.v2.dev.csv from the "
    "Social Bias Frames release (maartensap.com/social-bias-frames); gzip it."
)
_WHERE_AGG = (
    "It is an official SBIC v2 aggregated file (SBIC.v2.agg.dev.csv / SBIC.v2.agg.tst.csv of the "
    "Social Bias Frames release, maartensap.com/social-bias-frames); gzip it, or pass "
    "split_source=dev-hash to use the raw dev annotations only."
)
COLUMNS = ("post", "WorkerId", "offensiveYN", "targetMinority", "targetCategory")
AGG_COLUMNS = ("post", "offensiveYN", "targetMinority", "targetCategory")


def normalise_group(name: str) -> str:
    """Lower case, single spaces: 'Black  Folks ' and 'black folks' are one group."""
    return " ".join(name.lower().split())


def split_groups(answers: Iterable[str]) -> set[str]:
    """Annotators' ``targetMinority`` answers → normalised groups ('immigrants, Africans' is two)."""
    return {g for answer in answers for part in answer.split(",") if (g := normalise_group(part))}


def post_id(text: str) -> str:
    """Stable id of a post (SBIC has none): a prefix of the sha256 of its text."""
    return "sbic-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _most_frequent(votes: Mapping[str, int]) -> str:
    """The most voted key; ties go to the alphabetically first."""
    return min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def load_sbic(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    split_source: str = "official",
    min_target_share: float = 0.0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> GroupedTextDataset:
    """SBIC v2 per post: the official test file with train/val from the official dev file
    (``split_source="official"``), or the raw dev annotations split 70/15/15 (``"dev-hash"``)."""
    if split_source not in SPLIT_SOURCES:
        raise ConfigError(f"split_source must be one of {list(SPLIT_SOURCES)}, got {split_source!r}")
    if not 0.0 <= float(min_target_share) < 1.0:
        raise ConfigError(f"min_target_share must be in [0, 1), got {min_target_share!r}")
    root = resolve_data_dir(data_dir)
    if split_source == "dev-hash":
        if val_fraction != DEFAULT_VAL_FRACTION:
            raise ConfigError("val_fraction applies to split_source=official; dev-hash uses split_fractions")
        return _load_dev_hash(root, float(min_target_share), split_fractions)
    if min_target_share != 0.0:
        raise ConfigError(
            "min_target_share must be 0 with split_source=official: the aggregated files list each "
            "target once, without annotator counts; use split_source=dev-hash for a share rule"
        )
    if tuple(split_fractions) != DEFAULT_FRACTIONS:
        raise ConfigError("split_fractions applies to split_source=dev-hash; official uses val_fraction")
    if not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    return _load_official(root, float(val_fraction))


def _parse_list(path: Path, column: str, row: int, cell: object) -> list[str]:
    """A Python-literal list of strings, as the aggregated files write them ('[]' or empty: none)."""
    if not isinstance(cell, str) or not cell.strip():
        return []
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(
            f"{path}: column {column!r}, row {row + 2}: expected a list of strings, got {cell[:80]!r}"
        )
    return value


def _read_aggregated(path: Path) -> pd.DataFrame:
    """One official aggregated file: post, offensive mean, target groups and categories per post."""
    frame = read_table(path, list(AGG_COLUMNS), text_columns=["post", "targetMinority", "targetCategory"])
    frame["post"] = frame["post"].astype(str)
    offensive = pd.to_numeric(frame["offensiveYN"], errors="coerce")
    bad = offensive.isna() | (offensive < 0) | (offensive > 1)
    if bad.any():
        raise DataError(f"{path}: column 'offensiveYN' has {int(bad.sum())} cell(s) outside [0, 1] or empty")
    if frame["post"].duplicated().any():
        raise DataError(f"{path}: column 'post' repeats {int(frame['post'].duplicated().sum())} post(s)")
    frame["offensiveYN"] = offensive
    targets = [
        split_groups(_parse_list(path, "targetMinority", i, cell))
        for i, cell in enumerate(frame["targetMinority"])
    ]
    frame["targets"] = pd.Series(targets, index=frame.index, dtype=object)
    frame["categories"] = [
        sorted({c.strip().lower() for c in _parse_list(path, "targetCategory", i, cell) if c.strip()})
        for i, cell in enumerate(frame["targetCategory"])
    ]
    return frame


def _attributes_from_aggregated(frame: pd.DataFrame) -> dict[str, str]:
    """Group → the category it is most often listed with (single-category posts first)."""
    single: dict[str, Counter[str]] = defaultdict(Counter)
    every: dict[str, Counter[str]] = defaultdict(Counter)
    for targets, categories in zip(frame["targets"], frame["categories"], strict=True):
        for group in targets:
            for category in categories:
                every[group][category] += 1
                if len(categories) == 1:
                    single[group][category] += 1
    return {g: _most_frequent(single.get(g) or votes) for g, votes in every.items()}


def _split_of(frame: pd.DataFrame, attribute_of: Mapping[str, str], attributes: list[str]) -> TextSplit:
    texts = frame["post"].tolist()
    groups = {
        a: [frozenset(g for g in targets if attribute_of.get(g) == a) for targets in frame["targets"]]
        for a in attributes
    }
    labels = (frame["offensiveYN"] >= 0.5).to_numpy(dtype=np.int64)
    return TextSplit(
        ids=[post_id(t) for t in texts], texts=texts, labels=labels, groups=groups, weak_groups=False
    )


def _load_official(root: Path, val_fraction: float) -> GroupedTextDataset:
    dev_path = require_file(root, AGG_DEV_FILE, _WHERE_AGG)
    test_path = require_file(root, AGG_TEST_FILE, _WHERE_AGG)
    dev, test = _read_aggregated(dev_path), _read_aggregated(test_path)
    attribute_of = {**_attributes_from_aggregated(test), **_attributes_from_aggregated(dev)}
    attributes = sorted(set(attribute_of.values()))
    in_test = dev["post"].isin(set(test["post"]))
    kept = dev[~in_test].reset_index(drop=True)
    side = hash_split(kept["post"].tolist(), (1.0 - val_fraction, val_fraction, 0.0))
    splits = {
        "train": _split_of(kept[side == "train"], attribute_of, attributes),
        "val": _split_of(kept[side == "val"], attribute_of, attributes),
        "test": _split_of(test, attribute_of, attributes),
    }
    unassigned = sorted(
        {g for frame in (dev, test) for targets in frame["targets"] for g in targets} - set(attribute_of)
    )
    notes = [
        f"official SBIC v2 aggregated files: dev {len(dev)} posts, test {len(test)} posts; "
        f"{int(in_test.sum())} dev posts that are also in the test file dropped",
        "label: 1 (offensive) when the file's offensiveYN (annotators' mean) is >= 0.5",
        "groups: targetMinority split on commas, lower-cased; a group counts when any annotator named it "
        "(the aggregated lists carry no counts); attribute = the targetCategory the group is most often "
        "listed with (single-category posts first; dev votes, test only for names dev lacks)"
        + (
            f"; {len(unassigned)} group name(s) never listed with a category are ignored"
            if unassigned
            else ""
        ),
        "splits: test = the official test file; train/val = the official dev file, "
        f"{1 - val_fraction:.0%}/{val_fraction:.0%} by sha256 of the post text (not stratified; "
        f"offensive rate train {splits['train'].labels.mean():.1%}, val {splits['val'].labels.mean():.1%}, "
        f"test {splits['test'].labels.mean():.1%})",
        _targets_note(splits["test"], "test"),
    ]
    return GroupedTextDataset(
        name="sbic",
        splits=splits,
        label_scheme="offensive (mean offensiveYN >= 0.5)",
        notes=notes,
        provenance=provenance([dev_path, test_path], root),
    )


def _targets_note(split: TextSplit, name: str) -> str:
    targeted = np.zeros(len(split), dtype=bool)
    for members in split.groups.values():
        targeted |= np.fromiter((bool(m) for m in members), dtype=bool, count=len(split))
    return (
        f"SBIC asks for targets only when an annotator finds the post offensive: {int(targeted.sum())} "
        f"{name} posts have a group, {split.labels[targeted].mean():.1%} of them positive, so per-group "
        "FPR is mostly undefined here"
    )


def _load_dev_hash(
    root: Path, min_target_share: float, split_fractions: tuple[float, float, float]
) -> GroupedTextDataset:
    path = require_file(root, DEV_FILE, _WHERE)
    with reading(path, "CSV"):
        header = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {header}")
    with reading(path, "CSV"):
        rows = pd.read_csv(path, usecols=list(COLUMNS))
    rows["post"] = rows["post"].astype(str)

    category_votes: dict[str, Counter[str]] = defaultdict(Counter)
    named: dict[str, dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    for post, worker, minority, category in zip(
        rows["post"], rows["WorkerId"], rows["targetMinority"], rows["targetCategory"], strict=True
    ):
        if not isinstance(minority, str):
            continue
        for group in split_groups([minority]):
            named[post][group].add(worker)
            if isinstance(category, str):
                category_votes[group][category.strip().lower()] += 1
    attribute_of = {g: _most_frequent(votes) for g, votes in category_votes.items()}
    attributes = sorted(set(attribute_of.values()))

    per_post = rows.groupby("post", sort=True).agg(
        offensive=("offensiveYN", "mean"), annotators=("WorkerId", "nunique")
    )
    unanswered = int(per_post["offensive"].isna().sum())
    per_post = per_post[per_post["offensive"].notna()]
    texts = per_post.index.tolist()
    labels = (per_post["offensive"] >= 0.5).to_numpy(dtype=np.int64)
    groups: dict[str, list[frozenset[str]]] = {a: [] for a in attributes}
    for text, n_annotators in zip(texts, per_post["annotators"].tolist(), strict=True):
        chosen = [g for g, who in named.get(text, {}).items() if len(who) > min_target_share * n_annotators]
        for attribute in attributes:
            groups[attribute].append(frozenset(g for g in chosen if attribute_of.get(g) == attribute))

    assignment = hash_split(texts, split_fractions)
    full = TextSplit(
        ids=[post_id(t) for t in texts], texts=texts, labels=labels, groups=groups, weak_groups=False
    )
    splits = {s: full.subset(assignment == s) for s in SPLITS}
    notes = [
        f"{len(rows)} annotation rows over {len(per_post) + unanswered} posts; "
        f"{unanswered} posts dropped because no annotator answered offensiveYN",
        "label: 1 (offensive) when the mean offensiveYN over the post's annotators is >= 0.5",
        f"groups: targetMinority split on commas, lower-cased; a group counts when named by more than "
        f"{min_target_share:.0%} of the post's annotators; "
        "attribute = the group's most frequent targetCategory",
        "splits: {:.0%}/{:.0%}/{:.0%} by sha256 of the post text ".format(*split_fractions)
        + "(SBIC raw dev annotations only; split_source=dev-hash)",
        _targets_note(full, "dev"),
    ]
    return GroupedTextDataset(
        name="sbic",
        splits=splits,
        label_scheme="offensive (mean offensiveYN >= 0.5)",
        notes=notes,
        provenance=provenance([path], root),
    )
