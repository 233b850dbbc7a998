"""``fairmerge data summary`` / ``data list`` through typer's CliRunner."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fairmerge.cli import app, main
from fairmerge.cli.data_cmd import parse_options
from fairmerge.errors import ConfigError, DataError

runner = CliRunner()


def test_summary_hatexplain_prints_group_sizes_and_notes(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["data", "summary", "hatexplain", "--data-dir", str(data_dir)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "test: n=1924, positives=594" in out and "val: n=1922, positives=593" in out
    assert "train: n=15383" in out and "(groups: WEAK)" in out
    lines = [line for line in out.splitlines() if "African" in line]
    assert any("315" in line and "226" in line for line in lines)  # test: n 315, 226 hate
    assert any("Men" in line and "< 30" in line for line in out.splitlines())  # small group flagged
    assert "coverage train 15362/15383" in out
    assert "dc553faf1b6ed7a87a7f643c8b96d8db65b20d4ac2cbe8e286522518e768517c" in out


def test_summary_toxic_scheme_and_table_options(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "summary", "hatexplain", "--data-dir", str(data_dir), "--label-scheme", "toxic"]
    )
    assert result.exit_code == 0 and "positives=1142" in result.output
    file = tmp_path / "t.csv"
    pd.DataFrame(
        {"text": list("abcdef"), "label": [1, 0, 1, 0, 1, 0], "race": ["x|y", "x", "", "y", "x", "y"]}
    ).to_csv(file, index=False)
    result = runner.invoke(
        app,
        [
            "data",
            "summary",
            "csv",
            "-o",
            f"path={file}",
            "-o",
            "split_col=null",
            "-o",
            "group_cols=race",
            "-o",
            "group_sep=|",
            "--min-group-size",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "race" in result.output and "splits: 70/15/15" in result.output


def test_bad_input_is_an_error(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "summary", "nope", "--data-dir", str(data_dir)])
    assert isinstance(result.exception, DataError)
    result = runner.invoke(app, ["data", "summary", "hatexplain", "--data-dir", str(data_dir), "-o", "x=1"])
    assert isinstance(result.exception, ConfigError)
    with pytest.raises(ConfigError):
        parse_options(["novalue"])
    assert parse_options(["threshold=0.3", "path=a.csv", "split_col=null"]) == {
        "threshold": 0.3,
        "path": "a.csv",
        "split_col": None,
    }


def test_missing_data_dir_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "argv", ["fairmerge", "data", "summary", "hatexplain", "--data-dir", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing data file 'hatexplain/post_id_divisions.json'")
    assert len(err.strip().splitlines()) == 1


def test_list_names_every_dataset() -> None:
    result = runner.invoke(app, ["data", "list"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("hatexplain", "sbic", "mhs", "civil_comments", "csv"):
        assert name in result.output
