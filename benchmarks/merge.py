"""Benchmark: task-arithmetic merging in memory and out of core.

1. In memory: θ = θ_base + 0.3·τ_1 + 0.5·τ_2 over a synthetic model larger than the CPU caches,
   written in place by ``InPlaceMerger.set_coefficients`` (a sweep point, through the multi-tensor
   kernel ``merge_state_dict`` and ``fairmerge merge`` also use), in GB/s of weights read + written,
   next to a plain tensor copy of the same tensors in the same run (the faster of ``clone`` and
   ``copy_`` into preallocated memory). Reported for fp32 (the study's dtype) and bf16
   (``inmemory_vs_copy``, ``inmemory_vs_copy_bf16``); the out-of-place ``merge_state_dict``, which
   also pays for fresh output memory, is reported next to them. bf16 takes the kernel's compiled
   path when ``torch.compile`` works here (``bf16_path``; its one-off compile falls in the untimed
   warm-up) and is measured again, in the same run, with the eager chunks alone
   (``FAIRMERGE_MERGE_COMPILE=off``: ``inmemory_vs_copy_bf16_eager``).
2. Out of core: a randomly initialised Llama-shaped bf16 checkpoint of >= 2 GB (base + two
   "fine-tuned" models, sharded safetensors written to a temporary directory) merged by fairmerge
   and by mergekit's ``task_arithmetic`` (same inputs, same weights, bf16 output, fp32 arithmetic
   as in fairmerge; mergekit's bf16 arithmetic is reported too), each in a child process started
   by a small launcher: wall time and peak RSS (``wait4`` rusage of that process). The two
   outputs are compared tensor by tensor. mergekit is not a fairmerge dependency: pass
   ``--mergekit PATH`` to its ``mergekit-yaml`` (or set ``$MERGEKIT_YAML``); without it the
   comparison is reported as unavailable and its ratios are null.
3. On a CUDA machine: a uniform-λ sweep point (θ = θ_base + λ·Σ τ, written in place) of a 0.5B-
   and a 7B-shaped bf16 model vs a device-to-device copy (``gpu_vs_copy_0.5b``, ``gpu_vs_copy_7b``);
   without CUDA both are null with the reason printed.

The 1-minute load average before and after the run is printed and kept in the JSON (``load_before``,
``load_after``): bandwidth ratios measured while other processes compete for the cores or the
memory bus are not evidence, so a run under load is rerun on an idle machine, not quoted.

Run: ``python benchmarks/merge.py [--mergekit /path/to/mergekit-yaml]``. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fairmerge.vectors import InPlaceMerger, TaskVector, kernels, merge_state_dict
from fairmerge.vectors.checkpoint_io import CheckpointReader

LAMBDAS = (0.3, 0.5)


def best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-touch page faults and allocator growth are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_state_dict(total_mb: int, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rows, cols = 4096, 1024
    n = max(1, total_mb * 2**20 // (rows * cols * dtype.itemsize))
    return {f"layer{i}": torch.randn(rows, cols, generator=generator).to(dtype) for i in range(n)}


class Weights(torch.nn.Module):
    """A model that is only its weights (the merge does not care what the layers compute)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for key, tensor in tensors.items():
            self.register_parameter(key.replace(".", "_"), torch.nn.Parameter(tensor, requires_grad=False))


def eager_in_place(total_mb: int, repeats: int) -> float:
    """The bf16 in-place ratio with the kernel's compiled path turned off (the eager chunks)."""
    previous = os.environ.get("FAIRMERGE_MERGE_COMPILE")
    os.environ["FAIRMERGE_MERGE_COMPILE"] = "off"
    try:
        return in_memory(total_mb, torch.bfloat16, repeats, label="bfloat16, eager chunks only")[0]
    finally:
        if previous is None:
            del os.environ["FAIRMERGE_MERGE_COMPILE"]
        else:
            os.environ["FAIRMERGE_MERGE_COMPILE"] = previous


def in_memory(total_mb: int, dtype: torch.dtype, repeats: int, label: str = "") -> tuple[float, float]:
    """(in-place merge GB/s, merge_state_dict GB/s) ÷ copy GB/s for one dtype (bytes read + written)."""
    base = {k.replace(".", "_"): v for k, v in synthetic_state_dict(total_mb, dtype, 0).items()}
    taus = [
        TaskVector({k: v.clone() for k, v in synthetic_state_dict(total_mb, dtype, s).items()})
        for s in (1, 2)
    ]
    taus = [TaskVector({k.replace(".", "_"): v for k, v in tau.items()}) for tau in taus]
    model = Weights({k: v.clone() for k, v in base.items()})
    merger = InPlaceMerger(model, base, taus)
    nbytes = sum(t.numel() * t.element_size() for t in base.values())
    inputs = [*base.values(), *(t for tau in taus for t in tau.values())]

    def in_place() -> None:
        merger.set_coefficients(list(LAMBDAS))

    def out_of_place() -> None:
        merge_state_dict(base, taus, list(LAMBDAS))

    targets = [torch.empty_like(t) for t in inputs]

    def clone() -> None:
        for tensor in inputs:
            tensor.clone()

    def copy_into() -> None:
        for target, tensor in zip(targets, inputs, strict=True):
            target.copy_(tensor)

    # The reference is the faster of a copy into fresh memory and a copy into preallocated memory.
    copy_s = min(best_of(clone, repeats), best_of(copy_into, repeats))
    merge_s = best_of(in_place, repeats)
    fresh_s = best_of(out_of_place, repeats)
    copy_gbs = 2 * 3 * nbytes / copy_s / 1e9  # reads and writes each of the 3 inputs
    merge_gbs = 4 * nbytes / merge_s / 1e9  # reads base + 2 vectors, writes the result
    fresh_gbs = 4 * nbytes / fresh_s / 1e9
    name = label or str(dtype).removeprefix("torch.")
    print(
        f"in-memory {name}: {nbytes / 1e9:.2f} GB per model; "
        f"in place {merge_s:.3f} s = {merge_gbs:.1f} GB/s, "
        f"merge_state_dict {fresh_gbs:.1f} GB/s, copy {copy_gbs:.1f} GB/s -> "
        f"{merge_gbs / copy_gbs:.2f}x / {fresh_gbs / copy_gbs:.2f}x copy bandwidth"
    )
    return merge_gbs / copy_gbs, fresh_gbs / copy_gbs


# --- out of core -------------------------------------------------------------------------------

TINYLLAMA = dict(
    hidden_size=2048, intermediate_size=5632, num_attention_heads=16, num_key_value_heads=4, vocab_size=32000
)
"""TinyLlama-1.1B's shape: 22 layers are 2.2 GB in bf16."""
QWEN_05B = dict(
    hidden_size=896, intermediate_size=4864, num_attention_heads=14, num_key_value_heads=2, vocab_size=151936
)
"""Qwen2-0.5B's shape (24 layers, about 1 GB in bf16; biases left out)."""
LLAMA_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32000,
)
"""Llama-2-7B's shape (32 layers, 13.5 GB in bf16)."""


def llama_shapes(dims: dict[str, int], layers: int) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of a ``LlamaForCausalLM`` with untied embeddings."""
    h, i, v = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    kv = h // dims["num_attention_heads"] * dims["num_key_value_heads"]
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h)}
    for n in range(layers):
        p = f"model.layers.{n}."
        shapes |= {
            p + "self_attn.q_proj.weight": (h, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, h),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
        }
    shapes |= {"model.norm.weight": (h,), "lm_head.weight": (v, h)}
    return shapes


def write_model(
    directory: Path, shapes: dict[str, tuple[int, ...]], seed: int, base_seed: int | None
) -> None:
    """A sharded bf16 checkpoint; with ``base_seed`` it is that base plus small seeded noise."""
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    directory.mkdir(parents=True)
    layers = sum(k.endswith("q_proj.weight") for k in shapes)
    config = LlamaConfig(
        **TINYLLAMA, num_hidden_layers=layers, architectures=["LlamaForCausalLM"], tie_word_embeddings=False
    )
    config.dtype = torch.bfloat16
    config.save_pretrained(directory)
    generator = torch.Generator().manual_seed(seed)
    base_generator = torch.Generator().manual_seed(base_seed) if base_seed is not None else None
    shard: dict[str, torch.Tensor] = {}
    weight_map: dict[str, str] = {}
    shard_bytes, shard_index, limit = 0, 0, 500 * 10**6
    names: list[list[str]] = []

    def flush() -> None:
        nonlocal shard, shard_bytes, shard_index
        name = f"part-{shard_index}.safetensors"
        save_file(shard, directory / name, metadata={"format": "pt"})
        names.append(list(shard))
        weight_map.update(dict.fromkeys(shard, name))
        shard, shard_bytes, shard_index = {}, 0, shard_index + 1

    for key, shape in shapes.items():
        if base_generator is None:
            tensor = (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
        else:
            base = (torch.randn(shape, generator=base_generator) * 0.02).to(torch.bfloat16)
            tensor = (base.float() + torch.randn(shape, generator=generator) * 0.002).to(torch.bfloat16)
        shard[key] = tensor
        shard_bytes += tensor.numel() * 2
        if shard_bytes >= limit:
            flush()
    if shard:
        flush()
    # Hugging Face shard names (model-0000i-of-0000n) need the count, known only now.
    n = shard_index
    renamed = {}
    for index in range(n):
        new = f"model-{index + 1:05d}-of-{n:05d}.safetensors"
        (directory / f"part-{index}.safetensors").rename(directory / new)
        renamed[f"part-{index}.safetensors"] = new
    index_json = {
        "metadata": {"total_size": sum(2 * _numel(s) for s in shapes.values())},
        "weight_map": {k: renamed[v] for k, v in weight_map.items()},
    }
    (directory / "model.safetensors.index.json").write_text(json.dumps(index_json))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


FAIRMERGE_CHILD = """
import sys, time
from fairmerge.vectors import TaskVector, merge_checkpoints
base, ft1, ft2, out = sys.argv[1:5]
start = time.perf_counter()
vectors = [TaskVector.from_checkpoints(base, ft) for ft in (ft1, ft2)]
merge_checkpoints(base, vectors, [float(x) for x in sys.argv[5:7]], out)
print(f"fairmerge merge (in process): {time.perf_counter() - start:.1f} s")
"""


# A small launcher runs each measured command: a child's ru_maxrss also counts the memory of the
# process it was forked from (Linux keeps the pre-exec high-water mark), so forking it from this
# process, which holds the in-memory benchmark's tensors, would inflate both tools' figures.
LAUNCHER = """
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}))
"""


def run_child(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and output of a command (rusage of that very process)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"exit": done.returncode}
    output = "\n".join(lines[:-1]) + done.stderr
    if report["exit"] != 0:
        raise RuntimeError(f"{command[0]} failed ({report['exit']}):\n{output[-3000:]}")
    return seconds, report["maxrss_kb"] / 1024, output


def find_mergekit(option: str | None) -> str | None:
    candidate = option or os.environ.get("MERGEKIT_YAML") or shutil.which("mergekit-yaml")
    if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def compare_outputs(a: Path, b: Path) -> float:
    """Largest absolute difference between two merged checkpoints (fp32), tensor by tensor."""
    ra, rb = CheckpointReader(a), CheckpointReader(b)
    if set(ra.specs) != set(rb.specs):
        raise RuntimeError(f"outputs hold different tensors: {sorted(set(ra.specs) ^ set(rb.specs))[:3]}")
    worst = 0.0
    for key in ra.specs:
        x, y = ra.get(key), rb.get(key)
        if x.dtype != y.dtype or x.shape != y.shape:
            raise RuntimeError(f"{key}: {x.dtype}{tuple(x.shape)} vs {y.dtype}{tuple(y.shape)}")
        worst = max(worst, float((x.float() - y.float()).abs().max()))
    return worst


def out_of_core(workdir: Path, layers: int, mergekit: str | None) -> dict[str, float | None]:
    shapes = llama_shapes(TINYLLAMA, layers)
    size_gb = sum(2 * _numel(s) for s in shapes.values()) / 1e9
    start = time.perf_counter()
    write_model(workdir / "base", shapes, seed=0, base_seed=None)
    for i in (1, 2):
        write_model(workdir / f"ft{i}", shapes, seed=i, base_seed=0)
    print(
        f"out-of-core: wrote base + 2 fine-tuned Llama-shaped bf16 checkpoints of {size_gb:.2f} GB each "
        f"({len(shapes)} tensors, {len(list((workdir / 'base').glob('*.safetensors')))} shards) "
        f"in {time.perf_counter() - start:.0f} s"
    )
    # Read every input once so both tools start from the same (warm) page cache.
    for path in workdir.glob("*/*.safetensors"):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass
    dirs = [str(workdir / n) for n in ("base", "ft1", "ft2")]
    fm_out = workdir / "out-fairmerge"
    fm_s, fm_rss, fm_log = run_child(
        [sys.executable, "-c", FAIRMERGE_CHILD, *dirs, str(fm_out), *(str(x) for x in LAMBDAS)]
    )
    print(f"fairmerge: {fm_s:.1f} s wall, peak RSS {fm_rss:,.0f} MB  [{fm_log.strip().splitlines()[-1]}]")
    result: dict[str, float | None] = {
        "ooc_model_gb": round(size_gb, 3),
        "ooc_seconds": round(fm_s, 2),
        "ooc_peak_rss_mb": round(fm_rss, 1),
    }
    if mergekit is None:
        print(
            "mergekit: UNAVAILABLE (pass --mergekit /path/to/mergekit-yaml or set $MERGEKIT_YAML); "
            "no comparison made"
        )
        return result | {"ooc_time_vs_mergekit": None, "ooc_rss_vs_mergekit": None}
    for compute, suffix in (("float32", ""), ("bfloat16", "_bf16compute")):
        config = workdir / f"mergekit-{compute}.yml"
        models = "\n".join(
            f"  - model: {d}\n    parameters:\n      weight: {w}"
            for d, w in zip(dirs[1:], LAMBDAS, strict=True)
        )
        config.write_text(
            f"merge_method: task_arithmetic\nbase_model: {dirs[0]}\nmodels:\n{models}\n"
            f"dtype: {compute}\nout_dtype: bfloat16\n"
        )
        mk_out = workdir / f"out-mergekit-{compute}"
        mk_s, mk_rss, _ = run_child(
            [mergekit, str(config), str(mk_out), "--quiet", "--no-copy-tokenizer", "--no-write-model-card"]
        )
        diff = compare_outputs(fm_out, mk_out)
        print(
            f"mergekit task_arithmetic (dtype {compute}, out bf16): {mk_s:.1f} s wall, "
            f"peak RSS {mk_rss:,.0f} MB; "
            f"fairmerge/mergekit time {fm_s / mk_s:.2f}x, RSS {fm_rss / mk_rss:.2f}x; "
            f"max |fairmerge - mergekit| = {diff:.3g}"
        )
        result |= {
            f"mergekit_seconds{suffix}": round(mk_s, 2),
            f"mergekit_peak_rss_mb{suffix}": round(mk_rss, 1),
            f"ooc_time_vs_mergekit{suffix}": round(fm_s / mk_s, 3),
            f"ooc_rss_vs_mergekit{suffix}": round(fm_rss / mk_rss, 3),
            f"max_abs_diff_vs_mergekit{suffix}": diff,
        }
        shutil.rmtree(mk_out)
    return result


def gpu(
    name: str,
    dims: dict[str, int],
    layers: int,
    n_vectors: int,
    repeats: int,
    device: torch.device | None = None,
) -> float | None:
    """A uniform-λ sweep point on CUDA (bf16): in-place GB/s ÷ device-to-device copy GB/s.

    Bytes counted for the merge: the base and the summed vector read, the weights written (the
    least any implementation must move). The copy reference is one large ``copy_``. ``device``
    (default: CUDA if present) lets ``gpu_check.py --smoke`` run the same code on the CPU.
    """
    if device is None:
        if not torch.cuda.is_available():
            print(f"gpu {name}: skipped, no CUDA device here")
            return None
        device = torch.device("cuda")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    shapes = llama_shapes(dims, layers)
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(shape: tuple[int, ...]) -> torch.Tensor:
        return (torch.randn(shape, generator=generator, device=device) * 0.02).to(torch.bfloat16)

    model = Weights({k: randn(s) for k, s in shapes.items()})
    base = model.state_dict()
    taus = [TaskVector({k: randn(v.shape) * 0.1 for k, v in base.items()}) for _ in range(n_vectors)]
    merger = InPlaceMerger(model, base, taus, uniform=True)
    del taus  # the merger keeps only the sum
    sync()
    summed = sum(t.numel() * t.element_size() for t in (merger._summed or {}).values())
    nbytes = sum(t.numel() * 2 for t in base.values())

    def point() -> None:
        merger.set_coefficients(0.3)
        sync()

    source = torch.empty(min(nbytes, 2 * 1024**3) // 2, dtype=torch.bfloat16, device=device)
    target = torch.empty_like(source)

    def copy() -> None:
        target.copy_(source)
        sync()

    merge_gbs = (2 * nbytes + summed) / best_of(point, repeats) / 1e9
    copy_gbs = 2 * source.numel() * 2 / best_of(copy, repeats) / 1e9
    ratio = merge_gbs / copy_gbs
    print(
        f"gpu {name} bf16 ({nbytes / 1e9:.1f} GB, {len(shapes)} tensors, {n_vectors} vectors summed): "
        f"sweep point {merge_gbs:.0f} GB/s, copy {copy_gbs:.0f} GB/s -> {ratio:.2f}x copy bandwidth "
        f"[{torch.cuda.get_device_name() if device.type == 'cuda' else device}]"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mergekit", help="path of mergekit-yaml (default: $MERGEKIT_YAML, then PATH)")
    parser.add_argument("--inmemory-mb", type=int, default=512, help="size of each in-memory model (MB)")
    parser.add_argument(
        "--layers", type=int, default=22, help="decoder layers of the synthetic Llama (22: 2.2 GB)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats of the in-memory runs (best kept)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the synthetic checkpoints go (a temp dir)"
    )
    parser.add_argument("--no-ooc", action="store_true", help="skip the out-of-core comparison")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    mergekit = find_mergekit(args.mergekit)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; mergekit: {mergekit or 'not found'}"
    )

    fp32, fp32_fresh = in_memory(args.inmemory_mb, torch.float32, args.repeats)
    bf16, bf16_fresh = in_memory(args.inmemory_mb, torch.bfloat16, args.repeats)
    bf16_path = "compiled" if kernels.compiled_signatures() else "eager"
    bf16_eager = eager_in_place(args.inmemory_mb, args.repeats) if bf16_path == "compiled" else bf16
    print(f"bf16 in place took the {bf16_path} path (FAIRMERGE_MERGE_COMPILE={kernels.compile_mode()})")
    gpu_small = gpu("0.5b", QWEN_05B, 24, 2, args.repeats)
    gpu_7b = gpu("7b", LLAMA_7B, 32, 1, args.repeats)
    ooc: dict[str, float | None] = {"ooc_time_vs_mergekit": None, "ooc_rss_vs_mergekit": None}
    ooc["ooc_peak_rss_mb"] = None
    if not args.no_ooc:
        workdir = Path(tempfile.mkdtemp(prefix="fairmerge-bench-", dir=args.workdir))
        try:
            ooc = out_of_core(workdir, args.layers, mergekit)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = {
        "bench": "merge",
        "inmemory_vs_copy": round(fp32, 3),
        "ooc_time_vs_mergekit": ooc.pop("ooc_time_vs_mergekit"),
        "ooc_rss_vs_mergekit": ooc.pop("ooc_rss_vs_mergekit"),
        "ooc_peak_rss_mb": ooc.pop("ooc_peak_rss_mb"),
        "inmemory_vs_copy_bf16": round(bf16, 3),
        "inmemory_vs_copy_bf16_eager": round(bf16_eager, 3),
        "bf16_path": bf16_path,
        "merge_state_dict_vs_copy": round(fp32_fresh, 3),
        "merge_state_dict_vs_copy_bf16": round(bf16_fresh, 3),
        "gpu_vs_copy_0.5b": None if gpu_small is None else round(gpu_small, 3),
        "gpu_vs_copy_7b": None if gpu_7b is None else round(gpu_7b, 3),
        **ooc,
        # 1-minute load average before and after: a run on a busy machine is rerun, not quoted
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(f"load average (1 min): {load_before:.2f} before, {summary['load_after']:.2f} after")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
