"""``fairmerge evaluate --dataset`` re-scores a checkpoint on the study's own split and reproduces every
test row of the study, intervals included (issue #21 item 5, issue #18 item 6: one evaluate path); the
study's run prints each warning once (issue #22 item 19)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from study_rows import assert_same_rows

from fairmerge.cli import main


def _fft_checkpoint(out: Path) -> Path:
    """The run's FFT entry, as its summary records it (the shared cache may hold another seed's too)."""
    summary = json.loads((out / "summary.json").read_text())
    return Path(summary["provenance"]["checkpoints"]["fft"])


def test_evaluate_dataset_reproduces_the_study_test_metrics(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = fast_study
    checkpoint = _fft_checkpoint(out)
    argv = ["evaluate", str(checkpoint), "--dataset", "hatexplain", "--split", "test", "--fast"]
    argv += ["--data-dir", str(data_dir), "--out", str(tmp_path / "ev")]
    monkeypatch.setattr(sys, "argv", ["fairmerge", *argv])
    main()
    mine = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert set(mine["split"]) == {"test"} and set(mine["attribute"]) == {"all", "race", "gender"}
    study = pd.read_csv(out / "metrics.csv")
    assert_same_rows(mine, study[(study["model"] == "fft") & (study["split"] == "test")], tolerance=1e-9)
    assert json.loads((out / "summary.json").read_text())["dataset"] == "hatexplain"


def test_the_fast_run_prints_each_warning_once(fast_study: tuple[Path, Path]) -> None:
    stderr = (fast_study[0].parent / "stderr.txt").read_text()
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    repeated = [line for line, count in Counter(warnings).items() if count > 1]
    assert not repeated, repeated
    assert not [line for line in warnings if re.search(r"\.py:\d+", line)], "a warning with a source path"
    raw = [line for line in stderr.splitlines() if "Warning:" in line and not line.startswith("warning:")]
    assert not raw, raw  # every Python warning went through the formatter
