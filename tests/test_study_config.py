"""Study config: defaults, the --fast profile, built-in configs and errors that name the bad key."""

from pathlib import Path

import pytest

from fairmerge.cli import expand_multi_value
from fairmerge.errors import ConfigError
from fairmerge.study.config import builtin_config_names, load_config


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
