"""A tiny random-init ViT through the shared pipeline on real UTKFace images: train → vector → merge →
in-place sweep, the image evaluator against fairlearn, and the modality checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from transformers import ViTConfig, ViTForImageClassification

from fairmerge.data import GroupedTextDataset, load_dataset
from fairmerge.data.images import ImageInputFormat
from fairmerge.errors import DataError
from fairmerge.evaluation import score_split
from fairmerge.inference import encode_inputs
from fairmerge.models import load_classifier, load_processor, model_modality, to_model_keys
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.training.base import make_base_checkpoint
from fairmerge.training.cache import TrainingCache
from fairmerge.training.config import TrainConfig
from fairmerge.training.finetune import train_fft
from fairmerge.vectors import CheckpointReader, InPlaceMerger, TaskVector, merge_checkpoints


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRMERGE_CACHE_DIR", str(root))  # decoded images go here, not to ~/.cache
        yield root


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init 2-layer ViT at 32 px with its image processor config."""
    path = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(path)
    ImageInputFormat(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def utk(data_dir: Path) -> GroupedTextDataset:
    return load_dataset("utkface", data_dir)


@pytest.fixture(scope="module")
def small(utk: GroupedTextDataset) -> GroupedTextDataset:
    """A few hundred real images: 240 train, 120 val, 120 test (the first of each content-ordered split)."""
    sizes = {"train": 240, "val": 120, "test": 120}
    return GroupedTextDataset(
        name="utkface",
        splits={s: utk[s].subset(np.arange(n)) for s, n in sizes.items()},
        label_scheme=utk.label_scheme,
        provenance=utk.provenance,
    )


def _config() -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=32, eval_batch_size=64, learning_rate=1e-3, seed=0, device="cpu")


def test_train_vector_merge_and_inplace_sweep(
    tiny_vit: Path, small: GroupedTextDataset, cache_root: Path, tmp_path: Path
) -> None:
    cache = TrainingCache(tmp_path / "training")
    base = make_base_checkpoint(str(tiny_vit), seed=0, cache=cache)
    assert model_modality(str(base)) == "image"
    assert load_processor(str(base)) == ImageInputFormat(size=32, mean=(0.5,) * 3, std=(0.5,) * 3)

    fft = train_fft(small, base_dir=base, config=_config(), cache=cache, progress=False)
    female = small["train"].in_group("gender", "female")
    subgroup = GroupedTextDataset(
        name="utkface",
        splits={"train": small["train"].subset(female), "val": small["val"]},
        label_scheme=small.label_scheme,
        provenance=small.provenance,
    )
    sub = train_fft(subgroup, base_dir=base, config=_config(), cache=cache, progress=False)
    assert train_fft(small, base_dir=base, config=_config(), cache=cache, progress=False) == fft  # cached

    tau_fft = TaskVector.from_checkpoints(base, fft).materialize()
    tau_sub = TaskVector.from_checkpoints(base, sub).materialize()
    assert tau_fft.num_parameters > 0 and any(float(t.abs().max()) > 0 for t in tau_fft.values())

    merged = merge_checkpoints(base, [tau_fft, tau_sub], [0.5, 0.5], tmp_path / "merged")
    test = small["test"]
    processor = load_processor(str(merged))
    encoded = encode_inputs(processor, test, max_length=2)
    merged_scores = score_split(load_classifier(str(merged)), encoded)

    # One model in memory, swept in place: λ = 0 is θ_base, λ = 1 on τ_fft alone is the FFT model,
    # and (½, ½) on both vectors is the merged checkpoint written above.
    model = load_classifier(str(base)).eval()
    reader = CheckpointReader(base)
    base_state = to_model_keys(model, {key: reader.get(key) for key in reader.specs})
    merger = InPlaceMerger(model, base_state, [to_model_keys(model, tau_fft), to_model_keys(model, tau_sub)])
    evaluator = SplitEvaluator.build(
        "test",
        test,
        processor,
        attributes=["race", "gender"],
        max_length=2,
        min_group_size=1,
        batch_size=64,
        cache=ScoreCache(Path("unused"), enabled=False),
    )
    sweep = {}
    for lam in ((0.0, 0.0), (1.0, 0.0), (0.5, 0.5)):
        merger.set_coefficients(list(lam))
        sweep[lam] = evaluator.score(model)
    base_scores = score_split(load_classifier(str(base)), encoded)
    fft_scores = score_split(load_classifier(str(fft)), encoded)
    np.testing.assert_allclose(sweep[(0.0, 0.0)], base_scores, atol=1e-5)
    np.testing.assert_allclose(sweep[(1.0, 0.0)], fft_scores, atol=1e-5)
    np.testing.assert_allclose(sweep[(0.5, 0.5)], merged_scores, atol=1e-5)
    assert not np.allclose(base_scores, fft_scores, atol=1e-3)  # training moved the model
    merger.restore()
    np.testing.assert_allclose(score_split(model, encoded), base_scores, atol=1e-6)


def test_image_metrics_equal_fairlearn_on_disjoint_groups(
    tiny_vit: Path, utk: GroupedTextDataset, cache_root: Path
) -> None:
    val = utk["val"]  # every image has exactly one race and one gender: disjoint groups
    processor = load_processor(str(tiny_vit))
    evaluator = SplitEvaluator.build(
        "val",
        val,
        processor,
        attributes=["race", "gender"],
        max_length=2,
        min_group_size=1,
        batch_size=256,
        cache=ScoreCache(Path("unused"), enabled=False),
    )
    torch.manual_seed(1)
    model = load_classifier(str(tiny_vit)).eval()
    scores = evaluator.score(model)
    threshold = float(np.median(scores))  # a random model: cut at the median so both classes occur
    frame = evaluator.metrics(scores, threshold=threshold)
    values = frame.set_index(["attribute", "group", "metric"])["value"]
    predictions = (scores > threshold).astype(int)
    for attribute in ("race", "gender"):
        sensitive = [next(iter(m)) for m in val.groups[attribute]]
        dpd = demographic_parity_difference(val.labels, predictions, sensitive_features=sensitive)
        eod = equalized_odds_difference(val.labels, predictions, sensitive_features=sensitive)
        assert values[attribute, "all", "n_groups"] == len(set(sensitive))
        assert abs(values[attribute, "all", "dpd"] - dpd) <= 1e-12
        assert abs(values[attribute, "all", "eod"] - eod) <= 1e-12


def test_modality_mismatch_is_a_one_line_error(
    tiny_vit: Path, small: GroupedTextDataset, data_dir: Path, cache_root: Path
) -> None:
    text = load_dataset("sbic", data_dir)["test"].subset(np.arange(5))
    with pytest.raises(DataError, match="an image model cannot score a text dataset"):
        encode_inputs(load_processor(str(tiny_vit)), text, max_length=16)
    with pytest.raises(DataError, match="a text model cannot score an image dataset"):
        encode_inputs(load_processor(None), small["test"], max_length=16)
