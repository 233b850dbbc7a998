"""Smaller items of the failure contract (issue #22): file modes, huge cells, LoRA adapters in
``vector``/``merge``, warnings formatted once, one evaluate path for images, model checks."""

from __future__ import annotations

import os
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from safetensors.torch import load_file, save_file
from vectors_tiny import save, tiny_bert

import fairmerge as fm
from fairmerge.atomic import atomic_directory
from fairmerge.cli import main
from fairmerge.data.types import TextSplit
from fairmerge.errors import ModelError
from fairmerge.inference import CHARS_PER_TOKEN, encode_texts
from fairmerge.models import check_model, load_tokenizer
from fairmerge.vectors import TaskVector
from fairmerge.warning_log import WarningCollector, warning_context


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["fairmerge", *argv])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_published_files_follow_the_umask(tmp_path: Path) -> None:
    """safetensors and mkstemp write 0600; a published folder has the umask's modes (item 15)."""
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "entry") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
            os.close(os.open(tmp / "private.txt", os.O_CREAT | os.O_WRONLY, 0o600))
            (tmp / "sub").mkdir(mode=0o700)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "entry").rglob("*")}
    assert modes == {"model.safetensors": 0o644, "private.txt": 0o644, "sub": 0o755}


def test_a_huge_cell_is_cut_before_tokenizing() -> None:
    """A 3 MB text costs what a long post costs and gives the same first tokens (item 12)."""
    tokenizer = load_tokenizer(None)
    normal = "the quick brown fox jumps over the lazy dog " * 4
    huge = normal * 20_000  # about 3.5 MB
    seen: list[int] = []

    class Spy:
        """The tokenizer, recording the length of every text it is given."""

        pad_token_id = tokenizer.pad_token_id

        def __call__(self, texts: list[str], **options: object) -> object:
            seen.extend(len(text) for text in texts)
            return tokenizer(texts, **options)

    encoded = encode_texts(Spy(), [huge, normal], max_length=64)  # type: ignore[arg-type]
    assert seen == [64 * CHARS_PER_TOKEN, len(normal)]  # the tokenizer never sees the 3.5 MB
    full = tokenizer([huge[: 64 * CHARS_PER_TOKEN * 4], normal], truncation=True, max_length=64)["input_ids"]
    assert encoded.input_ids == [list(ids) for ids in full]


@pytest.fixture
def adapter(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny BERT base folder and a peft LoRA adapter of it."""
    base_dir = save(tiny_bert(0), tmp_path / "base")
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        modules_to_save=["classifier"],
        r=4,
        lora_alpha=8,
        target_modules=["query"],
    )
    model = get_peft_model(tiny_bert(0), config)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn(param.shape, generator=torch.Generator().manual_seed(1)))
    model.save_pretrained(str(tmp_path / "adapter"))
    return base_dir, tmp_path / "adapter"


def test_vector_and_merge_take_a_lora_adapter_folder(
    adapter: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """item 17: ``vector BASE ADAPTER`` and ``merge BASE -v ADAPTER`` use the adapter's exact ΔW."""
    base_dir, adapter_dir = adapter
    assert (
        _run(
            ["vector", str(base_dir), str(adapter_dir), "-o", str(tmp_path / "tau.safetensors")], monkeypatch
        )
        == 0
    )
    expected = TaskVector.from_lora_adapter(adapter_dir, base_dir)
    written = load_file(str(tmp_path / "tau.safetensors"))
    assert set(written) == set(expected.keys()) and len(written) > 0
    for key, tensor in written.items():
        torch.testing.assert_close(tensor, expected[key])
    merge = ["merge", str(base_dir), "-v", str(adapter_dir), "-l", "1", "-o", str(tmp_path / "merged")]
    assert _run(merge, monkeypatch) == 0
    from_file = ["merge", str(base_dir), "-v", str(tmp_path / "tau.safetensors"), "-l", "1"]
    assert _run([*from_file, "-o", str(tmp_path / "merged2")], monkeypatch) == 0
    one, two = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("merged", "merged2"))
    for key in one:
        torch.testing.assert_close(one[key], two[key])


def test_warnings_are_printed_once_with_count_and_context(capsys: pytest.CaptureFixture[str]) -> None:
    """item 19: one line per distinct warning, its count and contexts, no source path."""
    import io

    stream = io.StringIO()
    with WarningCollector(stream):
        for model in ("fft", "merge"):
            for split in ("val", "test"):
                with warning_context(split=split, model=model):
                    warnings.warn("gender is undefined", UserWarning, stacklevel=1)
        warnings.warn("another one", RuntimeWarning, stacklevel=1)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "warning: UserWarning: gender is undefined (4 times; split: test, val; model: fft, merge)",
        "warning: RuntimeWarning: another one",
    ]


def test_a_failing_block_prints_only_its_error() -> None:
    import io

    stream = io.StringIO()
    with pytest.raises(ValueError), WarningCollector(stream):
        warnings.warn("before the error", UserWarning, stacklevel=1)
        raise ValueError("bad input")
    assert stream.getvalue() == ""


def test_fm_evaluate_scores_images_through_the_same_path(tmp_path: Path, data_dir: Path) -> None:
    """issue #18 item 6: ``fm.evaluate`` takes an image model and an image split (it was text-only)."""
    from transformers import ViTConfig, ViTForImageClassification

    from fairmerge.data.images import ImageInputFormat
    from fairmerge.evaluation import evaluate_model

    vit = tmp_path / "vit"
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=2)  # fmt: skip
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(vit)
    ImageInputFormat(size=32).save_pretrained(vit)
    images = sorted((data_dir / "utkface" / "UTKFace").iterdir())[:40:2]
    split = TextSplit(
        ids=[p.name for p in images],
        texts=[str(p) for p in images],
        labels=np.array([int(p.name.split("_")[0]) > 30 for p in images], dtype=np.int64),
        groups={"gender": [frozenset({p.name.split("_")[1]}) for p in images]},
        modality="image",
    )
    frame = fm.evaluate(str(vit), split, n_resamples=0, min_group_size=1)
    direct = evaluate_model(str(vit), split, n_resamples=0, min_group_size=1).metrics
    pd.testing.assert_frame_equal(frame, direct)
    assert frame.loc[frame["metric"] == "n", "value"].iloc[0] == len(images)


def test_checkpoint_without_tokenizer_or_config_fails_naming_the_files(tmp_path: Path) -> None:
    """item 9 and 16: no tokenizer files, or only a pickle without config.json."""
    save(tiny_bert(0), tmp_path / "notok", tokenizer=False)
    with pytest.raises(ModelError, match=r"no tokenizer: none of tokenizer\.json, vocab\.txt"):
        load_tokenizer(str(tmp_path / "notok"))
    (tmp_path / "pickle").mkdir()
    torch.save({"w": torch.zeros(1)}, tmp_path / "pickle" / "pytorch_model.bin")
    with pytest.raises(ModelError, match=r"has no config\.json"):
        fm.evaluate(str(tmp_path / "pickle"), texts=["a"], labels=[0], groups={"g": ["x"]})
    with pytest.raises(ModelError, match="does not exist"):
        check_model("./nosuch")
