"""`fairmerge export` on the session's --fast study: the exported checkpoints load and decide like
fairmerge, without fairmerge; a missing cache entry stops the export before anything is written."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file
from study_rows import assert_same_rows

from fairmerge.cli import main
from fairmerge.export import export_model
from fairmerge.export.exporter import run_dataset
from fairmerge.export.run_folder import RunFolder
from fairmerge.labels import ModelLabel

pytestmark = pytest.mark.slow

CALIBRATED = "inject:worst@calibrated"

# Runs in a fresh interpreter where `import fairmerge` fails: what a user without fairmerge gets.
_PIPELINE = """
import json, sys
sys.modules["fairmerge"] = None
from transformers import pipeline
folder, inputs, out, task = sys.argv[1:5]
classify = pipeline(task, model=folder, device="cpu", trust_remote_code=task == "image-classification")
options = {"truncation": True} if task == "text-classification" else {"top_k": 1}
results = classify(json.load(open(inputs)), batch_size=64, **options)
labels = [(r[0] if isinstance(r, list) else r)["label"] for r in results]
json.dump(labels, open(out, "w"))
"""


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["fairmerge", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _score_key(run: RunFolder, label: str, seed: int) -> str:
    """The study's score-cache key of a selected point (see fairmerge.study.sweeps)."""
    point = run.selected(label, seed)
    core = ModelLabel.parse(label).with_decision("argmax")
    if point.lambdas is not None:
        return "merge_pergroup|" + ",".join(f"{x:.4f}" for x in point.lambdas.values())
    if point.lam == 0:
        return "fft" if core.family == "inject" else "base"
    if core.group == "worst":
        core = ModelLabel("inject", group=run.worst_group(seed))
    return f"{core}|lam={point.lam:.4f}"


def study_scores(cache: Path, run: RunFolder, label: str, split: str) -> np.ndarray:
    """P(y=1) on ``split`` that the study itself computed for ``label`` (its score cache)."""
    safe = re.sub(r"[^A-Za-z0-9_.=+-]", "_", _score_key(run, label, run.seeds[0]))
    found = [
        path
        for prefix in (f"seed{run.seeds[0]}_", "shared_")
        for path in (cache / "scores").glob(f"*/{prefix}{safe}_{split}-*.npy")
    ]
    assert len(found) == 1, f"{label}: {found}"
    return np.load(found[0])


def pipeline_labels(
    folder: Path, inputs: list[str], tmp: Path, task: str = "text-classification"
) -> list[str]:
    """Labels ``transformers.pipeline`` gives ``inputs`` (texts or image paths), fairmerge not importable."""
    file, out = tmp / "inputs.json", tmp / "labels.json"
    file.write_text(json.dumps(inputs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", _PIPELINE, str(folder), str(file), str(out), task]
    subprocess.run(command, check=True, env=env, capture_output=True)
    return list(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def exported(fast_study: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The headline model (argmax) and the calibrated injection, exported once."""
    out, _ = fast_study
    root = tmp_path_factory.mktemp("exported")
    headline = RunFolder.read(out).headline_label()
    return {label: export_model(out, root / label.replace(":", "-")) for label in (headline,)} | {
        CALIBRATED: export_model(out, root / "calibrated", label=CALIBRATED)
    }


def check_decisions(run: RunFolder, cache: Path, exported: dict[str, Path], tmp: Path, task: str) -> None:
    """Every test post: the exported model's pipeline label is fairmerge's decision on its own scores."""
    test = run_dataset(run, None)["test"]
    for label, folder in exported.items():
        record = json.loads((folder / "fairmerge.json").read_text())
        names = record["id2label"]
        threshold = record["threshold"] if label.endswith("@calibrated") else 0.5
        scores = study_scores(cache, run, label, "test")
        expected = np.where(scores > threshold, names["1"], names["0"])
        got = np.array(pipeline_labels(folder, test.texts, tmp, task))
        assert len(got) == len(test) and (got == expected).all(), f"{label}: {(got != expected).sum()} differ"
        if label.endswith("@calibrated"):  # the fold is not vacuous: argmax alone decides otherwise
            assert ((scores > 0.5) != (scores > threshold)).sum() > 0
            assert record["bias_shift"]["tensor"].endswith("bias")


def test_exported_models_decide_like_fairmerge_on_every_test_post_without_fairmerge(
    fast_study: tuple[Path, Path], exported: dict[str, Path], tmp_path: Path
) -> None:
    out, cache = fast_study
    check_decisions(RunFolder.read(out), cache, exported, tmp_path, "text-classification")


def test_an_exported_image_model_decides_like_fairmerge_without_fairmerge(
    utkface_fast_study: tuple[Path, Path], tmp_path: Path
) -> None:
    out, cache = utkface_fast_study
    run = RunFolder.read(out)
    labels = ["merge", "merge@calibrated"]
    exported = {label: export_model(out, tmp_path / label.replace("@", "-"), label=label) for label in labels}
    assert (exported["merge"] / "modeling_fairmerge.py").is_file()  # transformers does not know the backbone
    check_decisions(run, cache, exported, tmp_path, "image-classification")


def test_evaluate_on_an_exported_model_reproduces_every_test_row_of_the_run(
    fast_study: tuple[Path, Path],
    exported: dict[str, Path],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue #21 item 5: `fairmerge evaluate DIR --dataset hatexplain --split test`, with no other flag
    (the folder records the run's --fast config and seed), gives the run's test rows of that model,
    values and intervals, to 1e-6; the calibrated model through its folded bias at plain argmax."""
    run = RunFolder.read(fast_study[0])
    for label, folder in exported.items():
        target = tmp_path / folder.name
        args = ["evaluate", str(folder), "--dataset", "hatexplain", "--split", "test"]
        assert _main([*args, "--data-dir", str(data_dir), "--out", str(target)], monkeypatch) == 0, label
        largest = assert_same_rows(pd.read_csv(target / "metrics.csv"), run.test_rows(label, run.seeds[0]))
        print(f"{label}: largest difference {largest:.2e}")
    assert _main([*args, "--fast", "--out", str(tmp_path / "x")], monkeypatch) == 2
    assert "records its run's config" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_export_writes_a_plain_checkpoint_with_readable_labels_and_its_record(
    fast_study: tuple[Path, Path], exported: dict[str, Path]
) -> None:
    out, _ = fast_study
    folder = exported[CALIBRATED]
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "mergekit.yaml", "fairmerge.json"} <= names
    assert {"tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "not hate", "1": "hate"}
    record = json.loads((folder / "fairmerge.json").read_text())
    run = RunFolder.read(out)
    assert record["label"] == CALIBRATED and record["seed"] == run.seeds[0]
    assert record["lambda"] == run.summary["selected"][CALIBRATED]["lambda"]
    assert 0 < record["threshold"] < 1
    assert all(Path(e["path"]).is_dir() for e in record["cache_entries"].values())


def test_a_missing_cache_entry_is_one_line_and_nothing_is_written(
    fast_study: tuple[Path, Path],
    exported: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, cache = fast_study
    copy = tmp_path / "cache"
    shutil.copytree(cache / "training", copy / "training", copy_function=os.link)  # hard links: cheap
    entries = json.loads((exported[CALIBRATED] / "fairmerge.json").read_text())["cache_entries"]
    vector = next(e for name, e in entries.items() if name.startswith("subgroup "))
    shutil.rmtree(copy / "training" / vector["kind"] / vector["key"])
    target = tmp_path / "export"
    args = ["export", str(out), "--model", CALIBRATED, "-o", str(target), "--cache-dir", str(copy)]
    assert _main(args, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert f"subgroup/{vector['key'][:12]}" in err and "fairmerge run" in err and str(copy) in err
    assert not target.exists()


def test_export_help_has_an_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(["export", "--help"], monkeypatch) == 0
    assert "Example: fairmerge export" in capsys.readouterr().out


def test_bad_input_is_one_line_and_a_foreign_folder_is_kept(
    fast_study: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _ = fast_study
    assert _main(["export", str(tmp_path), "-o", str(tmp_path / "x")], monkeypatch) == 2
    assert "not a fairmerge run folder" in capsys.readouterr().err
    assert _main(["export", str(out), "--model", "nope", "-o", str(tmp_path / "x")], monkeypatch) == 2
    assert "was not selected" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert _main(["export", str(out), "-o", str(foreign)], monkeypatch) == 2
    assert (foreign / "notes.txt").read_text() == "keep" and len(list(foreign.iterdir())) == 1


@pytest.mark.skipif(
    shutil.which("mergekit-yaml") is None, reason="mergekit is not installed (not a dependency)"
)
def test_mergekit_rebuilds_the_exported_weights(exported: dict[str, Path], tmp_path: Path) -> None:
    folder = exported[CALIBRATED]
    rebuilt = tmp_path / "mergekit"
    subprocess.run(
        ["mergekit-yaml", str(folder / "mergekit.yaml"), str(rebuilt)], check=True, capture_output=True
    )
    ours, theirs = load_file(folder / "model.safetensors"), load_file(rebuilt / "model.safetensors")
    shift = json.loads((folder / "fairmerge.json").read_text())["bias_shift"]
    theirs[shift["tensor"]][1] += shift["added_to_label_1"]
    assert set(ours) == set(theirs)
    assert max(float((ours[k] - theirs[k]).abs().max()) for k in ours) <= 1e-5


def test_a_run_merged_with_ties_is_refused_not_rebuilt_as_task_arithmetic(
    fast_study: tuple[Path, Path],
) -> None:
    from fairmerge.errors import DataError
    from fairmerge.export.ingredients import find_ingredients

    run = RunFolder.read(fast_study[0])
    sweep = run.config.sweep.model_copy(update={"method": "ties"})
    ties_run = dataclasses.replace(run, config=run.config.model_copy(update={"sweep": sweep}))
    with pytest.raises(DataError, match=r"sweep\.method=ties"):
        find_ingredients(ties_run, ties_run.selected("merge", run.seeds[0]), None, fast_study[1])  # type: ignore[arg-type]
