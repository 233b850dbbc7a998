"""CLI command: ``fairmerge evaluate`` — any checkpoint on any CSV/Parquet file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fairmerge.errors import ConfigError
from fairmerge.paths import DATA_DIR_ENV

if TYPE_CHECKING:
    from fairmerge.data.types import TextSplit
    from fairmerge.study_split import StudySplit


def parse_group_cols(specs: list[str]) -> dict[str, str]:
    """``COL`` (attribute named after the column) or ``ATTR=COL`` -> {attribute: column}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        attribute, sep, column = spec.partition("=")
        if not sep:
            attribute = column = spec
        attribute, column = attribute.strip(), column.strip()
        if not attribute or not column:
            raise ConfigError(f"--group-col {spec!r}: expected COL or ATTR=COL")
        if attribute in mapping:
            raise ConfigError(f"--group-col: attribute {attribute!r} given twice")
        mapping[attribute] = column
    return mapping


def check_device(device: str | None) -> None:
    """``--device`` names a torch device type (cpu, cuda, cuda:1, mps, …)."""
    import torch

    if device is None:
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device!r} is not a torch device (cpu, cuda, cuda:1, mps, …)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ConfigError(
            f"--device {device}: no CUDA device is available (torch {torch.__version__}, {build})"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: no MPS device is available")


_TABLE_DEFAULTS: dict[str, Any] = {
    "max_length": 128,
    "min_group_size": 30,
    "n_resamples": 1000,
    "n_permutations": 1000,
    "seed": 0,
    "batch_size": 128,
    "attributes": None,
    "precision": "fp32",
}
"""Evaluation settings for --data; with --dataset they come from the study config (an exported
model's own run config and seed, see fairmerge.study_split.exported_run)."""
_STUDY_ONLY = ("min_positives", "min_negatives")
"""Settings a study config gives with --dataset; --data keeps evaluate_checkpoint's defaults."""


def evaluate(
    model: str = typer.Argument(
        ...,
        help="Checkpoint directory or Hugging Face id ('default' = the bundled MiniLM); text or image model.",
    ),
    data: Path | None = typer.Option(None, "--data", help="CSV or Parquet file with one example per row."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Instead of --data: a study dataset (hatexplain, sbic, utkface, …), read as the study reads it.",
    ),
    split: str = typer.Option("test", "--split", help="With --dataset: train, val or test."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar=DATA_DIR_ENV, help="With --dataset: the data directory."
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        help="With --dataset: the study config whose loader options, attributes and evaluation settings "
        "apply (default: the run config an exported model records, else the built-in config of the dataset).",
    ),
    fast: bool = typer.Option(
        False,
        "--fast",
        help="With --dataset: the config's --fast profile (its val/test subsets); an exported model "
        "records its run's profile already.",
    ),
    text_col: str | None = typer.Option(None, "--text-col", help="Column holding the text (text models)."),
    image_col: str | None = typer.Option(
        None, "--image-col", help="Column of image paths, relative to the table's folder (image models)."
    ),
    label_col: str | None = typer.Option(None, "--label-col", help="Column holding the label (with --data)."),
    group_col: list[str] = typer.Option(
        [],
        "--group-col",
        help="Group column, as COL or ATTR=COL; repeat for several attributes (with --data).",
    ),
    positive: str | None = typer.Option(
        None, "--positive", help="Label value that counts as positive (default: labels must be 0/1)."
    ),
    group_sep: str | None = typer.Option(
        None, "--group-sep", help="Separator of several groups in one cell, e.g. '|'."
    ),
    id_col: str | None = typer.Option(None, "--id-col", help="Column of example ids (default: row number)."),
    allow_outside_paths: bool = typer.Option(
        False,
        "--allow-outside-paths",
        help="Accept image paths that are absolute or lead outside the table's folder (a trusted table).",
    ),
    out: Path = typer.Option(
        Path("evaluation"), "--out", help="Output folder (written atomically; an earlier output is replaced)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even if it holds files fairmerge did not write."
    ),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Tokenizer, when the checkpoint directory has none."
    ),
    split_name: str | None = typer.Option(
        None, "--split-name", help="Value of the 'split' column (default: --split, or 'test')."
    ),
    max_length: int | None = typer.Option(
        None,
        "--max-length",
        help="Truncate texts to this many tokens (default 128; the config's with --dataset).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Examples per forward pass (default 128)."
    ),
    threshold: float = typer.Option(0.5, "--threshold", help="Predict positive when P(y=1) > threshold."),
    min_group_size: int | None = typer.Option(
        None,
        "--min-group-size",
        help="Smallest group that enters the gaps (default 30; the config's with --dataset).",
    ),
    resamples: int | None = typer.Option(
        None,
        "--resamples",
        help="Bootstrap resamples, 0: no intervals (default 1000; the config's with --dataset).",
    ),
    permutations: int | None = typer.Option(
        None,
        "--permutations",
        help="Permutations of the gaps' noise floors and zero-gap tests (default 1000; the config's "
        "with --dataset).",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help="Seed of the bootstrap and permutations (default 0; with --dataset the config's first "
        "seed, or the seed an exported model records).",
    ),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, … (default: CUDA if available)."),
) -> None:
    """Evaluate a text or image classifier on a table or on a study's split: group metrics with
    bootstrap intervals, each gap's noise floor, and the labels' own DPD, as the study reports test.

    Writes OUT/metrics.csv (model, lambda, split, attribute, group, metric, value, ci_low, ci_high)
    and OUT/predictions.csv (id, label, prediction, score, groups).

    Example: fairmerge evaluate ./ckpt --data posts.csv --text-col text --label-col label
    --positive hate --group-col race=target_race --group-sep "|" --out eval

    The study's own split (same posts, attributes and settings as `fairmerge run`, so the rows
    reproduce its test metrics): fairmerge evaluate ./ckpt --dataset hatexplain --split test
    --data-dir ../shared/data --out eval. A folder written by `fairmerge export` brings its run's
    config and seed: fairmerge evaluate ./exported --dataset hatexplain --split test

    Images: fairmerge evaluate ./image-ckpt --data faces.csv --image-col path --label-col age_over_30
    --group-col race --group-col gender --out eval
    """
    from fairmerge.evaluation import METRICS_FILE, PREDICTIONS_FILE, evaluate_checkpoint
    from fairmerge.outputs_guard import check_output_dir, output_directory

    check_output_dir(out, overwrite=overwrite)
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ConfigError(f"--threshold must be a probability in [0, 1], got {threshold}")
    check_device(device)
    if (data is None) == (dataset is None):
        raise ConfigError("give exactly one of --data FILE (a table) and --dataset NAME (a study's split)")
    settings: dict[str, Any] = dict(_TABLE_DEFAULTS)
    if dataset is not None:
        chosen = _study_split(model, dataset, split, data_dir, config, fast)
        evaluated, name = chosen.split, split_name or chosen.name
        settings = {key: getattr(chosen, key) for key in (*_TABLE_DEFAULTS, *_STUDY_ONLY)}
    else:
        columns = (text_col, image_col, label_col, group_col, positive, group_sep, id_col)
        evaluated, name = _read_table(data, *columns, allow_outside_paths), split_name or "test"
    given = {
        "max_length": max_length,
        "min_group_size": min_group_size,
        "n_resamples": resamples,
        "n_permutations": permutations,
        "seed": seed,
        "batch_size": batch_size,
    }
    settings.update({key: value for key, value in given.items() if value is not None})
    with output_directory(out, overwrite=overwrite) as tmp:
        metrics = evaluate_checkpoint(
            model,
            evaluated,
            tmp,
            split_name=name,
            tokenizer_path=tokenizer,
            threshold=threshold,
            device=device,
            progress=True,
            **settings,
        )
    overall = metrics[(metrics["attribute"] == "all") & (metrics["metric"] == "accuracy")].iloc[0]
    typer.echo(
        f"{len(evaluated)} examples, accuracy {overall['value']:.3f} "
        f"[{overall['ci_low']:.3f}, {overall['ci_high']:.3f}]"
    )
    typer.echo(f"wrote {out / METRICS_FILE} and {out / PREDICTIONS_FILE}")


def _study_split(
    model: str, dataset: str, split: str, data_dir: Path | None, config: str | None, fast: bool
) -> StudySplit:
    """The study's split under ``config``, else under the run config an exported ``model`` records."""
    from fairmerge.study_split import EXPORT_RECORD, exported_run, study_split

    run = exported_run(model) if config is None else None
    if run is None:
        return study_split(dataset, split, data_dir, config=config, fast=fast)
    if fast:
        raise ConfigError(
            f"--fast: {model} records its run's config ({EXPORT_RECORD}), profile included; "
            "drop --fast, or pass --config to evaluate under another config"
        )
    return study_split(dataset, split, data_dir, config=run.config, seed=run.seed)


def _read_table(
    data: Path | None,
    text_col: str | None,
    image_col: str | None,
    label_col: str | None,
    group_col: list[str],
    positive: str | None,
    group_sep: str | None,
    id_col: str | None,
    allow_outside_paths: bool,
) -> TextSplit:
    """The table of --data through its column options (texts or image paths)."""
    from fairmerge.data.table import read_image_table_split, read_table_split

    assert data is not None
    if (text_col is None) == (image_col is None):
        raise ConfigError("give exactly one of --text-col (texts) and --image-col (a column of image paths)")
    if label_col is None or not group_col:
        raise ConfigError("--data needs --label-col and at least one --group-col")
    columns = {"label_col": label_col, "group_cols": parse_group_cols(group_col), "id_col": id_col}
    columns |= {"positive": positive, "group_sep": group_sep}
    if text_col is not None:
        return read_table_split(data, text_col=text_col, **columns)  # type: ignore[arg-type]
    return read_image_table_split(data, image_col=image_col, allow_outside=allow_outside_paths, **columns)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("evaluate")(evaluate)
