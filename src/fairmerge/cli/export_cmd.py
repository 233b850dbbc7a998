"""CLI command: ``fairmerge export`` — a selected point of a finished run as a Hugging Face checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer


def export(
    run_dir: Path = typer.Argument(..., help="Output folder of a finished `fairmerge run`."),
    out: Path = typer.Option(..., "-o", "--out", help="Folder to write (atomically; never a user's files)."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Selected model, e.g. merge, merge@calibrated, inject:worst (default: the headline model).",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the run (default: its first)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="The run's data folder (default: $FAIRMERGE_DATA_DIR); checked by hash."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache root (default: the one the run used)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace -o even if it holds files fairmerge did not write."
    ),
) -> None:
    """Rebuild a model the run selected from its cache and write a plain Hugging Face checkpoint:
    config.json, model.safetensors, tokenizer or image processor, README.md (model card),
    mergekit.yaml and fairmerge.json. A @calibrated model's threshold is folded into the head's bias.

    Example: fairmerge export runs/hatexplain --model merge@calibrated -o exported/merge-calibrated
    """
    from fairmerge.export import export_model

    written = export_model(
        run_dir, out, label=model, seed=seed, data_dir=data_dir, cache_dir=cache_dir, overwrite=overwrite
    )
    typer.echo(f"wrote {written}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("export")(export)
