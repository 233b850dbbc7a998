"""The ``fairmerge vector`` / ``merge`` / ``inspect`` commands, through typer's CliRunner and main()."""

from __future__ import annotations

import sys

import pytest
import torch
from transformers import AutoModelForSequenceClassification
from typer.testing import CliRunner
from vectors_tiny import finetuned_from, save, tiny_bert

from fairmerge.cli import app, main
from fairmerge.cli.vector_cmd import parse_size
from fairmerge.errors import ConfigError, VectorError
from fairmerge.vectors import TaskVector

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    base = tiny_bert(0)
    save(base, root / "base")
    save(finetuned_from(base, seed=1), root / "ft1")
    save(finetuned_from(base, seed=2), root / "ft2")
    return root, base


def test_vector_merge_inspect_round_trip(checkpoints, tmp_path):
    root, base = checkpoints
    for i in (1, 2):
        result = runner.invoke(
            app, ["vector", str(root / "base"), str(root / f"ft{i}"), "-o", str(tmp_path / f"t{i}.st")]
        )
        assert result.exit_code == 0, result.output
        assert "41 tensors" in result.output
    args = [
        "merge",
        str(root / "base"),
        "-v",
        str(tmp_path / "t1.st"),
        "-l",
        "0.3",
        "-v",
        str(tmp_path / "t2.st"),
    ]
    result = runner.invoke(
        app, [*args, "-l", "0.6", "-o", str(tmp_path / "merged"), "--max-shard-size", "10KB"]
    )
    assert result.exit_code == 0, result.output
    merged = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "merged"))
    t1, t2 = TaskVector.load(tmp_path / "t1.st"), TaskVector.load(tmp_path / "t2.st")
    expected = (0.3 * t1 + 0.6 * t2).apply_to(base.state_dict())
    for key, tensor in merged.state_dict().items():
        torch.testing.assert_close(tensor, expected[key], rtol=0, atol=1e-6)
    result = runner.invoke(app, ["inspect", str(tmp_path / "t1.st"), str(tmp_path / "t2.st")])
    assert result.exit_code == 0, result.output
    assert "bert.encoder.layer.1" in result.output and "pairwise similarity" in result.output
    cosine = f"{t1.cosine_similarity(t2):.4f}"
    assert cosine in result.output


def test_exclude_head_and_ties(checkpoints, tmp_path):
    root, _ = checkpoints
    out = tmp_path / "t.st"
    result = runner.invoke(
        app, ["vector", str(root / "base"), str(root / "ft1"), "-o", str(out), "--exclude-head"]
    )
    assert result.exit_code == 0, result.output
    assert "classifier.weight" not in TaskVector.load(out)
    args = ["merge", str(root / "base"), "-v", str(out), "-l", "1.0", "-o", str(tmp_path / "m")]
    result = runner.invoke(app, [*args, "--method", "ties", "--density", "0.5"])
    assert result.exit_code == 0, result.output


def test_bad_input_gives_one_line_error_and_no_output(checkpoints, tmp_path, monkeypatch, capsys):
    root, _ = checkpoints
    result = runner.invoke(
        app,
        ["merge", str(root / "base"), "-v", "x.st", "-l", "1", "-o", str(tmp_path / "o"), "--method", "ties"],
    )
    assert isinstance(result.exception, ConfigError)
    result = runner.invoke(
        app, ["vector", str(root / "base"), str(tmp_path / "absent"), "-o", str(tmp_path / "t.st")]
    )
    assert isinstance(result.exception, VectorError)
    argv = [
        "fairmerge",
        "merge",
        str(root / "base"),
        "-v",
        "a.st",
        "-v",
        "b.st",
        "-l",
        "1",
        "-l",
        "2",
        "-l",
        "3",
    ]
    monkeypatch.setattr(sys, "argv", [*argv, "-o", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: 3 lambdas for 2 vectors: give one lambda, or one per vector"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_parse_size():
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("500MiB") == 500 * 2**20
    assert parse_size("1000") == 1000
    with pytest.raises(ConfigError):
        parse_size("lots")
