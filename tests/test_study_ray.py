"""The --fast study's fine-tunes trained on a local Ray cluster give the local run's weights and numbers.

`fairmerge run --executor ray` runs as a child process: Ray's core worker ends the process that
started a cluster (exit code 1) when it loses its raylet, which inside pytest would end the whole
session. The child starts from a copy of the session run's cache without its FFT entry (θ_base, the
probe, LoRA and the subgroup fine-tunes stay, as after an earlier partial run), so the cluster
trains exactly that; it must be bit-identical to the local run's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fp32_study import FP32_ARGS
from safetensors.torch import load_file

from fairmerge.errors import ConfigError
from fairmerge.executors import get_executor

pytestmark = pytest.mark.slow

RETRAINED = ("fft",)  # one family keeps the test short; tests/test_executor_ray.py covers more


def _weights_equal(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


def test_fast_study_trained_on_ray_equals_the_local_run(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="Ray is not installed here: pip install -e '.[ray]'")
    reference, reference_cache = fast_study
    cache, out = tmp_path / "cache", tmp_path / "out"
    shutil.copytree(reference_cache, cache, copy_function=os.link)  # entries are replaced, never edited
    for kind in RETRAINED:
        shutil.rmtree(cache / "training" / kind)
    argv = ["run", "--fast", *FP32_ARGS, "--executor", "ray", "--data-dir", str(data_dir), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", "from fairmerge.cli import main; main()", *argv, "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        timeout=1200,
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert "fine-tune tasks done on the ray executor" in done.stdout + done.stderr
    for kind in RETRAINED:
        # the session cache may also hold other seeds' entries: each one trained here must be there
        trained = [p.parent for p in (cache / "training" / kind).glob("*/meta.json")]
        assert trained, f"no {kind} entry was trained"
        for entry in trained:
            local = reference_cache / "training" / kind / entry.name
            assert local.is_dir() and _weights_equal(entry, local), entry.name
    # the copied score cache serves the sweeps, so this checks the tables the Ray path writes
    pd.testing.assert_frame_equal(pd.read_csv(reference / "metrics.csv"), pd.read_csv(out / "metrics.csv"))


def test_local_executor_takes_no_address() -> None:
    with pytest.raises(ConfigError, match="--ray-address"):
        get_executor("local", "auto")
