"""What ``fairmerge run`` prints: tables that stay whole in a log, labels printed verbatim.

On a terminal a table is a rich table; anywhere else (a log file, CI, a pipe) it is plain text of
its natural width, so no number is cut to ``0.6…`` at 80 columns. Cells are never read as markup:
``merge[balanced]`` prints as itself.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fairmerge.data.types import GroupedTextDataset
from fairmerge.report.comparison_table import LEGEND, ComparisonMatrix, comparison_matrix
from fairmerge.study.config import StudyConfig
from fairmerge.study.plan import StudyPlan


def print_table(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A titled table: rich on a terminal, plain full-width text elsewhere."""
    if console.is_terminal:
        table = Table(title=escape(title))
        for column in columns:
            table.add_column(escape(column), no_wrap=True)
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        return
    text = pd.DataFrame(list(rows), columns=list(columns)).to_string(index=False)
    console.print(f"{title}\n{text}", markup=False, highlight=False, soft_wrap=True)


def _number(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "-" if value is None or value != value else f"{value:.3f}"


def print_dataset(dataset: GroupedTextDataset, config: StudyConfig, console: Console) -> None:
    summary = dataset.summary(config.evaluation.min_group_size)
    rows = summary[summary.attribute.isin(["all", *config.attributes])]
    print_table(
        console,
        f"{dataset.name} ({dataset.label_scheme}): examples per split and group",
        ("split", "attribute", "group", "n", "positives", "rate", "note"),
        [
            (
                str(row.split),
                str(row.attribute),
                str(row.group),
                str(row.n),
                str(row.positives),
                f"{row.positive_rate:.2f}",
                (("small " if row.small else "") + ("weak" if row.weak_groups else "")).strip(),
            )
            for row in rows.itertuples()
        ],
    )
    for note in dataset.notes:
        console.print(note, style="dim", markup=False)


LOG_WIDTH = 120  # the comparison table's width in a log (a terminal uses its own)


def print_headline(summary: Mapping[str, Any], out_dir: Path, console: Console) -> None:
    """After a run: the headline, the comparison table, the paths written and the time per stage.

    The long verdict stays in ``summary.json`` (``verdict``) and the report; this fits one screen.
    """
    console.print(summary.get("headline_text") or "", markup=False, highlight=False, soft_wrap=True)
    matrix = comparison_matrix(summary.get("comparisons") or [], summary.get("selected") or {})
    print_comparisons(console, matrix)
    console.print(
        f"wrote {out_dir}/metrics.csv, summary.json (full verdict), report.html, plots/comparisons.png",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    timings = summary.get("timings_s") or {}
    stages = ", ".join(f"{k} {v}" for k, v in timings.items())
    console.print(f"time per stage (s): {stages}", markup=False, highlight=False, soft_wrap=True)


def print_comparisons(console: Console, matrix: ComparisonMatrix) -> None:
    """The comparison table at most 120 columns wide, on a terminal or in a log; no number is cut.

    Unedited points (λ = 0) are a separate section; undefined cells' reasons are numbered below.
    """
    frame = pd.concat([matrix.edits, matrix.unedited], ignore_index=True)
    table = Table(
        title="test: Δ vs FFT, estimate and 95% interval",
        box=box.SQUARE if console.is_terminal else box.ASCII,
        show_lines=False,
        pad_edge=False,
    )
    for column in frame.columns:
        table.add_column(escape(str(column)), overflow="fold")
    for index, row in enumerate(frame.itertuples(index=False)):
        if index == len(matrix.edits) and len(matrix.unedited):
            table.add_section()
        table.add_row(*(escape(str(cell)) for cell in row), end_section=False)
    if console.is_terminal:
        console.print(table)
    else:  # a log's console is 80 columns wide unless told otherwise: render at LOG_WIDTH, print as text
        buffer = io.StringIO()
        Console(file=buffer, width=LOG_WIDTH, color_system=None).print(table)
        console.print(buffer.getvalue().rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if len(matrix.unedited):
        console.print("below the line: unedited points (validation chose λ = 0, first seed)", markup=False)
    console.print(LEGEND, markup=False, highlight=False, soft_wrap=True)
    for number, reason in enumerate(matrix.reasons, start=1):
        console.print(f"({number}) {reason}", markup=False, highlight=False, soft_wrap=True)


def print_plan(plan: StudyPlan, console: Console) -> None:
    console.print("plan (dry run: nothing is trained, evaluated or written)", markup=False)
    for number, stage in enumerate(plan.stages, start=1):
        console.print(f"  {number}. {stage}", markup=False)
    print_table(
        console,
        f"fine-tunes: {plan.to_train} to train, {len(plan.finetunes) - plan.to_train} cached",
        ("seed", "fine-tune", "status"),
        [(str(f.seed), f.what, "cached" if f.cached else "to train") for f in plan.finetunes],
    )
    points = ", ".join(f"{family} {n}" for family, n in plan.lambda_points.items())
    console.print(
        f"validation points of the first seed (merge: at most, with refinement): {points}", markup=False
    )
    console.print(plan.memory, markup=False)
    console.print(plan.power, markup=False)
