"""One merge engine: a sweep point written in place equals `fairmerge merge`, for every method and mode."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from typer.testing import CliRunner
from vectors_tiny import finetuned_from, save, tiny_bert

from fairmerge.cli import app
from fairmerge.errors import ConfigError
from fairmerge.vectors import InPlaceMerger, TaskVector, merge_checkpoints, merge_state_dict
from fairmerge.vectors.checkpoint_io import CheckpointReader

METHODS = [("task_arithmetic", None), ("ties", 0.4), ("dare", 0.5)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("inplace")
    base = tiny_bert(0)
    fts = [finetuned_from(base, seed=s) for s in (1, 2, 3)]
    save(base, root / "base")
    for i, ft in enumerate(fts, start=1):
        save(ft, root / f"ft{i}")
    return root, base, fts


def assert_model_equals_checkpoint(model: torch.nn.Module, checkpoint) -> None:
    reader = CheckpointReader(checkpoint)
    state = model.state_dict()
    for key in reader.specs:
        assert torch.equal(state[key], reader.get(key)), key


@pytest.mark.parametrize(("method", "density"), METHODS)
@pytest.mark.parametrize("coefficients", [0.4, [0.7, -0.3, 0.2]])
def test_study_point_equals_merge_checkpoints(tiny, tmp_path, method, density, coefficients):
    root, _, _ = tiny
    dirs = [root / f"ft{i}" for i in (1, 2, 3)]
    vectors = [TaskVector.from_checkpoints(root / "base", d) for d in dirs]
    written = merge_checkpoints(
        root / "base", vectors, coefficients, tmp_path / "merged", method=method, density=density, seed=5
    )
    # The study's way: the base model in memory, vectors read lazily, coefficients set in place.
    uniform = isinstance(coefficients, float)
    model = tiny_bert(9)  # different start: every touched tensor must be rewritten
    model.load_state_dict(tiny_bert(0).state_dict())
    merger = InPlaceMerger.from_checkpoints(
        model, root / "base", dirs, method=method, density=density, seed=5, uniform=uniform
    )
    merger.set_coefficients(coefficients)
    assert_model_equals_checkpoint(model, written)
    # In-memory vectors and an in-memory base: the same bits as merge_state_dict.
    base_sd = tiny_bert(0).state_dict()
    in_memory = [v.materialize() for v in vectors]
    expected = merge_state_dict(base_sd, in_memory, coefficients, method=method, density=density, seed=5)
    other = tiny_bert(0)
    InPlaceMerger(other, base_sd, in_memory, method=method, density=density, seed=5).set_coefficients(
        coefficients
    )
    for key, value in other.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_study_point_equals_the_cli(tiny, tmp_path):
    root, _, _ = tiny
    files = []
    for i in (1, 2):
        files.append(TaskVector.from_checkpoints(root / "base", root / f"ft{i}").save(tmp_path / f"t{i}.st"))
    out = tmp_path / "cli"
    args = ["merge", str(root / "base"), "-v", str(files[0]), "-v", str(files[1]), "-l", "0.3"]
    result = CliRunner().invoke(app, [*args, "--method", "ties", "--density", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    model = tiny_bert(0)
    InPlaceMerger(model, root / "base", files, method="ties", density=0.5, uniform=True).set_coefficients(0.3)
    assert_model_equals_checkpoint(model, out)


def test_uniform_mode_holds_one_summed_vector_and_refuses_per_vector_coefficients(tiny):
    root, base, fts = tiny
    vectors = [TaskVector.from_state_dicts(base, ft) for ft in fts]
    model = tiny_bert(0)
    uniform = InPlaceMerger(model, base.state_dict(), vectors, uniform=True)
    per_vector = InPlaceMerger(tiny_bert(0), base.state_dict(), vectors)
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    # base copy + one sum (fp32 model: one model's worth each), not base + 3 vectors + a sum
    assert uniform.resident_bytes <= 2 * model_bytes
    assert per_vector.resident_bytes > 3 * model_bytes  # base + the three vectors it references
    uniform.set_coefficients([0.5, 0.5, 0.5])
    with pytest.raises(ConfigError, match="uniform"):
        uniform.set_coefficients([0.5, 0.2, 0.5])
    lazy = InPlaceMerger.from_checkpoints(tiny_bert(0), root / "base", [root / "ft1", root / "ft2"])
    assert lazy.resident_bytes <= model_bytes  # streamed: only the base copy stays


def test_lazy_lora_vectors_stay_low_rank_and_equal_dense_ones(tmp_path):
    base = tiny_bert(0)
    base_dir = save(base, tmp_path / "base", tokenizer=False)
    adapters = []
    for seed in (1, 2):
        config = LoraConfig(task_type=TaskType.SEQ_CLS, r=2, lora_alpha=4, target_modules=["query", "value"])
        peft_model = get_peft_model(tiny_bert(0), config)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in peft_model.parameters():
                if param.requires_grad:
                    param.add_(0.1 * torch.randn(param.shape, generator=generator))
        peft_model.save_pretrained(str(tmp_path / f"adapter{seed}"))
        adapters.append(tmp_path / f"adapter{seed}")
    lazy = [TaskVector.from_lora_adapter(a, base_dir, lazy=True) for a in adapters]
    dense = [TaskVector.from_lora_adapter(a, base_dir) for a in adapters]
    assert all(v.is_lazy for v in lazy) and not any(v.is_lazy for v in dense)
    streamed, held = tiny_bert(0), tiny_bert(0)
    streaming = InPlaceMerger(streamed, base_dir, lazy)
    assert streaming.resident_bytes <= sum(t.nbytes for t in base.state_dict().values())
    streaming.set_coefficients([0.6, -0.4])
    InPlaceMerger(held, base_dir, dense).set_coefficients([0.6, -0.4])
    for key, value in held.state_dict().items():
        assert torch.equal(streamed.state_dict()[key], value), key
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(streamed.state_dict()[key], base.state_dict()[key])
