"""Merging: checkpoints that plain transformers loads, streaming equals in memory, methods, validation."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from peft.utils.merge_utils import ties as peft_ties
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from vectors_tiny import finetuned_from, input_ids, save, tiny_bert

from fairmerge.errors import ConfigError, VectorError
from fairmerge.vectors import TaskVector, inject, merge_checkpoints, merge_state_dict, validate_merge_args
from fairmerge.vectors.checkpoint_io import CheckpointReader


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A base and two fine-tunes of a tiny BERT, saved as (sharded) checkpoints with a tokenizer."""
    root = tmp_path_factory.mktemp("tiny")
    base = tiny_bert(0)
    fts = [finetuned_from(base, seed=s) for s in (1, 2)]
    save(base, root / "base", shard="8KB")
    for i, ft in enumerate(fts, start=1):
        save(ft, root / f"ft{i}", shard="8KB")
    return root, base, fts


def test_merged_checkpoint_loads_with_plain_transformers_and_matches_manual_logits(tiny, tmp_path):
    root, base, fts = tiny
    vectors = [TaskVector.from_checkpoints(root / "base", root / f"ft{i}") for i in (1, 2)]
    out = merge_checkpoints(root / "base", vectors, [0.3, 0.7], tmp_path / "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.convert_tokens_to_ids("hello") == 5
    # manual: θ = θ_base + 0.3 (θ_1 − θ_base) + 0.7 (θ_2 − θ_base), by hand on plain state dicts
    b, f1, f2 = base.state_dict(), fts[0].state_dict(), fts[1].state_dict()
    manual_sd = {k: b[k] + 0.3 * (f1[k] - b[k]) + 0.7 * (f2[k] - b[k]) for k in b}
    manual = tiny_bert(0)
    manual.load_state_dict(manual_sd)
    with torch.no_grad():
        got = merged(**input_ids()).logits
        want = manual.eval()(**input_ids()).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, base(**input_ids()).logits)


@pytest.mark.parametrize(
    ("method", "density"), [("task_arithmetic", None), ("ties", 0.4), ("dare", 0.5), ("inject", None)]
)
def test_streaming_merge_of_sharded_checkpoints_equals_in_memory(tiny, tmp_path, method, density):
    root, base, fts = tiny
    on_disk = [TaskVector.from_checkpoints(root / "base", root / f"ft{i}") for i in (1, 2)]
    saved = tmp_path / "tau2.safetensors"
    on_disk[1].save(saved)
    sources = [on_disk[0], saved]  # a lazy checkpoint diff and a saved vector file
    out = merge_checkpoints(
        root / "base",
        sources,
        [0.5, -0.2],
        tmp_path / "out",
        method=method,
        density=density,
        seed=7,
        max_shard_bytes=6_000,
    )
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    in_memory = [TaskVector.from_state_dicts(base, ft) for ft in fts]
    expected = merge_state_dict(base, in_memory, [0.5, -0.2], method=method, density=density, seed=7)
    streamed = CheckpointReader(out)
    assert sorted(streamed.specs) == sorted(expected)
    for key, tensor in expected.items():
        assert torch.equal(streamed.get(key), tensor), key


def test_ties_follows_peft_and_dare_is_seeded(tiny):
    _, base, fts = tiny
    taus = [TaskVector.from_state_dicts(base, ft) for ft in fts]
    merged = merge_state_dict(base, taus, [0.6, 0.9], method="ties", density=0.3)
    key = "bert.encoder.layer.0.attention.self.query.weight"
    reference = base.state_dict()[key] + peft_ties([t[key] for t in taus], torch.tensor([0.6, 0.9]), 0.3)
    torch.testing.assert_close(merged[key], reference, rtol=0, atol=1e-7)

    def dare(seed):
        return merge_state_dict(base, taus, 0.5, method="dare", density=0.3, seed=seed)

    rng_before = torch.get_rng_state()
    first, again, other = dare(1), dare(1), dare(2)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is left alone
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first[key], other[key])
    full = merge_state_dict(base, taus, 0.5, method="dare", density=1.0)
    plain = merge_state_dict(base, taus, 0.5)
    assert all(torch.equal(full[k], plain[k]) for k in plain)


def test_bf16_checkpoint_merges_in_fp32_and_keeps_its_dtype(tmp_path):
    base = tiny_bert(0, dtype=torch.bfloat16)
    ft = finetuned_from(base, seed=3)
    save(base, tmp_path / "base")
    save(ft, tmp_path / "ft")
    tau = TaskVector.from_checkpoints(tmp_path / "base", tmp_path / "ft")
    out = merge_checkpoints(tmp_path / "base", [tau], 0.5, tmp_path / "out")
    reader = CheckpointReader(out)
    b, f = base.state_dict(), ft.state_dict()
    for key, spec in reader.specs.items():
        assert spec.dtype == b[key].dtype
        if b[key].is_floating_point():
            expected = (b[key].float() + 0.5 * (f[key].float() - b[key].float())).to(torch.bfloat16)
            assert torch.equal(reader.get(key), expected), key
    loaded = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert loaded.dtype == torch.bfloat16


def test_inject_adds_a_vector_to_another_model_without_warning(tiny, tmp_path):
    root, base, fts = tiny
    tau2 = TaskVector.from_state_dicts(base, fts[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = inject(root / "ft1", tau2, 0.25, tmp_path / "injected")
        in_place = inject(finetuned_from(base, seed=1), tau2, 0.25)
    reader = CheckpointReader(out)
    expected = tau2.apply_to(fts[0].state_dict(), 0.25)
    for key in expected:
        assert torch.equal(reader.get(key), expected[key])
        assert torch.equal(in_place.state_dict()[key], expected[key])
    with pytest.warns(UserWarning, match=r"another base"):
        merge_checkpoints(root / "ft1", [tau2], 0.25, tmp_path / "not-inject")


def test_arguments_are_validated_before_any_file_is_read(tmp_path):
    missing = [tmp_path / "nope1.safetensors", tmp_path / "nope2.safetensors"]
    cases = [
        (dict(lambdas=[0.1, 0.2, 0.3]), "3 lambdas for 2 vectors"),
        (dict(lambdas=[0.1], method="slerp"), "unknown merge method 'slerp'"),
        (dict(lambdas=[0.1], method="ties"), "needs a density"),
        (dict(lambdas=[0.1], method="dare", density=1.5), "density must be in"),
        (dict(lambdas=[0.1], method="ties", density=0.0), "density must be in"),
        (dict(lambdas=[0.1], density=0.5), "density applies to ties and dare"),
        (dict(lambdas=[float("nan")]), "finite"),
        (dict(lambdas=[0.1], method="dare", density=0.5, seed=-1), "seed"),
    ]
    for kwargs, message in cases:
        lambdas = kwargs.pop("lambdas")
        with pytest.raises(ConfigError, match=message):
            merge_checkpoints(tmp_path / "no-base", missing, lambdas, tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []
    method, weights, _ = validate_merge_args(3, 0.4)
    assert method.name == "task_arithmetic" and weights == [0.4, 0.4, 0.4]


def test_incompatible_vectors_and_nan_leave_no_output(tiny, tmp_path):
    root, base, fts = tiny
    full = TaskVector.from_state_dicts(base, fts[0])
    with pytest.raises(VectorError, match=r"different keys.*classifier"):
        merge_checkpoints(root / "base", [full, full.without_head()], 0.5, tmp_path / "out")
    odd = TaskVector({"bert.pooler.dense.weight": torch.zeros(3, 3)})
    with pytest.raises(VectorError, match=r"'bert.pooler.dense.weight' has shape \[3, 3\]"):
        merge_checkpoints(root / "base", [odd], 0.5, tmp_path / "out")
    stray = TaskVector({"not.in.model": torch.zeros(1)})
    with pytest.raises(VectorError, match=r"'not.in.model'.*missing"):
        merge_state_dict(base, [stray], 0.5)
    bad = finetuned_from(base, seed=1)
    with torch.no_grad():
        bad.classifier.weight[0, 0] = float("inf")
    save(bad, tmp_path / "bad", tokenizer=False)
    lazy_bad = TaskVector.from_checkpoints(root / "base", tmp_path / "bad")
    with pytest.raises(VectorError, match=r"non-finite.*'classifier.weight'"):
        merge_checkpoints(root / "base", [lazy_bad], 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    (tmp_path / "out").mkdir()
    with pytest.raises(VectorError, match=r"already exists"):
        merge_checkpoints(root / "base", [full], 0.5, tmp_path / "out")


def test_output_shards_are_valid_safetensors_with_pt_format(tiny, tmp_path):
    root, base, fts = tiny
    tau = TaskVector.from_state_dicts(base, fts[0])
    out = merge_checkpoints(root / "base", [tau], 1.0, tmp_path / "out", max_shard_bytes=10_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    total = 0
    for name in sorted(set(index["weight_map"].values())):
        with safe_open(str(out / name), "pt") as handle:
            assert handle.metadata() == {"format": "pt"}
            for key in handle.keys():  # noqa: SIM118
                total += handle.get_tensor(key).numel() * 4
    assert total == index["metadata"]["total_size"]
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
