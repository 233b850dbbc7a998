"""Social Bias Frames (SBIC v2, Sap et al., ACL 2020): the dev file, aggregated per post.

The file has one row per (annotator, implied stereotype); an annotator may contribute several rows
to one post. Aggregation, per post:

- label: 1 (offensive) when the mean over annotators of ``offensiveYN`` (0 / 0.5 / 1) is >= 0.5;
  posts where no annotator answered ``offensiveYN`` are dropped (counted in the notes);
- groups: each ``targetMinority`` cell is split on commas and normalised (lower case, single spaces);
  a group counts when named by more than ``min_target_share`` of the post's annotators (default
  0.5: a strict majority, e.g. 2 of 3; a post with one annotator takes that annotator's targets);
- attribute of a group: its most frequent ``targetCategory`` over the whole file (race, gender,
  culture, disabled, victim, social, body), so one group always sits under one attribute;
- splits: SBIC's dev file has no train/test of its own here, so posts are split 70/15/15 by the
  sha256 of the post text (deterministic, identical on every machine).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from fairmerge.data.hashing import provenance
from fairmerge.data.sources import require_file
from fairmerge.data.splits import DEFAULT_FRACTIONS, hash_split
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.paths import resolve_data_dir

DEV_FILE = "sbic/SBFv2.dev.csv.gz"
_WHERE = (
    "It is the SBIC v2 dev split (16,738 rows): data/SBFv2.dev.csv of "
    "github.com/Master-Project-Hate-Speech/STITCHeD (blob 6a3f07dc), or SBIC.v2.dev.csv from the "
    "Social Bias Frames release (maartensap.com/social-bias-frames); gzip it."
)
COLUMNS = ("post", "WorkerId", "offensiveYN", "targetMinority", "targetCategory")


def normalise_group(name: str) -> str:
    """Lower case, single spaces: 'Black  Folks ' and 'black folks' are one group."""
    return " ".join(name.lower().split())


def post_id(text: str) -> str:
    """Stable id of a post (SBIC has none): a prefix of the sha256 of its text."""
    return "sbic-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def load_sbic(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    min_target_share: float = 0.5,
    split_fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> GroupedTextDataset:
    """SBIC dev aggregated per post, split 70/15/15 by post hash (see the module docstring)."""
    if not 0.0 <= float(min_target_share) < 1.0:
        raise ConfigError(f"min_target_share must be in [0, 1), got {min_target_share!r}")
    root = resolve_data_dir(data_dir)
    path = require_file(root, DEV_FILE, _WHERE)
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {header}")
    rows = pd.read_csv(path, usecols=list(COLUMNS))
    rows["post"] = rows["post"].astype(str)

    category_votes: dict[str, Counter[str]] = defaultdict(Counter)
    named: dict[str, dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    for post, worker, minority, category in zip(
        rows["post"], rows["WorkerId"], rows["targetMinority"], rows["targetCategory"], strict=True
    ):
        if not isinstance(minority, str):
            continue
        for part in minority.split(","):
            group = normalise_group(part)
            if group:
                named[post][group].add(worker)
                if isinstance(category, str):
                    category_votes[group][category.strip().lower()] += 1
    attribute_of = {
        g: min(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0] for g, votes in category_votes.items()
    }
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
        + "(SBIC dev file only; no official split here)",
    ]
    targeted = np.zeros(len(texts), dtype=bool)
    for members in groups.values():
        targeted |= np.fromiter((bool(m) for m in members), dtype=bool, count=len(texts))
    notes.append(
        f"SBIC asks for targets only when an annotator finds the post offensive: {int(targeted.sum())} "
        f"posts have a group, {labels[targeted].mean():.1%} of them positive, so per-group FPR is "
        "mostly undefined here"
    )
    return GroupedTextDataset(
        name="sbic",
        splits=splits,
        label_scheme="offensive (mean offensiveYN >= 0.5)",
        notes=notes,
        provenance=provenance([path], root),
    )
