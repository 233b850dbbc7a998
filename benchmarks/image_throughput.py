"""Image training and evaluation throughput: fairmerge's loop and scorer vs bare PyTorch loops.

Embedded EfficientNet-Lite0 (ImageNet weights) on real UTKFace images (``--n`` train images, the
same number scored), decoded once at ``--size`` px. Both sides use the same decoded uint8 tensors,
the same batches in the same order, batch size, resolution, weights and device. The bare training
loop: index the batch, convert to float and normalise, forward, cross-entropy, backward, AdamW step.
The bare evaluation loop: the same conversion and a forward pass under ``inference_mode``.
fairmerge's training figure is the train-time rate its loop reports (validation excluded; it scores
32 val images); its evaluation figure is ``score_split`` on the encoded images. Runs alternate
(bare, fairmerge) so that load changes on a shared machine hit both; with ``--repeats`` the best
rate of each is kept. Decoding is timed once, cold (into an empty cache) and warm.

Run: python benchmarks/image_throughput.py [--data-dir DIR] [--n 512] [--size 96] [--batch-size 64]
[--repeats 2] [--threads 1] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fairmerge.data import load_dataset
from fairmerge.evaluation import score_split
from fairmerge.inference import EncodedImages, encode_inputs
from fairmerge.models import DEFAULT_IMAGE_MODEL, load_classifier, load_processor
from fairmerge.training import TrainConfig, TrainingCache, fit, make_base_checkpoint
from fairmerge.training.loop import epoch_batches, training_runtime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _inputs(encoded: EncodedImages, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    pixels = encoded.pixels[torch.as_tensor(idx)].to(device)
    return (pixels.float() / 255 - encoded.mean.to(device)) / encoded.std.to(device)


def bare_train(
    model: torch.nn.Module,
    encoded: EncodedImages,
    labels: np.ndarray,
    batches: list[np.ndarray],
    lr: float,
    device: torch.device,
) -> float:
    """Images/s of the minimal training loop over ``batches`` (one pass)."""
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=True)
    target = torch.as_tensor(labels, dtype=torch.long)
    _sync(device)
    start = time.perf_counter()
    for idx in batches:
        logits = model(pixel_values=_inputs(encoded, idx, device)).logits
        loss = F.cross_entropy(logits.float(), target[idx].to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


@torch.inference_mode()
def bare_eval(model: torch.nn.Module, encoded: EncodedImages, batch_size: int, device: torch.device) -> float:
    """Images/s of a minimal forward pass over all images."""
    model.to(device).eval()
    _sync(device)
    start = time.perf_counter()
    for i in range(0, len(encoded), batch_size):
        model(
            pixel_values=_inputs(encoded, np.arange(i, min(i + batch_size, len(encoded))), device)
        ).logits.cpu()
    _sync(device)
    return len(encoded) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRMERGE_DATA_DIR)")
    parser.add_argument("--model", default=None, help=f"image model (default {DEFAULT_IMAGE_MODEL}@SIZE)")
    parser.add_argument("--n", type=int, default=512, help="training images (and as many scored)")
    parser.add_argument("--size", type=int, default=96, help="resolution of the embedded model, px")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each loop (best kept)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("transformers").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FAIRMERGE_CACHE_DIR"] = tmp  # cold decoding cache, built models in tmp
        dataset = load_dataset("utkface", args.data_dir)
        train = dataset["train"].subset(np.arange(args.n))
        scored = dataset["test"].subset(np.arange(min(args.n, len(dataset["test"]))))
        val = dataset["val"].subset(np.arange(32))
        config = TrainConfig(
            epochs=1, batch_size=args.batch_size, eval_batch_size=args.batch_size, learning_rate=5e-4,
            device=args.device, grad_clip=None, warmup_ratio=0.0,
        )  # fmt: skip
        runtime = training_runtime(config)
        device = torch.device(runtime["device"])
        base = make_base_checkpoint(
            args.model or f"{DEFAULT_IMAGE_MODEL}@{args.size}",
            seed=0,
            cache=TrainingCache(Path(tmp) / "training"),
        )
        processor = load_processor(str(base))

        start = time.perf_counter()
        encoded = encode_inputs(processor, train, max_length=2)
        cold = len(train) / (time.perf_counter() - start)
        start = time.perf_counter()
        encode_inputs(processor, train, max_length=2)
        warm = len(train) / (time.perf_counter() - start)
        scored_enc = encode_inputs(processor, scored, max_length=2)
        encode_inputs(processor, val, max_length=2)
        assert isinstance(encoded, EncodedImages) and isinstance(scored_enc, EncodedImages)
        size = int(encoded.pixels.shape[-1])
        print(f"{len(train)} train / {len(scored)} scored images at {size} px, device {runtime['device']}")
        print(f"decoding: {cold:.0f} images/s cold (JPEG decode + resize + cache write), {warm:.0f} warm")

        batches = epoch_batches(encoded.lengths, config.batch_size, seed=config.seed, epoch=0)
        rates = {"train": 0.0, "bare_train": 0.0, "eval": 0.0, "bare_eval": 0.0}
        bare_train(load_classifier(str(base)), encoded, train.labels, batches[:2], 5e-4, device)  # warm-up
        for _ in range(args.repeats):
            rates["bare_train"] = max(
                rates["bare_train"],
                bare_train(load_classifier(str(base)), encoded, train.labels, batches, 5e-4, device),
            )
            model = load_classifier(str(base))
            result = fit(model, processor, train, val, config, progress=False, description="fft")
            rates["train"] = max(rates["train"], result.samples_per_s)
            rates["bare_eval"] = max(
                rates["bare_eval"], bare_eval(model, scored_enc, args.batch_size, device)
            )
            start = time.perf_counter()
            score_split(model.to(device), scored_enc, batch_size=args.batch_size)
            _sync(device)
            rates["eval"] = max(rates["eval"], len(scored_enc) / (time.perf_counter() - start))
        print(
            f"train: fairmerge {rates['train']:.1f} images/s, bare loop {rates['bare_train']:.1f} images/s, "
            f"ratio {rates['train'] / rates['bare_train']:.3f}"
        )
        print(
            f"eval: fairmerge {rates['eval']:.1f} images/s, bare loop {rates['bare_eval']:.1f} images/s, "
            f"ratio {rates['eval'] / rates['bare_eval']:.3f}"
        )
    print("note: a shared machine makes single runs noisy; use --repeats to keep the best of several")
    print(
        json.dumps(
            {
                "bench": "image_throughput",
                "train_vs_plain": round(rates["train"] / rates["bare_train"], 4),
                "eval_vs_plain": round(rates["eval"] / rates["bare_eval"], 4),
                "images_per_s": round(rates["train"], 2),
                "eval_images_per_s": round(rates["eval"], 2),
                "plain_train_images_per_s": round(rates["bare_train"], 2),
                "plain_eval_images_per_s": round(rates["bare_eval"], 2),
                "decode_images_per_s_cold": round(cold, 1),
                "decode_images_per_s_warm": round(warm, 1),
                "n": len(train),
                "size": size,
                "batch_size": args.batch_size,
                "device": runtime["device"],
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
