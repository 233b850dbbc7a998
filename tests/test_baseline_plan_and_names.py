"""The baseline families (issue #26) in the dry-run plan and in the report, each named as itself."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from training_tiny import save_tiny_bert
from typer.testing import CliRunner

from fairmerge.cli import app
from fairmerge.report.tables import strategy_display

FAMILIES = ("--set", "baselines.families=[balanced,group_dro]", "--set", "baselines.lora_ranks=[64]")


def test_the_dry_run_lists_every_baseline_family_it_will_train(tmp_path: Path, data_dir: Path) -> None:
    tiny = save_tiny_bert(tmp_path / "tiny")
    args = ["run", "--fast", "--dry-run", "--data-dir", str(data_dir), "--out", str(tmp_path / "out")]
    args += ["--cache-dir", str(tmp_path / "cache"), "--set", f"model={tiny}", *FAMILIES]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fine-tunes: 11 to train, 0 cached" in result.output  # base, fft, lora, 3 families, 5 groups
    references = "reference models (each but fft compared with FFT): fft, lora, fft[balanced], fft[group_dro]"
    assert f"{references}, lora[r=64]" in result.output
    rows = [line.split() for line in result.output.splitlines()]
    for family in ("fft[balanced]", "fft[group_dro]", "lora[r=64]"):
        assert ["0", family, "to", "train"] in rows, family


def test_each_reference_family_keeps_its_own_name_in_the_strategy_table() -> None:
    strategies = pd.DataFrame({"strategy": ["targeted"], "decision": ["argmax"], "accuracy": [0.7]})
    headline = [
        {"model": model, "accuracy": 0.8}
        for model in ("fft", "fft[balanced]", "fft[group_dro]@calibrated", "lora[r=64]", "merge")
    ]
    out = strategy_display(strategies, headline, [])
    assert out[["strategy", "decision"]].values.tolist() == [
        ["targeted", "argmax"],
        ["fft (reference)", "argmax"],
        ["fft[balanced] (reference)", "argmax"],
        ["fft[group_dro] (reference)", "calibrated"],
        ["lora[r=64] (reference)", "argmax"],
    ]
