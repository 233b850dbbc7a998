"""Study config: defaults, the --fast profile, built-in configs and errors that name the bad key."""

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from fairmerge.cli import expand_multi_value
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import Thresholds
from fairmerge.study.config import SHARED_SEED, StudyConfig, builtin_config_names, load_config
from fairmerge.training import TrainConfig


def test_default_config_loads_and_fast_profile_shrinks_budgets() -> None:
    full = load_config(None)
    fast = load_config(None, fast=True)
    assert full.dataset.name == "hatexplain" and full.attributes == ["race", "gender"]
    assert fast.fft.max_train_samples < full.fft.max_train_samples
    assert len(fast.sweep.lambdas) < len(full.sweep.lambdas)
    assert full.to_dict() != fast.to_dict()


def test_every_builtin_config_is_valid() -> None:
    names = builtin_config_names()
    assert {"default", "sbic", "mhs-distilbert", "mhs-qwen2.5-0.5b", "mhs-llama2-7b"} <= set(names)
    for name in names:
        load_config(name)
        load_config(name, fast=True)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sweep:\n  lambdaz: [0, 1]\n")
    with pytest.raises(ConfigError, match="lambdaz"):
        load_config(path)


def test_bad_rule_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("selection:\n  rule: vibes\n")
    with pytest.raises(ConfigError, match="vibes"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_seeds_option_takes_several_values() -> None:
    args = expand_multi_value(["run", "--seeds", "0", "1", "2", "--fast"], "--seeds")
    assert args == ["run", "--seeds", "0", "--seeds", "1", "--seeds", "2", "--fast"]


def test_exploratory_families_run_on_the_first_seed_only_by_default() -> None:
    study = load_config(None)
    assert study.exploratory_seeds == "first" and study.subgroups.compare and study.sweep.inject_all_groups
    (s0, first), (s1, later), (s2, last) = study.seed_configs([3, 1, 2])
    assert (s0, s1, s2) == (3, 1, 2) and first is study and later is last
    assert (
        later.subgroups.compare == []
        and not later.sweep.inject_all_groups
        and not later.selection.sensitivity
    )
    assert later.fft == study.fft and later.sweep.lambdas == study.sweep.lambdas  # the rest is shared
    assert study.subgroups.compare, "the study's own config is not changed"
    every = load_config(None, overrides=["exploratory_seeds=all"])
    assert all(config is every for _, config in every.seed_configs([0, 1]))
    with pytest.raises(ConfigError, match="exploratory_seeds"):
        load_config(None, overrides=["exploratory_seeds=some"])


def test_an_empty_config_file_is_refused(tmp_path: Path) -> None:
    """Keys a file omits take StudyConfig's defaults, not the `default` study's: an empty file would
    silently run another study (random head, another recipe), so it is refused."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty\.yaml is empty; copy a built-in config"):
        load_config(empty)


def test_each_seed_runs_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"seeds: seed\(s\) \[0\] given more than once"):
        load_config(None, seeds=[0, 0])
    with pytest.raises(ConfigError, match=r"seed\(s\) \[1\] given more than once"):
        load_config(None, overrides=["seeds=[1, 2, 1]"])
    assert load_config(None, fast=True, seeds=[3, 1]).seeds == [3, 1]  # --seeds overrides the profile
    assert load_config(None, fast=True, seeds=[]).seeds == [0]  # no --seeds: the config's
    with pytest.raises(ConfigError, match="seeds"):
        load_config(None, seeds=[-1])


def test_one_seed_concept_the_run_seed(tmp_path: Path) -> None:
    """The run seeds are the only seed a config sets; the old top-level and per-fine-tune seeds are
    refused with a pointer to `seeds`."""
    with pytest.raises(ConfigError, match=r"default\.yaml: seed: not a key any more.*seeds: \[0, 1, 2\]"):
        load_config(None, overrides=["seed=3"])
    for section in ("fft", "lora", "subgroups.train", "subgroups.probe"):
        with pytest.raises(ConfigError, match=f"{section}: seed is the run seed"):
            load_config(None, overrides=[f"{section}.seed=3"])
    study = load_config(None)
    assert "seed" not in study.to_dict()["fft"] and study.fft.seed == 0
    assert load_config(study) == study  # a config object round-trips


def test_derived_seeds_keep_the_values_the_study_used() -> None:
    """No number changes: per-seed draws follow the run seed, shared ones the old default seed 0."""
    seeds = StudyConfig.derived_seeds(7)
    assert (seeds.head, seeds.finetune, seeds.merge, seeds.evaluation) == (7, 7, 7, 7)
    assert (seeds.probe, seeds.evaluation_subsets, seeds.comparisons) == (SHARED_SEED,) * 3 == (0, 0, 0)


def test_unknown_keys_are_named_once_by_their_full_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("subgroups:\n  train:\n    epochz: 1\n  compare: [{strategy: targeted, colour: red}]\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith("bad.yaml: ") and "\n" not in message
    assert "subgroups.train.epochz: unknown key; expected one of [" in message and "'epochs'" in message
    assert (
        "subgroups.compare.0.colour: unknown key; expected one of ['convention', 'head', 'strategy']"
        in message
    )
    assert message.count("epochz") == 1


def test_sweep_method_is_checked_by_the_merge_engine() -> None:
    study = load_config(None)
    assert (study.sweep.method, study.sweep.density) == ("task_arithmetic", None)
    dare = load_config(None, overrides=["sweep.method=dare", "sweep.density=0.3"])
    assert dare.sweep.merge_options(dare.derived_seeds(2)) == {"method": "dare", "density": 0.3, "seed": 2}
    assert load_config(None, overrides=["sweep.method=ties", "sweep.density=1"]).sweep.density == 1.0
    for overrides, message in [
        (["sweep.method=ties"], "needs a density"),
        (["sweep.method=dare", "sweep.density=1.5"], r"density must be in \(0, 1\]"),
        (["sweep.density=0.5"], "density applies to ties and dare"),
        (["sweep.method=inject"], "sweep.method"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides=overrides)


def test_declared_comparison_family_and_power() -> None:
    study = load_config(None)
    assert (study.primary.model, study.primary.attribute, study.primary.metric) == ("merge", "race", "eod")
    assert [c.label for c in study.secondary] == [
        "merge/race/dpd",
        "merge/all/accuracy",
        "merge_pergroup/race/eod",
    ]
    assert all(c.model in study.compared_models() for c in study.secondary)
    assert (study.power.effect, study.power.simulations) == (0.1, 500)
    assert load_config(None, fast=True).power.simulations < study.power.simulations
    assert load_config(None, overrides=["secondary=[]"]).secondary == []
    for value, message in [
        (
            "[{model: merge, attribute: sex, metric: dpd}]",
            "secondary.0.attribute 'sex': expected one of race",
        ),
        ("[{model: merge, attribute: race, metric: accuracy}]", "secondary.0.attribute 'race': expected all"),
        ("[{model: lora@calibrated, attribute: gender, metric: f1}]", "secondary.0.metric"),
        ("[{model: vibes, attribute: race, metric: eod}]", "secondary.0.model 'vibes': expected one of"),
        ("[{model: merge, attribute: race, metric: eod}]", r"\['merge/race/eod'\] declared twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides=[f"secondary={value}"])
    with pytest.raises(ConfigError, match=r"power\.effect"):
        load_config(None, overrides=["power.effect=0"])
    with pytest.raises(ConfigError, match=r"power\.simulations"):
        load_config(None, overrides=["power.simulations=0"])


def test_group_thresholds_default_to_the_metrics_defaults() -> None:
    evaluation = load_config(None).evaluation
    thresholds = Thresholds()
    assert (evaluation.min_group_size, evaluation.min_positives, evaluation.min_negatives) == (
        thresholds.min_group_size,
        thresholds.min_positives,
        thresholds.min_negatives,
    )
    assert load_config(None, overrides=["evaluation.min_positives=40"]).evaluation.min_positives == 40
    with pytest.raises(ConfigError, match=r"evaluation\.min_negatives"):
        load_config(None, overrides=["evaluation.min_negatives=0"])


def test_docs_list_every_config_key() -> None:
    """docs/configuration.md names every key of every section (a new key needs its line there)."""
    text = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    sections = {
        "": StudyConfig,
        **{name: type(value) for name, value in StudyConfig() if isinstance(value, BaseModel)},
    }
    for model in [*sections.values(), TrainConfig]:
        missing = [key for key in model.model_fields if not re.search(rf"[`.]{key}`", text)]
        assert not missing, f"{model.__name__}: {missing} not in docs/configuration.md"


def test_a_registered_selection_rule_validates_in_the_config() -> None:
    from fairmerge.sweep.selection import SelectionRule, get_rule, register_rule, unregister_rule

    builtin = get_rule("accuracy")
    with pytest.raises(ConfigError, match=r"unknown selection rule 'my_rule'.*'constrained'"):
        load_config(None, overrides=["selection.rule=my_rule"])
    register_rule(SelectionRule("my_rule", builtin.select, builtin.score))
    try:
        assert load_config(None, overrides=["selection.rule=my_rule"]).selection.rule == "my_rule"
    finally:
        unregister_rule("my_rule")
    with pytest.raises(ConfigError, match="my_rule"):
        load_config(None, overrides=["selection.rule=my_rule"])
