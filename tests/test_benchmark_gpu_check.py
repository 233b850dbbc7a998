"""benchmarks/gpu_check.py: without CUDA every GPU section is skipped, and --smoke runs them on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
SECTIONS = ("merge", "sweep", "train", "study", "memory")
FIGURES = {
    "device",
    "gpu_vs_copy_0.5b",
    "gpu_vs_copy_7b",
    "sweep_point_vs_eval",
    "fft_samples_per_s",
    "fft_vs_plain",
    "lora_samples_per_s",
    "lora_vs_plain",
    "study_exit",
    "memory_estimate_gib",
    "memory_measured_gib",
    "memory_estimate_vs_measured",
    "failed",
    "wall_s",
}


def run_check(data_dir: Path, *args: str) -> tuple[list[str], dict[str, object]]:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "FAIRMERGE_DATA_DIR": str(data_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPT.parents[1] / "src"), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    print(
        f"gpu_check {' '.join(args)}: {time.perf_counter() - start:.1f} s wall on CPU (measured under load)"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_without_cuda_every_section_is_skipped_and_figures_are_null(data_dir):
    lines, result = run_check(data_dir)
    for section in SECTIONS:
        assert f"{section}: skipped, no CUDA device" in lines
    assert set(result) >= FIGURES
    assert result["device"] == "cpu" and result["failed"] == []
    assert all(v is None for k, v in result.items() if k not in ("bench", "device", "failed", "wall_s"))


@pytest.mark.slow
def test_smoke_runs_the_gpu_sections_on_cpu_with_tiny_shapes(data_dir):
    lines, result = run_check(data_dir, "--smoke")
    assert "study: skipped, no CUDA device" in lines  # minutes on a CPU: only on the GPU
    assert result["failed"] == []
    assert isinstance(result["gpu_vs_copy_0.5b"], float) and result["gpu_vs_copy_0.5b"] > 0
    assert isinstance(result["sweep_point_vs_eval"], float) and result["sweep_point_vs_eval"] > 0
    for method in ("fft", "lora"):
        assert isinstance(result[f"{method}_vs_plain"], float) and result[f"{method}_vs_plain"] > 0
    assert isinstance(result["memory_estimate_gib"], float) and result["memory_measured_gib"] is None
