"""CLI commands: ``fairmerge data summary`` and ``fairmerge data list``."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fairmerge.data import available_datasets, load_dataset
from fairmerge.data.registry import loader_options
from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ConfigError

data_app = typer.Typer(help="Inspect the datasets: sizes, class balance and group sizes per split.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(data_app, name="data")


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["threshold=0.3", "path=x.csv"]`` → ``{"threshold": 0.3, "path": "x.csv"}`` (JSON values
    where they parse, strings otherwise)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


@data_app.command("list")
def list_datasets() -> None:
    """List the dataset names and the options each loader accepts.

    Example: fairmerge data list
    """
    console = Console()
    table = Table(title="datasets")
    table.add_column("name")
    table.add_column("options (default)")
    for name in available_datasets():
        options = ", ".join(
            k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in loader_options(name).items()
        )
        table.add_row(name, options)
    console.print(table)


@data_app.command("summary")
def summary(
    name: str = typer.Argument(..., help=f"Dataset name: one of {', '.join(available_datasets())}."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: $FAIRMERGE_DATA_DIR)."
    ),
    label_scheme: str | None = typer.Option(
        None, "--label-scheme", help="Label scheme where a dataset has several (hatexplain: hate | toxic)."
    ),
    min_group_size: int = typer.Option(30, "--min-group-size", help="Groups smaller than this are flagged."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Extra loader option KEY=VALUE (repeatable), e.g. -o threshold=0.3."
    ),
) -> None:
    """Print per split: n and positives; per attribute and group: n, positive rate, small-group flag;
    then the dataset's notes (dropped rows, join coverage) and the sha256 of every file used.

    Example: fairmerge data summary hatexplain --data-dir ../shared/data --label-scheme toxic
    """
    if min_group_size < 1:
        raise ConfigError(f"--min-group-size must be >= 1, got {min_group_size}")
    options = parse_options(option)
    if label_scheme is not None:
        options["label_scheme"] = label_scheme
    dataset = load_dataset(name, data_dir, **options)
    print_summary(dataset, min_group_size, Console())


def print_summary(dataset: GroupedTextDataset, min_group_size: int, console: Console) -> None:
    """Render ``dataset.summary()`` as one rich table per split, then notes and provenance."""
    frame = dataset.summary(min_group_size)
    console.print(f"[bold]{dataset.name}[/bold]  label: {dataset.label_scheme}")
    for split, rows in frame.groupby("split", sort=False):
        overall = rows[rows["attribute"] == "all"].iloc[0]
        weak = bool(rows["weak_groups"].any())
        title = (
            f"{split}: n={overall['n']}, positives={overall['positives']} ({overall['positive_rate']:.1%})"
            + ("  (groups: WEAK)" if weak else "")
        )
        table = Table(title=title, title_justify="left")
        for column, justify in (
            ("attribute", "left"),
            ("group", "left"),
            ("n", "right"),
            ("positives", "right"),
            ("positive rate", "right"),
            ("small", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in rows[rows["attribute"] != "all"].to_dict(orient="records"):
            table.add_row(
                str(row["attribute"]),
                str(row["group"]),
                str(row["n"]),
                str(row["positives"]),
                _rate(float(row["positive_rate"])),
                f"< {min_group_size}" if row["small"] else "",
            )
        console.print(table)
    console.print("[bold]notes[/bold]")
    for note in dataset.notes:
        console.print(f"- {note}", highlight=False)
    console.print("[bold]files (sha256)[/bold]")
    for file, digest in dataset.provenance.items():
        console.print(f"- {file}  {digest}", highlight=False)


def _rate(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"
