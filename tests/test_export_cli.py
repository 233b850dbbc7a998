"""``fairmerge run … --export DIR``: refused before any compute when it cannot work (dry run,
--no-cache, a folder inside --out, a foreign folder), and after a run it exports the headline
model (checked on the session's --fast study, whose finished run stands in for ``run_study``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from fairmerge.cli import main
from fairmerge.errors import OutputError
from fairmerge.export import export_headline
from fairmerge.export.run_folder import RunFolder


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["fairmerge", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _no_study(*args: object, **kwargs: object) -> None:
    raise AssertionError("the study started although --export was refused")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dry-run"], "--export cannot be combined with --dry-run"),
        (["--no-cache"], "--export needs the training cache"),
    ],
)
def test_export_is_refused_with_a_run_that_stores_nothing(
    extra: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("fairmerge.study.run.run_study", _no_study)
    args = ["run", "--out", str(tmp_path / "out"), "--export", str(tmp_path / "model"), *extra]
    assert _main(args, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "model").exists()


def test_a_bad_export_folder_fails_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("fairmerge.study.run.run_study", _no_study)
    out = tmp_path / "out"
    assert _main(["run", "--out", str(out), "--export", str(out / "model")], monkeypatch) == 2
    assert "must lie outside --out" in capsys.readouterr().err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert _main(["run", "--out", str(out), "--export", str(foreign)], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--export" in err and "notes.txt" in err
    assert (foreign / "notes.txt").read_text() == "keep" and len(list(foreign.iterdir())) == 1
    assert not out.exists()


def test_run_help_names_export(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["run", "--help"], monkeypatch) == 0
    assert "--export" in capsys.readouterr().out


@pytest.mark.slow
def test_run_with_export_writes_the_headline_model(
    fast_study: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI runs the study, then exports the headline: ``run_study`` is replaced by a copy of the
    session's finished --fast run (its cache stays where the run recorded it)."""
    finished, _ = fast_study

    def finished_run(*args: object, out_dir: Path, **kwargs: object) -> None:
        shutil.copytree(finished, out_dir)

    monkeypatch.setattr("fairmerge.study.run.run_study", finished_run)
    out, model = tmp_path / "out", tmp_path / "model"
    assert _main(["run", "--fast", "--out", str(out), "--export", str(model)], monkeypatch) == 0
    assert f"exported the headline model to {model}" in capsys.readouterr().out
    run = RunFolder.read(out)
    record = json.loads((model / "fairmerge.json").read_text())
    assert record["label"] == run.headline_label() and record["seed"] == run.seeds[0]
    names = {p.name for p in model.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "mergekit.yaml", "fairmerge.json"} <= names


@pytest.mark.slow
def test_export_headline_on_the_fast_study(fast_study: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = fast_study
    folder = export_headline(out, tmp_path / "headline")
    record = json.loads((folder / "fairmerge.json").read_text())
    assert record["label"] == RunFolder.read(out).headline_label()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not an earlier fairmerge export"):
        export_headline(out, folder)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("recorded", "scored"), [({"resolved": "bf16"}, "bf16"), ({}, "auto")])
def test_a_run_is_scored_again_in_the_precision_it_recorded(
    tmp_path: Path, recorded: dict[str, str], scored: str
) -> None:
    """``auto`` resolved per run: an export's threshold and ``evaluate`` use the recorded choice."""
    from fairmerge.study.config import load_config

    config = load_config(None, fast=True).to_dict()
    provenance = {"config": config, "evaluation_precision": {"requested": "auto", **recorded}}
    summary = {"provenance": provenance, "selected": {"merge": {}}, "seeds": [0]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    run = RunFolder.read(tmp_path)
    assert run.config.evaluation.precision == "auto"
    assert run.scored_config.evaluation.precision == scored
    assert run.scored_config.model_dump(exclude={"evaluation"}) == run.config.model_dump(
        exclude={"evaluation"}
    )
