"""FFT mechanics on a tiny random BERT: θ_base file, cache hits, reproducibility, atomic entries."""

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

import fairmerge.training.finetune as finetune
import fairmerge.training.loop as loop
from fairmerge.errors import DataError
from fairmerge.models import load_classifier
from fairmerge.training import (
    TrainConfig,
    TrainingCache,
    fit,
    make_base_checkpoint,
    stratified_subsample,
    train_fft,
)

CONFIG = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-3)


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_base_checkpoint_is_saved_once_per_model_and_seed(tiny_source: Path, tmp_path: Path) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    assert make_base_checkpoint(str(tiny_source), seed=0, cache=cache) == base
    other = make_base_checkpoint(str(tiny_source), seed=1, cache=cache)
    assert other != base
    w0, w1 = _weights(base), _weights(other)
    assert torch.equal(
        w0["bert.embeddings.word_embeddings.weight"], w1["bert.embeddings.word_embeddings.weight"]
    )
    assert not torch.equal(w0["classifier.weight"], w1["classifier.weight"])  # the head follows the seed
    model = load_classifier(str(base))
    assert torch.equal(model.state_dict()["classifier.weight"], w0["classifier.weight"])
    assert json.loads((base / "meta.json").read_text())["seed"] == 0


def test_fft_trains_selects_on_val_and_caches(
    tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    dataset = tiny_dataset()
    entry = train_fft(dataset, base_dir=base, config=CONFIG, cache=cache, progress=False)
    meta = json.loads((entry / "meta.json").read_text())
    assert entry.parent.name == "fft" and meta["n_train"] == len(dataset["train"])
    assert len(meta["history"]) == 2 and meta["best_epoch"] in (1, 2)
    best = min(meta["history"], key=lambda h: h["val_loss"])
    assert meta["best_epoch"] == best["epoch"]
    assert meta["key_parts"]["data"]["provenance"] == dataset.provenance
    trained, start = _weights(entry), _weights(base)
    assert set(trained) == set(start)
    assert not torch.equal(trained["bert.encoder.layer.0.attention.self.query.weight"],
                           start["bert.encoder.layer.0.attention.self.query.weight"])  # fmt: skip

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(finetune, "fit", no_training)
    assert train_fft(dataset, base_dir=base, config=CONFIG, cache=cache, progress=False) == entry
    with pytest.raises(AssertionError, match="must not train"):  # any change in inputs is a miss
        train_fft(dataset, base_dir=base, config=CONFIG.replace(seed=1), cache=cache, progress=False)
    with pytest.raises(AssertionError, match="must not train"):  # --no-cache retrains
        train_fft(
            dataset,
            base_dir=base,
            config=CONFIG,
            cache=TrainingCache(tmp_path, enabled=False),
            progress=False,
        )
    assert [e.kind for e in cache.entries()] == ["base", "fft"]


def test_same_seed_gives_identical_weights(tiny_source: Path, tmp_path: Path) -> None:
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=TrainingCache(tmp_path / "a"))
    dataset = tiny_dataset()
    first = _weights(train_fft(dataset, base_dir=base, config=CONFIG, cache=TrainingCache(tmp_path / "a")))
    second = _weights(train_fft(dataset, base_dir=base, config=CONFIG, cache=TrainingCache(tmp_path / "b")))
    other = _weights(
        train_fft(dataset, base_dir=base, config=CONFIG.replace(seed=7), cache=TrainingCache(tmp_path / "c"))
    )
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_interrupted_training_or_saving_leaves_no_entry(
    tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    real_backward = loop.Accelerator.backward
    calls = {"n": 0}

    def crash_midway(self: object, loss: torch.Tensor, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("interrupted mid-epoch")
        real_backward(self, loss, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop.Accelerator, "backward", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        train_fft(tiny_dataset(), base_dir=base, config=CONFIG, cache=cache, progress=False)
    monkeypatch.undo()

    def crash_after_writing(self: object, save_directory: Path, *args: object, **kwargs: object) -> None:
        (Path(save_directory) / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(finetune.PreTrainedModel, "save_pretrained", crash_after_writing)
    with pytest.raises(OSError, match="disk full"):
        train_fft(tiny_dataset(), base_dir=base, config=CONFIG, cache=cache, progress=False)
    assert [e.kind for e in cache.entries()] == ["base"]
    assert sorted(p.name for p in (tmp_path / "fft").iterdir()) == []  # no entry, no temp leftovers


def test_loss_weights_and_bad_inputs(tiny_source: Path, tmp_path: Path) -> None:
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(str(tiny_source), seed=0, cache=cache)
    dataset = tiny_dataset()
    model = load_classifier(str(base))
    from fairmerge.models import load_tokenizer

    tokenizer = load_tokenizer(str(base))
    config = CONFIG.resolved("fft").replace(epochs=1)
    weights = np.where(dataset["train"].labels == 1, 3.0, 1.0)
    result = fit(model, tokenizer, dataset["train"], dataset["val"], config, weights=weights, progress=False)
    assert result.best_epoch == 1 and result.samples_per_s > 0
    with pytest.raises(DataError, match="loss weights"):
        fit(model, tokenizer, dataset["train"], dataset["val"], config, weights=-weights, progress=False)
    with pytest.raises(DataError, match="validation set is empty"):
        fit(
            model,
            tokenizer,
            dataset["train"],
            dataset["val"].subset(np.zeros(0, dtype=int)),
            config,
            progress=False,
        )


def test_stratified_subsample_keeps_class_balance() -> None:
    labels = np.array([1] * 30 + [0] * 70)
    picked = stratified_subsample(labels, 20, seed=0)
    assert len(picked) == 20 and labels[picked].sum() == 6 and np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, stratified_subsample(labels, 20, seed=0))
    assert not np.array_equal(picked, stratified_subsample(labels, 20, seed=1))
    assert len(stratified_subsample(labels, 7, seed=0)) == 7
