"""``run_study``: the whole study from a config, for one or several seeds, written to one folder.

Outputs (contract in DESIGN.md): ``metrics.csv``, ``summary.json``, ``report.html``, ``plots/*.png``,
plus side tables (``similarity.csv``, ``bound.csv``, ``strategies.csv``, ``pergroup_trials.csv``,
``multiseed.csv`` when several seeds run). The output folder is written atomically at the end;
fine-tunes live in the training cache and scores in the score cache, so an interrupted run
restarts where it stopped and produces the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from fairmerge.data import load_dataset
from fairmerge.data.intersections import qualification_table, with_intersections
from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ConfigError, FairmergeError
from fairmerge.executors import get_executor
from fairmerge.outputs_guard import check_output_dir, output_directory
from fairmerge.paths import default_cache_dir
from fairmerge.precision import precision_provenance
from fairmerge.report import write_report
from fairmerge.search import summary_records
from fairmerge.search.outcome import front_rows, search_table, write_search_outputs
from fairmerge.study.comparisons import (
    compare_with_fft,
    detectable_differences,
    gap_groups,
    primary_power,
    unedited_selections,
)
from fairmerge.study.config import SHARED_SEED, StudyConfig, load_config
from fairmerge.study.evaluator import evaluation_view
from fairmerge.study.multiseed import aggregate_seeds
from fairmerge.study.outputs import (
    METRICS_COLUMNS,
    headline_table,
    write_json,
    write_table,
)
from fairmerge.study.plan import plan_study
from fairmerge.study.printing import print_dataset, print_headline, print_plan
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.seed_run import SeedOutcome, run_pipeline
from fairmerge.study.stages import SeedContext
from fairmerge.study.summary import StudySummary
from fairmerge.study.testing import selected_table
from fairmerge.study.training_stage import train_on_executor
from fairmerge.study.verdict import comparison_verdict, headline_text
from fairmerge.sweep.bound import bound_checks
from fairmerge.training import TrainingCache


def _check_attributes(config: StudyConfig, dataset: GroupedTextDataset) -> None:
    unknown = [a for a in config.attributes if a not in dataset.attributes]
    if unknown:
        raise ConfigError(
            f"attributes {unknown} not in dataset {dataset.name!r}; it has {dataset.attributes}"
        )


def _score_cache_key(config: StudyConfig, dataset: GroupedTextDataset) -> str:
    payload = {
        "config": config.to_dict(),
        "data": dataset.provenance,
        "versions": {p: version(p) for p in ("torch", "transformers", "peft", "fairmerge")},
        "precision": precision_provenance(config.evaluation.precision)["resolved"],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _provenance(config: StudyConfig, dataset: GroupedTextDataset, outcome: SeedOutcome) -> dict[str, Any]:
    packages = ("fairmerge", "torch", "transformers", "peft", "fairlearn", "numpy", "pandas")
    check = outcome.precision
    return {
        "config": config.to_dict(),
        "data_files_sha256": dataset.provenance,
        "dataset_notes": dataset.notes,
        "checkpoints": outcome.checkpoints,
        "evaluation_precision": precision_provenance(config.evaluation.precision)
        | ({"resolved": check["chosen"], "check": check} if check else {}),
        "versions": {p: version(p) for p in packages} | {"python": platform.python_version()},
    }


def _seed_spread(outcomes: Sequence[SeedOutcome], config: StudyConfig) -> pd.DataFrame:
    """Mean, std and seed count of every headline test metric, per model (``multiseed.csv``)."""
    return aggregate_seeds([headline_table(o.metrics, config.attributes) for o in outcomes])


def run_study(
    config: str | Path | StudyConfig | None = None,
    *,
    data_dir: str | Path | None = None,
    out_dir: str | Path,
    fast: bool = False,
    seeds: Sequence[int] | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    dry_run: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the study of ``config`` and write ``out_dir``; return the content of ``summary.json``.

    ``config`` is a :class:`StudyConfig`, a YAML path, a built-in config name, or None for the
    embedded default; ``overrides`` are ``dotted.key=value`` strings (``--set``). With ``dry_run``
    the config and data are validated and the plan is printed and returned; nothing is trained,
    evaluated or written. ``executor="ray"`` runs every fine-tune of every seed as a Ray task first
    (``ray_address``: an existing cluster); the sweeps then run here, on the driver.
    """
    console = console or Console(stderr=True)
    started = time.perf_counter()
    if not dry_run:
        check_output_dir(out_dir, overwrite=overwrite)  # before any work: never replace a user's files
    study = load_config(config, fast=fast, overrides=overrides, seeds=seeds)
    seeds = study.seeds
    runner = get_executor(executor, ray_address)  # before any data: a missing Ray is one line
    dataset = load_study_dataset(study, data_dir)
    print_dataset(dataset, study, console)
    limits = study.evaluation.max_val_samples, study.evaluation.max_test_samples
    dataset = evaluation_view(dataset, *limits, study.attributes)  # small budgets: subsets of val/test

    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    training_cache = TrainingCache(cache_root / "training", enabled=use_cache)
    if dry_run:
        plan = plan_study(study, dataset, seeds, training_cache)
        print_plan(plan, console)
        return {"plan": asdict(plan), "config": study.to_dict()}
    score_cache = ScoreCache(cache_root / "scores" / _score_cache_key(study, dataset), enabled=use_cache)
    if runner.name != "local":
        with console.status(f"training every fine-tune on the {runner.name} executor"):
            tasks = train_on_executor(study, dataset, seeds, training_cache, runner)
        console.print(f"{tasks} fine-tune tasks done on the {runner.name} executor", markup=False)
    outcomes = []
    for seed, seed_study in study.seed_configs(seeds):
        console.rule(f"seed {seed}")
        context = SeedContext(seed_study, dataset, seed, training_cache, score_cache, console, data_dir)
        outcomes.append(run_pipeline(context))
    results = StudyResults(study, dataset, outcomes)
    summary = results.summary(time.perf_counter() - started)
    with output_directory(Path(out_dir), overwrite=overwrite) as tmp:
        results.write(tmp, summary)
    print_headline(summary.to_json_dict(), Path(out_dir), console)
    return summary.to_json_dict()


@dataclass(frozen=True)
class StudyResults:
    """Every seed's outcome, and what the study writes from them."""

    config: StudyConfig
    dataset: GroupedTextDataset
    outcomes: list[SeedOutcome]

    @property
    def primary(self) -> SeedOutcome:
        return self.outcomes[0]

    @cached_property
    def comparisons(self) -> pd.DataFrame:
        return compare_with_fft(self.outcomes, self.config)

    @cached_property
    def search(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """(``pareto_front.csv``, ``hypervolume.csv``) over every seed; None without a search section."""
        runs = [o.search for o in self.outcomes if o.search is not None]
        if self.config.search is None or not runs:
            return None
        primary = self.primary
        table = search_table(
            runs,
            self.config.search,
            primary.test_labels,
            primary.test_memberships,
            min_group_size=self.config.evaluation.min_group_size,
            seed=SHARED_SEED,
        )
        return front_rows(runs), table

    @cached_property
    def multiseed(self) -> pd.DataFrame | None:
        return _seed_spread(self.outcomes, self.config) if len(self.outcomes) > 1 else None

    def summary(self, elapsed_s: float) -> StudySummary:
        """``summary.json`` as a typed object."""
        study, dataset, primary, outcomes = self.config, self.dataset, self.primary, self.outcomes
        n_seeds = len(outcomes)
        # the simulated MDE costs seconds per attribute and gap: the primary's attribute only
        gap_attributes = [] if study.primary.attribute == "all" else [study.primary.attribute]
        mde = detectable_differences(primary, study, n_seeds=n_seeds, attributes=gap_attributes)
        verdict = comparison_verdict(
            self.comparisons,
            accuracy_margin=study.selection.delta,
            mde=mde,
            unedited=unedited_selections(outcomes),
            n_seeds=len(outcomes),
        )
        timings = primary.timings.rounded() | {"total": round(elapsed_s, 1)}
        summary = StudySummary.model_validate(
            {
                **self._settings(),
                "selected": selected_table(primary.selected),
                "selected_by_seed": {str(o.seed): selected_table(o.selected) for o in outcomes[1:]},
                "worst_group": primary.worst_group,
                "worst_groups_by_seed": {str(o.seed): o.worst_group["label"] for o in outcomes},
                "headline": headline_table(primary.metrics, study.attributes),
                "comparisons": self.comparisons.to_dict(orient="records"),
                "mde": mde,
                "power": primary_power(primary, study, n_seeds=n_seeds),
                "gap_groups": gap_groups(primary, study),
                "target_quality": primary.target_quality,
                **self._tables(),
                "timings_s": timings,
                "verdict": verdict,
                "search": None if self.search is None else summary_records(self.search[1]),
                "multi_seed": None if self.multiseed is None else self.multiseed.to_dict(orient="records"),
                "provenance": _provenance(study, dataset, primary),
            }
        )
        summary.headline_text = headline_text(summary.to_json_dict())
        return summary

    def _settings(self) -> dict[str, Any]:
        study = self.config
        return {
            "dataset": self.dataset.name,
            "model": study.model,
            "label_scheme": self.dataset.label_scheme,
            "attributes": study.attributes,
            "seeds": [o.seed for o in self.outcomes],
            "selection": {
                "rule": study.selection.rule,
                "epsilon": study.selection.epsilon,
                "delta": study.selection.delta,
                "split": "val",
            },
            "lambda_convention": study.sweep.convention,
            "merge_method": study.sweep.method,
        }

    def _tables(self) -> dict[str, Any]:
        primary = self.primary
        return {
            "selection_sensitivity": primary.sensitivity.to_dict(orient="records"),
            "recipes": primary.strategies.to_dict(orient="records"),
            "degenerate_points": primary.degenerate.to_dict(orient="records"),
            "training_curves": primary.histories,
            "bound_checks": {
                "uniform": bound_checks(primary.bound),
                "per_group": bound_checks(primary.pergroup_bound) if len(primary.pergroup_bound) else {},
            },
        }

    def write(self, folder: Path, summary: StudySummary) -> None:
        """metrics.csv, summary.json, the side tables and the report, into ``folder``."""
        primary, payload = self.primary, summary.to_json_dict()
        write_table(folder / "metrics.csv", primary.metrics[METRICS_COLUMNS])
        write_json(folder / "summary.json", payload)
        write_table(folder / "similarity.csv", primary.similarity, index=True)
        for name, table in (
            ("bound", primary.bound),
            ("bound_pergroup", primary.pergroup_bound),
            ("strategies", primary.strategies),
            ("pergroup_trials", primary.pergroup_trials),
            ("selection_sensitivity", primary.sensitivity),
            ("degenerate", primary.degenerate),
            ("comparisons", self.comparisons),
        ):
            write_table(folder / f"{name}.csv", table)
        if self.config.intersections:  # which combinations enter each gap, and why the others do not
            evaluation = self.config.evaluation
            table = qualification_table(
                self.dataset,
                self.config.intersections,
                min_group_size=evaluation.min_group_size,
                min_positives=evaluation.min_positives,
                min_negatives=evaluation.min_negatives,
            )
            write_table(folder / "intersections.csv", table)
        if self.search is not None:
            write_search_outputs(folder, *self.search)
        if self.multiseed is not None:
            write_table(folder / "multiseed.csv", self.multiseed)
            for outcome in self.outcomes:
                write_table(folder / f"seed-{outcome.seed}" / "metrics.csv", outcome.metrics[METRICS_COLUMNS])
        write_report(
            folder,
            metrics=primary.metrics[METRICS_COLUMNS],
            summary=payload,
            similarity=primary.similarity,
            bound=primary.bound,
            strategies=primary.strategies,
            provenance=payload["provenance"],
        )


def load_study_dataset(config: StudyConfig, data_dir: str | os.PathLike[str] | None) -> GroupedTextDataset:
    """The config's dataset as the study reads it: its loader's options, plus its intersections."""
    try:
        dataset = load_dataset(config.dataset.name, data_dir, **config.dataset.options)
        dataset = with_intersections(dataset, config.intersections)  # race×gender joins the attributes
    except FairmergeError as exc:
        raise type(exc)(
            f"{exc} — config {config.name!r} needs {config.requires}" if config.requires else str(exc)
        ) from exc
    _check_attributes(config, dataset)
    return dataset
