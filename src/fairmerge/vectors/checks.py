"""The checks behind every merge, vector algebra operation and in-place sweep: keys, shapes, values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from fairmerge.errors import VectorError
from fairmerge.vectors.checkpoint_io import TensorSpec

Specs = Mapping[str, TensorSpec]


def check_specs(
    target: Specs,
    others: Sequence[Specs],
    target_name: str,
    other_names: Sequence[str],
    *,
    exact: bool = False,
) -> list[str]:
    """Raise a one-line VectorError naming the first offending key; return the keys ``others`` hold.

    ``others`` (task vectors, or a fine-tuned state dict) must all hold the same keys, each present
    in ``target`` with the same shape. By default ``target`` is what the vectors are added to, so
    its tensor must be floating point (integer buffers are never scaled). With ``exact`` the two
    sides must match completely (same keys both ways, same shape and dtype): two state dicts of
    one architecture, or two vectors combined by algebra. The keys are returned in target order.
    """
    if not others:
        raise VectorError("no task vectors given")
    if len(other_names) != len(others):
        raise ValueError(f"{len(other_names)} names for {len(others)} spec maps")
    keys = set(others[0])
    for name, other in zip(other_names[1:], others[1:], strict=True):
        if set(other) != keys:
            odd = sorted(set(other) ^ keys)[0]
            side = other_names[0] if odd in keys else name
            raise VectorError(f"task vectors hold different keys: {odd!r} is only in {side}")
    for name, other in zip(other_names, others, strict=True):
        if exact:
            for key, spec in target.items():
                if key not in other:
                    raise VectorError(f"key {key!r} is in {target_name} but missing from {name}")
                if other[key] != spec:
                    raise VectorError(
                        f"key {key!r} differs: {spec.describe()} in {target_name}, "
                        f"{other[key].describe()} in {name}"
                    )
        for key, spec in other.items():
            if key not in target:
                raise VectorError(f"key {key!r} is in {name} but missing from {target_name}")
            if target[key].shape != spec.shape:
                raise VectorError(
                    f"key {key!r} has shape {list(spec.shape)} in {name} "
                    f"but {list(target[key].shape)} in {target_name}"
                )
            if not exact and not target[key].dtype.is_floating_point:
                raise VectorError(
                    f"key {key!r} is an integer buffer ({target[key].dtype}) in {target_name}; "
                    "vectors only change floating-point tensors"
                )
    return [k for k in target if k in keys]


def check_same(left: Specs, right: Specs, op: str) -> None:
    """Two vectors combined by ``op`` must hold the same keys, shapes and dtypes."""
    check_specs(left, [right], "the left vector", [f"the right vector of {op!r}"], exact=True)


def check_finite(tensor: torch.Tensor, key: str, where: str) -> None:
    """Raise a one-line VectorError when ``tensor`` holds a NaN or ±inf."""
    if not bool(torch.isfinite(tensor).all()):
        raise VectorError(f"non-finite values (NaN or inf) in tensor {key!r} of {where}")
