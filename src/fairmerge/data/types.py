"""The dataset type every loader returns: inputs (texts or images), binary label and group membership."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairmerge.errors import DataError

SPLITS = ("train", "val", "test")
Modality = Literal["text", "image"]
MODALITIES: tuple[Modality, ...] = ("text", "image")


@dataclass(frozen=True)
class TextSplit:
    """One split of a dataset.

    ``groups[attribute][i]`` is the set of groups of that attribute that example ``i`` targets
    (possibly empty, possibly several). ``weak_groups`` marks group labels that are not gold
    (e.g. HateXplain's train split, whose targets come from a noisy third-party file).

    ``modality`` says what the inputs are: for ``"text"`` splits ``texts`` holds the texts, for
    ``"image"`` splits it holds the path of each image file (a model family decides how to turn
    them into batches: see :func:`fairmerge.inference.encode_inputs`).
    """

    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    groups: dict[str, list[frozenset[str]]]
    weak_groups: bool = False
    modality: Modality = "text"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {list(MODALITIES)}, got {self.modality!r}")
        n = len(self.ids)
        if len(self.texts) != n or len(self.labels) != n:
            raise DataError(
                f"split columns differ in length: ids {n}, texts {len(self.texts)}, labels {len(self.labels)}"
            )
        for attribute, members in self.groups.items():
            if len(members) != n:
                raise DataError(f"group column {attribute!r} has {len(members)} rows, expected {n}")
        labels = np.asarray(self.labels)
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise DataError("labels must be binary 0/1")
        object.__setattr__(self, "labels", labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def attributes(self) -> list[str]:
        return list(self.groups)

    def group_names(self, attribute: str) -> list[str]:
        """Sorted names of the groups of ``attribute`` that occur in this split."""
        self._check_attribute(attribute)
        return sorted({g for members in self.groups[attribute] for g in members})

    def membership(self, attribute: str, group_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Boolean matrix (examples × groups) of membership for one attribute."""
        self._check_attribute(attribute)
        names = list(group_names) if group_names is not None else self.group_names(attribute)
        members = self.groups[attribute]
        data = {g: np.fromiter((g in m for m in members), dtype=bool, count=len(members)) for g in names}
        return pd.DataFrame(data, index=pd.Index(self.ids, name="id"), columns=names)

    def memberships(self, attributes: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
        """Membership matrices for several attributes (all by default)."""
        return {a: self.membership(a) for a in (attributes if attributes is not None else self.attributes)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextSplit:
        """A new split holding the given rows (boolean mask or integer positions)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return TextSplit(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            groups={a: [m[i] for i in idx] for a, m in self.groups.items()},
            weak_groups=self.weak_groups,
            modality=self.modality,
        )

    def in_group(self, attribute: str, group: str) -> np.ndarray:
        """Boolean mask of the examples that target ``group`` of ``attribute``."""
        self._check_attribute(attribute)
        return np.fromiter((group in m for m in self.groups[attribute]), dtype=bool, count=len(self))

    def to_frame(self) -> pd.DataFrame:
        """One row per example: id, text (or image path), label, one ``|``-joined column per attribute."""
        inputs = "text" if self.modality == "text" else "path"
        frame = pd.DataFrame({"id": self.ids, inputs: self.texts, "label": self.labels})
        for attribute, members in self.groups.items():
            frame[attribute] = ["|".join(sorted(m)) for m in members]
        return frame

    def _check_attribute(self, attribute: str) -> None:
        if attribute not in self.groups:
            raise DataError(f"unknown attribute {attribute!r}; this split has {sorted(self.groups)}")


@dataclass
class GroupedTextDataset:
    """A named dataset with explicit splits and provenance.

    ``notes`` holds human-readable facts about how it was built (rows dropped, join coverage);
    ``provenance`` maps file names to sha256 hashes so results can be traced to the bytes used.
    """

    name: str
    splits: dict[str, TextSplit]
    label_scheme: str
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, split: str) -> TextSplit:
        if split not in self.splits:
            raise DataError(f"dataset {self.name!r} has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split]

    @property
    def modality(self) -> Modality:
        """What the inputs of every split are (``"text"`` or ``"image"``)."""
        kinds = {split.modality for split in self.splits.values()}
        if len(kinds) > 1:
            raise DataError(f"dataset {self.name!r} mixes input modalities {sorted(kinds)}")
        return kinds.pop() if kinds else "text"

    @property
    def attributes(self) -> list[str]:
        seen: dict[str, None] = {}
        for split in self.splits.values():
            seen.update(dict.fromkeys(split.attributes))
        return list(seen)

    def summary(self, min_group_size: int = 30) -> pd.DataFrame:
        """Tidy table per split / attribute / group: n, positives, positive rate, small-group flag.

        Rows with attribute ``all`` and group ``all`` describe the whole split.
        """
        rows: list[dict[str, object]] = []
        for split_name, split in self.splits.items():
            rows.append(
                _summary_row(split_name, "all", "all", split.labels, min_group_size, split.weak_groups)
            )
            for attribute in split.attributes:
                for group in split.group_names(attribute):
                    labels = split.labels[split.in_group(attribute, group)]
                    rows.append(
                        _summary_row(split_name, attribute, group, labels, min_group_size, split.weak_groups)
                    )
        return pd.DataFrame(rows)


def _summary_row(
    split: str, attribute: str, group: str, labels: np.ndarray, min_group_size: int, weak: bool
) -> dict[str, object]:
    n = int(labels.size)
    positives = int(labels.sum())
    return {
        "split": split,
        "attribute": attribute,
        "group": group,
        "n": n,
        "positives": positives,
        "positive_rate": positives / n if n else float("nan"),
        "small": attribute != "all" and n < min_group_size,
        "weak_groups": weak and attribute != "all",
    }
