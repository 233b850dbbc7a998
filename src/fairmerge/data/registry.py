"""Dataset registry: ``load_dataset(name, data_dir, **options)`` dispatches to a loader by name.

Loaders are imported lazily (module path + function name), so importing ``fairmerge.data`` stays
cheap and an optional dependency of one loader never breaks the others. A dataset whose train split
carries weak group labels may also register how to score them against gold
(:func:`weak_target_quality`).
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ConfigError, DataDirectoryError, DataError

if TYPE_CHECKING:
    import pandas as pd

_LOADERS: dict[str, tuple[str, str]] = {
    "hatexplain": ("fairmerge.data.hatexplain", "load_hatexplain"),
    "sbic": ("fairmerge.data.sbic", "load_sbic"),
    "mhs": ("fairmerge.data.mhs", "load_mhs"),
    "civil_comments": ("fairmerge.data.civil_comments", "load_civil_comments"),
    "csv": ("fairmerge.data.table", "load_table_dataset"),
    "utkface": ("fairmerge.data.utkface", "load_utkface"),
}
_WEAK_TARGET_QUALITY: dict[str, tuple[str, str]] = {
    "hatexplain": ("fairmerge.fairness.targets", "hatexplain_target_quality"),
}
"""Dataset → its weak-target quality measure (``data_dir`` → one row per attribute and group with
precision / recall against gold and ``low_precision``); datasets with gold train targets have none."""


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_LOADERS)


def _normalized(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _key(name: str) -> str:
    key = _normalized(name)
    if key not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return key


def get_loader(name: str) -> Callable[..., GroupedTextDataset]:
    """The loader function registered under ``name``."""
    module, function = _LOADERS[_key(name)]
    loader: Callable[..., GroupedTextDataset] = getattr(importlib.import_module(module), function)
    return loader


def weak_target_quality(name: str, data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """How well dataset ``name``'s weak train targets match gold (one row per attribute and group),
    or None when no measure is registered under ``name`` (its train targets are gold)."""
    entry = _WEAK_TARGET_QUALITY.get(_normalized(name))
    if entry is None:
        return None
    module, function = entry
    measure: Callable[..., pd.DataFrame] = getattr(importlib.import_module(module), function)
    return measure(data_dir)


def loader_options(name: str) -> dict[str, Any]:
    """The options a dataset's loader accepts, with their defaults (``inspect.Parameter.empty`` if none)."""
    parameters = inspect.signature(get_loader(name)).parameters
    return {p.name: p.default for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, **options: Any
) -> GroupedTextDataset:
    """Load a registered dataset.

    ``data_dir`` defaults to ``$FAIRMERGE_DATA_DIR``. ``options`` go to the loader, e.g.
    ``load_dataset("hatexplain", label_scheme="toxic")``; an unknown option is an error that lists
    the accepted ones.
    """
    loader = get_loader(name)
    accepted = loader_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"dataset {name!r} has no option(s) {unknown}; it accepts {sorted(accepted)}")
    _check_option_types(name, options, accepted)
    try:
        return loader(data_dir, **options)
    except DataDirectoryError as exc:  # only loaders that read from the data directory ask for it
        raise DataError(f"dataset {name!r} reads its files from the data directory: {exc}") from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_option_types(name: str, options: dict[str, Any], accepted: dict[str, Any]) -> None:
    """An option whose default is a flag, a number or a tuple of numbers must be one too
    (``min_target_share=banana`` is an error here, not a ValueError inside the loader)."""
    for key, value in options.items():
        default = accepted[key]
        if isinstance(default, bool):
            fits, wanted = isinstance(value, bool), "true or false"
        elif isinstance(default, int | float):
            fits, wanted = _number(value), "a finite number"
        elif isinstance(default, tuple) and all(_number(v) for v in default):
            fits = isinstance(value, list | tuple) and len(value) == len(default) and all(map(_number, value))
            wanted = f"a list of {len(default)} numbers"
        else:
            continue
        if not fits:
            raise ConfigError(f"dataset {name!r}: option {key}={value!r} must be {wanted}")
