"""Shared fixtures. The real data directory comes from $FAIRMERGE_DATA_DIR, else ../shared/data next to
the repository; when neither exists, tests that need it FAIL (they never skip or use synthetic data)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fp32_study import FP32_ARGS

_SIBLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Default $FAIRMERGE_DATA_DIR to ../shared/data when unset and present (tests read it directly);
    a relative one is resolved against the folder pytest started in, before any test changes folder."""
    from fairmerge.paths import anchor_env_dirs

    anchor_env_dirs(config.invocation_params.dir)
    if not os.environ.get("FAIRMERGE_DATA_DIR") and _SIBLING_DATA.is_dir():
        os.environ["FAIRMERGE_DATA_DIR"] = str(_SIBLING_DATA)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


# Session studies and the xdist groups of the tests that read them (see pytest_collection_modifyitems).
_STUDY_GROUPS = {"fast_study": "fast-study", "utkface_fast_study": "utkface-study"}


@pytest.hookimpl(wrapper=True)  # around xdist's own hook, which turns the marks into scheduling groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, the README's test line), keep each module on one
    worker, so its module fixtures are built once, and every reader of a session study on one worker,
    so each study runs once per session rather than once per worker."""
    loadgroup = getattr(config.option, "loadgroup", False)  # set on xdist's workers only
    if loadgroup:
        for item in items:
            fixtures = getattr(item, "fixturenames", ())
            studies = [group for fixture, group in _STUDY_GROUPS.items() if fixture in fixtures]
            group = studies[0] if studies else item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group))
    yield
    if loadgroup:
        for item in items:
            _suffix_group(item)


def _suffix_group(item: pytest.Item) -> None:
    """Written by hand because no release does it: pytest-xdist 3.8 writes the group into
    ``item._nodeid``, which pytest 9.2 no longer reads (it keeps ids in ``item._id``), so its scheduler
    saw no groups and each worker built each session study. Add the suffix where it is missing."""
    groups = sorted({str(mark.args[0]) for mark in item.iter_markers("xdist_group") if mark.args})
    if groups and "@" not in item.nodeid.rpartition("]")[2]:
        item._id = type(item._id).parse(f"{item.nodeid}@{'_'.join(groups)}")  # type: ignore[attr-defined]


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


@pytest.fixture(scope="session")
def fast_study(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path]:
    """One uninterrupted cold ``fairmerge run --fast`` per session: (output folder, cache root).

    It runs through the console entry point in a child process, as a user runs it in a 120-column
    log (not a terminal); its stderr and stdout are kept next to the two folders (``stderr.txt``,
    ``stdout.txt``). Shared by the tests that need a reference run
    (end to end, interrupt and resume, warnings), so the 3-minute study runs once. Tests must not
    modify either folder.
    """
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("fast-study")
    out, cache = root / "out", root / "cache"
    argv = [
        "run",
        "--fast",
        *FP32_ARGS,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
    ]
    result = subprocess.run(
        [sys.executable, "-c", "from fairmerge.cli import main; main()", *argv],
        capture_output=True,
        text=True,
        timeout=3600,  # minutes when idle; a loaded machine takes much longer
        env={**os.environ, "COLUMNS": "120"},
    )
    (root / "stderr.txt").write_text(result.stderr)
    (root / "stdout.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, cache


@pytest.fixture(scope="session")
def utkface_fast_study(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path]:
    """One cold ``fairmerge run utkface --fast`` per session: (output folder, cache root).

    Shared by the image end-to-end and export tests, so the image study runs once. Tests must not
    modify either folder.
    """
    from typer.testing import CliRunner

    from fairmerge.cli import app

    root = tmp_path_factory.mktemp("utkface-fast-study")
    out, cache = root / "out", root / "cache"
    argv = [
        "run",
        "utkface",
        "--fast",
        *FP32_ARGS,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
    ]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, cache
