"""``fairmerge evaluate --image-col``: an image table of real UTKFace files, relative paths, bad input."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import ViTConfig, ViTForImageClassification

from fairmerge.cli import main
from fairmerge.data.images import ImageInputFormat
from fairmerge.data.table import read_image_table_split
from fairmerge.data.utkface import FOLDER, GENDERS, RACES, parse_name
from fairmerge.evaluation import CONTRACT_COLUMNS, score_split
from fairmerge.inference import encode_inputs
from fairmerge.models import load_classifier, load_processor


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRMERGE_CACHE_DIR", str(tmp_path / "cache"))
    torch.set_num_threads(1)


@pytest.fixture
def tiny_vit(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-vit"
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(path)
    ImageInputFormat(size=32).save_pretrained(path)
    return path


@pytest.fixture
def table(tmp_path: Path, data_dir: Path) -> Path:
    """60 real images copied under tables/imgs/, listed with relative paths in tables/faces.csv."""
    folder = tmp_path / "tables"
    (folder / "imgs").mkdir(parents=True)
    rows = []
    for source in sorted((data_dir / FOLDER).iterdir())[::330][:60]:  # ages across the range
        age, gender, race = parse_name(source.name)  # type: ignore[misc]
        shutil.copy(source, folder / "imgs" / source.name)
        rows.append(
            {
                "path": f"imgs/{source.name}",
                "old": int(age > 30),
                "race": RACES[race],
                "gender": GENDERS[gender],
            }
        )
    pd.DataFrame(rows).to_csv(folder / "faces.csv", index=False)
    return folder / "faces.csv"


def _evaluate(model: Path | str, table: Path, out: Path, *extra: str) -> int:
    """Run the console entry point (bad input: one ``error:`` line, exit code 2); its exit code."""
    args = ["fairmerge", "evaluate", str(model), "--data", str(table), "--label-col", "old"]
    args += ["--group-col", "race", "--group-col", "gender", "--out", str(out), "--resamples", "0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [*args, *extra])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def test_evaluate_an_image_table(tiny_vit: Path, table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _evaluate(tiny_vit, table, out, "--image-col", "path", "--min-group-size", "1") == 0
    metrics = pd.read_csv(out / "metrics.csv")
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(metrics.columns) == CONTRACT_COLUMNS
    assert set(metrics["attribute"]) == {"all", "race", "gender"}
    assert len(predictions) == 60
    split = read_image_table_split(
        table, image_col="path", label_col="old", group_cols={"race": "race", "gender": "gender"}
    )
    assert split.modality == "image" and all(Path(p).is_absolute() and Path(p).is_file() for p in split.texts)
    encoded = encode_inputs(load_processor(str(tiny_vit)), split, max_length=2)
    scores = score_split(load_classifier(str(tiny_vit)), encoded)
    np.testing.assert_allclose(predictions["score"].to_numpy(), scores, atol=1e-6)
    assert predictions["groups"].iloc[0].startswith("race:")


def test_missing_image_files_are_a_one_line_error(
    tiny_vit: Path, table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sorted((table.parent / "imgs").iterdir())[5].unlink()
    out = tmp_path / "out"
    assert _evaluate(tiny_vit, table, out, "--image-col", "path") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert "1 of 60 image path(s) in column 'path' do not exist" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("model", "inputs", "message"),
    [
        ("tiny", ["--text-col", "race"], "an image model cannot score a text dataset"),
        ("default", ["--image-col", "path"], "a text model cannot score an image dataset"),
        ("tiny", ["--image-col", "path", "--text-col", "race"], "exactly one of --text-col"),
    ],
)
def test_modality_mismatch_exits_2(
    tiny_vit: Path,
    table: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    inputs: list[str],
    message: str,
) -> None:
    out = tmp_path / "out"
    assert _evaluate(tiny_vit if model == "tiny" else model, table, out, *inputs) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not out.exists()
