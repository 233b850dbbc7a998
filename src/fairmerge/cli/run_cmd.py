"""``fairmerge run``: the whole study in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from fairmerge.errors import ConfigError
from fairmerge.paths import DATA_DIR_ENV


def run(
    config: str = typer.Argument(
        None,
        help="Study config (YAML path or built-in name: default, sbic, mhs-distilbert, …). "
        "Omit for the embedded default (HateXplain + bundled MiniLM, offline).",
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar=DATA_DIR_ENV, help="Directory with the data files."
    ),
    out: Path = typer.Option(Path("runs/study"), "--out", "-o", help="Output folder (written atomically)."),
    fast: bool = typer.Option(False, "--fast", help="Small-budget profile of the same study (every stage)."),
    seeds: list[int] = typer.Option(
        None, "--seeds", help="Seeds to repeat the study with (mean ± std, paired tests)."
    ),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", envvar="FAIRMERGE_CACHE_DIR", help="Training and score cache."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute everything; store nothing."),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace --out even if it holds files fairmerge did not write "
        "(an earlier fairmerge output is replaced without it).",
    ),
    set_values: list[str] = typer.Option(
        None,
        "--set",
        help="Override any config key, e.g. --set sweep.lambdas='[0,0.5,1]' --set fft.epochs=2 (repeatable).",
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="Where fine-tunes run: local (this process) or ray (one Ray task each; the \\[ray] extra).",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="An existing Ray cluster (e.g. auto, or ray://HEAD:10001); default: local.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate config and data, print the plan (cached vs to train), exit."
    ),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="Also export the headline model (a Hugging Face checkpoint with its model card) to this folder.",
    ),
) -> None:
    """Run the fairness study of task arithmetic and write metrics.csv, summary.json and report.html.

    Example: fairmerge run --data-dir ../shared/data --out runs/default --set sweep.lambdas='[0,0.5,1]'

    Example: fairmerge run --fast --out runs/fast --export models/fast-headline
    """
    from fairmerge.models import check_model
    from fairmerge.outputs_guard import check_output_dir
    from fairmerge.study.config import load_config
    from fairmerge.study.run import run_study

    if not dry_run:
        check_output_dir(out, overwrite=overwrite)  # before any work
    if export is not None:
        check_export(export, out, dry_run=dry_run, no_cache=no_cache, overwrite=overwrite)
    bad_seeds = [s for s in seeds or [] if not 0 <= s < 2**32]
    if bad_seeds:
        raise ConfigError(f"--seeds must be integers in [0, 2**32), got {bad_seeds}")
    if config is not None and Path(config).is_dir():
        raise ConfigError(f"config {config} is a folder; give a YAML file or a built-in config name")
    check_model(load_config(config, fast=fast, overrides=set_values or ()).model)  # as `train` does
    quiet_libraries()
    run_study(
        config,
        data_dir=data_dir,
        out_dir=out,
        fast=fast,
        seeds=seeds,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        overwrite=overwrite,
        overrides=set_values or (),
        dry_run=dry_run,
        executor=executor,
        ray_address=ray_address,
    )
    if export is not None:
        from fairmerge.export import export_headline

        written = export_headline(out, export, data_dir=data_dir, overwrite=overwrite)
        typer.echo(f"exported the headline model to {written}")


def quiet_libraries() -> None:
    """The run's console is for the study's own lines: no per-file bar when a checkpoint is saved
    (transformers' "Writing model shards") and no INFO line per optuna study."""
    import optuna
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def check_export(export: Path, out: Path, *, dry_run: bool, no_cache: bool, overwrite: bool) -> None:
    """Refuse ``--export`` before any compute when the run cannot export or the folder is bad."""
    from fairmerge.outputs_guard import check_output_dir

    if dry_run:
        raise ConfigError("--export cannot be combined with --dry-run: a dry run trains nothing to export")
    if no_cache:
        raise ConfigError("--export needs the training cache; it cannot be combined with --no-cache")
    inner, outer = export.expanduser().resolve(), out.expanduser().resolve()
    if inner == outer or inner.is_relative_to(outer) or outer.is_relative_to(inner):
        raise ConfigError(f"--export {export} must lie outside --out {out} (and not contain it)")
    check_output_dir(export, overwrite=overwrite, flag="--export", what="fairmerge export")


def register(app: typer.Typer) -> None:
    """Add ``run`` to the root app."""
    app.command("run")(run)
