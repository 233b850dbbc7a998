"""Ctrl-C: every command exits 130 with one line, keeps finished cache entries, leaves no partial
one and no output folder; rerunning resumes and gives the same result as an uninterrupted run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from fp32_study import FP32_ARGS

from fairmerge.cli import INTERRUPTED, main

FAIRMERGE = [sys.executable, "-c", "from fairmerge.cli import main; main()"]
"""The console script's own code (``.venv/bin/fairmerge`` is the same two lines)."""


def _env() -> dict[str, str]:
    return os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _default_sigint() -> None:
    """In the child: SIGINT's default action. A shell without job control starts background commands
    (and so this test run and its children, when launched with ``&``) with SIGINT ignored, and an
    ignored SIGINT stays ignored across exec, so Python would never raise KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# Where each command is interrupted: a function it calls early on real input.
_INTERRUPT_AT = {
    "data": ("fairmerge.cli.data_cmd.load_dataset", "data summary hatexplain"),
    "evaluate": (
        "fairmerge.data.table.read_table_split",
        "evaluate default --data x.csv --text-col t --label-col l --group-col g --out {o}/ev",
    ),
    "vector": ("fairmerge.vectors.TaskVector.from_checkpoints", "vector a b -o {o}/t.st"),
    "merge": ("fairmerge.cli.vector_cmd._nonempty", "merge b -v v -l 1 -o {o}/m"),
    "inspect": ("fairmerge.vectors.TaskVector.load", "inspect v.safetensors"),
    "train": ("fairmerge.data.load_dataset", "train fft --out {o}/fft --cache-dir {o}/c"),
    "cache": ("fairmerge.training.TrainingCache.entries", "cache list --cache-dir {o}/c"),
    "run": ("fairmerge.study.run.run_study", "run --fast --out {o}/s --cache-dir {o}/c"),
}


def _ctrl_c(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("command", sorted(_INTERRUPT_AT))
def test_every_command_exits_130_on_ctrl_c(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target, argv = _INTERRUPT_AT[command]
    monkeypatch.setattr(target, _ctrl_c)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fairmerge", *argv.format(o=tmp_path).split()])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 130
    assert [line for line in err.splitlines() if line.strip()][-1] == INTERRUPTED
    assert "Traceback" not in err
    assert _files(tmp_path) == []


def test_sigint_to_a_real_process_exits_130(data_dir: Path, tmp_path: Path) -> None:
    # a study (minutes of work), so the signal always lands while the command is busy, however fast
    # the machine: a short command could finish before it arrives
    argv = ["run", "--fast", "--data-dir", str(data_dir), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(
        [*FAIRMERGE, *argv, "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=_default_sigint,
    )
    time.sleep(4.0)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == INTERRUPTED and "Traceback" not in err


def _partial_entries(cache: Path) -> list[str]:
    """Temporary folders or files of unfinished cache writes, and entries without their meta.json."""
    partial = [str(p.relative_to(cache)) for p in cache.rglob(".*") if p.name.endswith(".tmp")]
    training = cache / "training"
    for entry in training.glob("*/*") if training.is_dir() else []:
        if entry.is_dir() and not (entry / "meta.json").is_file():
            partial.append(str(entry.relative_to(cache)))
    return partial


class _StderrReader(threading.Thread):
    """Collects a child's stderr as it comes, so the test can wait for a line and still read it all."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self.stream, self.text = stream, ""

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(256), ""):
            self.text += chunk


@pytest.mark.slow
def test_interrupted_study_resumes_to_the_uninterrupted_result(
    fast_study: tuple[Path, Path], data_dir: Path, tmp_path: Path
) -> None:
    reference, reference_cache = fast_study
    out, cache = tmp_path / "out", tmp_path / "cache"
    # an earlier partial run: every fine-tune but FFT finished and every score computed (the session
    # run's, hard-linked: cache entries are replaced, never modified in place); FFT is retrained, to
    # the same cache key, so the resumed run reuses the scores and only FFT's training is repeated
    shutil.copytree(reference_cache, cache, copy_function=os.link)
    shutil.rmtree(cache / "training" / "fft")
    scores = _files(cache / "scores")
    argv = [
        *FAIRMERGE,
        "run",
        "--fast",
        *FP32_ARGS,
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
    ]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env() | {"FORCE_COLOR": "1"},  # a terminal to rich: progress bars, so FFT is seen training
        preexec_fn=_default_sigint,
    )
    assert process.stderr is not None
    reader = _StderrReader(process.stderr)
    reader.start()
    deadline = time.monotonic() + 600
    while not re.search(r"fft:\s+\d+%", reader.text):  # FFT's progress bar: it is training
        assert process.poll() is None, reader.text[-3000:]
        assert time.monotonic() < deadline, "FFT training never started"
        time.sleep(0.2)
    time.sleep(3.0)
    kept = {p: p.read_bytes() for p in (cache / "training").glob("*/*/meta.json")}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=300)
    reader.join(timeout=60)
    err = reader.text
    assert process.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == INTERRUPTED and "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    assert _partial_entries(cache) == []
    assert {p: p.read_bytes() for p in (cache / "training").glob("*/*/meta.json")} == kept
    assert _files(cache / "training" / "fft") == []  # the interrupted fine-tune left nothing
    assert _files(cache / "scores") == scores  # it stopped there: nothing after it ran

    rerun = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=1800)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(p.read_bytes() == meta for p, meta in kept.items())  # reused, not rebuilt
    assert any((cache / "training" / "fft").glob("*/meta.json"))
    tables = sorted(p.name for p in reference.glob("*.csv"))
    assert tables == sorted(p.name for p in out.glob("*.csv")) and "metrics.csv" in tables
    for name in tables:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_ctrl_c_at_a_confirmation_prompt_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    try:  # typer >= 0.20 vendors click
        termui = importlib.import_module("typer._click.termui")
    except ImportError:
        termui = importlib.import_module("click.termui")
    monkeypatch.setattr(termui, "visible_prompt_func", _ctrl_c)
    monkeypatch.setattr(sys, "argv", ["fairmerge", "cache", "clear", "--cache-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == INTERRUPTED
    monkeypatch.setattr(termui, "visible_prompt_func", lambda prompt: "n")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and capsys.readouterr().err.strip().endswith("aborted")
