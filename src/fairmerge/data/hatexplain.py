"""HateXplain (Mathew et al., AAAI 2021) with official splits, gold val/test targets and weak train targets.

Files (see the shared data folder's SOURCES.md):

- ``post_id_divisions.json``: the official train / val / test post ids;
- ``mbib_092-HateXplain.csv.gz``: text and majority category of all 20,148 posts (MBIB's cleaning);
- ``hatexplain_{val,test}_annotators.csv.gz``: the three annotators' labels and targets per post;
  a target is **gold** when at least 2 of the 3 annotators named it;
- ``weak_targets_final_hateXplain.csv.gz``: a third-party file with one target per category and no
  post id. It is joined to the posts by text, after applying to its text the very cleaning that
  produced the MBIB text. Train targets come only from it and are marked weak.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fairmerge.data.hashing import provenance
from fairmerge.data.sources import reading, require_file
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.paths import resolve_data_dir

LabelScheme = Literal["hate", "toxic"]

DIVISIONS = "hatexplain/post_id_divisions.json"
POSTS = "hatexplain/mbib_092-HateXplain.csv.gz"
ANNOTATORS = {
    "val": "hatexplain/hatexplain_val_annotators.csv.gz",
    "test": "hatexplain/hatexplain_test_annotators.csv.gz",
}
WEAK = "hatexplain/weak_targets_final_hateXplain.csv.gz"

_WHERE = {
    DIVISIONS: "Get Data/post_id_divisions.json from github.com/hate-alert/HateXplain.",
    POSTS: "Get datasets/092_HateXplain/092-HateXplain.csv from github.com/Media-Bias-Group/MBIB "
    "and gzip it.",
    ANNOTATORS["val"]: "Get data/load_and_preprocess/df_val_processed.csv from "
    "github.com/shivam0109/CS4NLP-HateXplain and gzip it.",
    ANNOTATORS["test"]: "Get data/load_and_preprocess/df_test_processed.csv from "
    "github.com/shivam0109/CS4NLP-HateXplain and gzip it.",
    WEAK: "Get 'src/1. Explorative Analysis & Preprocessing/nasiba/data/final_hateXplain.csv' from "
    "github.com/netGed/WebScience24 and gzip it.",
}

ATTRIBUTES = ("race", "gender", "religion", "sexual_orientation", "other")
#: Every target name HateXplain's annotators use, by attribute ('None' means no target).
TARGET_ATTRIBUTES: dict[str, str] = {
    **dict.fromkeys(["African", "Arab", "Asian", "Caucasian", "Hispanic", "Indian", "Indigenous"], "race"),
    **dict.fromkeys(["Women", "Men"], "gender"),
    **dict.fromkeys(["Islam", "Jewish", "Christian", "Hindu", "Buddhism", "Nonreligious"], "religion"),
    **dict.fromkeys(["Homosexual", "Heterosexual", "Bisexual", "Asexual"], "sexual_orientation"),
    **dict.fromkeys(["Refugee", "Disability", "Economic", "Minority", "Other"], "other"),
}
NO_TARGET = "None"

#: MBIB ``category``: 0 normal, 1 hatespeech, 2 offensive, 3 undecided (no 2-of-3 majority).
NORMAL, HATE, OFFENSIVE, UNDECIDED = 0, 1, 2, 3
#: The annotator files encode labels as the HF ClassLabel: 0 hatespeech, 1 normal, 2 offensive.
_ANNOTATOR_TO_CATEGORY = {0: HATE, 1: NORMAL, 2: OFFENSIVE}

#: Weak file column → our attribute, and the values it uses for "no target of this attribute".
WEAK_COLUMNS = {
    "Race": "race",
    "Religion": "religion",
    "Gender": "gender",
    "Sexual Orientation": "sexual_orientation",
    "Miscellaneous": "other",
}
WEAK_NONE = frozenset({"", "None", "No_race", "Nonreligious", "No_gender", "No_orientation"})

Groups = dict[str, frozenset[str]]
_NO_GROUPS: Groups = {a: frozenset() for a in ATTRIBUTES}


# --- text keys for the join ---------------------------------------------------------------------

_MENTION = re.compile(r"@[A-Za-z0-9_]+")
_LINK = re.compile(r"https?://[A-Za-z0-9./]+")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def mbib_clean(text: str) -> str:
    """MBIB's ``prepare_text`` (datasets/data_utils.py in Media-Bias-Group/MBIB), re-implemented.

    Hand-written on purpose: the MBIB text was produced by exactly this function, so applying it to
    the weak file's text is what makes the two comparable. Its two character filters together
    replace every non-alphanumeric run by a space; it then drops the substring ``linebreak``.
    """
    text = _MENTION.sub(" ", text)
    text = _LINK.sub(" ", text)
    text = _NON_ALNUM.sub(" ", text)
    return text.replace("linebreak", "")


def join_key(text: str) -> str:
    """Key for the weak join: MBIB cleaning, lower case, single spaces."""
    return " ".join(mbib_clean(str(text)).lower().split())


def naive_key(text: str) -> str:
    """The naive key (lower case, single spaces) that the join is measured against."""
    return " ".join(str(text).lower().split())


# --- reading the files ------------------------------------------------------------------------


def read_divisions(path: Path) -> dict[str, list[str]]:
    """Official post ids per split."""
    with reading(path, "JSON"), open(path, encoding="utf-8") as handle:
        divisions = json.load(handle)
    if not isinstance(divisions, dict):
        raise DataError(f"{path}: expected a JSON object of split -> post ids")
    missing = [s for s in SPLITS if s not in divisions]
    if missing:
        raise DataError(f"{path}: no split(s) {missing}; keys found: {sorted(divisions)}")
    return {s: [str(i) for i in divisions[s]] for s in SPLITS}


def read_posts(path: Path) -> pd.DataFrame:
    """MBIB posts indexed by post_id with columns ``text`` and ``category``."""
    with reading(path, "CSV"):
        frame = pd.read_csv(path, index_col=0, keep_default_na=False)
    missing = [c for c in ("text", "category") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {list(frame.columns)}")
    frame.index = frame.index.astype(str)
    return frame[["text", "category"]]


@dataclass(frozen=True)
class GoldTargets:
    """Gold targets of one annotated split: per post, the majority category and the group sets."""

    categories: pd.Series  # post_id -> MBIB-style category from the 3 annotators
    groups: dict[str, Groups]  # post_id -> attribute -> groups named by >= 2 annotators
    names: Counter[str]  # every target name seen, with how many annotations used it


def read_gold_targets(path: Path, min_annotators: int = 2) -> GoldTargets:
    """Parse a per-annotator file; a target counts when ``min_annotators`` annotators named it."""
    with reading(path, "CSV"):
        frame = pd.read_csv(path, usecols=lambda c: c in {"id", "annotators"})
    missing = [c for c in ("id", "annotators") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    names: Counter[str] = Counter()
    categories: dict[str, int] = {}
    groups: dict[str, Groups] = {}
    for post_id, cell in zip(frame["id"].astype(str), frame["annotators"], strict=True):
        record = ast.literal_eval(cell)  # a Python-literal dict, not JSON
        label, count = Counter(record["label"]).most_common(1)[0]
        categories[post_id] = _ANNOTATOR_TO_CATEGORY[label] if count >= 2 else UNDECIDED
        per_name = Counter(name for targets in record["target"] for name in set(targets))
        names.update(name for targets in record["target"] for name in targets)
        chosen = [n for n, c in per_name.items() if c >= min_annotators and n != NO_TARGET]
        groups[post_id] = _by_attribute(chosen)
    return GoldTargets(pd.Series(categories, name="category"), groups, names)


def _by_attribute(names: Iterable[str]) -> Groups:
    buckets: dict[str, set[str]] = {a: set() for a in ATTRIBUTES}
    for name in names:
        buckets[TARGET_ATTRIBUTES.get(name, "other")].add(name)
    return {a: frozenset(g) for a, g in buckets.items()}


@dataclass(frozen=True)
class WeakTargets:
    """The weak file indexed by join key; ``None`` marks keys whose rows disagree on targets."""

    by_key: dict[str, Groups | None]
    naive_keys: frozenset[str]
    rows: int


def read_weak_targets(path: Path) -> WeakTargets:
    """Read the weak-targets file and index its target sets by :func:`join_key` of its text."""
    with reading(path, "CSV"):
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    missing = [c for c in ["comment", *WEAK_COLUMNS] if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {list(frame.columns)}")
    by_key: dict[str, Groups | None] = {}
    columns = [frame[c].str.strip().tolist() for c in WEAK_COLUMNS]
    attributes = list(WEAK_COLUMNS.values())
    for comment, *values in zip(frame["comment"].tolist(), *columns, strict=True):
        groups = dict(_NO_GROUPS)
        for attribute, value in zip(attributes, values, strict=True):
            if value not in WEAK_NONE:
                groups[attribute] = frozenset({value})
        key = join_key(comment)
        if key in by_key and by_key[key] != groups:
            by_key[key] = None  # same text, different targets: ambiguous, never used
        elif key not in by_key:
            by_key[key] = groups
    return WeakTargets(by_key, frozenset(naive_key(c) for c in frame["comment"]), len(frame))


# --- the join report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeakJoin:
    """How well the weak file joins to the posts, and how it agrees with gold targets.

    ``coverage`` maps split → (posts with an unambiguous weak match, posts); ``naive_coverage`` the
    fraction reached by the naive key on the same posts; ``ambiguous`` posts whose text matches weak
    rows with conflicting targets; ``quality`` one row per (attribute, group) over matched val+test
    posts with columns gold_n, weak_n, both, precision, recall.
    """

    coverage: dict[str, tuple[int, int]]
    naive_coverage: dict[str, float]
    ambiguous: dict[str, int]
    quality: pd.DataFrame


def _weak_groups_for(texts: pd.Series, weak: WeakTargets) -> tuple[list[Groups | None], int, int]:
    """Per post: weak groups, or None when unmatched/ambiguous; plus counts (ambiguous, naive hits)."""
    found: list[Groups | None] = []
    ambiguous = 0
    for text in texts.tolist():
        key = join_key(text)
        groups = weak.by_key.get(key)
        ambiguous += key in weak.by_key and groups is None
        found.append(groups)
    naive_hits = int(sum(naive_key(t) in weak.naive_keys for t in texts.tolist()))
    return found, ambiguous, naive_hits


def _quality(gold: Mapping[str, Groups], weak: Mapping[str, Groups | None]) -> pd.DataFrame:
    counts: Counter[tuple[str, str, str]] = Counter()
    for post_id, gold_groups in gold.items():
        weak_groups = weak.get(post_id)
        if weak_groups is None:
            continue
        for attribute in ATTRIBUTES:
            g, w = gold_groups[attribute], weak_groups[attribute]
            counts.update((attribute, name, "gold_n") for name in g)
            counts.update((attribute, name, "weak_n") for name in w)
            counts.update((attribute, name, "both") for name in g & w)
    keys = sorted({(a, n) for a, n, _ in counts})
    frame = pd.DataFrame(
        [
            {"attribute": a, "group": n, **{k: counts[(a, n, k)] for k in ("gold_n", "weak_n", "both")}}
            for a, n in keys
        ],
        columns=["attribute", "group", "gold_n", "weak_n", "both"],
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["precision"] = frame["both"] / frame["weak_n"].where(frame["weak_n"] > 0)
        frame["recall"] = frame["both"] / frame["gold_n"].where(frame["gold_n"] > 0)
    return frame


# --- the loader ---------------------------------------------------------------------------------


def _labels(categories: pd.Series, label_scheme: str) -> np.ndarray:
    if label_scheme == "hate":
        return (categories == HATE).to_numpy(dtype=np.int64)
    return categories.isin([HATE, OFFENSIVE]).to_numpy(dtype=np.int64)


def _build(data_dir: str | os.PathLike[str] | None, label_scheme: str) -> tuple[GroupedTextDataset, WeakJoin]:
    if label_scheme not in ("hate", "toxic"):
        raise ConfigError(f"label_scheme must be 'hate' or 'toxic', got {label_scheme!r}")
    root = resolve_data_dir(data_dir)
    needed = (DIVISIONS, POSTS, *ANNOTATORS.values(), WEAK)
    files = {rel: require_file(root, rel, _WHERE[rel]) for rel in needed}
    divisions = read_divisions(files[DIVISIONS])
    posts = read_posts(files[POSTS])
    gold = {s: read_gold_targets(files[rel]) for s, rel in ANNOTATORS.items()}
    weak = read_weak_targets(files[WEAK])

    splits: dict[str, TextSplit] = {}
    coverage: dict[str, tuple[int, int]] = {}
    naive_coverage: dict[str, float] = {}
    ambiguous: dict[str, int] = {}
    weak_by_post: dict[str, Groups | None] = {}
    dropped: dict[str, int] = {}
    for split in SPLITS:
        ids = divisions[split]
        absent = [i for i in ids if i not in posts.index]
        if absent:
            raise DataError(f"{files[POSTS]}: {len(absent)} {split} post ids are missing, e.g. {absent[:3]}")
        rows = posts.loc[ids]
        decided = rows["category"] != UNDECIDED
        dropped[split] = int((~decided).sum())
        rows = rows[decided]
        found, ambiguous[split], naive_hits = _weak_groups_for(rows["text"], weak)
        coverage[split] = (sum(g is not None for g in found), len(rows))
        naive_coverage[split] = naive_hits / len(rows) if len(rows) else float("nan")
        weak_by_post.update(zip(rows.index, found, strict=True))
        if split in gold:
            missing_gold = [i for i in rows.index if i not in gold[split].groups]
            if missing_gold:
                raise DataError(f"{files[ANNOTATORS[split]]}: no annotations for {len(missing_gold)} posts")
            per_post = [gold[split].groups[i] for i in rows.index]
        else:
            per_post = [g if g is not None else _NO_GROUPS for g in found]
        splits[split] = TextSplit(
            ids=rows.index.tolist(),
            texts=rows["text"].astype(str).tolist(),
            labels=_labels(rows["category"], label_scheme),
            groups={a: [g[a] for g in per_post] for a in ATTRIBUTES},
            weak_groups=split not in gold,
        )

    gold_groups = {pid: g for s in gold.values() for pid, g in s.groups.items()}
    quality = _quality(gold_groups, weak_by_post)
    report = WeakJoin(coverage, naive_coverage, ambiguous, quality)

    notes = _notes(label_scheme, posts, divisions, dropped, gold, report)
    dataset = GroupedTextDataset(
        name="hatexplain",
        splits=splits,
        label_scheme=label_scheme,
        notes=notes,
        provenance=provenance(files.values(), root),
    )
    return dataset, report


def _notes(
    label_scheme: str,
    posts: pd.DataFrame,
    divisions: dict[str, list[str]],
    dropped: dict[str, int],
    gold: dict[str, GoldTargets],
    report: WeakJoin,
) -> list[str]:
    """Human-readable facts about how the dataset was built: labels, dropped posts, groups, the join."""
    coverage, naive_coverage, ambiguous, quality = (
        report.coverage,
        report.naive_coverage,
        report.ambiguous,
        report.quality,
    )
    notes: list[str] = []
    notes.append(
        f"label scheme {label_scheme!r}: 1 = "
        + ("hatespeech" if label_scheme == "hate" else "hatespeech or offensive")
        + " by majority (>= 2 of 3 annotators), else 0"
    )
    in_splits = set().union(*map(set, divisions.values()))
    outside = posts[~posts.index.isin(in_splits)]
    outside_undecided = int((outside["category"] == UNDECIDED).sum())
    notes.append(
        f"posts with no majority label: {int((posts['category'] == UNDECIDED).sum())} in the MBIB file, "
        f"{outside_undecided} of them outside every official split (the official divisions already "
        f"leave them out); dropped from the splits: "
        + ", ".join(f"{s} {dropped[s]}" for s in SPLITS)
        + f"; {len(outside) - outside_undecided} decided posts are in no official split"
    )
    agree = sum(
        int(gold[s].categories.loc[divisions[s]].eq(posts.loc[divisions[s], "category"]).sum()) for s in gold
    )
    total = sum(len(divisions[s]) for s in gold)
    notes.append(f"val/test annotator majority agrees with the MBIB category for {agree}/{total} posts")
    notes.append("val/test groups: GOLD, a target counts when >= 2 of 3 annotators named it")
    names = Counter[str]()
    for s in gold.values():
        names.update(s.names)
    mapped = {
        a: sorted(n for n in names if n != NO_TARGET and TARGET_ATTRIBUTES.get(n, "other") == a)
        for a in ATTRIBUTES
    }
    unknown = sorted(n for n in names if n != NO_TARGET and n not in TARGET_ATTRIBUTES)
    notes.append(
        "target names found in the annotator files: "
        + "; ".join(f"{a}: {', '.join(v)}" for a, v in mapped.items())
        + ("; 'None' = no target" if NO_TARGET in names else "")
        + (f"; unknown names put under other: {unknown}" if unknown else "")
    )
    matched, n_train = coverage["train"]
    notes.append(
        f"train groups: WEAK, from {Path(WEAK).name} joined on MBIB-cleaned, lower-cased text; "
        f"coverage train {matched}/{n_train} ({matched / n_train:.2%}), "
        f"{ambiguous['train']} ambiguous (same text, conflicting targets) and "
        f"{n_train - matched - ambiguous['train']} unmatched posts get no groups; "
        f"the naive lower-case/whitespace join covers {naive_coverage['train']:.2%}"
    )
    val_test = [coverage[s] for s in gold]
    notes.append(
        "weak join on val+test: "
        f"{sum(m for m, _ in val_test)}/{sum(n for _, n in val_test)} posts "
        f"(naive {np.mean([naive_coverage[s] for s in gold]):.2%}); weak vs gold precision/recall: "
        + ", ".join(
            f"{r.group} {r.precision:.2f}/{r.recall:.2f} (gold {r.gold_n}, weak {r.weak_n})"
            for r in quality[quality["gold_n"] >= 10].itertuples()
        )
    )
    notes.append(
        "weak file limits: one target per category (a post naming Women and Men keeps one), "
        "'Nonreligious' there means no religious target, and its labels are not used"
    )
    return notes


def load_hatexplain(
    data_dir: str | os.PathLike[str] | None = None, *, label_scheme: LabelScheme = "hate"
) -> GroupedTextDataset:
    """HateXplain with official splits; gold val/test groups, weak train groups (``weak_groups``).

    ``label_scheme`` ``"hate"``: 1 when the majority category is hatespeech; ``"toxic"``: hatespeech
    or offensive vs normal. Posts without a majority category are dropped (the official divisions
    already leave out all 919 of them; the notes say so).
    """
    return _build(data_dir, label_scheme)[0]


def weak_join_report(data_dir: str | os.PathLike[str] | None = None) -> WeakJoin:
    """Coverage of the weak-target join per split and its precision / recall against gold targets."""
    return _build(data_dir, "hate")[1]
