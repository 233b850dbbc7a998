"""plots/training_curves.png from the histories that real (tiny) fine-tunes store in the training cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
)

from fairmerge.report import plots
from fairmerge.training import TrainConfig, TrainingCache, make_base_checkpoint, train_fft, train_subgroups


def test_training_curves_png_from_cached_histories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TrainingCache(tmp_path / "cache")
    source = save_tiny_bert(tmp_path / "bert")
    base = make_base_checkpoint(str(source), seed=0, cache=cache)
    dataset = tiny_dataset()
    config = TrainConfig(learning_rate=1e-3, epochs=2, batch_size=16, eval_every_steps=3, patience=2)
    entries = {"fft": train_fft(dataset, base_dir=base, config=config, cache=cache, progress=False)}
    subgroups = train_subgroups(
        dataset, ["race"], base_dir=base, config=config, min_train_size=10, cache=cache, progress=False
    )
    entries |= {f"{a}/{g}": path for (a, g), path in subgroups.items()}
    histories = {name: json.loads((p / "meta.json").read_text())["history"] for name, p in entries.items()}
    assert all(len(h) >= 2 for h in histories.values())  # evaluated more than once per fine-tune
    figures: list[Figure] = []
    original = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or original(fig, path))

    out = plots.plot_training_curves(histories, tmp_path / "plots" / "training_curves.png")

    assert out is not None and out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    panels = figures[0].axes
    assert [ax.get_title() for ax in panels] == ["train loss", "validation loss", "validation accuracy"]
    for ax, key in zip(panels, ("train_loss", "val_loss", "val_accuracy"), strict=True):
        lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
        assert set(lines) == set(histories)
        assert all(lines[name] == [h[key] for h in hist] for name, hist in histories.items())
    assert plots.plot_training_curves({"probe": [{"C": 1.0, "val_loss": 0.5}]}, tmp_path / "x.png") is None
