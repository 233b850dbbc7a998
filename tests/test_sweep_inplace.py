"""InPlaceMerger: exact in-place θ = base + Σ λ τ on a tiny random BERT, restore, strict checks."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.errors import ConfigError, VectorError
from fairmerge.vectors import InPlaceMerger


def tiny_bert(dtype: torch.dtype = torch.float32) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config).to(dtype).eval()


def float_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def random_vectors(model: torch.nn.Module, count: int, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    state = float_state(model)
    return [
        {k: 0.01 * torch.randn(v.shape, generator=generator).to(v.dtype) for k, v in state.items()}
        for _ in range(count)
    ]


def test_uniform_lambda_is_base_plus_lambda_sum_and_restore_is_bit_exact() -> None:
    model = tiny_bert()
    base = float_state(model)
    vectors = random_vectors(model, 3)
    merger = InPlaceMerger(model, base, vectors)
    returned = merger.set_coefficients(0.3)
    assert returned is model
    state = model.state_dict()
    for key, value in base.items():
        summed = vectors[0][key] + vectors[1][key] + vectors[2][key]
        assert torch.equal(state[key], torch.add(value, summed, alpha=0.3)), key
        torch.testing.assert_close(state[key], value + 0.3 * summed, rtol=0, atol=1e-6)
    assert merger.coefficients == (0.3, 0.3, 0.3)
    merger.restore()
    for key, value in model.state_dict().items():
        if key in base:
            assert torch.equal(value, base[key]), key


def test_per_vector_lambdas_are_exact() -> None:
    model = tiny_bert()
    base = float_state(model)
    vectors = random_vectors(model, 2)
    merger = InPlaceMerger(model, base, vectors)
    merger.set_coefficients([0.7, -0.2])
    for key, value in model.state_dict().items():
        if key in base:
            expected = torch.add(base[key], vectors[0][key], alpha=0.7).add_(vectors[1][key], alpha=-0.2)
            assert torch.equal(value, expected), key
    # Going back to a uniform λ after a per-vector one overwrites every touched tensor.
    merger.set_coefficients(0.0)
    for key, value in model.state_dict().items():
        if key in base:
            assert torch.equal(value, base[key]), key


def test_integer_buffers_and_untouched_params_are_left_alone() -> None:
    model = tiny_bert()
    model.classifier.register_buffer("counts", torch.arange(2))  # an integer buffer in the state dict
    position_ids = model.bert.embeddings.position_ids.clone()  # non-persistent integer buffer
    base = float_state(model)
    vector: dict[str, torch.Tensor] = {
        k: torch.ones_like(v) for k, v in base.items() if k.startswith("classifier.")
    }
    vector["classifier.counts"] = torch.zeros(2, dtype=torch.long)  # zero delta: skipped, never scaled
    # The base says something else for the encoder, but the encoder is not in the vector.
    shifted = {k: v + 1.0 for k, v in base.items()}
    merger = InPlaceMerger(model, shifted, [vector])
    merger.set_coefficients(2.0)
    state = model.state_dict()
    assert torch.equal(state["classifier.counts"], torch.arange(2))
    assert torch.equal(model.bert.embeddings.position_ids, position_ids)
    for key in base:
        if key.startswith("classifier."):
            assert torch.equal(state[key], shifted[key] + 2.0)
        else:
            assert torch.equal(state[key], base[key]), key
    assert sorted(merger.keys) == ["classifier.bias", "classifier.weight"]
    with pytest.raises(VectorError, match=r"classifier\.counts"):
        InPlaceMerger(model, shifted, [{**vector, "classifier.counts": torch.ones(2, dtype=torch.long)}])


def test_base_is_copied_so_from_model_restores_the_original_weights() -> None:
    model = tiny_bert()
    original = float_state(model)
    merger = InPlaceMerger.from_model(model, random_vectors(model, 1))
    merger.set_coefficients(5.0)
    assert not torch.equal(model.state_dict()["classifier.weight"], original["classifier.weight"])
    merger.restore()
    for key, value in original.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_half_precision_accumulates_in_fp32() -> None:
    model = tiny_bert(torch.bfloat16)
    base = float_state(model)
    vectors = random_vectors(model, 2)
    merger = InPlaceMerger(model, base, vectors)
    merger.set_coefficients(0.5)
    key = "bert.encoder.layer.0.attention.self.query.weight"
    summed = vectors[0][key].float() + vectors[1][key].float()
    expected = (base[key].float() + 0.5 * summed).to(torch.bfloat16)
    torch.testing.assert_close(model.state_dict()[key], expected, rtol=0, atol=0)
    merger.set_coefficients([0.5, 0.25])
    expected = (base[key].float() + 0.5 * vectors[0][key].float() + 0.25 * vectors[1][key].float()).to(
        torch.bfloat16
    )
    torch.testing.assert_close(model.state_dict()[key], expected, rtol=0, atol=0)


def test_mismatched_inputs_raise_naming_the_key() -> None:
    model = tiny_bert()
    base = float_state(model)
    good = random_vectors(model, 1)[0]
    with pytest.raises(VectorError, match="not_a_param"):
        InPlaceMerger(model, base, [{**good, "not_a_param": torch.zeros(1)}])
    with pytest.raises(VectorError, match=r"classifier\.bias"):
        InPlaceMerger(model, base, [{**good, "classifier.bias": torch.zeros(7)}])
    with pytest.raises(VectorError, match=r"classifier\.weight"):
        InPlaceMerger(model, base, [good, {k: v for k, v in good.items() if k != "classifier.weight"}])
    with pytest.raises(VectorError, match=r"classifier\.weight"):
        InPlaceMerger(model, {k: v for k, v in base.items() if k != "classifier.weight"}, [good])
    with pytest.raises(VectorError, match="non-finite"):
        InPlaceMerger(model, base, [{**good, "classifier.bias": torch.tensor([float("nan"), 0.0])}])
    with pytest.raises(VectorError, match="position_ids"):  # a non-persistent buffer: not in the state dict
        InPlaceMerger(
            model, base, [{**good, "bert.embeddings.position_ids": torch.ones(1, 32, dtype=torch.long)}]
        )
    with pytest.raises(VectorError):
        InPlaceMerger(model, base, [])
    merger = InPlaceMerger(model, base, [good, good])
    with pytest.raises(ConfigError):
        merger.set_coefficients([0.1, 0.2, 0.3])
    with pytest.raises(ConfigError):
        merger.set_coefficients(float("inf"))
