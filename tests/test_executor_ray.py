"""Fine-tunes as Ray tasks on a local cluster: the local executor's weights, nothing trained twice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
)

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError
from fairmerge.executors import Resources, get_executor
from fairmerge.training import TrainConfig, TrainingCache, make_base_checkpoint, train_fft

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests/

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


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_fine_tunes_equal_local_ones_and_are_never_trained_twice(cluster, tmp_path):
    base = str(
        make_base_checkpoint(
            str(save_tiny_bert(tmp_path / "bert")), seed=0, cache=TrainingCache(tmp_path / "base")
        )
    )
    jobs = [{"dataset": tiny_dataset(), "base": base, "seed": seed} for seed in (0, 1)]
    local = get_executor("local").map(fine_tune, [{**j, "cache_dir": str(tmp_path / "local")} for j in jobs])
    executor = get_executor("ray")
    assert executor.default_gpus() == (1.0 if torch.cuda.is_available() else 0.0)
    remote_jobs = [{**j, "cache_dir": str(tmp_path / "ray")} for j in jobs]
    remote = executor.map(fine_tune, remote_jobs, resources=Resources(num_cpus=1))
    assert [Path(p).name for p in remote] == [Path(p).name for p in local]  # same content address
    for a, b in zip(local, remote, strict=True):
        wa, wb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    stamps = {p: (Path(p) / "meta.json").stat().st_mtime_ns for p in remote}
    again = executor.map(fine_tune, remote_jobs)  # a re-run, or a second driver: nothing is trained
    assert again == remote
    assert {p: (Path(p) / "meta.json").stat().st_mtime_ns for p in again} == stamps


def test_a_task_that_dies_midway_leaves_no_entry_and_its_error_comes_back(cluster, tmp_path):
    with pytest.raises(DataError, match="interrupted"):
        get_executor("ray").map(broken_fine_tune, [{"cache_dir": str(tmp_path / "c")}])
    assert TrainingCache(tmp_path / "c").entries() == []
