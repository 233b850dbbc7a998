"""Time per λ point: fairmerge's in-place sweep vs the study's own checkpoint round-trip procedure.

Setting: the embedded all-MiniLM-L6-v2 classifier (random head, fixed seed) and real HateXplain
texts: the official validation and test splits, 3,846 posts scored at every point (``--n-per-split N``
takes a fixed random subset of N posts per split instead). Two task vectors are synthetic but
shaped like real ones: τ_i = θ after ``--sgd-steps`` AdamW steps (lr 1e-4, batch 32) on 32 random
training posts (seed i) minus θ_base. Every point is θ_base + λ·(τ_1 + τ_2).

- fairmerge: one model in memory, ``InPlaceMerger.set_coefficients(λ)``, texts tokenized once
  (truncated to ``--max-length``, no padding), length-bucketed batches with dynamic padding
  (``fairmerge.evaluation.score_split``), then ``evaluate_scores`` per split.
- reference (the study's procedure): a new state dict base + λτ, ``load_state_dict``,
  ``save_pretrained`` to a temporary directory, ``from_pretrained``, then tokenize every text with
  ``padding='max_length'`` (``--max-length``) in the original order, batches of ``--batch-size``,
  softmax, and the same ``evaluate_scores``.

The two are interleaved point by point (after one untimed warm-up point each, on 64 posts per
split: it pays one-time costs such as the summed vector and thread start-up), so load from other
processes on the machine hits both alike. Forward-pass time is measured with hooks on the model;
``overhead_fraction`` = (point time − forward time) / point time for fairmerge. Scores of the two
procedures are compared at every point (they must agree up to float noise from padding).

bf16: at λ = 1 fairmerge's scoring runs ``--bf16-repeats`` times in fp32 and under bf16 autocast
(``precision="bf16"``), interleaved; ``bf16_speedup`` = fp32 time ÷ bf16 time and
``bf16_decision_agreement`` = share of posts whose decision at 0.5 is the same (both null when the
device has no bf16 units). ``--quick`` = 256 posts per split and one bf16 repeat (a few minutes on
2 cores). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from fairmerge.data import TextSplit, load_dataset
from fairmerge.evaluation import evaluate_scores, score_split
from fairmerge.inference import EncodedTexts, collate, encode_texts
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.paths import resolve_data_dir
from fairmerge.precision import cpu_has_bf16_units
from fairmerge.vectors import InPlaceMerger

LAMBDAS = (0.0, 0.5, 1.0)
WARM_UP = 0.25


class ForwardTimer:
    """Accumulates wall time spent inside ``model.forward`` (pre- and post-forward hooks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def attach(self, model: torch.nn.Module) -> None:
        model.register_forward_pre_hook(lambda *_: self._begin())
        model.register_forward_hook(lambda *_: self._end())

    def _begin(self) -> None:
        self._start = time.perf_counter()

    def _end(self) -> None:
        self.seconds += time.perf_counter() - self._start


def subset(split: TextSplit, n: int, seed: int) -> TextSplit:
    if n <= 0 or n >= len(split):
        return split
    return split.subset(np.sort(np.random.default_rng(seed).choice(len(split), size=n, replace=False)))


def sgd_vector(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train: TextSplit, *, seed: int, steps: int
) -> dict[str, torch.Tensor]:
    """θ after a few AdamW steps on 32 random training posts, minus θ: a task vector's shape."""
    base = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    torch.manual_seed(seed)
    idx = np.random.default_rng(seed).choice(len(train), size=32, replace=False)
    batch = collate(encode_texts(tokenizer, [train.texts[i] for i in idx], max_length=64), np.arange(32))
    labels = torch.as_tensor(train.labels[idx])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    model.eval()
    vector = {k: v.detach() - base[k] for k, v in model.state_dict().items() if k in base}
    model.load_state_dict(base, strict=False)
    return vector


def metrics_for(splits: Sequence[TextSplit], scores: Sequence[np.ndarray]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined small-group rates are expected here
        for split, s in zip(splits, scores, strict=True):
            evaluate_scores(split, s, n_resamples=0)


def reference_scores(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """The study's evaluation: pad every post to max_length, batches in the original order."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size],
                padding="max_length",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(**enc).logits
            out.append(torch.softmax(logits.float(), dim=-1)[:, 1].numpy())
    return np.concatenate(out).astype(np.float64)


def bf16_comparison(
    model: torch.nn.Module, encoded: Sequence[EncodedTexts], batch_size: int, repeats: int
) -> tuple[float, float, int] | None:
    """(fp32 ÷ bf16 time, decision agreement, posts that disagree); None without bf16 units."""
    device = next(model.parameters()).device
    if device.type == "cpu" and not cpu_has_bf16_units():
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return None
    times: dict[str, float] = {"fp32": 0.0, "bf16": 0.0}
    scores: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for precision in ("fp32", "bf16"):
            t0 = time.perf_counter()
            scores[precision] = np.concatenate(
                [score_split(model, e, batch_size=batch_size, precision=precision) for e in encoded]
            )
            times[precision] += time.perf_counter() - t0
    same = (scores["fp32"] > 0.5) == (scores["bf16"] > 0.5)
    return times["fp32"] / times["bf16"], float(same.mean()), int((~same).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $FAIRMERGE_DATA_DIR)")
    parser.add_argument("--n-per-split", type=int, default=0, help="posts per split (0: all)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--sgd-steps", type=int, default=3)
    parser.add_argument("--bf16-repeats", type=int, default=2, help="interleaved fp32/bf16 passes")
    parser.add_argument("--quick", action="store_true", help="256 posts per split, one bf16 repeat")
    args = parser.parse_args()
    if args.quick:
        args.n_per_split = args.n_per_split or 256
        args.bf16_repeats = 1
    hf_logging.set_verbosity_error()  # no load reports or shard progress bars in the timed loop
    hf_logging.disable_progress_bar()

    dataset = load_dataset("hatexplain", resolve_data_dir(args.data_dir))
    splits = [subset(dataset["val"], args.n_per_split, 0), subset(dataset["test"], args.n_per_split, 1)]
    n_texts = sum(len(s) for s in splits)
    tokenizer = load_tokenizer(None)
    torch.manual_seed(0)
    model = load_classifier(None)
    vectors = [sgd_vector(model, tokenizer, dataset["train"], seed=i, steps=args.sgd_steps) for i in (1, 2)]
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    tau_norm = float(torch.sqrt(sum(((vectors[0][k] + vectors[1][k]) ** 2).sum() for k in vectors[0])))
    print(f"texts: {n_texts} (HateXplain val {len(splits[0])} + test {len(splits[1])}), ", end="")
    print(
        f"max_length {args.max_length}, batch size {args.batch_size}, torch threads {torch.get_num_threads()}"
    )
    print(
        f"vectors: 2 × {len(vectors[0])} tensors, {args.sgd_steps} AdamW steps each; ‖τ1+τ2‖ = {tau_norm:.4f}"
    )
    print(f"λ points timed: {list(LAMBDAS)} (after one untimed warm-up point at λ={WARM_UP})")

    # fairmerge: set up once (not per point), then in place per λ.
    start = time.perf_counter()
    merger = InPlaceMerger(model, base, vectors, uniform=True)
    encoded = [encode_texts(tokenizer, s.texts, max_length=args.max_length) for s in splits]
    setup_seconds = time.perf_counter() - start
    fm_forward = ForwardTimer()
    fm_forward.attach(model)

    def fairmerge_point(lam: float, parts: Sequence[TextSplit] = splits) -> list[np.ndarray]:
        inputs = (
            encoded
            if parts is splits
            else [encode_texts(tokenizer, s.texts, max_length=args.max_length) for s in parts]
        )
        merger.set_coefficients(lam)
        scores = [score_split(model, e, batch_size=args.batch_size, precision="fp32") for e in inputs]
        metrics_for(parts, scores)
        return scores

    # reference: a working model whose state dict is replaced, saved and re-read at every point.
    work = load_classifier(None)
    ref_forward = ForwardTimer()

    def reference_point(lam: float, parts: Sequence[TextSplit] = splits) -> list[np.ndarray]:
        state = {
            k: (v + lam * (vectors[0][k] + vectors[1][k]) if k in vectors[0] else v) for k, v in base.items()
        }
        work.load_state_dict(state)
        with tempfile.TemporaryDirectory() as tmp:
            work.save_pretrained(tmp)
            loaded = AutoModelForSequenceClassification.from_pretrained(tmp).eval()
        ref_forward.attach(loaded)
        scores = [
            reference_scores(loaded, tokenizer, s.texts, args.max_length, args.batch_size) for s in parts
        ]
        metrics_for(parts, scores)
        return scores

    def timed(
        fn: Callable[[float], list[np.ndarray]], lam: float, timer: ForwardTimer
    ) -> tuple[float, float, list]:
        forward_before = timer.seconds
        t0 = time.perf_counter()
        scores = fn(lam)
        return time.perf_counter() - t0, timer.seconds - forward_before, scores

    warm_up = [subset(s, 64, 2) for s in splits]
    fairmerge_point(WARM_UP, warm_up)
    reference_point(WARM_UP, warm_up)
    fm_times, fm_fwd, ref_times, ref_fwd = [], [], [], []
    for lam in LAMBDAS:
        t_fm, f_fm, s_fm = timed(fairmerge_point, lam, fm_forward)
        t_ref, f_ref, s_ref = timed(reference_point, lam, ref_forward)
        fm_times.append(t_fm)
        fm_fwd.append(f_fm)
        ref_times.append(t_ref)
        ref_fwd.append(f_ref)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(s_fm, s_ref, strict=True))
        agree = np.mean(np.concatenate([(a > 0.5) == (b > 0.5) for a, b in zip(s_fm, s_ref, strict=True)]))
        print(
            f"λ={lam:<4g} fairmerge {t_fm:6.2f} s (forward {f_fm:6.2f} s) | reference {t_ref:6.2f} s "
            f"(forward {f_ref:6.2f} s) | max |Δp| {diff:.2e}, decisions agree {agree:.4f}"
        )
        if diff > 1e-3:
            print(f"WARNING: scores differ by {diff:.2e} at λ={lam}")
    merger.set_coefficients(1.0)
    bf16 = bf16_comparison(model, encoded, args.batch_size, args.bf16_repeats)
    merger.restore()
    if bf16 is None:
        print("bf16: this device has no bf16 units; not compared")
    else:
        print(
            f"bf16 autocast at λ=1: {bf16[0]:.2f}× fp32's speed, decisions agree {bf16[1]:.4f} "
            f"({bf16[2]} of {n_texts} posts differ)"
        )

    fm_point = statistics.fmean(fm_times)
    ref_point = statistics.fmean(ref_times)
    overhead = (sum(fm_times) - sum(fm_fwd)) / sum(fm_times)
    ref_overhead = (sum(ref_times) - sum(ref_fwd)) / sum(ref_times)
    print(f"fairmerge one-time set-up (copy base, move vectors, tokenize once): {setup_seconds:.2f} s")
    print(f"fairmerge: {fm_point:.2f} s per point, {overhead:.1%} outside forward passes")
    print(f"reference: {ref_point:.2f} s per point, {ref_overhead:.1%} outside forward passes")
    ratio = fm_point / ref_point
    print(f"time ratio fairmerge ÷ reference = {ratio:.3f}  (speedup {1 / ratio:.2f}×)")
    print(
        json.dumps(
            {
                "bench": "sweep",
                "speedup_vs_reference": round(ref_point / fm_point, 3),
                "overhead_fraction": round(overhead, 4),
                "seconds_per_point": round(fm_point, 3),
                "reference_seconds_per_point": round(ref_point, 3),
                "time_ratio_vs_reference": round(fm_point / ref_point, 4),
                "n_texts": n_texts,
                "n_points": len(LAMBDAS),
                "bf16_speedup": round(bf16[0], 3) if bf16 else None,
                "bf16_decision_agreement": round(bf16[1], 5) if bf16 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
