"""fairmerge: fairness-aware task arithmetic.

The notebook surface, one import away (loaded on first use, so the CLI starts fast)::

    import fairmerge as fm
    tau = fm.TaskVector.from_checkpoints("base/", "ft/")
    frame = fm.evaluate("ft/", "hatexplain", data_dir="../shared/data")
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("fairmerge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_PUBLIC = {
    "TaskVector": "fairmerge.vectors",
    "InPlaceMerger": "fairmerge.vectors",
    "merge_checkpoints": "fairmerge.vectors",
    "load_dataset": "fairmerge.data",
    "load_classifier": "fairmerge.models",
    "group_metrics": "fairmerge.fairness",
    "evaluate": "fairmerge.api",
    "StudyConfig": "fairmerge.study.config",
    "load_config": "fairmerge.study.config",
    "run_study": "fairmerge.study.run",
}
__all__ = [
    "InPlaceMerger",
    "StudyConfig",
    "TaskVector",
    "__version__",
    "evaluate",
    "group_metrics",
    "load_classifier",
    "load_config",
    "load_dataset",
    "merge_checkpoints",
    "run_study",
]

if TYPE_CHECKING:
    from fairmerge.api import evaluate
    from fairmerge.data import load_dataset
    from fairmerge.fairness import group_metrics
    from fairmerge.models import load_classifier
    from fairmerge.study.config import StudyConfig, load_config
    from fairmerge.study.run import run_study
    from fairmerge.vectors import InPlaceMerger, TaskVector, merge_checkpoints


def __getattr__(name: str) -> Any:
    """Import the public names lazily (PEP 562): torch and transformers load only when used."""
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fairmerge' has no attribute {name!r}")
