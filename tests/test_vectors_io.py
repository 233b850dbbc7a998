"""Task vectors from checkpoints and files: round trips, formats, strict errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn
from vectors_tiny import finetuned_from, save, tiny_bert

from fairmerge.errors import VectorError
from fairmerge.vectors import CheckpointReader, TaskVector, is_head_key


@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16, torch.float64]),
    shapes=st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
def test_save_load_round_trip_is_bit_exact(tmp_path_factory, dtype, shapes, seed):
    generator = torch.Generator().manual_seed(seed)
    tensors = {f"m{i}.weight": torch.randn(s, generator=generator).to(dtype) for i, s in enumerate(shapes)}
    first = next(iter(tensors.values()))
    if first.numel():  # edge values survive too: signed zero, subnormal, extremes
        info = torch.finfo(dtype)
        special = torch.tensor([-0.0, info.tiny / 2, info.max, info.min], dtype=torch.float64)
        flat = first.view(-1)
        flat[: min(4, flat.numel())] = special[: min(4, flat.numel())].to(dtype)
    tau = TaskVector(tensors, metadata={"created_by": "test", "base": "tiny"})
    path = tmp_path_factory.mktemp("rt") / "tau.safetensors"
    tau.save(path)
    for lazy in (False, True):
        loaded = TaskVector.load(path, lazy=lazy)
        assert loaded.is_lazy is lazy
        assert list(loaded) == list(tau)
        for key in tau:
            assert loaded[key].dtype == tau[key].dtype and loaded[key].shape == tau[key].shape
            assert torch.equal(
                loaded[key].reshape(-1).view(torch.uint8), tau[key].reshape(-1).view(torch.uint8)
            )
        assert loaded.metadata["created_by"] == "test" and loaded.metadata["base"] == "tiny"


def test_saved_file_carries_metadata_and_is_plain_safetensors(tmp_path):
    from safetensors import safe_open

    base, ft = tiny_bert(0), None
    ft = finetuned_from(base, seed=1)
    tau = TaskVector.from_state_dicts(base, ft)
    tau.save(tmp_path / "tau.safetensors")
    with safe_open(str(tmp_path / "tau.safetensors"), "pt") as handle:
        meta = handle.metadata()
        assert set(handle.keys()) == set(tau)
    assert meta["created_by"] == "from_state_dicts"
    assert meta["num_parameters"] == str(tau.num_parameters)
    assert meta["dtype"] == "float32"
    assert len(meta["base_fingerprint"]) == 16


@pytest.mark.parametrize("layout", ["single", "sharded", "bin", "bin_sharded"])
def test_from_checkpoints_equals_from_state_dicts_for_every_layout(tmp_path, layout):
    base, ft = tiny_bert(0), finetuned_from(tiny_bert(0), seed=1)
    shard = "8KB" if "sharded" in layout else None
    for name, model in (("base", base), ("ft", ft)):
        if layout.startswith("bin"):
            _save_bin(model.state_dict(), tmp_path / name, sharded=shard is not None)
        else:
            save(model, tmp_path / name, shard=shard, tokenizer=False)
    reader = CheckpointReader(tmp_path / "ft")
    assert reader.is_sharded == (shard is not None)
    lazy = TaskVector.from_checkpoints(tmp_path / "base", tmp_path / "ft")
    assert lazy.is_lazy
    eager = TaskVector.from_state_dicts(base, ft)
    assert lazy.materialize() == eager
    assert lazy.metadata["base_fingerprint"] == eager.metadata["base_fingerprint"]


def _save_bin(state_dict: dict[str, torch.Tensor], directory: Path, *, sharded: bool) -> None:
    directory.mkdir()
    if not sharded:
        torch.save(state_dict, directory / "pytorch_model.bin")
        return
    keys = list(state_dict)
    halves = {
        "pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2],
        "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2 :],
    }
    weight_map = {}
    for name, part in halves.items():
        torch.save({k: state_dict[k] for k in part}, directory / name)
        weight_map.update(dict.fromkeys(part, name))
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))


class _WithBuffers(nn.Module):
    """Integer / bool buffers and a tied pair of weights, as in real language models."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(6, 4)
        self.head = nn.Linear(4, 6, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("position_ids", torch.arange(5))
        self.register_buffer("mask", torch.ones(5, dtype=torch.bool))
        self.classifier = nn.Linear(4, 2)


def test_integer_buffers_are_left_out_and_tied_weights_held_once():
    torch.manual_seed(0)
    base, ft = _WithBuffers(), _WithBuffers()
    ft.load_state_dict(base.state_dict())
    with torch.no_grad():
        ft.embed.weight.add_(1.0)
        ft.classifier.bias.add_(0.5)
        ft.position_ids.add_(7)
    tau = TaskVector.from_state_dicts(base, ft)
    assert set(tau) == {"embed.weight", "classifier.weight", "classifier.bias"}
    before = {k: v.clone() for k, v in base.state_dict().items()}
    tau.apply_to(base, 0.5)  # in place, the tied weight moves once
    assert torch.allclose(base.embed.weight, before["embed.weight"] + 0.5)
    assert base.head.weight.data_ptr() == base.embed.weight.data_ptr()
    assert torch.equal(base.position_ids, before["position_ids"])
    merged_sd = tau.apply_to(before, 1.0)  # a state dict gives a new dict, integers untouched
    assert torch.equal(merged_sd["position_ids"], before["position_ids"])
    assert torch.equal(merged_sd["mask"], before["mask"])
    no_head = TaskVector.from_state_dicts(base, ft, include_head=False)
    assert set(no_head) == {"embed.weight"}
    assert set(tau.without_head()) == {"embed.weight"}


def test_tied_weights_in_a_bin_checkpoint_are_held_and_written_once(tmp_path):
    from fairmerge.vectors import merge_checkpoints

    torch.manual_seed(0)
    base, ft = _WithBuffers(), _WithBuffers()
    with torch.no_grad():
        ft.embed.weight.add_(1.0)
    for name, model in (("base", base), ("ft", ft)):
        (tmp_path / name).mkdir()
        torch.save(model.state_dict(), tmp_path / name / "pytorch_model.bin")
    assert CheckpointReader(tmp_path / "base").aliases == {"head.weight"}
    tau = TaskVector.from_checkpoints(tmp_path / "base", tmp_path / "ft")
    assert "head.weight" not in tau and "embed.weight" in tau
    out = CheckpointReader(
        merge_checkpoints(tmp_path / "base", [tau], 1.0, tmp_path / "out", method="inject")
    )
    assert "head.weight" not in out.specs
    assert torch.equal(out.get("position_ids"), base.position_ids)
    torch.testing.assert_close(out.get("embed.weight"), ft.embed.weight.detach())


def test_head_names_are_detected():
    for key in [
        "classifier.weight",
        "classifier.out_proj.bias",
        "score.weight",
        "pre_classifier.weight",
        "base_model.model.classifier.weight",
    ]:
        assert is_head_key(key), key
    for key in [
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.pooler.dense.weight",
        "lm_head.weight",
    ]:
        assert not is_head_key(key), key


def test_mismatched_checkpoints_raise_naming_the_key(tmp_path):
    base = tiny_bert(0)
    base_sd = base.state_dict()
    cases = {
        "missing": (
            {k: v for k, v in base_sd.items() if k != "classifier.bias"},
            "'classifier.bias'.*missing",
        ),
        "shape": (
            {**base_sd, "classifier.bias": torch.zeros(3)},
            r"'classifier.bias' differs: shape \[2\].*shape \[3\]",
        ),
        "dtype": (
            {**base_sd, "classifier.bias": base_sd["classifier.bias"].double()},
            "'classifier.bias' differs.*float64",
        ),
        "extra": ({**base_sd, "extra.weight": torch.zeros(1)}, "'extra.weight'.*missing from"),
    }
    save_file({k: v.contiguous() for k, v in base_sd.items()}, tmp_path / "base.safetensors")
    for name, (ft_sd, message) in cases.items():
        with pytest.raises(VectorError, match=message):
            TaskVector.from_state_dicts(base_sd, ft_sd)
        directory = tmp_path / name
        directory.mkdir()
        save_file({k: v.contiguous() for k, v in ft_sd.items()}, directory / "model.safetensors")
        with pytest.raises(VectorError, match=message):
            TaskVector.from_checkpoints(tmp_path / "base.safetensors", directory)


def test_nan_in_a_checkpoint_is_reported_and_nothing_is_written(tmp_path):
    base = tiny_bert(0)
    bad = finetuned_from(base, seed=1)
    with torch.no_grad():
        bad.bert.encoder.layer[1].output.dense.weight[0, 0] = float("nan")
    with pytest.raises(
        VectorError, match=r"non-finite.*'bert.encoder.layer.1.output.dense.weight'.*fine-tuned"
    ):
        TaskVector.from_state_dicts(base, bad)
    save(base, tmp_path / "base", tokenizer=False)
    save(bad, tmp_path / "bad", tokenizer=False)
    lazy = TaskVector.from_checkpoints(tmp_path / "base", tmp_path / "bad")
    with pytest.raises(VectorError, match=r"non-finite.*layer.1.output.dense.weight"):
        lazy.save(tmp_path / "tau.safetensors")
    assert not any(p.name.startswith((".tau", "tau")) for p in tmp_path.iterdir())


def test_corrupt_files_raise_vector_errors(tmp_path):
    base = tiny_bert(0)
    save(base, tmp_path / "base", tokenizer=False)
    tau = TaskVector.from_state_dicts(base, finetuned_from(base, seed=1))
    tau.save(tmp_path / "tau.safetensors")
    raw = (tmp_path / "tau.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    for name in ("truncated.safetensors", "garbage.safetensors", "absent.safetensors"):
        with pytest.raises(VectorError, match=name):
            TaskVector.load(tmp_path / name)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(raw[:100])
    with pytest.raises(VectorError, match=r"broken"):
        TaskVector.from_checkpoints(tmp_path / "base", broken)
    (broken / "model.safetensors").unlink()
    (broken / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(VectorError, match=r"pytorch_model.bin"):
        CheckpointReader(broken)
    (broken / "pytorch_model.bin").unlink()
    with pytest.raises(VectorError, match=r"no weights in"):
        CheckpointReader(broken)
    (broken / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "gone.safetensors"}})
    )
    with pytest.raises(VectorError, match=r"gone.safetensors"):
        CheckpointReader(broken)


def test_integer_tensor_in_a_vector_file_is_refused(tmp_path):
    save_file({"w": torch.ones(2), "ids": torch.arange(3)}, tmp_path / "odd.safetensors")
    with pytest.raises(VectorError, match=r"'ids'.*int64"):
        TaskVector.load(tmp_path / "odd.safetensors")


def test_half_precision_deltas_are_formed_in_fp32(tmp_path):
    base = {"w": torch.tensor([1.0, 256.0, -3.0], dtype=torch.bfloat16)}
    ft = {"w": torch.tensor([1.0078125, 258.0, -3.015625], dtype=torch.bfloat16)}
    tau = TaskVector.from_state_dicts(base, ft)
    assert tau["w"].dtype == torch.bfloat16
    expected = (ft["w"].float() - base["w"].float()).to(torch.bfloat16)
    assert torch.equal(tau["w"], expected)
    assert torch.equal(tau.apply_to(base, 1.0)["w"], ft["w"])
