"""Regression tests of issue 12's defects that are not a bad-input row of ``test_cli_contract``:
output folders and their marker, ``--cache-dir`` layout, file permissions, model-source checks,
the one-vs-rest notice and ``--overwrite`` in every writing command's help."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
import vectors_tiny
from training_tiny import one_torch_thread, save_tiny_bert  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from fairmerge.cli import app, main
from fairmerge.errors import ModelError
from fairmerge.outputs_guard import MARKER
from fairmerge.paths import check_model_source, training_cache_dir
from fairmerge.training import TrainingCache


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["fairmerge", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ckpt")
    base = vectors_tiny.tiny_bert(0)
    vectors_tiny.save(base, root / "base")
    vectors_tiny.save(vectors_tiny.finetuned_from(base, 1), root / "ft")
    words = ["hello world", "bad people", "good post", "bad text"]
    pd.DataFrame({"text": words * 10, "label": [0, 1, 0, 1] * 10, "g": ["a", "b"] * 20}).to_csv(
        root / "posts.csv", index=False
    )
    pd.DataFrame({"text": words * 3, "label": ["x", "y", "z"] * 4, "g": ["a", "b"] * 6}).to_csv(
        root / "threeclass.csv", index=False
    )
    return root


def _evaluate(root: Path, out: Path, *extra: str) -> list[str]:
    table = f"--data {root / 'posts.csv'} --text-col text --label-col label --group-col g --resamples 0"
    return ["evaluate", str(root / "base"), *table.split(), "--out", str(out), *extra]


def test_output_folder_is_replaced_only_when_ours_or_with_overwrite(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    assert _main(_evaluate(checkpoints, out), monkeypatch) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["metrics.csv", "predictions.csv"]
    assert _main(_evaluate(checkpoints, out), monkeypatch) == 0  # an earlier output: replaced
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _main(_evaluate(checkpoints, out), monkeypatch) == 2
    assert "notes.txt" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"
    assert _main(_evaluate(checkpoints, out, "--overwrite"), monkeypatch) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "metrics.csv", "predictions.csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]  # no hidden leftovers
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _main(_evaluate(checkpoints, empty), monkeypatch) == 0  # an empty folder loses nothing


def test_vector_and_merge_write_with_the_umask_permissions(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tau, merged = tmp_path / "tau.safetensors", tmp_path / "merged"
    assert (
        _main(["vector", str(checkpoints / "base"), str(checkpoints / "ft"), "-o", str(tau)], monkeypatch)
        == 0
    )
    assert stat.S_IMODE(tau.stat().st_mode) == 0o666 & ~_umask()
    assert (
        _main(
            ["merge", str(checkpoints / "base"), "-v", str(tau), "-l", "0.5", "-o", str(merged)], monkeypatch
        )
        == 0
    )
    assert stat.S_IMODE(merged.stat().st_mode) == 0o777 & ~_umask()
    for file in merged.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~_umask(), file.name


def test_three_classes_under_positive_give_a_visible_notice(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _evaluate(checkpoints, tmp_path / "ev", "--positive", "x")
    args[args.index(str(checkpoints / "posts.csv"))] = str(checkpoints / "threeclass.csv")
    assert _main(args, monkeypatch) == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if "one-vs-rest" in line]
    assert len(notices) == 1, notices
    assert notices[0].startswith("warning: UserWarning: label column 'label' has 3 classes")
    assert ".py:" not in notices[0]  # no source path


def test_cache_dir_is_the_same_root_for_run_train_and_cache(tmp_path: Path) -> None:
    """``run`` keeps fine-tunes in DIR/training (study/run.py); ``cache`` reads the same place."""
    root = tmp_path / "cache"
    training = TrainingCache(training_cache_dir(root))
    assert training.root == root / "training"

    def build(tmp: Path) -> dict[str, str]:
        (tmp / "model.safetensors").write_bytes(b"1")
        return {"description": "fft x"}

    training.store("fft", "k" * 64, build)
    runner = CliRunner()
    listed = runner.invoke(app, ["cache", "list", "--cache-dir", str(root)])
    assert listed.exit_code == 0 and "1 entries" in listed.output and "fft x" in listed.output
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", str(root), "--kind", "fft", "--yes"])
    assert cleared.exit_code == 0 and "deleted 1 entries" in cleared.output


def test_train_uses_the_training_folder_of_the_cache_root(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = save_tiny_bert(tmp_path / "tiny")
    config = tmp_path / "train.yaml"
    config.write_text("train:\n  epochs: 1\n  batch_size: 32\n  eval_batch_size: 256\n  max_length: 16\n")
    cache = tmp_path / "cache"
    args = ["train", "fft", str(config), "--data-dir", str(data_dir), "--model", str(tiny), "--cache-dir",
            str(cache), "--quiet", "--max-train-samples", "32", "--out", str(tmp_path / "fft")]  # fmt: skip
    assert _main(args, monkeypatch) == 0
    assert sorted(p.name for p in cache.iterdir()) == ["training"]
    assert {"base", "fft"} <= {p.name for p in (cache / "training").iterdir()}
    assert (tmp_path / "fft" / MARKER).is_file()
    assert _main(args, monkeypatch) == 0  # its own earlier output is replaced without --overwrite


def test_model_source_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name in ("./nope", "/no/such/dir", "~/no-such-fairmerge-model", "models/doesnotexist", "a/b/c"):
        with pytest.raises(ModelError, match="does not exist"):
            check_model_source(name)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="is a file"):
        check_model_source("weights.bin")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        check_model_source("someone/some-model-not-in-the-cache")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    check_model_source("someone/some-model")  # a Hub id while online: left to the Hub
    check_model_source(str(tmp_path))  # an existing folder


@pytest.mark.parametrize(
    "command", ["vector", "merge", "evaluate", "run", "train fft", "train lora", "train subgroups"]
)
def test_every_writing_command_documents_overwrite(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--overwrite" in result.output
