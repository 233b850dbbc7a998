"""``evaluation.precision: auto`` proves bf16 on θ_base before any sweep, and falls back to fp32 where
the decisions move (a tiny random BERT on real HateXplain val posts; bf16 units are pretended where
the CPU lacks them, so the check runs on every machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from training_tiny import one_torch_thread, tiny_config  # noqa: F401 (autouse fixture)
from transformers import AutoModelForSequenceClassification, PreTrainedModel

import fairmerge as fm
from fairmerge import precision as precision_module
from fairmerge.data.types import TextSplit
from fairmerge.evaluation import score_split
from fairmerge.fairness.metrics import Thresholds
from fairmerge.models import load_tokenizer
from fairmerge.study.config import load_config
from fairmerge.study.evaluator import SplitEvaluator, evaluation_subset
from fairmerge.study.points import PointEvaluator
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.scorer import CandidateScorer
from fairmerge.study.stages import STAGES, SeedContext, SeedState
from fairmerge.study.stages import precision as stage
from fairmerge.study.stages.workspace import Lab, Workspace
from fairmerge.training import TrainingCache

ATTRIBUTES = ["race", "gender"]


@pytest.fixture(scope="module")
def val(data_dir: Path) -> SplitEvaluator:
    """240 real validation posts (group-targeting ones first), encoded with MiniLM's tokenizer."""
    split = evaluation_subset(fm.load_dataset("hatexplain", data_dir)["val"], 240, ATTRIBUTES, seed=0)
    return SplitEvaluator.build(
        "val",
        split,
        load_tokenizer(None),
        attributes=ATTRIBUTES,
        max_length=32,
        min_group_size=10,
        batch_size=64,
        cache=ScoreCache(Path("unused"), enabled=False),
    )


@pytest.fixture(autouse=True)
def bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the CPU has avx512_bf16, so ``auto`` offers bf16 here as on the study's machines."""
    monkeypatch.setattr(precision_module, "_cpu_flag", lambda name: name == "_is_avx512_bf16_supported")


def _model(val: SplitEvaluator, head_scale: float, logit: float) -> PreTrainedModel:
    """A tiny random BERT (weights std 0.3, so posts get distinct scores), its head scaled by
    ``head_scale``, both logits shifted to ≈ ``logit``, and the decision boundary in the widest gap
    between the middle half of the posts' fp32 margins. With 1e-3 around 1 the margins are far
    below bf16's resolution there (2⁻⁷); with 10 around 0 every margin is far above it."""
    config = tiny_config("bert", vocab_size=load_tokenizer(None).vocab_size)
    config.num_labels, config.initializer_range = 2, 0.3
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(head_scale)
        model.classifier.bias.fill_(logit)
        scores = score_split(model, val.encoded, batch_size=64)
        margins = np.sort(np.log(scores / (1 - scores)))
        middle = margins[len(margins) // 4 : 3 * len(margins) // 4]
        widest = int(np.argmax(np.diff(middle)))
        model.classifier.bias[1] -= float(middle[widest] + middle[widest + 1]) / 2
    return model


def _run_stage(
    model: PreTrainedModel, val: SplitEvaluator, cache: Path, *overrides: str
) -> tuple[SeedState, stage.PrecisionCheck]:
    config = load_config(None, overrides=list(overrides))
    scores = ScoreCache(cache)
    split = SplitEvaluator(
        val.name, val.split, val.encoded, val.attributes, val.thresholds, 64, scores, "fp32"
    )
    workspace = Workspace(model, {"base": {k: v.clone() for k, v in model.state_dict().items()}})
    evaluator = PointEvaluator(CandidateScorer(split, split, workspace, 0), True, "accuracy", 0, 0)
    lab = Lab(workspace, evaluator, {})
    context = SeedContext(config, None, 0, TrainingCache(cache / "t", enabled=False), scores)  # type: ignore[arg-type]
    check, evaluator = stage.choose_precision(context, SeedState(lab=lab))
    after = stage.run(context, SeedState(lab=lab))
    assert after.lab is not None and after.lab.evaluator.val.precision == check.chosen
    assert after.precision == check  # what the seed's outcome records in the provenance
    return after, check


def test_auto_falls_back_to_fp32_where_bf16_decisions_differ(val: SplitEvaluator, tmp_path: Path) -> None:
    after, check = _run_stage(_model(val, 1e-3, 1.0), val, tmp_path, "evaluation.precision=auto")
    assert check.checked and check.offered == "bf16" and check.chosen == "fp32"
    assert check.agreement < 0.999 and check.n_posts == 240
    assert "failed: fp32" in check.summary
    lab = after.lab
    assert lab is not None and lab.evaluator.test.precision == "fp32"
    # the fallback scores under its own key: a sub-folder named after it, next to the bf16 scores
    assert lab.evaluator.val.cache.root == tmp_path / "precision=fp32"
    assert [p.name for p in tmp_path.glob("*.npy")] == [
        p.name for p in (tmp_path / "precision=fp32").glob("*.npy")
    ]
    fp32 = np.load(next((tmp_path / "precision=fp32").glob("*.npy")))
    bf16 = np.load(next(tmp_path.glob("*.npy")))

    def not_cached(candidate: object) -> None:
        raise AssertionError("θ_base's fp32 val scores were not cached by the check")

    lab.workspace.materialise = not_cached  # type: ignore[method-assign]
    assert np.array_equal(lab.evaluator.scorer.scores(stage.BASE, "val"), fp32)  # the baselines' hit
    assert not np.array_equal(fp32, bf16)


ARGMAX = ("evaluation.precision=auto", "evaluation.calibrate=false")
"""Argmax decisions only: a validation-chosen threshold may sit between two posts whose scores bf16
swaps, which would make the passing check depend on the CPU's bf16 kernels."""


def test_auto_keeps_bf16_where_the_check_passes(val: SplitEvaluator, tmp_path: Path) -> None:
    after, check = _run_stage(_model(val, 10.0, 0.0), val, tmp_path, *ARGMAX)
    assert check.checked and check.chosen == "bf16", check.summary
    assert check.agreement >= 0.999 and check.max_rate_shift < 0.01
    assert after.lab is not None and after.lab.evaluator.val.cache.root == tmp_path  # the run's own key
    assert check.to_dict()["min_agreement"] == 0.999
    stricter = "evaluation.precision_min_agreement=1.0", "evaluation.precision_max_rate_shift=1e-9"
    _, strict = _run_stage(_model(val, 10.0, 0.0), val, tmp_path / "strict", *ARGMAX, *stricter)
    assert strict.chosen == ("bf16" if check.max_rate_shift == 0 else "fp32")


def test_explicit_precisions_are_used_as_they_are(val: SplitEvaluator, tmp_path: Path) -> None:
    for requested in ("fp32", "bf16"):
        _, check = _run_stage(_model(val, 1e-3, 1.0), val, tmp_path, f"evaluation.precision={requested}")
        assert not check.checked and check.chosen == requested
    assert list(tmp_path.glob("**/*.npy")) == []  # nothing scored before the baselines


def test_the_comparison_counts_decisions_and_rates() -> None:
    labels = np.array([0, 1] * 20)
    split = SplitEvaluator(
        "val", _split(labels), None, ["race"], Thresholds(5, 2, 2), 1, ScoreCache(Path("x"))
    )  # type: ignore[arg-type]
    fp32 = np.linspace(0.05, 0.95, 40)
    same = stage.compare_precisions(fp32, fp32.copy(), split, calibrate=True, objective="accuracy")
    assert same == (1.0, 0.0)
    flipped = fp32.copy()
    flipped[0] = 0.99  # one decision of 40 changes under argmax, in group A (20 posts)
    agreement, shift = stage.compare_precisions(fp32, flipped, split, calibrate=False, objective="accuracy")
    assert agreement == pytest.approx(39 / 40) and shift == pytest.approx(1 / 20)


def _split(labels: np.ndarray) -> TextSplit:
    n = len(labels)
    groups = [frozenset({"A"}) if i % 2 == 0 else frozenset({"B"}) for i in range(n)]
    return TextSplit(ids=[str(i) for i in range(n)], texts=[""] * n, labels=labels, groups={"race": groups})


def test_the_check_runs_after_set_up_and_before_any_sweep() -> None:
    names = [s.name for s in STAGES]
    assert names.index("evaluate: precision") == names.index("evaluate: set-up") + 1
    assert names.index("evaluate: precision") < names.index("evaluate: baselines (val)")
    evaluation = load_config(None).evaluation
    assert (evaluation.precision_min_agreement, evaluation.precision_max_rate_shift) == (0.999, 0.01)
