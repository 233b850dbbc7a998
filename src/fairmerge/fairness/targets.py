"""How good a subgroup's training targets are: precision and recall of weak against gold membership.

Subgroup vectors are fine-tuned on the posts the *training* split assigns to a group. When those
assignments are weak (HateXplain's train targets come from a noisy third-party file) a vector may
learn mostly from posts outside its group. Where a split has both the weak and the gold
assignment (HateXplain val and test), precision = |weak ∩ gold| / |weak| says which share of a
group's weakly assigned posts really target it, recall = |weak ∩ gold| / |gold| which share of the
group's posts the weak assignment finds. A precision below ``min_precision`` (0.5: most assigned
posts are not the group's) is flagged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.errors import DataError

QUALITY_COLUMNS = ["attribute", "group", "gold_n", "weak_n", "both", "precision", "recall", "low_precision"]
MIN_PRECISION = 0.5


def target_quality(
    weak: Mapping[str, pd.DataFrame],
    gold: Mapping[str, pd.DataFrame],
    *,
    min_precision: float = MIN_PRECISION,
) -> pd.DataFrame:
    """Per (attribute, group): gold and weak counts, their overlap, precision, recall, flag.

    ``weak`` and ``gold`` map an attribute to boolean posts × groups frames over the same posts
    (same rows, same order). A group missing from one side counts as empty there; precision is NaN
    when nothing was assigned, recall NaN when the group has no gold post (undefined, never 0).
    """
    rows = []
    for attribute in dict.fromkeys([*gold, *weak]):
        g = gold.get(attribute, pd.DataFrame())
        w = weak.get(attribute, pd.DataFrame())
        if len(g.columns) and len(w.columns) and len(g) != len(w):
            raise DataError(f"weak and gold membership of {attribute!r} have {len(w)} and {len(g)} rows")
        for group in sorted(set(map(str, g.columns)) | set(map(str, w.columns))):
            gold_mask = g[group].to_numpy(dtype=bool) if group in g.columns else None
            weak_mask = w[group].to_numpy(dtype=bool) if group in w.columns else None
            n = len(g) if gold_mask is not None else len(w)
            gold_mask = gold_mask if gold_mask is not None else np.zeros(n, dtype=bool)
            weak_mask = weak_mask if weak_mask is not None else np.zeros(n, dtype=bool)
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "gold_n": int(gold_mask.sum()),
                    "weak_n": int(weak_mask.sum()),
                    "both": int((gold_mask & weak_mask).sum()),
                }
            )
    return flag_low_precision(pd.DataFrame(rows, columns=QUALITY_COLUMNS[:5]), min_precision=min_precision)


def flag_low_precision(counts: pd.DataFrame, *, min_precision: float = MIN_PRECISION) -> pd.DataFrame:
    """Add precision, recall and ``low_precision`` to a table of gold_n, weak_n and both."""
    frame = counts[QUALITY_COLUMNS[:5]].copy()
    weak_n = frame["weak_n"].astype(float)
    gold_n = frame["gold_n"].astype(float)
    frame["precision"] = frame["both"] / weak_n.where(weak_n > 0)
    frame["recall"] = frame["both"] / gold_n.where(gold_n > 0)
    frame["low_precision"] = (frame["precision"] < min_precision).astype(bool)
    return frame.reset_index(drop=True)


def hatexplain_target_quality(
    data_dir: str | os.PathLike[str] | None = None, *, min_precision: float = MIN_PRECISION
) -> pd.DataFrame:
    """Quality of HateXplain's weak train targets, measured on val+test posts where both exist.

    Uses the loader's weak-join report (the same join that builds the train split's targets), so
    the numbers are those of SOURCES.md (e.g. Men precision 0.04).
    """
    from fairmerge.data.hatexplain import weak_join_report

    return flag_low_precision(weak_join_report(data_dir).quality, min_precision=min_precision)
