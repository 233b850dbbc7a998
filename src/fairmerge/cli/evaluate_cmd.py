"""CLI command: ``fairmerge evaluate`` — any checkpoint on any CSV/Parquet file."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from fairmerge.errors import ConfigError


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


def evaluate(
    model: str = typer.Argument(
        ...,
        help="Checkpoint directory or Hugging Face id ('default' = the bundled MiniLM); text or image model.",
    ),
    data: Path = typer.Option(..., "--data", help="CSV or Parquet file with one example per row."),
    text_col: str | None = typer.Option(None, "--text-col", help="Column holding the text (text models)."),
    image_col: str | None = typer.Option(
        None, "--image-col", help="Column of image paths, relative to the table's folder (image models)."
    ),
    label_col: str = typer.Option(..., "--label-col", help="Column holding the label."),
    group_col: list[str] = typer.Option(
        ..., "--group-col", help="Group column, as COL or ATTR=COL; repeat for several attributes."
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
    split_name: str = typer.Option("test", "--split-name", help="Value of the 'split' column."),
    max_length: int = typer.Option(128, "--max-length", help="Truncate texts to this many tokens."),
    batch_size: int = typer.Option(128, "--batch-size", help="Examples per forward pass."),
    threshold: float = typer.Option(0.5, "--threshold", help="Predict positive when P(y=1) > threshold."),
    min_group_size: int = typer.Option(30, "--min-group-size", help="Smallest group that enters the gaps."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples (0: no intervals)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, … (default: CUDA if available)."),
) -> None:
    """Evaluate a text or image classifier on a table: group metrics with bootstrap intervals.

    Writes OUT/metrics.csv (model, lambda, split, attribute, group, metric, value, ci_low, ci_high)
    and OUT/predictions.csv (id, label, prediction, score, groups).

    Example: fairmerge evaluate ./ckpt --data posts.csv --text-col text --label-col label
    --positive hate --group-col race=target_race --group-sep "|" --out eval

    Images: fairmerge evaluate ./image-ckpt --data faces.csv --image-col path --label-col age_over_30
    --group-col race --group-col gender --out eval
    """
    from fairmerge.data.table import read_image_table_split, read_table_split
    from fairmerge.evaluation import METRICS_FILE, PREDICTIONS_FILE, evaluate_checkpoint
    from fairmerge.outputs_guard import check_output_dir, output_directory

    check_output_dir(out, overwrite=overwrite)
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ConfigError(f"--threshold must be a probability in [0, 1], got {threshold}")
    check_device(device)
    if (text_col is None) == (image_col is None):
        raise ConfigError("give exactly one of --text-col (texts) and --image-col (a column of image paths)")
    read = read_table_split if text_col is not None else read_image_table_split
    inputs: dict[str, object] = (
        {"text_col": text_col}
        if text_col is not None
        else {"image_col": image_col, "allow_outside": allow_outside_paths}
    )
    split = read(
        data,
        **inputs,  # type: ignore[arg-type]
        label_col=label_col,
        group_cols=parse_group_cols(group_col),
        positive=positive,
        group_sep=group_sep,
        id_col=id_col,
    )
    with output_directory(out, overwrite=overwrite) as tmp:
        metrics = evaluate_checkpoint(
            model,
            split,
            tmp,
            split_name=split_name,
            tokenizer_path=tokenizer,
            max_length=max_length,
            batch_size=batch_size,
            threshold=threshold,
            min_group_size=min_group_size,
            n_resamples=resamples,
            seed=seed,
            device=device,
            progress=True,
        )
    overall = metrics[(metrics["attribute"] == "all") & (metrics["metric"] == "accuracy")].iloc[0]
    typer.echo(
        f"{len(split)} examples, accuracy {overall['value']:.3f} "
        f"[{overall['ci_low']:.3f}, {overall['ci_high']:.3f}]"
    )
    typer.echo(f"wrote {out / METRICS_FILE} and {out / PREDICTIONS_FILE}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("evaluate")(evaluate)
