"""Head handling (random / linear probe / frozen head) and early stopping, on a tiny BERT and real posts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
)

from fairmerge.data import load_dataset
from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import ConfigError
from fairmerge.inference import encode_texts, predict_logits
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.training import (
    TrainConfig,
    TrainingCache,
    finetune_vector,
    fit,
    make_base_checkpoint,
    stratified_subsample,
    train_lora,
    train_subgroups,
)
from fairmerge.training.probe import PROBE_CS
from fairmerge.vectors import is_head_key


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="module")
def posts(data_dir: Path) -> GroupedTextDataset:
    """A few hundred real HateXplain posts (train 300, val 120), stratified by label."""
    full = load_dataset("hatexplain", data_dir)
    train = full["train"].subset(stratified_subsample(full["train"].labels, 300, seed=0))
    val = full["val"].subset(stratified_subsample(full["val"].labels, 120, seed=0))
    return GroupedTextDataset(
        full.name, {"train": train, "val": val}, full.label_scheme, provenance=full.provenance
    )


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_linear_probe_trains_only_the_head(
    tiny_source: Path, posts: GroupedTextDataset, tmp_path: Path
) -> None:
    cache = TrainingCache(tmp_path)
    probe = TrainConfig(max_train_samples=200)
    base = make_base_checkpoint(
        str(tiny_source), seed=0, cache=cache, head="linear_probe", dataset=posts, probe_config=probe
    )
    random_base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    probed, start = _weights(base), _weights(random_base)
    assert set(probed) == set(start)
    for key in probed:
        if is_head_key(key):
            assert not torch.equal(probed[key], start[key]), key
        else:
            assert torch.equal(probed[key], start[key]), key  # bit-identical pretrained body
    meta = json.loads((base / "meta.json").read_text())
    assert base.parent.name == "probe" and meta["config"]["trainable"] == "head"
    assert meta["n_train"] == 200 and len(meta["history"]) == len(PROBE_CS)
    assert meta["val"]["val_loss"] == min(h["val_loss"] for h in meta["history"])
    again = make_base_checkpoint(
        str(tiny_source), seed=0, cache=cache, head="linear_probe", dataset=posts, probe_config=probe
    )
    assert again == base  # cached like any fine-tune
    with pytest.raises(ConfigError, match="needs the dataset"):
        make_base_checkpoint(str(tiny_source), seed=0, cache=cache, head="linear_probe")
    with pytest.raises(ConfigError, match="unknown head"):
        make_base_checkpoint(str(tiny_source), seed=0, cache=cache, head="frozen")


def test_frozen_head_gives_a_body_only_vector(
    tiny_source: Path, posts: GroupedTextDataset, tmp_path: Path
) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    frozen = TrainConfig(learning_rate=1e-3, epochs=1, batch_size=16, trainable="body")
    dirs = train_subgroups(
        posts, ["race"], base_dir=base, config=frozen, min_train_size=30, cache=cache, progress=False
    )
    assert dirs, "some race group of the sample has >= 30 posts"
    start = _weights(base)
    for path in dirs.values():
        trained = _weights(path)
        assert torch.equal(trained["classifier.weight"], start["classifier.weight"])
        assert torch.equal(trained["classifier.bias"], start["classifier.bias"])
        vector = finetune_vector(base, path)
        assert list(vector) and not [k for k in vector if is_head_key(k)]
        assert float(vector.norm()) > 0  # the body did move
    full = finetune_vector(base, next(iter(train_subgroups(
        posts, ["race"], base_dir=base, config=frozen.replace(trainable="all"), min_train_size=30,
        cache=cache, progress=False,
    ).values())))  # fmt: skip
    assert any(is_head_key(k) for k in full)  # an unfrozen fine-tune keeps its head delta
    lora = train_lora(posts, base_dir=base, config=frozen.replace(epochs=1), cache=cache, progress=False)
    assert torch.equal(_weights(lora)["classifier.weight"], start["classifier.weight"])
    with pytest.raises(ConfigError, match="linear probe"):
        train_lora(posts, base_dir=base, config=frozen.replace(trainable="head"), cache=cache, progress=False)


def test_early_stopping_halts_on_rising_val_loss_and_keeps_the_best(
    tiny_source: Path, tmp_path: Path
) -> None:
    """Validation = the training posts with flipped labels: learning the train set raises its loss."""
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    train = tiny_dataset()["train"]
    val = train.subset(np.arange(len(train)))
    val.labels[:] = 1 - train.labels
    model, tokenizer = load_classifier(str(base)), load_tokenizer(str(base))
    config = TrainConfig(learning_rate=3e-3, epochs=30, batch_size=16, eval_every_steps=2, patience=3)
    result = fit(model, tokenizer, train, val, config.resolved("fft"), progress=False)
    losses = [h["val_loss"] for h in result.history]
    assert result.stopped_early and "stopped early" in result.stop_reason
    assert len(losses) < 30 * 6 // 2  # far fewer evaluations than the maximum
    assert result.best_index == int(np.argmin(losses)) == len(losses) - 1 - 3  # patience 3 after the best
    assert losses[-1] > losses[result.best_index]
    assert [h["step"] for h in result.history] == list(range(2, 2 * len(losses) + 1, 2))
    # the model is left at the best evaluation, not at the last one
    logits = torch.from_numpy(predict_logits(model, encode_texts(tokenizer, val.texts, max_length=64)))
    loss = float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(val.labels)).item())
    assert loss == pytest.approx(losses[result.best_index], abs=1e-5)


def test_config_rejects_bad_recipe_fields() -> None:
    for bad in ({"patience": 0}, {"eval_every_steps": -1}, {"trainable": "neck"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig.from_mapping(bad)


def test_the_loop_trains_only_what_trainable_names(tiny_source: Path, tmp_path: Path) -> None:
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=TrainingCache(tmp_path))
    dataset, start = tiny_dataset(), _weights(base)
    for trainable in ("head", "body"):
        model, tokenizer = load_classifier(str(base)), load_tokenizer(str(base))
        config = TrainConfig(learning_rate=1e-2, epochs=1, batch_size=16, trainable=trainable)
        fit(model, tokenizer, dataset["train"], dataset["val"], config, progress=False)
        for key, value in model.state_dict().items():
            if key in start and start[key].is_floating_point():
                moved = not torch.equal(value, start[key])
                assert moved == (is_head_key(key) == (trainable == "head")), key
