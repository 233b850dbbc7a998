"""CLI commands: ``fairmerge cache list|clear`` — inspect or empty the training cache."""

from __future__ import annotations

from pathlib import Path

import typer

from fairmerge.errors import ConfigError
from fairmerge.paths import CACHE_DIR_ENV, training_cache_dir
from fairmerge.training.cache import KINDS

cache_app = typer.Typer(help="Inspect or empty the training cache.", no_args_is_help=True)

_CACHE_DIR = typer.Option(
    None,
    "--cache-dir",
    envvar=CACHE_DIR_ENV,
    help="Cache root, as for `fairmerge run` and `train` (entries in DIR/training; "
    "default ~/.cache/fairmerge).",
)
_KIND = typer.Option(None, "--kind", help=f"Only entries of this kind: {', '.join(KINDS)}.")


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind {kind!r} is not a cache kind; choose one of {', '.join(KINDS)}")


@cache_app.command("list")
def list_entries(cache_dir: Path = _CACHE_DIR, kind: str = _KIND) -> None:
    """List cached checkpoints: kind, key, size, creation time and what each one is.

    Example: fairmerge cache list --kind subgroup
    """
    from rich.console import Console
    from rich.table import Table

    from fairmerge.training import TrainingCache

    _check_kind(kind)
    cache = TrainingCache(training_cache_dir(cache_dir))
    entries = cache.entries(kind)
    if not entries:
        typer.echo(f"no cached entries in {cache.root}")
        return
    table = Table(title=f"training cache {cache.root}")
    for column in ("kind", "key", "size", "created", "description"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.kind,
            entry.key[:12],
            f"{entry.size_bytes / 1e6:.1f} MB",
            str(entry.meta.get("created", "?")),
            str(entry.meta.get("description", "")),
        )
    Console(width=160).print(table)
    typer.echo(f"{len(entries)} entries, {sum(e.size_bytes for e in entries) / 1e6:.1f} MB")


@cache_app.command("clear")
def clear(
    cache_dir: Path = _CACHE_DIR,
    kind: str = _KIND,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete cached checkpoints (all, or one kind) and leftovers of interrupted runs.

    Only entries the cache wrote (a folder whose meta.json names its kind and key) and its own
    temporary folders are deleted; anything else under the cache root is left and listed.

    Example: fairmerge cache clear --kind fft --yes
    """
    from fairmerge.training import TrainingCache

    _check_kind(kind)
    cache = TrainingCache(training_cache_dir(cache_dir))
    entries = cache.entries(kind)
    what = f"{len(entries)} {kind or 'cached'} entries in {cache.root}"
    if not yes and not typer.confirm(f"delete {what}?"):
        raise typer.Abort()
    result = cache.clear(kind)
    extra = f" and {result.leftovers} leftovers of interrupted writes" if result.leftovers else ""
    typer.echo(f"deleted {result.removed} entries{extra} from {cache.root}")
    if result.kept:
        shown = ", ".join(str(p) for p in result.kept[:5]) + (" and more" if len(result.kept) > 5 else "")
        typer.echo(f"left {len(result.kept)} path(s) the cache did not write: {shown}")


def register(app: typer.Typer) -> None:
    """Add the ``cache`` command group to the root app."""
    app.add_typer(cache_app, name="cache")
