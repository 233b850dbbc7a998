"""Benchmark: peak RSS of a uniform-λ sweep over 1 and over 8 task vectors (target: rss_8_vs_1 <= 1.3).

Setting: a BERT-base-shaped sequence classifier (``BertConfig()``, 109M parameters, fp32, random
init: the merge does not care what the weights learned), a base checkpoint and 8 "fine-tuned"
ones (the base plus seeded noise) written to a temporary directory. Each measured child process
builds the model, then ``InPlaceMerger.from_checkpoints(model, base, finetuned[:n], uniform=True)``
(vectors read lazily, summed one source tensor at a time, only the sum kept) and evaluates a
5-point λ grid with one forward pass of 8 × 128 tokens per point. Peak RSS is the ``wait4`` rusage
of that child, started by a small launcher so this process's memory does not count. The estimate
of :func:`fairmerge.vectors.memory.estimate_sweep_memory` for the same plan is printed next to it.

Run: ``python benchmarks/study_memory.py``. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.vectors.memory import estimate_sweep_memory

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)

CHILD = """
import sys, time, torch
from transformers import BertConfig, BertForSequenceClassification
from fairmerge.vectors import InPlaceMerger

lambdas, base, *finetuned = sys.argv[1:]
start = time.perf_counter()
torch.manual_seed(0)
model = BertForSequenceClassification(BertConfig.from_pretrained(base)).eval()
merger = InPlaceMerger.from_checkpoints(model, base, finetuned, uniform=True)
ids = torch.randint(0, model.config.vocab_size, (8, 128), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    for lam in map(float, lambdas.split(",")):
        merger.set_coefficients(lam)
        model(input_ids=ids)
print(f"{len(finetuned)} vectors: {time.perf_counter() - start:.1f} s")
"""

# ru_maxrss of a child also counts the memory of the process it was forked from (Linux keeps the
# pre-exec high-water mark), so a small launcher forks the measured command.
LAUNCHER = """
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}))
"""


def write_checkpoints(root: Path, n: int) -> tuple[Path, list[Path]]:
    """A random BERT-base checkpoint and ``n`` noisy copies of it, written one at a time."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig())
    model.save_pretrained(root / "base")
    original = {k: v.clone() for k, v in model.state_dict().items()}
    finetuned = []
    with torch.no_grad():
        for i in range(1, n + 1):
            generator = torch.Generator().manual_seed(i)
            for key, param in model.named_parameters():
                param.copy_(original[key] + 0.01 * torch.randn(param.shape, generator=generator))
            model.save_pretrained(root / f"ft{i}")
            finetuned.append(root / f"ft{i}")
    return root / "base", finetuned


def peak_rss_mb(base: Path, finetuned: list[Path]) -> tuple[float, str]:
    command = [sys.executable, "-c", CHILD, ",".join(map(str, LAMBDAS)), str(base), *map(str, finetuned)]
    done = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command], capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"exit": done.returncode}
    if report["exit"] != 0:
        raise RuntimeError(f"sweep child failed ({report['exit']}):\n{done.stderr[-3000:]}")
    return report["maxrss_kb"] / 1024, lines[-2] if len(lines) > 1 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where the checkpoints go (a temp dir)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fairmerge-memory-", dir=args.workdir))
    try:
        start = time.perf_counter()
        base, finetuned = write_checkpoints(workdir, 8)
        config = BertConfig()
        params = sum(p.numel() for p in BertForSequenceClassification(config).parameters())
        seconds = time.perf_counter() - start
        print(f"wrote a {params / 1e6:.0f}M-parameter base and 8 fine-tunes in {seconds:.0f} s")
        results = {}
        for n in (1, 8):
            rss, log = peak_rss_mb(base, finetuned[:n])
            estimate = estimate_sweep_memory(config, n_vectors=n, mode="uniform").host_bytes / 2**20
            results[n] = rss
            print(
                f"uniform sweep over {n} vector(s): peak RSS {rss:,.0f} MB (estimate of the plan "
                f"{estimate:,.0f} MB + runtime) [{log}]"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "study_memory",
                "rss_8_vs_1": round(results[8] / results[1], 3),
                "peak_rss_mb_1": round(results[1], 1),
                "peak_rss_mb_8": round(results[8], 1),
                "parameters": params,
            }
        )
    )


if __name__ == "__main__":
    main()
