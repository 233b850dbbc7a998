"""`fairmerge evaluate` end to end: a tiny random-initialised BERT and a CSV written by the test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.cli import main
from fairmerge.cli.evaluate_cmd import parse_group_cols
from fairmerge.data.table import read_table_split
from fairmerge.errors import ConfigError, DataError
from fairmerge.evaluation import (
    CONTRACT_COLUMNS,
    evaluate_checkpoint,
    evaluate_scores,
    predictions_frame,
    score_split,
)
from fairmerge.fairness import group_metrics
from fairmerge.inference import encode_texts
from fairmerge.models import load_classifier, load_tokenizer

WORDS = ["the", "they", "people", "are", "group", "hate", "love", "fine", "good", "bad", "not", "very"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BERT classifier with the embedded MiniLM tokenizer saved alongside."""
    path = tmp_path_factory.mktemp("models") / "tiny-bert"
    tokenizer = load_tokenizer(None)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 posts: label 'hate'/'normal', race groups with '|'-joined multi-targets, gender groups."""
    rng = np.random.default_rng(0)
    n = 80
    race = rng.choice(["African", "Asian", "African|Asian", ""], n, p=[0.4, 0.3, 0.1, 0.2])
    frame = pd.DataFrame(
        {
            "post": [f"p{i}" for i in range(n)],
            "text": [" ".join(rng.choice(WORDS, rng.integers(3, 20))) for _ in range(n)],
            "label": rng.choice(["hate", "normal"], n),
            "race": race,
            "gender": rng.choice(["Women", "Men"], n),
        }
    )
    path = tmp_path_factory.mktemp("data") / "posts.csv"
    frame.to_csv(path, index=False)
    return path


def _split(table: Path):  # type: ignore[no-untyped-def]
    return read_table_split(
        table,
        text_col="text",
        label_col="label",
        group_cols={"race": "race", "gender": "gender"},
        positive="hate",
        group_sep="|",
        id_col="post",
    )


def test_score_split_and_evaluate_scores(tiny_checkpoint: Path, table: Path) -> None:
    split = _split(table)
    model = load_classifier(str(tiny_checkpoint))
    encoded = encode_texts(load_tokenizer(str(tiny_checkpoint)), split.texts, max_length=32)
    scores = score_split(model, encoded, batch_size=16)
    assert scores.shape == (80,) and ((scores > 0) & (scores < 1)).all()
    # Scores come back in the split's order whatever the length-bucketed batching did.
    single = score_split(model, encoded.subset([5]), batch_size=1)
    assert single[0] == pytest.approx(scores[5], abs=1e-5)

    frame = evaluate_scores(split, scores, threshold=0.5, min_group_size=10, n_resamples=50)
    expected = group_metrics(
        split.labels, (scores > 0.5).astype(int), split.memberships(), min_group_size=10, n_resamples=50
    )
    pd.testing.assert_frame_equal(frame, expected)
    race_only = evaluate_scores(split, scores, attributes=["race"], n_resamples=0)
    assert set(race_only.attribute) == {"all", "race"}
    with pytest.raises(DataError, match="expected \\(80,\\)"):
        evaluate_scores(split, scores[:-1])


def test_predictions_frame_lists_every_group(table: Path) -> None:
    split = _split(table)
    scores = np.linspace(0.0, 1.0, len(split))
    frame = predictions_frame(split, scores, threshold=0.5)
    assert list(frame.columns) == ["id", "label", "prediction", "score", "groups"]
    assert frame["prediction"].tolist() == (scores > 0.5).astype(int).tolist()
    source = pd.read_csv(table, keep_default_na=False)
    for row, (race, gender) in zip(
        frame.itertuples(), zip(source.race, source.gender, strict=True), strict=True
    ):
        expected = [f"race:{g}" for g in sorted(race.split("|")) if g] + [f"gender:{gender}"]
        assert row.groups == "|".join(expected)


def test_evaluate_checkpoint_writes_the_contract_files(
    tiny_checkpoint: Path, table: Path, tmp_path: Path
) -> None:
    split = _split(table)
    out = tmp_path / "eval"
    frame = evaluate_checkpoint(
        tiny_checkpoint,
        split,
        out,
        max_length=32,
        batch_size=16,
        min_group_size=10,
        n_resamples=20,
        progress=False,
    )
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == CONTRACT_COLUMNS
    assert set(metrics["model"]) == {"tiny-bert"} and set(metrics["split"]) == {"test"}
    assert metrics["lambda"].isna().all()
    assert len(metrics) == len(frame)
    n_african = metrics.query("attribute == 'race' and group == 'African' and metric == 'n'")["value"].iloc[0]
    assert n_african == sum("African" in g for g in split.groups["race"])
    predictions = pd.read_csv(out / "predictions.csv", dtype={"id": str})
    assert predictions["id"].tolist() == split.ids
    accuracy = metrics.query("attribute == 'all' and metric == 'accuracy'")["value"].iloc[0]
    assert accuracy == pytest.approx(np.mean(predictions["label"] == predictions["prediction"]))


def test_cli_evaluate_end_to_end(
    tiny_checkpoint: Path,
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "cli-out"
    argv = [
        "fairmerge", "evaluate", str(tiny_checkpoint), "--data", str(table), "--text-col", "text",
        "--label-col", "label", "--group-col", "race", "--group-col", "sex=gender", "--positive", "hate",
        "--group-sep", "|", "--id-col", "post", "--out", str(out), "--max-length", "32",
        "--batch-size", "16", "--min-group-size", "10", "--resamples", "20", "--seed", "3",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    main()  # returns on success; bad input ends in SystemExit(2)
    assert "wrote" in capsys.readouterr().out
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["attribute"]) == {"all", "race", "sex"}
    assert {"dpd", "eod", "worst_group_accuracy", "tpr", "fpr"} <= set(metrics["metric"])
    assert len(pd.read_csv(out / "predictions.csv")) == 80


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--label-col": "missing"}, "missing column"),
        ({"--positive": "nonexistent"}, "never equals positive"),
        ({"--resamples": "-1"}, "n_resamples"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(
    tiny_checkpoint: Path,
    table: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    options = {"--data": str(table), "--text-col": "text", "--label-col": "label", "--group-col": "race",
               "--positive": "hate", "--out": str(tmp_path / "out"), "--resamples": "10"}  # fmt: skip
    options.update(change)
    argv = ["fairmerge", "evaluate", str(tiny_checkpoint), *[x for kv in options.items() for x in kv]]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint_is_a_model_error(table: Path, tmp_path: Path) -> None:
    from fairmerge.errors import ModelError

    with pytest.raises(ModelError):
        evaluate_checkpoint(tmp_path / "nope", _split(table), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_parse_group_cols() -> None:
    assert parse_group_cols(["race", "sex=gender"]) == {"race": "race", "sex": "gender"}
    with pytest.raises(ConfigError, match="given twice"):
        parse_group_cols(["race", "race=other"])
    with pytest.raises(ConfigError, match="ATTR=COL"):
        parse_group_cols(["=col"])
