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
    """Before a run, at most three lines: split sizes, the groups too small for a gap, where the rest is.

    The per-group table and the loader's notes are one command away (``fairmerge data summary``);
    the notes are also kept in ``summary.json`` (``provenance.dataset_notes``).
    """
    minimum = config.evaluation.min_group_size
    summary = dataset.summary(minimum)
    rows = summary[summary.attribute.isin(config.attributes)]
    overall = summary[summary.attribute == "all"]
    sizes = " / ".join(f"{r.split} {r.n:,}" for r in overall.itertuples())
    rates = " / ".join(f"{r.positive_rate:.0%}" for r in overall.itertuples())
    groups = ", ".join(f"{a} {rows[rows.attribute == a].group.nunique()}" for a in config.attributes)
    lines = [f"{dataset.name} ({dataset.label_scheme}): {sizes} examples, {rates} positive; groups: {groups}"]
    small = rows[rows.small]
    if len(small):
        listed = [f"{r.split} {r.attribute}/{r.group} {r.n}" for r in small.itertuples()]
        more = f" and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
        lines.append(f"groups under {minimum} posts (min_group_size): {', '.join(listed[:MAX_LISTED])}{more}")
    lines.append(
        f"per-group sizes and {len(dataset.notes)} data notes: {data_summary_command(dataset, config)}"
    )
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


MAX_LISTED = 8
"""Small groups named before a run; the rest are counted (``fairmerge data summary`` lists all)."""


def data_summary_command(dataset: GroupedTextDataset, config: StudyConfig) -> str:
    """The ``fairmerge data summary`` command that prints the study dataset's per-group table and notes."""
    options = "".join(f" -o {key}={value}" for key, value in config.dataset.options.items())
    minimum = config.evaluation.min_group_size
    return f"fairmerge data summary {dataset.name}{options}" + (
        f" --min-group-size {minimum}" if minimum != 30 else ""
    )


LOG_WIDTH = 120  # the comparison table's width in a log (a terminal uses its own)


def print_headline(summary: Mapping[str, Any], out_dir: Path, console: Console) -> None:
    """After a run: the headline, the comparison table, the paths written and the time per stage.

    The long verdict stays in ``summary.json`` (``verdict``) and the report; this fits one screen.
    """
    console.print(summary.get("headline_text") or "", markup=False, highlight=False, soft_wrap=True)
    selected = summary.get("selected") or {}
    unedited = {m: str(e["unedited"]) for m, e in selected.items() if e.get("unedited")}
    matrix = comparison_matrix(summary.get("comparisons") or [], unedited)
    print_comparisons(console, matrix)
    console.print(
        f"wrote {out_dir}/metrics.csv, summary.json, report.html, plots/comparisons.png",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    stages = ", ".join(f"{k} {v}" for k, v in stage_groups(summary.get("timings_s") or {}).items())
    console.print(
        f"time per stage (s): {stages}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def stage_groups(timings: Mapping[str, float]) -> dict[str, float]:
    """Seconds per stage group: ``sweep: merge (val)`` and ``sweep: injection (val)`` add up as ``sweep``."""
    groups: dict[str, float] = {}
    for stage, seconds in timings.items():
        name = stage.split(":")[0].split(" (")[0]
        groups[name] = round(groups.get(name, 0.0) + seconds, 1)
    return groups


def print_comparisons(console: Console, matrix: ComparisonMatrix) -> None:
    """The comparison table at most 120 columns wide, on a terminal or in a log; no number is cut.

    Unedited points (λ = 0) are a separate section; undefined cells' reasons are numbered below.
    """
    frame = pd.concat([matrix.edits, matrix.unedited], ignore_index=True)
    table = Table(
        title="test: Δ vs FFT, estimate and 95% interval",
        box=box.SQUARE if console.is_terminal else box.ASCII,
        show_lines=False,
        show_edge=False,  # two lines fewer: the whole run's output is one screen
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
    below = (
        " Below the line: unedited points (λ = 0 chosen on val, first seed)." if len(matrix.unedited) else ""
    )
    console.print(LEGEND + below, markup=False, highlight=False, soft_wrap=True)
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
    references = ", ".join(plan.references)
    console.print(
        f"reference models (each but fft compared with FFT): {references}", markup=False, soft_wrap=True
    )
    points = ", ".join(f"{family} {n}" for family, n in plan.lambda_points.items())
    console.print(
        f"validation points of the first seed (merge: at most, with refinement): {points}", markup=False
    )
    console.print(plan.memory, markup=False)
    console.print(plan.power, markup=False)
