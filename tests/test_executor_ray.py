"""Fine-tunes as Ray tasks on a local cluster: the local executor's weights, nothing trained twice.

The cluster runs in a child process (tests/ray_executor_checks.py): Ray's core worker ends the
process that started a cluster with exit code 1 when its raylet goes away, which inside pytest
would end the session silently. A crash there fails these tests with Ray's own output instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')

CHECKS = Path(__file__).with_name("ray_executor_checks.py")


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("ray-executor")
    result = work / "observed.json"
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(CHECKS.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(CHECKS), str(work), str(result)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0 and result.is_file(), (
        f"exit code {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )
    return json.loads(result.read_text())


def test_ray_fine_tunes_equal_local_ones_and_are_never_trained_twice(observed: dict[str, object]) -> None:
    assert observed["default_gpus"] == (1.0 if observed["cuda"] else 0.0)
    assert observed["remote_names"] == observed["local_names"]  # same content address
    assert observed["same_weights"] == [True, True]
    assert observed["rerun_same_entries"] and observed["rerun_same_stamps"]


def test_a_task_that_dies_midway_leaves_no_entry_and_its_error_comes_back(
    observed: dict[str, object],
) -> None:
    assert observed["broken_error"] == "DataError: interrupted while saving"
    assert observed["broken_entries"] == []
