"""Images decoded once per resolution: content-addressed cache, resize, normalisation, augmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fairmerge.data.images as images
from fairmerge.data.images import ImageInputFormat, decode_images
from fairmerge.data.utkface import FOLDER
from fairmerge.errors import DataError
from fairmerge.inference import encode_images


@pytest.fixture
def faces(data_dir: Path) -> list[str]:
    return [str(p) for p in sorted((data_dir / FOLDER).iterdir())[3000:3012]]


def test_decoded_once_then_read_from_the_cache(
    faces: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "images"
    first = decode_images(faces, 48, cache_dir=cache)
    assert first.shape == (12, 3, 48, 48) and first.dtype == torch.uint8
    with Image.open(faces[0]) as image:
        expected = np.asarray(image.convert("RGB").resize((48, 48), Image.Resampling.BILINEAR))
    assert np.array_equal(first[0].permute(1, 2, 0).numpy(), expected)

    # A renamed copy and a subset are served from the cache: nothing is decoded again.
    renamed = tmp_path / "renamed.jpg"
    shutil.copy(faces[4], renamed)

    def no_decoding(path: str, size: int) -> np.ndarray:
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(images, "decode_one", no_decoding)
    again = decode_images([str(renamed), *faces[:3]], 48, cache_dir=cache)
    assert torch.equal(again[0], first[4]) and torch.equal(again[1:], first[:3])
    # Another resolution is another cache.
    monkeypatch.undo()
    assert decode_images(faces[:2], 32, cache_dir=cache).shape == (2, 3, 32, 32)
    assert sorted(p.name for p in cache.iterdir()) == ["32px-bilinear", "48px-bilinear"]


def test_undecodable_and_missing_files_are_one_line_errors(faces: list[str], tmp_path: Path) -> None:
    data = Path(faces[0]).read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[:200] + data[-2:])  # JPEG markers at both ends, garbage in between
    with pytest.raises(DataError, match=r"cannot decode image .*broken\.jpg") as info:
        decode_images([faces[1], str(broken)], 32, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="1 of 2 image file"):
        decode_images([faces[1], str(tmp_path / "missing.jpg")], 32, cache_dir=tmp_path / "cache")


def test_normalisation_and_flip_augmentation(
    faces: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRMERGE_CACHE_DIR", str(tmp_path))
    plain = encode_images(ImageInputFormat(size=32, mean=(0.5,) * 3, std=(0.25,) * 3), faces)
    batch = plain.collate(np.arange(12), train=True)["pixel_values"]
    expected = (plain.pixels.float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(batch, expected)  # augmentation is off by default, even in training

    flipping = encode_images(ImageInputFormat(size=32, augment="flip"), faces)
    torch.manual_seed(0)
    trained = flipping.collate(np.arange(12), train=True)["pixel_values"]
    scored = flipping.collate(np.arange(12))["pixel_values"]
    flipped = [not torch.equal(trained[i], scored[i]) for i in range(12)]
    assert 0 < sum(flipped) < 12
    for i in np.flatnonzero(flipped):
        torch.testing.assert_close(trained[i], scored[i].flip(-1))


def test_processor_config_round_trip(tmp_path: Path) -> None:
    spec = ImageInputFormat(size=80, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6), augment="flip")
    spec.save_pretrained(tmp_path)
    assert ImageInputFormat.from_pretrained(tmp_path) == spec
    from transformers import ViTImageProcessor

    assert ViTImageProcessor.from_pretrained(tmp_path).size == {"height": 80, "width": 80}
