"""Intersectional attributes: ``race×gender`` with groups such as ``Asian×female``.

An intersection of attributes A and B is an attribute of its own whose groups are the pairs
(a, b). An example belongs to ``a×b`` exactly when it belongs to ``a`` (of A) and to ``b`` (of B):
the membership matrix of ``A×B`` is the elementwise AND of the two attributes' membership columns.
So overlapping groups carry over (a post targeting Asian and African women belongs to
``Asian×Women`` and ``African×Women``) and an example with no group of A (or of B) belongs to no
group of ``A×B``. Groups, labels and everything else stay as they are; intersections are added to
a copy of a split or dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd

from fairmerge.data.types import GroupedTextDataset, TextSplit
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import MIN_GROUP_SIZE, MIN_NEGATIVES, MIN_POSITIVES, qualifying_groups

SEPARATOR = "×"
"""Joins attribute names (``race×gender``) and group names (``Asian×female``)."""

QUALIFICATION_COLUMNS = [
    "attribute",
    "group",
    "n",
    "positives",
    "negatives",
    "dpd",
    "tpr_gap",
    "fpr_gap",
    "reason",
]
"""Columns of :func:`intersection_qualification`: one row per combination, ``dpd`` / ``tpr_gap`` /
``fpr_gap`` say whether it enters that gap, ``reason`` why it does not enter all of them."""


def intersection_name(attributes: Sequence[str]) -> str:
    """The name of the intersection of ``attributes`` (``race×gender``)."""
    return SEPARATOR.join(attributes)


def intersection_groups(split: TextSplit, attributes: Sequence[str]) -> list[frozenset[str]]:
    """Per example, the combinations of its groups of ``attributes`` (empty if it lacks any one)."""
    _check_intersection(attributes, split.attributes)
    columns = [split.groups[a] for a in attributes]
    return [
        frozenset(SEPARATOR.join(combo) for combo in itertools.product(*(sorted(m) for m in row)))
        for row in zip(*columns, strict=True)
    ]


def all_combinations(split: TextSplit, attributes: Sequence[str]) -> list[str]:
    """Every combination of the groups of ``attributes`` that occur in ``split``, including the
    combinations no example has (so a report can say why they are missing)."""
    _check_intersection(attributes, split.attributes)
    return [SEPARATOR.join(c) for c in itertools.product(*(split.group_names(a) for a in attributes))]


def add_intersections(split: TextSplit, intersections: Sequence[Sequence[str]]) -> TextSplit:
    """A copy of ``split`` with one more attribute per intersection (the original is untouched)."""
    groups = dict(split.groups)
    for attributes in intersections:
        _check_intersection(attributes, split.attributes)
        name = intersection_name(attributes)
        if name in groups:
            raise ConfigError(f"intersection {name!r} is declared twice or clashes with an attribute")
        groups[name] = intersection_groups(split, attributes)
    return TextSplit(
        ids=split.ids,
        texts=split.texts,
        labels=split.labels,
        groups=groups,
        weak_groups=split.weak_groups,
        modality=split.modality,
    )


def with_intersections(
    dataset: GroupedTextDataset, intersections: Sequence[Sequence[str]]
) -> GroupedTextDataset:
    """A copy of ``dataset`` whose every split has the intersection attributes added.

    Name, label scheme and provenance are unchanged (the examples are the same, so training cache
    keys of models that do not use the new attributes are unchanged); a note names each
    intersection.
    """
    if not intersections:
        return dataset
    notes = [
        f"intersectional attribute {intersection_name(a)}: an example belongs to "
        f"{SEPARATOR.join(f'<{x}>' for x in a)} when it belongs to each of those groups"
        for a in intersections
    ]
    return GroupedTextDataset(
        name=dataset.name,
        splits={name: add_intersections(split, intersections) for name, split in dataset.splits.items()},
        label_scheme=dataset.label_scheme,
        notes=[*dataset.notes, *notes],
        provenance=dict(dataset.provenance),
    )


def intersection_qualification(
    split: TextSplit,
    attributes: Sequence[str],
    *,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Which combinations of ``attributes`` enter each gap on ``split``, and why the others do not.

    One row per combination (also those with no example), the same rules as any attribute
    (:func:`fairmerge.fairness.metrics.qualifying_groups`); see ``QUALIFICATION_COLUMNS``.
    """
    name = intersection_name(attributes)
    combos = all_combinations(split, attributes)
    extended = split if name in split.groups else add_intersections(split, [attributes])
    long = qualifying_groups(
        split.labels,
        {name: extended.membership(name, combos)},
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )
    entered = long.pivot(index="group", columns="metric", values="entered").astype(bool)
    reasons = long[long["reason"] != ""].groupby("group", sort=False)["reason"].agg("; ".join)
    counts = long.drop_duplicates("group").set_index("group")[["n", "positives", "negatives"]]
    table = counts.join(entered).join(reasons).reindex(combos)
    table["reason"] = table["reason"].fillna("")
    table.insert(0, "attribute", name)
    return table.rename_axis("group").reset_index()[QUALIFICATION_COLUMNS]


def qualification_table(
    dataset: GroupedTextDataset,
    intersections: Sequence[Sequence[str]],
    *,
    splits: Sequence[str] = ("train", "val", "test"),
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """:func:`intersection_qualification` of every intersection on each of ``splits``, with a
    leading ``split`` column (a study's ``intersections.csv``)."""
    tables = [
        intersection_qualification(
            dataset[split],
            attributes,
            min_group_size=min_group_size,
            min_positives=min_positives,
            min_negatives=min_negatives,
        ).assign(split=split)
        for attributes in intersections
        for split in splits
    ]
    columns = ["split", *QUALIFICATION_COLUMNS]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)


def _check_intersection(attributes: Sequence[str], known: Sequence[str]) -> None:
    if isinstance(attributes, str) or len(attributes) < 2 or len(set(attributes)) != len(attributes):
        raise ConfigError(f"an intersection needs two or more distinct attributes, got {attributes!r}")
    missing = [a for a in attributes if a not in known]
    if missing:
        raise ConfigError(
            f"intersection {list(attributes)} names unknown attribute(s) {missing}; known: {list(known)}"
        )
    clashing = [a for a in attributes if SEPARATOR in a]
    if clashing:
        raise ConfigError(
            f"intersection {list(attributes)}: attribute(s) {clashing} already contain {SEPARATOR!r}"
        )
