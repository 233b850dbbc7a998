"""The search as a study stage: its config section, its plan, and `fairmerge run search --fast` end to end."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import LlamaConfig

from fairmerge.errors import ConfigError
from fairmerge.search import SearchConfig, estimate_learned_memory
from fairmerge.search.scoring import CachedScoreFn
from fairmerge.study import run as study_run
from fairmerge.study.config import load_config
from fairmerge.study.stages import STAGES
from fairmerge.study.stages import search as search_stage
from fairmerge.study.summary import StudySummary


def test_default_study_has_no_search_and_search_config_has_every_method() -> None:
    assert load_config().search is None  # the default study and its numbers are unchanged
    full, fast = load_config("search"), load_config("search", fast=True)
    assert full.search is not None and fast.search is not None
    assert full.search.methods == fast.search.methods == ["grid", "tpe", "nsga2", "learned", "orthogonal"]
    assert fast.search.budget < full.search.budget
    assert search_stage.STAGE in STAGES


@pytest.mark.parametrize(("searched", "plain"), [("search", "default"), ("utkface-search", "utkface")])
@pytest.mark.parametrize("fast", [False, True])
def test_search_configs_are_their_study_plus_the_search_section(
    searched: str, plain: str, fast: bool
) -> None:
    """The copies stay in sync: everything but the name and the search section is the plain study's."""
    with_search, without = load_config(searched, fast=fast).to_dict(), load_config(plain, fast=fast).to_dict()
    assert with_search.pop("search") is not None and without.pop("search") is None
    assert with_search.pop("name") == without.pop("name") + "-search"
    assert with_search == without


def test_search_objectives_must_name_a_study_attribute() -> None:
    with pytest.raises(ConfigError, match=r"search\.objectives name attribute .age."):
        load_config(overrides=["search.objectives=[accuracy, age_dpd]", "search.reference_point=[0.5, 0.5]"])
    with pytest.raises(ConfigError, match="search"):
        load_config(overrides=["search.methods=[annealing]"])


def test_plan_states_the_learned_memory_of_a_7b_model() -> None:
    """The --dry-run plan's 7B figure is what ``estimate_learned_memory`` gives (it is not recomputed
    at import: that builds a 7B meta model)."""
    llama = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        num_labels=2,
    )
    estimate = estimate_learned_memory(llama, dtype=torch.bfloat16, n_vectors=5)
    gib = sum(estimate.items.values()) / 2**30
    assert round(gib, 1) == search_stage.LLAMA_7B_LEARNED_GIB
    assert f"{search_stage.LLAMA_7B_LEARNED_GIB} GiB" in search_stage.STAGE.plan


@pytest.mark.slow
def test_run_search_fast_scores_only_front_points_on_test(
    fast_study: tuple[Path, Path], tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fairmerge run search --fast`: every method runs, only front points are scored on test (once
    each), pareto_front.csv / hypervolume.csv are written, summary.search validates, and each
    method's pick is compared with FFT as merge[<method>]. The search config is the default study
    plus its search section, so the session's ``run --fast`` cache (hard-linked: entries are
    replaced, never edited) holds its fine-tunes and the scores of every stage before the search."""
    shutil.copytree(fast_study[1], tmp_path / "cache", copy_function=os.link)
    tested: Counter[tuple[float, ...]] = Counter()

    class Spy(CachedScoreFn):
        def __call__(self, coefficients: tuple[float, ...], split: str) -> pd.DataFrame:  # type: ignore[override]
            if split == "test":
                tested[coefficients] += 1
            return super().__call__(coefficients, split)  # type: ignore[arg-type]

    monkeypatch.setattr(search_stage, "CachedScoreFn", Spy)
    out = tmp_path / "out"
    study_run.run_study("search", data_dir=data_dir, out_dir=out, fast=True, cache_dir=tmp_path / "cache")

    fronts = pd.read_csv(out / "pareto_front.csv")
    config = SearchConfig.model_validate(load_config("search", fast=True).search.model_dump())  # type: ignore[union-attr]
    assert set(fronts["model"]) == set(config.methods)
    lambdas = [c for c in fronts.columns if c.startswith("lambda_")]
    test_rows = fronts[fronts["split"] == "test"]
    front_points = {tuple(round(float(x), 4) for x in row) for row in test_rows[lambdas].to_numpy()}
    assert set(tested) == front_points  # no point off a front was scored on test
    assert max(tested.values()) == 1  # and each once, whichever methods share it
    val_rows = fronts[fronts["split"] == "val"]
    assert len(val_rows) == len(test_rows)  # the same front on both splits
    for objective in config.objectives:
        assert {objective, f"{objective}_ci_low", f"{objective}_ci_high"} <= set(fronts.columns)

    table = pd.read_csv(out / "hypervolume.csv")
    assert sorted(table["method"]) == sorted(config.methods)
    assert (table["n_evaluations"] <= config.budget).all()
    assert (
        (table["hv_test_ci_low"] <= table["hv_test"]) & (table["hv_test"] <= table["hv_test_ci_high"])
    ).all()

    summary = json.loads((out / "summary.json").read_text())
    parsed = StudySummary.model_validate(summary)
    assert parsed.search is not None and len(parsed.search) == len(config.methods)
    compared = {c["model"] for c in summary["comparisons"]}
    picked = {f"merge[{m}]" for m in set(val_rows["model"])}
    assert picked <= set(summary["selected"]) and picked <= compared
