"""GPU check (issue #23): fairmerge's CUDA paths, proven in one call on one GPU (< 8 minutes).

Sections, each timed and printed, then ONE JSON object as the last line:

1. ``merge``: :func:`benchmarks/merge.py <merge.gpu>`'s bucketed in-place merge of a 0.5B- and a
   7B-shaped bf16 model vs a device-to-device copy (``gpu_vs_copy_0.5b``, ``gpu_vs_copy_7b``;
   target >= 0.5).
2. ``sweep``: one λ point of the in-place uniform sweep (``InPlaceMerger.set_coefficients`` + one
   scoring pass under bf16 autocast) on a Qwen2-0.5B-shaped random-init classifier, over real
   HateXplain validation posts, as a ratio to the scoring pass alone (``sweep_point_vs_eval``;
   target <= 1.1).
3. ``train``: ``--steps`` optimizer steps each of FFT and LoRA through fairmerge's ``fit`` (bf16
   autocast) on that model, in samples/s, and as a ratio to a bare torch loop over the same batches.
4. ``study``: ``fairmerge run --fast --set model=<that model's folder> --set subgroups.head=random``
   end to end (exit code and seconds; its outputs and log under ``$OUT`` when ``$OUT`` is set). The
   random head is needed because a decoder's ``score`` layer has no bias, which the default
   linear-probed head requires.
5. ``memory``: the sweep device-memory estimate ``fairmerge run --dry-run`` prints
   (:func:`fairmerge.vectors.memory.estimate_sweep_memory`, mode ``lora``) for a Llama-2-7B-shaped
   sweep over 30 lazy LoRA vectors (rank 8 on q/v), beside ``torch.cuda.max_memory_allocated`` of
   that very sweep (a 7B-shaped random-init bf16 model, an ``InPlaceMerger`` over 30 lazy LoRA
   vectors whose factors live on the GPU, one λ point); target: within 15 %. (``--dry-run``'s plan
   adds two model copies for the study's FFT and LoRA states, which this sweep does not hold.)

Without CUDA every section prints ``<section>: skipped, no CUDA device`` and its figures are null
(the whole run then takes seconds). ``--smoke`` runs sections 1-3 and 5 on the CPU with tiny
shapes and few steps, to check the code before a device call (the study is skipped there: it is
``fairmerge run --fast``, minutes on a CPU).

Inputs: the HateXplain files from ``--data-dir`` / ``$FAIRMERGE_DATA_DIR`` / ``.gpu_carry/data``,
and the embedded MiniLM's tokenizer (the model is random, only its tokenizer is used) from the
installed model package or ``.gpu_carry/tokenizer``. ``benchmarks/gpu_wheels.sh`` prepares
``.gpu_carry/`` (wheels of fairmerge's pure-Python dependencies that the device image lacks, the
data, the tokenizer) for a machine without network. On the device machine:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu_carry/wheels/*.whl
    PYTHONPATH=src:/tmp/site python3 benchmarks/gpu_check.py

Run here: ``PYTHONPATH=src python benchmarks/gpu_check.py [--smoke]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import merge as merge_bench  # benchmarks/merge.py

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / ".gpu_carry"
SKIPPED = "skipped, no CUDA device"
Figures = dict[str, Any]

QWEN_05B = {**merge_bench.QWEN_05B, "num_hidden_layers": 24}
LLAMA_7B = {**merge_bench.LLAMA_7B, "num_hidden_layers": 32}
TINY_DECODER = dict(
    hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2
)
LORA_TARGETS = ["q_proj", "v_proj"]
MEMORY_VECTORS = 30


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up: kernels loaded, allocator grown
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- inputs ------------------------------------------------------------------------------------


def data_dir(option: str | None) -> str:
    for candidate in (option, os.environ.get("FAIRMERGE_DATA_DIR"), CARRY / "data"):
        if candidate and (Path(candidate) / "hatexplain").is_dir():
            return str(candidate)
    raise SystemExit(
        "no HateXplain data: pass --data-dir, set FAIRMERGE_DATA_DIR or run benchmarks/gpu_wheels.sh"
    )


def tokenizer_dir() -> str:
    if (CARRY / "tokenizer").is_dir():
        return str(CARRY / "tokenizer")
    from fairmerge.models import embedded_model_path

    return embedded_model_path()


def qwen_folder(folder: Path, dims: dict[str, int], tokenizer_path: str) -> Path:
    """A Qwen2-shaped sequence classifier (random init, fp32 weights) with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    config = Qwen2Config(
        **dims,
        vocab_size=151936 if dims["hidden_size"] > 512 else tokenizer.vocab_size,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- sections ----------------------------------------------------------------------------------


def merge_section(device: torch.device, smoke: bool, repeats: int) -> Figures:
    def rounded(ratio: float | None) -> float | None:
        return None if ratio is None else round(ratio, 3)

    if smoke:
        small = merge_bench.gpu("0.5b", {**TINY_DECODER, "vocab_size": 1000}, 2, 2, repeats, device=device)
        return {"gpu_vs_copy_0.5b": rounded(small), "gpu_vs_copy_7b": None}
    small = merge_bench.gpu("0.5b", merge_bench.QWEN_05B, 24, 2, repeats, device=device)
    large = merge_bench.gpu("7b", merge_bench.LLAMA_7B, 32, 1, repeats, device=device)
    return {"gpu_vs_copy_0.5b": rounded(small), "gpu_vs_copy_7b": rounded(large)}


def sweep_section(device: torch.device, folder: Path, texts: list[str], repeats: int) -> Figures:
    """One uniform-λ point (merge + scoring pass) ÷ one scoring pass, bf16 weights, bf16 autocast."""
    from fairmerge.evaluation import score_split
    from fairmerge.inference import encode_texts
    from fairmerge.models import load_classifier, load_tokenizer
    from fairmerge.vectors import InPlaceMerger

    model = load_classifier(str(folder), dtype=torch.bfloat16, device=device).eval()
    encoded = encode_texts(load_tokenizer(str(folder)), texts, max_length=64)
    generator = torch.Generator(device=device).manual_seed(1)
    floats = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    vectors = [
        {
            k: (1e-3 * torch.randn(v.shape, generator=generator, device=device)).to(v.dtype)
            for k, v in floats.items()
        }
        for _ in range(2)
    ]
    merger = InPlaceMerger.from_model(model, vectors, uniform=True)
    del vectors

    def score() -> np.ndarray:
        return score_split(model, encoded, batch_size=128, precision="bf16")

    def point() -> np.ndarray:
        merger.set_coefficients(0.5)
        return score()

    eval_s = median_seconds(score, device, repeats)
    point_s = median_seconds(point, device, repeats)
    merge_s = median_seconds(lambda: merger.set_coefficients(0.5), device, repeats)
    print(
        f"sweep: {len(texts)} posts; scoring pass {eval_s:.3f} s, λ point {point_s:.3f} s "
        f"(merge alone {merge_s:.3f} s) -> {point_s / eval_s:.3f}x a scoring pass (target <= 1.1)"
    )
    return {
        "sweep_point_vs_eval": round(point_s / eval_s, 3),
        "eval_pass_s": round(eval_s, 4),
        "sweep_point_s": round(point_s, 4),
        "sweep_merge_s": round(merge_s, 4),
    }


def train_section(device: torch.device, folder: Path, data: str, n_posts: int, steps: int) -> Figures:
    """``steps`` optimizer steps of FFT and of LoRA: fairmerge's ``fit`` vs a bare loop, same batches."""
    import train_throughput  # benchmarks/train_throughput.py: the bare loop

    from fairmerge.data import load_dataset
    from fairmerge.inference import encode_texts
    from fairmerge.models import load_classifier, load_tokenizer
    from fairmerge.training import TrainConfig, fit, stratified_subsample
    from fairmerge.training.loop import epoch_batches
    from fairmerge.training.lora import apply_lora

    dataset = load_dataset("hatexplain", data)
    train = dataset["train"].subset(stratified_subsample(dataset["train"].labels, n_posts, seed=0))
    val = dataset["val"].subset(np.arange(32))
    batch_size = 32
    per_epoch = -(-len(train) // batch_size)
    epochs = max(1, round(steps / per_epoch))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, max_length=64, device=device.type)
    tokenizer = load_tokenizer(str(folder))
    encoded = encode_texts(tokenizer, train.texts, max_length=config.max_length)
    batches = [
        b
        for e in range(epochs)
        for b in epoch_batches(encoded.lengths, batch_size, seed=config.seed, epoch=e)
    ]
    figures: Figures = {"train_steps": len(batches)}
    # untimed warm-up (CUDA context, kernels, allocator) so that the first timed loop is not penalised
    train_throughput.bare_loop(load_classifier(str(folder)), encoded, train.labels, batches[:3], 5e-5, device)
    for method in ("fft", "lora"):
        cfg = config.resolved(method)

        def fresh(cfg: TrainConfig = cfg, method: str = method) -> torch.nn.Module:
            model = load_classifier(str(folder))
            return apply_lora(model, cfg) if method == "lora" else model

        lr = float(cfg.learning_rate or 0)
        bare = train_throughput.bare_loop(fresh(), encoded, train.labels, batches, lr, device)
        ours = fit(fresh(), tokenizer, train, val, cfg, progress=False, description=method).samples_per_s
        print(
            f"train {method}: {len(batches)} steps of {batch_size}; fairmerge {ours:.1f} samples/s, "
            f"bare loop {bare:.1f} samples/s -> {ours / bare:.3f}x"
        )
        figures |= {
            f"{method}_samples_per_s": round(ours, 2),
            f"plain_{method}_samples_per_s": round(bare, 2),
            f"{method}_vs_plain": round(ours / bare, 4),
        }
    return figures


def study_section(folder: Path, data: str, work: Path, limit_s: int) -> Figures:
    """``fairmerge run --fast --set model=<folder>`` (random subgroup head) in a child process."""
    out_root = Path(os.environ["OUT"]) if os.environ.get("OUT") else work
    command = [
        sys.executable,
        "-c",
        "from fairmerge.cli import main; main()",
        "run",
        "--fast",
        "--set",
        f"model={folder}",
        # a decoder's ``score`` layer has no bias, which the default linear-probed head needs
        # (training/probe.py refuses it): the subgroup vectors start from a random head instead
        "--set",
        "subgroups.head=random",
        "--data-dir",
        data,
        "--out",
        str(out_root / "study"),
        "--cache-dir",
        str(work / "cache"),
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit_s, check=False)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = None, f"timed out after {limit_s} s\n{expired.stdout or ''}{expired.stderr or ''}"
    seconds = time.perf_counter() - start
    (out_root / "study.log").write_text(output if isinstance(output, str) else str(output))
    tail = "\n".join(str(output).strip().splitlines()[-5:])
    print(f"study: fairmerge run --fast exit {code} in {seconds:.0f} s; last lines:\n{tail}")
    return {"study_exit": code, "study_s": round(seconds, 1)}


def memory_section(device: torch.device, smoke: bool) -> Figures:
    """The sweep estimate (mode lora, 30 vectors) vs the peak device memory of that sweep."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from fairmerge.vectors import InPlaceMerger, TaskVector
    from fairmerge.vectors.checkpoint_io import TensorSpec
    from fairmerge.vectors.lazy import LazyTensors
    from fairmerge.vectors.memory import estimate_sweep_memory

    dims = {**TINY_DECODER, "num_key_value_heads": 4, "vocab_size": 1000} if smoke else LLAMA_7B
    config = LlamaConfig(**dims, num_labels=2, pad_token_id=0)
    estimate = estimate_sweep_memory(
        config,
        dtype=torch.bfloat16,
        n_vectors=MEMORY_VECTORS,
        mode="lora",
        device="cuda",
        lora_targets=LORA_TARGETS,
    )
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaForSequenceClassification(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    generator = torch.Generator(device=device).manual_seed(2)
    modules = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in LORA_TARGETS
    }
    rank, scaling = 8, 2.0

    def lora_vector() -> TaskVector:
        """A lazy LoRA vector: rank-8 fp32 factors on the device, ΔW = s·B·A formed when read."""
        factors = {
            f"{name}.weight": (
                torch.randn(rank, m.in_features, generator=generator, device=device) * 0.01,
                torch.randn(m.out_features, rank, generator=generator, device=device) * 0.01,
            )
            for name, m in modules.items()
        }

        def delta(key: str) -> torch.Tensor:
            a, b = factors[key]
            return (scaling * (b @ a)).to(torch.bfloat16)

        specs = {k: TensorSpec((b.shape[0], a.shape[1]), torch.bfloat16) for k, (a, b) in factors.items()}
        return TaskVector._make(LazyTensors(list(specs), delta), specs, {"created_by": "gpu_check lora"})

    vectors = [lora_vector() for _ in range(MEMORY_VECTORS)]
    merger = InPlaceMerger(model, model.state_dict(), vectors)
    merger.set_coefficients([0.1] * MEMORY_VECTORS)
    estimated = estimate.device_bytes
    if device.type != "cuda":
        print(f"memory: estimate {estimated / 2**30:.3f} GiB; no CUDA peak to compare on {device.type}")
        return {"memory_estimate_gib": round(estimated / 2**30, 3)}
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated()
    print(estimate.describe())
    print(
        f"memory: estimate {estimated / 2**30:.2f} GiB, measured peak {measured / 2**30:.2f} GiB -> "
        f"{estimated / measured:.3f}x (target within 15 %)"
    )
    return {
        "memory_estimate_gib": round(estimated / 2**30, 3),
        "memory_measured_gib": round(measured / 2**30, 3),
        "memory_estimate_vs_measured": round(estimated / measured, 3),
    }


# --- driver ------------------------------------------------------------------------------------

KEYS = {
    "merge": ["gpu_vs_copy_0.5b", "gpu_vs_copy_7b"],
    "sweep": ["sweep_point_vs_eval", "eval_pass_s", "sweep_point_s", "sweep_merge_s"],
    "train": [
        "train_steps",
        "fft_samples_per_s",
        "plain_fft_samples_per_s",
        "fft_vs_plain",
        "lora_samples_per_s",
        "plain_lora_samples_per_s",
        "lora_vs_plain",
    ],
    "study": ["study_exit", "study_s"],
    "memory": ["memory_estimate_gib", "memory_measured_gib", "memory_estimate_vs_measured"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $FAIRMERGE_DATA_DIR)")
    parser.add_argument("--posts", type=int, default=320, help="HateXplain posts scored / trained on")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of each training run")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median kept)")
    parser.add_argument("--study-limit", type=int, default=240, help="seconds allowed for the study")
    parser.add_argument("--smoke", action="store_true", help="no CUDA: run the sections on CPU, tiny shapes")
    args = parser.parse_args()
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else "cpu"
    smoke = args.smoke and not cuda
    if smoke:
        args.posts, args.steps, args.repeats = min(args.posts, 64), min(args.steps, 4), 1
    print(f"gpu_check: device {name}, torch {torch.__version__}, smoke {smoke}")
    figures: Figures = {k: None for keys in KEYS.values() for k in keys}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fairmerge-gpu-check-") as tmp:
        work = Path(tmp)
        data = data_dir(args.data_dir)
        folder = work / "qwen-0.5b-shaped"

        def model_folder() -> Path:
            return qwen_folder(folder, TINY_DECODER if smoke else QWEN_05B, tokenizer_dir())

        def texts() -> list[str]:
            from fairmerge.data import load_dataset

            val = load_dataset("hatexplain", data)["val"]
            return list(val.texts[: args.posts])

        sections: dict[str, Callable[[], Figures]] = {
            "merge": lambda: merge_section(device, smoke, args.repeats),
            "sweep": lambda: sweep_section(device, model_folder(), texts(), args.repeats),
            "train": lambda: train_section(device, model_folder(), data, args.posts, args.steps),
            "study": lambda: study_section(model_folder(), data, work, args.study_limit),
            "memory": lambda: memory_section(device, smoke),
        }
        for section, run in sections.items():
            if not cuda and not (smoke and section != "study"):
                print(f"{section}: {SKIPPED}")
                continue
            start = time.perf_counter()
            try:
                figures |= run()
            except Exception:  # a failed section is reported; the others still run
                failed.append(section)
                print(f"{section}: FAILED\n{traceback.format_exc()}")
            print(f"{section}: {time.perf_counter() - start:.1f} s")
            if cuda:
                torch.cuda.empty_cache()
    wall = time.perf_counter() - started
    print(f"gpu_check: {wall:.1f} s wall; failed sections: {failed or 'none'}")
    print(
        json.dumps(
            {"bench": "gpu_check", "device": name, **figures, "failed": failed, "wall_s": round(wall, 1)}
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
