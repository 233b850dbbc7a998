"""Shared fixtures. The real data directory comes from $FAIRMERGE_DATA_DIR, else ../shared/data next to
the repository; when neither exists, tests that need it FAIL (they never skip or use synthetic data)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
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


def _once_per_session(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], str | None]
) -> Path:
    """The folder ``name`` that ``build`` fills once per test session, across pytest-xdist workers too.

    No plugin does this (pytest-xdist's documentation gives the pattern): the workers share the parent
    of their temporary folders, the first to get here builds under a file lock, and the others wait
    and read what it built, so each session study runs once however the tests are spread. ``build``
    returns an error message or None; a failed build is not repeated: every reader fails with it.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, failed = shared / name, shared / f"{name}.failed"
    with FileLock(str(shared / f"{name}.lock")):
        if failed.is_file():
            pytest.fail(failed.read_text())
        if not (root / ".built").is_file():
            root.mkdir(exist_ok=True)
            error = build(root)
            if error is not None:
                failed.write_text(error)
                pytest.fail(error)
            (root / ".built").touch()
    return root


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

    def build(root: Path) -> str | None:
        argv = ["run", "--fast", *FP32_ARGS, "--data-dir", str(data_dir), "--out", str(root / "out")]
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from fairmerge.cli import main; main()",
                *argv,
                "--cache-dir",
                str(root / "cache"),
            ],
            capture_output=True,
            text=True,
            timeout=3600,  # minutes when idle; a loaded machine takes much longer
            env={**os.environ, "COLUMNS": "120"},
        )
        (root / "stderr.txt").write_text(result.stderr)
        (root / "stdout.txt").write_text(result.stdout)
        return None if result.returncode == 0 else result.stdout[-3000:] + result.stderr[-3000:]

    root = _once_per_session(tmp_path_factory, "fast-study", build)
    return root / "out", root / "cache"


@pytest.fixture(scope="session")
def utkface_fast_study(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path]:
    """One cold ``fairmerge run utkface --fast`` per session: (output folder, cache root).

    Shared by the image end-to-end and export tests, so the image study runs once. Tests must not
    modify either folder.
    """
    from typer.testing import CliRunner

    from fairmerge.cli import app

    def build(root: Path) -> str | None:
        argv = [
            "run",
            "utkface",
            "--fast",
            *FP32_ARGS,
            "--data-dir",
            str(data_dir),
            "--out",
            str(root / "out"),
        ]
        result = CliRunner().invoke(app, [*argv, "--cache-dir", str(root / "cache")])
        return None if result.exit_code == 0 else result.output + repr(result.exception)

    root = _once_per_session(tmp_path_factory, "utkface-fast-study", build)
    return root / "out", root / "cache"
