"""TrainConfig: defaults, up-front validation, YAML loading, the values its cache keys are made of."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from fairmerge.errors import ConfigError
from fairmerge.training import TrainConfig


def test_defaults_resolve_per_method() -> None:
    config = TrainConfig()
    assert config.learning_rate is None
    assert config.resolved("fft").learning_rate == 5e-5
    assert config.resolved("lora").learning_rate == 5e-4
    assert TrainConfig(learning_rate=1e-3).resolved("lora").learning_rate == 1e-3
    assert (config.batch_size, config.max_length, config.select_by) == (32, 64, "loss")


def test_to_dict_is_unchanged_by_the_move_to_pydantic() -> None:
    """The fine-tunes' cache keys hash these values: same keys, same order, same types as before."""
    values = TrainConfig(learning_rate="5e-5", lora_target_modules=["query", "value"]).to_dict()  # type: ignore[arg-type]
    assert values == {
        "learning_rate": 5e-05, "epochs": 3, "batch_size": 32, "eval_batch_size": 128, "max_length": 64,
        "weight_decay": 0.01, "warmup_ratio": 0.1, "seed": 0, "select_by": "loss", "patience": None,
        "eval_every_steps": None, "trainable": "all", "max_train_samples": None, "grad_clip": 1.0,
        "device": None, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1,
        "lora_target_modules": ["query", "value"],
    }  # fmt: skip
    assert list(values) == list(TrainConfig.model_fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate: must be a number"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"max_length": 1}, "max_length"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"weight_decay": True}, "weight_decay"),
        ({"select_by": "f1"}, "select_by"),
        ({"max_train_samples": 0}, "max_train_samples"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"device": "tpu"}, "device"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"lora_target_modules": []}, "lora_target_modules"),
        ({"lora_target_modules": "query"}, "lora_target_modules"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_values_are_rejected_up_front(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^training config: {message}"):
        TrainConfig.from_mapping(changes)
    with pytest.raises(ConfigError, match=message):
        TrainConfig().replace(**changes)
    with pytest.raises(ValidationError, match=message.split(":")[0]):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_a_config_is_immutable_and_replace_validates() -> None:
    config = TrainConfig(epochs=2)
    with pytest.raises(ValidationError):
        config.epochs = 3  # type: ignore[misc]
    assert config.replace(epochs=4) == TrainConfig(epochs=4) and config.epochs == 2
    assert hash(config) == hash(TrainConfig(epochs=2))


def test_yaml_flat_or_train_section(tmp_path: Path) -> None:
    flat = tmp_path / "flat.yaml"
    flat.write_text("learning_rate: 5e-5\nepochs: 2\nlora_target_modules: [query, value]\n")
    config = TrainConfig.from_yaml(flat)
    assert config.learning_rate == 5e-5  # PyYAML reads "5e-5" as a string; it is accepted as a number
    assert config.lora_target_modules == ("query", "value")
    nested = tmp_path / "study.yaml"
    nested.write_text("name: x\ntrain:\n  epochs: 4\n  select_by: accuracy\n")
    assert TrainConfig.from_yaml(nested).replace(seed=3) == TrainConfig(
        epochs=4, select_by="accuracy", seed=3
    )


def test_yaml_unknown_key_names_the_valid_ones(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("learnin_rate: 0.1\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: .*learnin_rate: unknown key; expected one of.*'learning_rate'"
    ):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- epochs: 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_yaml(listed)
