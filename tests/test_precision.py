"""Scoring precision (fp32 / bf16 / auto): fp32 is today's path, bf16 is close, auto follows its rule."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import vectors_tiny
from training_tiny import one_torch_thread  # noqa: F401 (autouse fixture)

from fairmerge import precision as precision_module
from fairmerge.cli import main
from fairmerge.errors import ConfigError
from fairmerge.evaluation import score_split
from fairmerge.inference import EncodedTexts, collate, length_bucketed_batches, positive_scores
from fairmerge.precision import precision_provenance, resolve_precision
from fairmerge.study.config import load_config
from fairmerge.study.run import _provenance, _score_cache_key


def _cpu(monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    """Pretend the CPU has exactly ``flags`` (avx512_bf16, amx)."""
    names = {"avx512_bf16": "_is_avx512_bf16_supported", "amx": "_is_amx_tile_supported"}
    present = {names[f] for f in flags}
    monkeypatch.setattr(precision_module, "_cpu_flag", lambda name: name in present)


@pytest.fixture(scope="module")
def encoded() -> EncodedTexts:
    rng = np.random.default_rng(0)
    rows = [[2, *rng.integers(5, 13, size=int(n)).tolist(), 3] for n in rng.integers(1, 20, size=40)]
    return EncodedTexts(rows, pad_token_id=0)


def _today_scores(model: torch.nn.Module, encoded: EncodedTexts) -> np.ndarray:
    """The scoring loop as it was before precision existed (no autocast on CPU)."""
    out = np.empty((len(encoded), 2), dtype=np.float32)
    with torch.inference_mode():
        for idx in length_bucketed_batches(encoded.lengths, 128):
            out[idx] = model(**collate(encoded, idx)).logits.float().numpy()
    return positive_scores(out)


def test_fp32_is_exactly_todays_scores_and_the_default(encoded: EncodedTexts) -> None:
    model = vectors_tiny.tiny_bert(0)
    today = _today_scores(model, encoded)
    assert np.array_equal(score_split(model, encoded, precision="fp32"), today)
    assert np.array_equal(score_split(model, encoded), today)


def test_bf16_runs_close_to_fp32_and_really_autocasts(
    encoded: EncodedTexts, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, "avx512_bf16")
    model = vectors_tiny.tiny_bert(0)
    fp32 = score_split(model, encoded, precision="fp32")
    bf16 = score_split(model, encoded, precision="bf16")
    assert bf16.dtype == np.float64 and bf16.shape == fp32.shape
    assert not np.array_equal(bf16, fp32)  # autocast did run in bf16
    np.testing.assert_allclose(bf16, fp32, atol=2e-2)
    assert next(model.parameters()).dtype == torch.float32  # weights untouched


def test_bf16_is_refused_without_bf16_units(encoded: EncodedTexts, monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch)
    with pytest.raises(ConfigError, match="no bf16 units"):
        score_split(vectors_tiny.tiny_bert(0), encoded, precision="bf16")
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [((), "fp32"), (("avx512_bf16",), "bf16"), (("amx",), "bf16"), (("avx512_bf16", "amx"), "bf16")],
)
def test_auto_on_cpu_uses_bf16_only_with_bf16_units(
    flags: tuple[str, ...], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpu(monkeypatch, *flags)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("fp32", "cpu") == "fp32"


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_cuda_follows_is_bf16_supported(supported: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert resolve_precision("auto", "cuda") == ("bf16" if supported else "fp32")
    if not supported:
        with pytest.raises(ConfigError, match="CUDA device has no bf16"):
            resolve_precision("bf16", "cuda")


def test_auto_on_this_cpu_scores_as_documented(encoded: EncodedTexts) -> None:
    model = vectors_tiny.tiny_bert(0)
    resolved = precision_provenance("auto", "cpu")["resolved"]
    expected = score_split(model, encoded, precision=resolved)  # type: ignore[arg-type]
    assert np.array_equal(score_split(model, encoded, precision="auto"), expected)


def test_config_field_validates_and_the_resolved_precision_keys_the_score_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_config(None).evaluation.precision == "auto"
    for precision in ("fp32", "bf16"):
        assert (
            load_config(None, overrides=[f"evaluation.precision={precision}"]).evaluation.precision
            == precision
        )
    with pytest.raises(ConfigError, match=r"evaluation\.precision"):
        load_config(None, overrides=["evaluation.precision=fp16"])

    dataset = SimpleNamespace(provenance={"x": "1"})
    auto = load_config(None, overrides=["evaluation.precision=auto"])
    _cpu(monkeypatch, "avx512_bf16")
    with_units = _score_cache_key(auto, dataset)  # type: ignore[arg-type]
    assert precision_provenance("auto", "cpu") | {"cpu_amx": None} == {
        "requested": "auto",
        "resolved": "bf16",
        "device": "cpu",
        "cpu_avx512_bf16": True,
        "cpu_amx": None,
    }
    _cpu(monkeypatch)
    without_units = _score_cache_key(auto, dataset)  # type: ignore[arg-type]
    assert precision_provenance("auto", "cpu")["resolved"] == "fp32"
    assert with_units != without_units  # same config, different resolved precision: never mixed
    outcome = SimpleNamespace(checkpoints={}, precision=None)
    recorded = _provenance(auto, SimpleNamespace(provenance={}, notes=[]), outcome)  # type: ignore[arg-type]
    assert recorded["evaluation_precision"]["requested"] == "auto"
    assert recorded["evaluation_precision"]["resolved"] == "fp32"


def test_bad_precision_on_the_command_line_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["fairmerge", "run", "--dry-run", "--set", "evaluation.precision=fp16"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "evaluation.precision" in err and "Traceback" not in err
