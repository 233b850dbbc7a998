"""The exported model card, from the session's --fast study: Hugging Face metadata and every number
checked against the run's summary.json and metrics.csv."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from huggingface_hub import ModelCard, ModelCardData

from fairmerge.export.card import model_card, number
from fairmerge.export.ingredients import Finetune, Ingredients
from fairmerge.export.run_folder import RunFolder

pytestmark = pytest.mark.slow

LABEL = "inject:worst@calibrated"


def _card(run: RunFolder, tmp_path: Path) -> tuple[ModelCard, str]:
    """The card of ``LABEL`` (its ingredients named, not read: the card only prints them)."""
    point = run.selected(LABEL, run.seeds[0])
    group = run.worst_group(point.seed)
    cache = Path("/cache/training")
    ingredients = Ingredients(
        point,
        cache / "fft" / "ff",
        "FFT",
        cache / "probe" / "b",
        [Finetune(group, cache / "subgroup" / "abcdef0123456789", float(point.lam or 0))],
        "inject",
        "sum",
    )
    path = tmp_path / "README.md"
    model_card(run, ingredients, threshold=0.25, task="text-classification").save(path)
    return ModelCard.load(path), path.read_text(encoding="utf-8")


def _test_rows(run: RunFolder, label: str) -> pd.DataFrame:
    return run.test_rows(label, run.seeds[0])


def test_card_metadata_loads_and_matches_metrics(fast_study: tuple[Path, Path], tmp_path: Path) -> None:
    run = RunFolder.read(fast_study[0])
    card, _ = _card(run, tmp_path)
    data = card.data
    assert isinstance(data, ModelCardData) and data.eval_results
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.datasets == ["Hate-speech-CNERG/hatexplain"] and data.license == "cc-by-4.0"
    assert {"fairmerge", "task-arithmetic", "fairness"} <= set(data.tags or [])
    rows = _test_rows(run, LABEL)
    results = {r.metric_name: r.metric_value for r in data.eval_results}
    accuracy = rows[(rows.attribute == "all") & (rows.metric == "accuracy")].value.iloc[0]
    assert results["accuracy"] == pytest.approx(accuracy, abs=0)
    for attribute in run.summary["attributes"]:
        for gap in ("dpd", "eod"):
            value = rows[(rows.attribute == attribute) & (rows.group == "all") & (rows.metric == gap)].value
            name = f"{attribute} {gap.upper()}"
            if value.isna().all():
                assert name not in results  # undefined gaps are left out, never written as 0
            else:
                assert results[name] == float(value.iloc[0])


def test_card_tables_print_the_runs_numbers(fast_study: tuple[Path, Path], tmp_path: Path) -> None:
    run = RunFolder.read(fast_study[0])
    _, text = _card(run, tmp_path)
    rows = _test_rows(run, LABEL)
    table = [line for line in text.splitlines() if line.startswith("| ") and line.count("|") == 8]
    checked = 0
    for line in table[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        attribute, group, n = cells[:3]
        if attribute == "attribute":
            continue
        mine = rows[(rows.attribute == attribute) & (rows.group == group)].set_index("metric")
        assert n == number(mine.loc["n", "value"], 0)
        accuracy = mine.loc["accuracy"]
        assert cells[3] == f"{number(accuracy.value)} [{number(accuracy.ci_low)}, {number(accuracy.ci_high)}]"
        checked += 1
    assert checked == len(rows[rows.metric == "n"])  # every group, with its size
    for gap in ("dpd", "eod"):
        floor = rows[(rows.attribute == "race") & (rows.metric == f"{gap}_noise_floor")].value.iloc[0]
        assert f"| race | {gap} |" in text and number(floor) in text
    for comparison in (c for c in run.summary["comparisons"] if c["model"] == LABEL):
        assert number(comparison["delta"]) in text and number(comparison["ci_low"]) in text
    assert run.summary["verdict"] in text
    for left_out in (g for g in run.summary["gap_groups"] if not g["entered"]):
        assert f"| {left_out['attribute']} | {left_out['metric']} | {left_out['group']} |" in text
    for quality in run.summary["target_quality"] or []:
        assert number(quality["precision"]) in text
    assert "Intended use" in text and "Out-of-scope use" in text and "t = 0.25" in text


def test_power_is_quoted_when_the_summary_has_it_and_called_absent_otherwise(
    fast_study: tuple[Path, Path], tmp_path: Path
) -> None:
    run = RunFolder.read(fast_study[0])
    power = run.summary["power"]
    _, text = _card(run, tmp_path)
    assert f"{power['power']:.2f} (Monte-Carlo SE {power['se']:.2f})" in text
    assert f"with {power['n_seeds']} seed(s)" in text
    without = dataclasses.replace(run, summary={k: v for k, v in run.summary.items() if k != "power"})
    _, text = _card(without, tmp_path)
    assert "summary.json has no `power` field" in text
