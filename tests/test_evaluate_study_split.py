"""``fairmerge evaluate --dataset`` re-scores a checkpoint on the study's own split and reproduces the
study's test metrics (issue #21 item 5); the study's run prints each warning once (issue #22 item 19)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairmerge.cli import main

_KEYS = ["attribute", "group", "metric"]


def _fft_checkpoint(cache: Path) -> Path:
    entries = [p for p in (cache / "training" / "fft").iterdir() if (p / "meta.json").is_file()]
    assert len(entries) == 1, entries  # one seed in --fast: one full fine-tune
    return entries[0]


def test_evaluate_dataset_reproduces_the_study_test_metrics(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, cache = fast_study
    checkpoint = _fft_checkpoint(cache)
    argv = ["evaluate", str(checkpoint), "--dataset", "hatexplain", "--split", "test", "--fast"]
    argv += ["--data-dir", str(data_dir), "--out", str(tmp_path / "ev")]
    monkeypatch.setattr(sys, "argv", ["fairmerge", *argv])
    main()
    mine = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert set(mine["split"]) == {"test"} and set(mine["attribute"]) == {"all", "race", "gender"}
    study = pd.read_csv(out / "metrics.csv")
    fft = study[(study["model"] == "fft") & (study["split"] == "test")]
    joined = mine.merge(fft, on=_KEYS, suffixes=("", "_study"))
    assert len(joined) == len(mine) > 20, (len(joined), len(mine))
    np.testing.assert_allclose(joined["value"], joined["value_study"], atol=1e-9, equal_nan=True)
    # the study's test DPD/EOD intervals are test-inverted (they need its noise floor); evaluate's are
    # the basic bootstrap's, so intervals agree exactly on every other row
    rates = joined[~joined["metric"].isin(["dpd", "eod"])]
    assert len(rates) > 20
    for column in ("ci_low", "ci_high"):
        np.testing.assert_allclose(rates[column], rates[f"{column}_study"], atol=1e-9, equal_nan=True)
    assert json.loads((out / "summary.json").read_text())["dataset"] == "hatexplain"


def test_the_fast_run_prints_each_warning_once(fast_study: tuple[Path, Path]) -> None:
    stderr = (fast_study[0].parent / "stderr.txt").read_text()
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    repeated = [line for line, count in Counter(warnings).items() if count > 1]
    assert not repeated, repeated
    assert not [line for line in warnings if re.search(r"\.py:\d+", line)], "a warning with a source path"
    raw = [line for line in stderr.splitlines() if "Warning:" in line and not line.startswith("warning:")]
    assert not raw, raw  # every Python warning went through the formatter
