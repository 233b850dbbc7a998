"""`fairmerge train` and `fairmerge cache` end to end: a tiny random BERT on real HateXplain posts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
)
from typer.testing import CliRunner

from fairmerge.cli import app
from fairmerge.models import load_classifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_train_fft_and_subgroups_then_cache_list_and_clear(
    tiny: Path, data_dir: Path, tmp_path: Path
) -> None:
    cache = str(tmp_path / "cache")
    config = tmp_path / "train.yaml"
    config.write_text("train:\n  epochs: 1\n  batch_size: 32\n  eval_batch_size: 256\n  max_length: 32\n")
    common = ["--data-dir", str(data_dir), "--model", str(tiny), "--cache-dir", cache, "--quiet"]
    code, output = _invoke("train", "fft", str(config), *common, "--out", str(tmp_path / "fft"),
                           "--max-train-samples", "64")  # fmt: skip
    assert code == 0, output
    meta = json.loads((tmp_path / "fft" / "meta.json").read_text())
    assert meta["n_train"] == 64 and meta["config"]["epochs"] == 1
    load_classifier(str(tmp_path / "fft"))

    # `train lora` is the same command with the other method: same options, its own output
    code, output = _invoke("train", "lora", str(config), *common, "--out", str(tmp_path / "lora"),
                           "--max-train-samples", "32", "--seed", "1")  # fmt: skip
    assert code == 0, output
    meta = json.loads((tmp_path / "lora" / "meta.json").read_text())
    assert meta["kind"] == "lora" and meta["n_train"] == 32 and meta["config"]["seed"] == 1
    assert (tmp_path / "lora" / "adapter").is_dir()

    code, output = _invoke("train", "subgroups", str(config), *common, "--out", str(tmp_path / "sub"),
                           "-a", "race", "--min-train-size", "800", "--strategy", "targeted+background",
                           "--max-train-samples", "48")  # fmt: skip
    assert code == 0, output
    index = json.loads((tmp_path / "sub" / "subgroups.json").read_text())
    assert [(c["attribute"], c["group"]) for c in index["checkpoints"]] == [
        ("race", "African"),
        ("race", "Arab"),
    ]
    assert (tmp_path / "sub" / "race" / "Arab" / "model.safetensors").is_file()

    code, output = _invoke("cache", "list", "--cache-dir", cache)
    assert code == 0 and "6 entries" in output and "subgroup" in output
    code, output = _invoke("cache", "clear", "--cache-dir", cache, "--kind", "subgroup", "--yes")
    assert code == 0 and "deleted 2 entries" in output
    code, output = _invoke("cache", "list", "--cache-dir", cache, "--kind", "subgroup")
    assert "no cached entries" in output


def test_bad_input_fails_without_output(tiny: Path, data_dir: Path, tmp_path: Path) -> None:
    from fairmerge.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 0\n")
    out = tmp_path / "never"
    argv = ["fairmerge", "train", "fft", str(bad), "--data-dir", str(data_dir), "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as exit_info:
        patch.setattr("sys.argv", argv)
        main()
    assert exit_info.value.code == 2 and not out.exists()
    argv = ["fairmerge", "train", "lora", "--epochs", "0", "--data-dir", str(data_dir), "--out", str(out)]
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as exit_info:
        patch.setattr("sys.argv", argv)
        main()
    assert exit_info.value.code == 2 and not out.exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["train", "fft", "--data-dir", str(data_dir), "--out", str(taken)])
    assert result.exit_code != 0 and "not an earlier training output" in str(result.exception)
    assert (taken / "notes.txt").read_text() == "mine"
