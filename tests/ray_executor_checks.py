"""Run as a script by tests/test_executor_ray.py: real tiny fine-tunes on a local Ray cluster.

It runs in its own process because Ray's core worker ends the process that started the cluster
(exit code 1, no Python exception) when it loses its local raylet; inside pytest that would end
the whole test session. It writes what it observed as JSON; the tests make the assertions.

Usage: python tests/ray_executor_checks.py WORK_DIR RESULT_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ray
import torch
from safetensors.torch import load_file
from training_tiny import save_tiny_bert, tiny_dataset

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError
from fairmerge.executors import Resources, get_executor
from fairmerge.training import TrainConfig, TrainingCache, make_base_checkpoint, train_fft

CONFIG = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3)


def fine_tune(dataset: GroupedTextDataset, base: str, cache_dir: str, seed: int) -> str:
    """One real fine-tune of the tiny BERT through the training cache (what the study submits)."""
    torch.set_num_threads(1)
    config = CONFIG.replace(seed=seed)
    return str(
        train_fft(dataset, base_dir=base, config=config, cache=TrainingCache(cache_dir), progress=False)
    )


def broken_fine_tune(cache_dir: str) -> None:
    """Dies while building its entry: the cache must hold nothing afterwards."""

    def build(tmp: Path) -> dict[str, str]:
        (tmp / "model.safetensors").write_bytes(b"half written")
        raise DataError("interrupted while saving")

    TrainingCache(cache_dir).store("fft", "0" * 64, build)


def same_weights(a: str, b: str) -> bool:
    wa, wb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def meta_stamps(entries: list[str]) -> list[int]:
    return [(Path(p) / "meta.json").stat().st_mtime_ns for p in entries]


def observe(work: Path) -> dict[str, object]:
    torch.set_num_threads(1)
    base = str(
        make_base_checkpoint(str(save_tiny_bert(work / "bert")), seed=0, cache=TrainingCache(work / "base"))
    )
    jobs = [{"dataset": tiny_dataset(), "base": base, "seed": seed} for seed in (0, 1)]
    local = get_executor("local").map(fine_tune, [{**j, "cache_dir": str(work / "local")} for j in jobs])
    executor = get_executor("ray")
    remote_jobs = [{**j, "cache_dir": str(work / "ray")} for j in jobs]
    remote = executor.map(fine_tune, remote_jobs, resources=Resources(num_cpus=1))
    stamps = meta_stamps(remote)
    again = executor.map(fine_tune, remote_jobs)  # a re-run, or a second driver: nothing is trained
    try:
        executor.map(broken_fine_tune, [{"cache_dir": str(work / "broken")}])
        broken_error = None
    except DataError as exc:
        broken_error = f"DataError: {exc}"
    return {
        "default_gpus": executor.default_gpus(),
        "cuda": torch.cuda.is_available(),
        "local_names": [Path(p).name for p in local],
        "remote_names": [Path(p).name for p in remote],
        "same_weights": [same_weights(a, b) for a, b in zip(local, remote, strict=True)],
        "rerun_same_entries": again == remote,
        "rerun_same_stamps": meta_stamps(again) == stamps,
        "broken_error": broken_error,
        "broken_entries": [str(p) for p in TrainingCache(work / "broken").entries()],
    }


def main() -> None:
    work, result = Path(sys.argv[1]), Path(sys.argv[2])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        observed = observe(work)
    finally:
        ray.shutdown()
    result.write_text(json.dumps(observed))


if __name__ == "__main__":
    main()
