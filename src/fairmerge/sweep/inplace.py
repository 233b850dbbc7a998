"""Moved: the in-place merger is :class:`fairmerge.vectors.InPlaceMerger` (one merge engine)."""

from fairmerge.vectors.inplace import InPlaceMerger

__all__ = ["InPlaceMerger"]
