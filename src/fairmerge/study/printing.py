"""What ``fairmerge run`` prints: tables that stay whole in a log, labels printed verbatim.

On a terminal a table is a rich table; anywhere else (a log file, CI, a pipe) it is plain text of
its natural width, so no number is cut to ``0.6…`` at 80 columns. Cells are never read as markup:
``merge[balanced]`` prints as itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fairmerge.data.types import GroupedTextDataset
from fairmerge.fairness.registry import wide_column
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


def print_headline(
    headline: list[dict[str, Any]],
    config: StudyConfig,
    timings: dict[str, float],
    verdict: str,
    out_dir: Path,
    console: Console,
) -> None:
    columns = ["model", "lambda", "accuracy", "worst_group_accuracy"]
    columns += [wide_column(a, m) for a in config.attributes for m in ("dpd", "eod")]
    convention = "λ·Σ τ" if config.sweep.convention == "sum" else "(λ/G)·Σ τ"
    headers = {"lambda": f"λ ({convention})", "accuracy": "acc", "worst_group_accuracy": "worst grp"}
    print_table(
        console,
        "test (reported once; every choice made on validation)",
        [headers.get(c, c.replace("_", " ").replace("dpd", "DPD").replace("eod", "EOD")) for c in columns],
        [[_number(row[c]) for c in columns] for row in headline],
    )
    console.print("time per stage (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()), markup=False)
    console.print(f"verdict: {verdict}", markup=False)
    console.print(f"wrote {out_dir}/metrics.csv, summary.json, report.html", markup=False)


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
