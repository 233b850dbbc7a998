"""The linear probe on a decoder whose ``score`` layer has no bias (Qwen2, Llama): the probe is fit
without an intercept, the layer then reproduces its decisions, and the body stays bit-identical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_tiny import one_torch_thread, tiny_config  # noqa: F401 (autouse fixture)
from transformers import Qwen2Model

from fairmerge.data import load_dataset
from fairmerge.data.types import GroupedTextDataset
from fairmerge.inference import encode_inputs
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.training import TrainConfig, TrainingCache, make_base_checkpoint, stratified_subsample
from fairmerge.training.probe import PROBE_CS, fit_linear_probe, head_features, output_layer
from fairmerge.vectors import is_head_key


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 backbone with the embedded MiniLM's tokenizer, saved as a pretrained dir."""
    path = tmp_path_factory.mktemp("tiny") / "qwen2"
    tokenizer = load_tokenizer(None)
    torch.manual_seed(0)
    Qwen2Model(tiny_config("qwen2", vocab_size=tokenizer.vocab_size)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def posts(data_dir: Path) -> GroupedTextDataset:
    """Real HateXplain posts (train 160, val 80), stratified by label."""
    full = load_dataset("hatexplain", data_dir)
    train = full["train"].subset(stratified_subsample(full["train"].labels, 160, seed=0))
    val = full["val"].subset(stratified_subsample(full["val"].labels, 80, seed=0))
    return GroupedTextDataset(
        full.name, {"train": train, "val": val}, full.label_scheme, provenance=full.provenance
    )


def test_a_bias_free_score_layer_holds_the_probe_exactly(tiny_qwen2: Path, posts: GroupedTextDataset) -> None:
    model = load_classifier(str(tiny_qwen2))
    tokenizer = load_tokenizer(str(tiny_qwen2))
    assert output_layer(model).bias is None
    body = {k: v.clone() for k, v in model.state_dict().items() if not is_head_key(k)}
    config = TrainConfig(max_length=32)
    result = fit_linear_probe(model, tokenizer, posts["train"], posts["val"], config)
    assert len(result.history) == len(PROBE_CS)
    for key, tensor in model.state_dict().items():
        if key in body:
            assert torch.equal(tensor, body[key]), key
    # the layer's logits decide as the chosen probe did on val
    val = posts["val"]
    features = head_features(model, encode_inputs(tokenizer, val, max_length=config.max_length))
    logits = features @ output_layer(model).weight.detach().numpy().T
    accuracy = float((logits.argmax(axis=1) == val.labels).mean())
    assert accuracy == pytest.approx(result.history[result.best_index]["val_accuracy"])
    assert not np.allclose(logits[:, 1] - logits[:, 0], 0.0)


def test_the_default_frozen_head_recipe_builds_its_probed_base_on_a_decoder(
    tiny_qwen2: Path, posts: GroupedTextDataset, tmp_path: Path
) -> None:
    """``subgroups.head: frozen`` starts from the linear-probed θ_base: it no longer stops on decoders."""
    cache = TrainingCache(tmp_path)
    base = make_base_checkpoint(
        str(tiny_qwen2),
        seed=0,
        cache=cache,
        head="linear_probe",
        dataset=posts,
        probe_config=TrainConfig(max_length=32),
    )
    probed = load_file(str(base / "model.safetensors"))
    random = load_file(str(make_base_checkpoint(str(tiny_qwen2), seed=0, cache=cache) / "model.safetensors"))
    changed = [k for k in probed if not torch.equal(probed[k], random[k])]
    assert changed and all(is_head_key(k) for k in changed)
    assert json.loads((base / "meta.json").read_text())["config"]["trainable"] == "head"
