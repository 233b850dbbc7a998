"""The study's core: typed config with overrides, model labels, the dry-run plan, the library face."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest
from training_tiny import save_tiny_bert
from typer.testing import CliRunner

import fairmerge as fm
from fairmerge.cli import app
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import Thresholds
from fairmerge.inference import EncodedInputs
from fairmerge.labels import ModelLabel
from fairmerge.study.config import load_config, parse_override
from fairmerge.study.evaluator import SplitEvaluator, evaluation_view
from fairmerge.study.outputs import to_json_safe
from fairmerge.study.plan import power_plan
from fairmerge.study.points import PointEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages.workspace import Workspace
from fairmerge.training import TrainingCache, make_base_checkpoint


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_yaml_numbers_like_5e_5_are_numbers(tmp_path: Path) -> None:
    # PyYAML reads 5e-5 (no dot) as a string; the study config takes it as the number it is
    config = load_config(_write(tmp_path, "fft: {learning_rate: 5e-5}\n"))
    assert config.fft.learning_rate == pytest.approx(5e-5)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("fft: {epochz: 1}\n", r"fft.*epochz"),
        ("sweep: {lambdas: '0.5'}\n", r"sweep\.lambdas"),
        ("fft: {batch_size: big}\n", r"fft.*batch_size"),
        ("sweep: {lambdaz: [0, 1]}\n", r"sweep\.lambdaz: unknown key"),
        ("evaluation: {n_resamples: -1}\n", r"evaluation\.n_resamples"),
        ("fast: {sweep: {lambdas: [5]}}\n", r"fast profile.*sweep\.lambdas\.0"),
    ],
)
def test_wrong_types_and_unknown_keys_name_the_full_key_path(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(_write(tmp_path, text))


def test_overrides_change_any_key_and_are_validated() -> None:
    config = load_config(
        None, overrides=["sweep.lambdas=[0, 0.5, 1]", "fft.epochs=2", "selection.rule=accuracy"]
    )
    assert config.sweep.lambdas == [0.0, 0.5, 1.0]
    assert config.fft.epochs == 2 and config.selection.rule == "accuracy"
    assert config.fft.learning_rate == load_config(None).fft.learning_rate  # the rest of fft is kept
    with pytest.raises(ConfigError, match=r"sweep\.lambdaz"):
        load_config(None, overrides=["sweep.lambdaz=[0]"])
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("sweep.lambdas")
    # overrides apply after the fast profile
    assert load_config(None, fast=True, overrides=["sweep.lambdas=[0.25]"]).sweep.lambdas == [0.25]


def test_a_config_object_round_trips() -> None:
    config = load_config(None, overrides=["seeds=[3]"])
    again = load_config(config)
    assert again == config and again.seeds == [3]


@pytest.mark.parametrize(
    "text",
    ["fft", "merge", "merge[balanced]@calibrated", "inject:Native American", "inject:worst@calibrated"],
)
def test_model_labels_round_trip_through_their_string(text: str) -> None:
    label = ModelLabel.parse(text)
    assert str(label) == text
    assert ModelLabel.parse("merge[balanced]@calibrated") == ModelLabel(
        "merge", "balanced", None, "calibrated"
    )


def test_import_fairmerge_is_the_library_face() -> None:
    for name in ("TaskVector", "load_dataset", "evaluate", "InPlaceMerger", "run_study", "load_config"):
        assert callable(getattr(fm, name)), name
    with pytest.raises(AttributeError):
        _ = fm.no_such_thing  # type: ignore[attr-defined]


def test_the_notebook_sweep_runs_as_written(tmp_path: Path, data_dir: Path) -> None:
    text = (Path(__file__).parents[1] / "docs" / "notebook.md").read_text()
    sweep_block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    assert len(sweep_block.strip().splitlines()) <= 10
    namespace = {
        "DATA_DIR": str(data_dir),
        "MODEL": str(save_tiny_bert(tmp_path / "tiny")),
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    exec(compile(sweep_block, "docs/notebook.md", "exec"), namespace)
    curve = namespace["curve"]
    assert sorted(curve) == [0.0, 0.5, 1.0]
    for frame in curve.values():
        assert {"attribute", "group", "metric", "value", "ci_low", "ci_high"} <= set(frame.columns)
        assert {"dpd", "eod", "n"} <= set(frame.metric)
    accuracy = [
        float(f[(f.attribute == "all") & (f.metric == "accuracy")].value.iloc[0]) for f in curve.values()
    ]
    assert len(set(accuracy)) > 1, "the merge must change the model"


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, data_dir: Path) -> None:
    tiny = save_tiny_bert(tmp_path / "tiny")
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["run", "--fast", "--dry-run", "--data-dir", str(data_dir), "--out", str(out)]
    args += ["--cache-dir", str(cache), "--set", f"model={tiny}"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "fine-tunes: 8 to train, 0 cached" in first.output  # base, fft, lora, 5 groups
    assert re.search(r"merge\s+3", first.output) and not out.exists()
    assert "memory estimate:" in first.output and "peak host memory" in first.output
    config = load_config(None, fast=True, overrides=[f"model={tiny}"])
    limits = config.evaluation.max_val_samples, config.evaluation.max_test_samples
    make_base_checkpoint(  # the default recipe's θ_base: the linear-probed head, shared by every seed
        str(tiny),
        seed=0,
        cache=TrainingCache(cache / "training"),
        head="linear_probe",
        dataset=evaluation_view(fm.load_dataset("hatexplain", data_dir), *limits, config.attributes),
        probe_config=config.subgroups.probe.replace(seed=0),
    )
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "7 to train, 1 cached" in second.output
    assert not out.exists() and os.listdir(cache) == ["training"]


def test_dry_run_plans_the_recipe_comparison_for_the_first_seed_only(tmp_path: Path, data_dir: Path) -> None:
    tiny = save_tiny_bert(tmp_path / "tiny")
    args = ["run", "--fast", "--dry-run", "--data-dir", str(data_dir), "--out", str(tmp_path / "out")]
    args += ["--cache-dir", str(tmp_path / "cache"), "--set", f"model={tiny}", "--seeds", "0", "--seeds", "1"]
    args += ["--set", "subgroups.compare=[targeted]"]
    first_only = CliRunner().invoke(app, args)
    assert first_only.exit_code == 0, first_only.output
    # seed 0: base, fft, lora, 5 groups x 2 recipes; seed 1: base, fft, lora, 5 groups
    assert "fine-tunes: 21 to train, 0 cached" in first_only.output
    every = CliRunner().invoke(app, [*args, "--set", "exploratory_seeds=all"])
    assert every.exit_code == 0 and "fine-tunes: 26 to train, 0 cached" in every.output


def test_the_primary_comparison_must_be_one_the_study_makes() -> None:
    assert load_config(None).primary.model == "merge"
    with pytest.raises(ConfigError, match=r"primary\.model 'merge\[nope\]'"):
        load_config(None, overrides=["primary.model=merge[nope]"])
    with pytest.raises(ConfigError, match=r"primary\.attribute 'religion'"):
        load_config(None, overrides=["primary.attribute=religion"])
    assert load_config(None, overrides=["primary={model: lora, attribute: all, metric: accuracy}"])


def test_every_summary_field_is_documented() -> None:
    from fairmerge.study.summary import Comparison, StudySummary

    text = (Path(__file__).parents[1] / "docs" / "outputs.md").read_text()
    for model in (StudySummary, Comparison):
        for name, field in model.model_fields.items():
            assert f"| `{field.alias or name}` |" in text, name


def test_summary_takes_the_comparison_rows_compare_all_makes() -> None:
    import numpy as np
    import pandas as pd

    from fairmerge.fairness.comparisons import compare_all
    from fairmerge.study.summary import Comparison

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    membership = pd.DataFrame({"a": rng.random(200) < 0.5, "b": rng.random(200) < 0.5})
    predictions = {seed: rng.integers(0, 2, 200) for seed in (0, 1)}
    table = compare_all(
        labels,
        {"race": membership},
        {"merge": predictions, "lora": {0: predictions[0]}},
        {0: predictions[1], 1: predictions[0]},
        primary={"model": "merge", "attribute": "race", "metric": "eod"},
        n_resamples=50,
        min_group_size=5,
        min_positives=5,
        min_negatives=5,
    )
    for row in table.to_dict(orient="records"):
        Comparison.model_validate(to_json_safe(row))


def test_the_evaluation_view_keeps_every_targeted_post(data_dir: Path) -> None:
    dataset = fm.load_dataset("hatexplain", data_dir)
    assert evaluation_view(dataset, None, None, ["race", "gender"]) is dataset
    view = evaluation_view(dataset, 650, None, ["race", "gender"])
    val = dataset["val"]
    race, gender = val.groups["race"], val.groups["gender"]
    targeted = {text for text, r, g in zip(val.texts, race, gender, strict=True) if r or g}
    assert len(view["val"]) == 650 and targeted <= set(view["val"].texts) and len(targeted) < 650
    assert view["test"] is dataset["test"] and view["train"] is dataset["train"]
    again = evaluation_view(dataset, 650, None, ["race", "gender"])
    assert list(again["val"].texts) == list(view["val"].texts)  # seeded: the same posts every run


def _test_rows(data_dir: Path, overrides: list[str]) -> pd.DataFrame:
    """Test metrics, as the study records them, of a fixed classifier under a config's thresholds."""
    config = load_config(None, overrides=overrides)
    split = fm.load_dataset("hatexplain", data_dir)["test"]
    evaluation = config.evaluation
    test = SplitEvaluator(
        "test",
        split,
        cast(EncodedInputs, None),  # fixed predictions below: nothing is encoded or scored
        ["race"],
        Thresholds(evaluation.min_group_size, evaluation.min_positives, evaluation.min_negatives),
        batch_size=1,
        cache=ScoreCache(Path("unused"), enabled=False),
    )
    scorer = CandidateScorer(test, test, cast(Workspace, None), 0)  # fixed predictions: nothing is scored
    points = PointEvaluator(scorer, False, "accuracy", 50, 50)
    predictions = np.asarray(split.labels).copy()
    predictions[::3] = 1 - predictions[::3]  # a classifier right on two posts in three
    rows = points.test_predictions(ModelLabel("fft"), predictions).frame
    return rows[(rows.attribute == "race") & (rows.group == "all")].set_index("metric")


def test_the_configured_thresholds_decide_which_groups_enter_every_gap(data_dir: Path) -> None:
    default = _test_rows(data_dir, [])
    strict = _test_rows(data_dir, ["evaluation.min_positives=40", "evaluation.min_negatives=40"])
    # fewer groups enter the TPR and FPR gaps (so EOD) under the study-level setting; DPD's are kept
    assert strict.loc["n_groups_tpr", "value"] < default.loc["n_groups_tpr", "value"]
    assert strict.loc["n_groups_fpr", "value"] < default.loc["n_groups_fpr", "value"]
    assert strict.loc["n_groups", "value"] == default.loc["n_groups", "value"]
    assert strict.loc["eod", "value"] != default.loc["eod", "value"]
    # the noise floor of EOD uses the same groups, so it changes too; the labels' own DPD does not
    assert strict.loc["eod_noise_floor", "value"] != default.loc["eod_noise_floor", "value"]
    assert strict.loc["labels_dpd", "value"] == default.loc["labels_dpd", "value"] > 0
    # test rows carry the test-inverted gap intervals: 0 below unless the zero-gap test rejects
    for rows in (default, strict):
        low, high, value = (float(rows.loc["eod", c]) for c in ("ci_low", "ci_high", "value"))
        assert low <= value <= high
        if (
            float(rows.loc["eod_perm_p", "value"]) >= 0.05
        ):  # a rejecting test can still give a lower bound of 0
            assert low == 0


def test_the_dry_run_states_the_primary_comparisons_power(data_dir: Path) -> None:
    dataset = fm.load_dataset("hatexplain", data_dir)
    config = load_config(None, overrides=["power.simulations=40"])
    few, many = (power_plan(config, dataset, seeds) for seeds in ([0, 1], list(range(10))))
    found = [float(re.search(r": (\d\.\d\d) \(SE", text).group(1)) for text in (few, many)]  # type: ignore[union-attr]
    assert "merge/race/eod" in few and "2 seeds" in few and "10 seeds" in many
    assert found[0] < found[1]  # more seeds, more power
