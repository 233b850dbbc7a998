"""Shared fixtures. The real data directory comes from $FAIRMERGE_DATA_DIR, else ../shared/data next to
the repository; when neither exists, tests that need it FAIL (they never skip or use synthetic data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SIBLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Default $FAIRMERGE_DATA_DIR to ../shared/data when unset and present (tests read it directly)."""
    if not os.environ.get("FAIRMERGE_DATA_DIR") and _SIBLING_DATA.is_dir():
        os.environ["FAIRMERGE_DATA_DIR"] = str(_SIBLING_DATA)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data directory; a missing one fails the test that asked for it."""
    chosen = os.environ.get("FAIRMERGE_DATA_DIR")
    path = Path(chosen) if chosen else _SIBLING_DATA
    if not path.is_dir():
        pytest.fail(
            f"real data directory {path} is missing: set FAIRMERGE_DATA_DIR to the shared data folder"
        )
    return path
