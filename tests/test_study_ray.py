"""The --fast study's fine-tunes on a local Ray cluster give the same numbers as the local executor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairmerge.errors import ConfigError
from fairmerge.executors import get_executor
from fairmerge.study.run import run_study

pytestmark = pytest.mark.slow


def test_fast_study_trained_on_ray_equals_the_local_run(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed here: pip install -e '.[ray]'")
    reference, _ = fast_study
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_study(
            None,
            data_dir=data_dir,
            out_dir=tmp_path / "out",
            fast=True,
            cache_dir=tmp_path / "cache",
            executor="ray",
        )
    finally:
        ray.shutdown()
    local = pd.read_csv(reference / "metrics.csv")
    on_ray = pd.read_csv(tmp_path / "out" / "metrics.csv")
    pd.testing.assert_frame_equal(local, on_ray)
    # every kind of fine-tune was trained through the cluster (the shared session cache may hold
    # more seeds than this one-seed run, so kinds, not counts, are compared)
    kinds = {p.parent.parent.name for p in (tmp_path / "cache" / "training").glob("*/*/meta.json")}
    assert kinds == {p.parent.parent.name for p in (fast_study[1] / "training").glob("*/*/meta.json")}


def test_local_executor_takes_no_address() -> None:
    with pytest.raises(ConfigError, match="--ray-address"):
        get_executor("local", "auto")
