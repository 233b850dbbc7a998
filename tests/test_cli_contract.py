"""The CLI's failure contract, as a table over every command.

Each bad input must end with exit code 2, exactly one ``error: …`` line on stderr that names the
problem, no traceback, and no new or changed file anywhere near the target (inputs included).
The commands run through ``fairmerge.cli.main`` exactly as the console script does. A full disk
and a read-only filesystem are small tmpfs mounts (root only; skipped with the reason elsewhere).
New commands join the table: ``test_every_command_is_in_the_table`` fails until they do.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
import vectors_tiny
from safetensors.torch import save_file
from transformers import BertForSequenceClassification

from fairmerge.cli import app, main


@dataclass(frozen=True)
class Case:
    """``argv`` with ``{w}`` (inputs), ``{o}`` (an empty output area, also the working directory),
    ``{full}`` (a full tmpfs) and ``{ro}`` (a read-only tmpfs); every one of ``names`` must occur in
    the error line."""

    id: str
    argv: str
    names: str | tuple[str, ...]
    marks: tuple[pytest.MarkDecorator, ...] = ()


_EVAL = "--text-col text --label-col label --group-col g"
_DATA = "--data {w}/posts.csv " + _EVAL
CASES = [
    # vector
    Case("vector-missing-base", "vector {w}/nope {w}/ft -o {o}/t.safetensors", "nope"),
    Case("vector-base-is-a-file", "vector {w}/afile.txt {w}/ft -o {o}/t.safetensors", "afile.txt"),
    Case("vector-truncated", "vector {w}/base {w}/trunc -o {o}/t.safetensors", "trunc"),
    Case("vector-three-labels", "vector {w}/base {w}/three -o {o}/t.safetensors", "classifier"),
    Case("vector-pickle-only", "vector {w}/base {w}/pickled -o {o}/t.safetensors", "pickled"),
    Case("vector-output-exists", "vector {w}/base {w}/ft -o {w}/tau.safetensors", "pass --overwrite"),
    Case("vector-output-is-a-folder", "vector {w}/base {w}/ft -o {w}/userdir", "is a folder"),
    Case("vector-output-through-a-file", "vector {w}/base {w}/ft -o {w}/afile.txt/t.st", "is a file"),
    Case("vector-output-in-proc", "vector {w}/base {w}/ft -o /proc/t.safetensors", "cannot write in /proc"),
    Case("vector-full-disk", "vector {w}/base {w}/ft -o {full}/t.safetensors", "No space left"),
    Case("vector-read-only", "vector {w}/base {w}/ft -o {ro}/t.safetensors", "Read-only"),
    Case("vector-bad-dtype", "vector {w}/base {w}/ft -o {o}/t.safetensors --dtype int8", "--dtype"),
    # merge
    Case("merge-lambda-overflow", "merge {w}/base -v {w}/tau.safetensors -l 1e40 -o {o}/m", "overflows"),
    Case("merge-lambda-nan", "merge {w}/base -v {w}/tau.safetensors -l nan -o {o}/m", "finite"),
    Case("merge-lambda-not-a-number", "merge {w}/base -v {w}/tau.safetensors -l abc -o {o}/m", "--lambda"),
    Case("merge-empty-vector", "merge {w}/base -v {w}/empty.safetensors -l 1 -o {o}/m", "holds no tensor"),
    Case("merge-vector-is-csv", "merge {w}/base -v {w}/posts.csv -l 1 -o {o}/m", "posts.csv"),
    Case("merge-vector-missing", "merge {w}/base -v {w}/nope.safetensors -l 1 -o {o}/m", "nope.safetensors"),
    Case("merge-truncated-base", "merge {w}/trunc -v {w}/tau.safetensors -l 1 -o {o}/m", "trunc"),
    Case(
        "merge-output-exists", "merge {w}/base -v {w}/tau.safetensors -l 1 -o {w}/userdir", "pass --overwrite"
    ),
    Case("merge-output-in-proc", "merge {w}/base -v {w}/tau.safetensors -l 1 -o /proc/m", "/proc"),
    Case("merge-full-disk", "merge {w}/base -v {w}/tau.safetensors -l 1 -o {full}/m", "No space left"),
    Case("merge-read-only", "merge {w}/base -v {w}/tau.safetensors -l 1 -o {ro}/m", "Read-only"),
    Case(
        "merge-bad-shard-size",
        "merge {w}/base -v {w}/tau.safetensors -l 1 -o {o}/m --max-shard-size x",
        "size",
    ),
    # inspect
    Case("inspect-csv", "inspect {w}/posts.csv", "posts.csv"),
    Case("inspect-missing", "inspect {w}/nope.safetensors", "nope.safetensors"),
    # evaluate
    Case("evaluate-empty-csv", "evaluate {w}/base --data {w}/empty.csv " + _EVAL + " --out {o}/ev", "empty"),
    Case(
        "evaluate-corrupt-csv",
        "evaluate {w}/base --data {w}/garbage.csv " + _EVAL + " --out {o}/ev",
        "garbage",
    ),
    Case(
        "evaluate-missing-csv", "evaluate {w}/base --data {w}/nope.csv " + _EVAL + " --out {o}/ev", "nope.csv"
    ),
    Case(
        "evaluate-missing-column",
        "evaluate {w}/base --data {w}/posts.csv --text-col nope --label-col label --group-col g --out {o}/ev",
        "nope",
    ),
    Case(
        "evaluate-not-binary",
        "evaluate {w}/base --data {w}/threeclass.csv " + _EVAL + " --out {o}/ev",
        "binary",
    ),
    Case("evaluate-truncated-model", "evaluate {w}/trunc " + _DATA + " --out {o}/ev", "truncated"),
    Case("evaluate-three-labels", "evaluate {w}/three " + _DATA + " --out {o}/ev", "3 labels"),
    Case("evaluate-pickle-only", "evaluate {w}/pickled " + _DATA + " --out {o}/ev", "pickled"),
    Case(
        "evaluate-missing-local-model",
        "evaluate models/doesnotexist " + _DATA + " --out {o}/ev",
        "doesnotexist",
    ),
    Case("evaluate-missing-dot-model", "evaluate ./nope " + _DATA + " --out {o}/ev", "nope"),
    Case(
        "evaluate-threshold-nan",
        "evaluate {w}/base " + _DATA + " --threshold nan --out {o}/ev",
        "--threshold",
    ),
    Case("evaluate-out-user-folder", "evaluate {w}/base " + _DATA + " --out {w}/userdir", "precious.txt"),
    Case("evaluate-out-is-a-file", "evaluate {w}/base " + _DATA + " --out {w}/afile.txt", "existing file"),
    Case("evaluate-out-in-proc", "evaluate {w}/base " + _DATA + " --out /proc/ev", "/proc"),
    Case("evaluate-full-disk", "evaluate {w}/base " + _DATA + " --out {full}/ev", "No space left"),
    Case("evaluate-read-only", "evaluate {w}/base " + _DATA + " --out {ro}/ev", "Read-only"),
    Case("evaluate-bad-device", "evaluate {w}/base " + _DATA + " --device banana --out {o}/ev", "--device"),
    Case(
        "evaluate-cuda-without-cuda",
        "evaluate {w}/base " + _DATA + " --device cuda --out {o}/ev",
        ("--device cuda", "no CUDA device"),
        (pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available"),),
    ),
    Case("evaluate-remote-code", "evaluate {w}/remote " + _DATA + " --out {o}/ev", "auto_map"),
    Case(
        "evaluate-no-tokenizer",
        "evaluate {w}/notok " + _DATA + " --out {o}/ev",
        ("no tokenizer", "vocab.txt"),
    ),
    Case(
        "evaluate-header-only-csv",
        "evaluate {w}/base --data {w}/header.csv " + _EVAL + " --out {o}/ev",
        "no rows",
    ),
    Case(
        "evaluate-single-class-positive",
        "evaluate {w}/base " + _DATA + " --positive banana --out {o}/ev",
        "never equals positive='banana'",
    ),
    Case("evaluate-legacy-pickle", "evaluate {w}/legacy " + _DATA + " --out {o}/ev", "pickled"),
    Case(
        "evaluate-pickle-without-config", "evaluate {w}/binonly " + _DATA + " --out {o}/ev", "no config.json"
    ),
    Case(
        "evaluate-image-outside-table",
        "evaluate {w}/base --data {w}/images.csv --image-col path --label-col label --group-col g "
        "--out {o}/ev",
        ("outside the table's folder", "--allow-outside-paths"),
    ),
    Case(
        "evaluate-image-is-a-folder",
        "evaluate {w}/base --data {w}/imagedirs.csv --image-col path --label-col label --group-col g "
        "--out {o}/ev",
        "are folders",
    ),
    Case(
        "evaluate-data-and-dataset",
        "evaluate {w}/base " + _DATA + " --dataset hatexplain --out {o}/ev",
        "exactly one",
    ),
    Case(
        "evaluate-dataset-bad-split",
        "evaluate {w}/base --dataset hatexplain --split dev --out {o}/ev",
        "--split",
    ),
    Case("evaluate-dataset-unstudied", "evaluate {w}/base --dataset civil_comments --out {o}/ev", "--config"),
    # train (the output is checked before the data loads)
    Case("train-out-user-folder", "train fft --out {w}/userdir --cache-dir {o}/cache", "precious.txt"),
    Case("train-out-is-a-file", "train lora --out {w}/afile.txt --cache-dir {o}/cache", "existing file"),
    Case("train-out-in-proc", "train subgroups --out /proc/sub --cache-dir {o}/cache", "/proc"),
    Case("train-read-only", "train fft --out {ro}/fft --cache-dir {o}/cache", "Read-only"),
    Case("train-bad-config", "train fft {w}/epochs0.yaml --out {o}/fft --cache-dir {o}/cache", "epochs"),
    Case("train-bad-number", "train fft --out {o}/fft --learning-rate fast", "--learning-rate"),
    Case("train-remote-code", "train fft --model {w}/remote --out {o}/fft --cache-dir {c}", "auto_map"),
    Case(
        "train-subgroups-bad-json",
        "train subgroups --data-dir {w}/hx-json --out {o}/sub --cache-dir {c}",
        "post_id_divisions.json",
    ),
    Case(
        "train-cache-full-disk",
        "train fft {w}/tiny.yaml --model {w}/base --cache-dir {full}/cache --out {o}/fft",
        ("No space left", "{full}/cache"),
    ),
    Case(
        "train-out-full-disk",
        "train fft {w}/tiny.yaml --model {w}/base --cache-dir {c} --out {full}/fft",
        ("No space left", "{full}/fft"),
    ),
    # cache
    Case("cache-clear-unknown-kind", "cache clear --kind banana --yes --cache-dir {o}/cache", "banana"),
    Case("cache-list-unknown-kind", "cache list --kind banana --cache-dir {o}/cache", "banana"),
    Case("cache-kind-without-value", "cache list --kind", "--kind"),
    # data
    Case("data-unknown-dataset", "data summary nosuch", "nosuch"),
    Case("data-min-group-size", "data summary hatexplain --min-group-size -5", "--min-group-size"),
    Case("data-empty-csv", "data summary csv -o path={w}/empty.csv", "empty"),
    Case("data-corrupt-csv", "data summary csv -o path={w}/garbage.csv", "garbage"),
    Case("data-option-wrong-type", "data summary sbic -o min_target_share=banana", "min_target_share"),
    Case("data-unknown-option", "data summary hatexplain -o bogus=1", "bogus"),
    Case("data-missing-data-dir", "data summary hatexplain --data-dir {w}/nope", "nope"),
    Case(
        "data-truncated-gz", "data summary hatexplain --data-dir {w}/hx-trunc", "mbib_092-HateXplain.csv.gz"
    ),
    Case("data-bad-json", "data summary hatexplain --data-dir {w}/hx-json", "post_id_divisions.json"),
    Case(
        "data-weak-targets-not-gzip",
        "data summary hatexplain --data-dir {w}/hx-weak",
        "weak_targets_final_hateXplain.csv.gz",
    ),
    # run (every one of these fails before any work)
    Case("run-out-user-folder", "run --fast --out {w}/userdir --cache-dir {o}/cache", "precious.txt"),
    Case("run-out-is-a-file", "run --fast --out {w}/afile.txt --cache-dir {o}/cache", "existing file"),
    Case("run-out-dot", "run --fast --out . --cache-dir {o}/cache", "current folder"),
    Case("run-out-through-a-file", "run --fast --out {w}/afile.txt/x --cache-dir {o}/cache", "is a file"),
    Case("run-out-in-proc", "run --fast --out /proc/study --cache-dir {o}/cache", "/proc"),
    Case("run-read-only", "run --fast --out {ro}/study --cache-dir {o}/cache", "Read-only"),
    Case("run-missing-config", "run {w}/nope.yaml --out {o}/s --cache-dir {o}/cache", "nope.yaml"),
    Case("run-missing-data-dir", "run --fast --data-dir {w}/nope --out {o}/s --cache-dir {o}/cache", "nope"),
    Case("run-bad-seed", "run --fast --seeds x --out {o}/s", "--seeds"),
    Case("run-negative-seed", "run --fast --seeds -1 --out {o}/s --cache-dir {o}/cache", "--seeds"),
    Case("run-typo-in-fft", "run {w}/typo.yaml --out {o}/s --cache-dir {o}/cache", "fft.epochz"),
    Case(
        "run-lambdas-string", "run {w}/lambdas.yaml --fast --out {o}/s --cache-dir {o}/cache", "sweep.lambdas"
    ),
    Case("run-not-yaml", "run {w}/broken.yaml --out {o}/s --cache-dir {o}/cache", "broken.yaml"),
    Case(
        "run-config-is-a-folder", "run {w}/userdir --out {o}/s --cache-dir {o}/cache", ("userdir", "folder")
    ),
    Case(
        "run-dry-run-truncated-gz",
        "run --fast --dry-run --data-dir {w}/hx-trunc --cache-dir {c}",
        "mbib_092-HateXplain.csv.gz",
    ),
    Case("run-dry-run-missing-model", "run --fast --dry-run --set model=./nosuch --cache-dir {c}", "nosuch"),
    Case(
        "run-dry-run-remote-code", "run --fast --dry-run --set model={w}/remote --cache-dir {c}", "auto_map"
    ),
    # inspect, vector, merge: folders
    Case("inspect-folder", "inspect {w}/base", ("base", "is a folder")),
    # export: a folder that is not a finished run
    Case("export-missing-run", "export {w}/nope -o {o}/exported", ("nope", "summary.json")),
    Case("export-not-a-run", "export {w}/base -o {o}/exported", ("base", "not a fairmerge run folder")),
]


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root``: (mode, sha256 of a file's bytes or 'dir')."""
    found = {}
    for path in sorted(root.rglob("*")):
        digest = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = (path.lstat().st_mode, digest)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Inputs: tiny random BERT checkpoints (good, truncated, 3-label, pickle-only), task vectors
    (good and empty), tables (good, empty, corrupt, three-class), a file, a user's folder, configs."""
    root = tmp_path_factory.mktemp("world")
    base = vectors_tiny.tiny_bert(0)
    vectors_tiny.save(base, root / "base")
    vectors_tiny.save(vectors_tiny.finetuned_from(base, 1), root / "ft")
    vectors_tiny.save(base, root / "trunc")
    weights = root / "trunc" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    config = vectors_tiny.tiny_bert_config()
    config.num_labels = 3
    torch.manual_seed(0)
    vectors_tiny.save(BertForSequenceClassification(config), root / "three")
    (root / "pickled").mkdir()
    (root / "pickled" / "config.json").write_text((root / "base" / "config.json").read_text())
    vectors_tiny.save_tokenizer(root / "pickled")
    torch.save(base, root / "pickled" / "pytorch_model.bin")  # a whole pickled module, not only tensors
    assert main_ok(["vector", str(root / "base"), str(root / "ft"), "-o", str(root / "tau.safetensors")])
    save_file({}, str(root / "empty.safetensors"))
    words = ["hello world", "bad people", "good post", "bad text"]
    pd.DataFrame({"text": words * 10, "label": [0, 1, 0, 1] * 10, "g": ["a", "b"] * 20}).to_csv(
        root / "posts.csv", index=False
    )
    pd.DataFrame({"text": words * 3, "label": ["x", "y", "z"] * 4, "g": ["a", "b"] * 6}).to_csv(
        root / "threeclass.csv", index=False
    )
    (root / "empty.csv").write_bytes(b"")
    (root / "garbage.csv").write_bytes(bytes(range(256)) * 8)
    (root / "afile.txt").write_text("a user's file\n")
    (root / "userdir").mkdir()
    (root / "userdir" / "precious.txt").write_text("precious\n")
    (root / "epochs0.yaml").write_text("epochs: 0\n")
    (root / "typo.yaml").write_text("fft:\n  epochz: 1\n")
    (root / "lambdas.yaml").write_text('sweep:\n  lambdas: "0.5"\n')
    (root / "broken.yaml").write_text("fft: [unclosed\n")
    _remote_code_checkpoint(root / "remote", root / "MARKER")
    shutil.copytree(root / "base", root / "notok", ignore=shutil.ignore_patterns("*token*", "vocab*"))
    (root / "header.csv").write_text("text,label,g\n")
    (root / "tiny.yaml").write_text(
        "epochs: 1\nmax_train_samples: 16\nmax_length: 32\n"
    )  # tiny BERT: 32 positions
    shutil.copytree(root / "base", root / "legacy", ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(base, root / "legacy" / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (root / "binonly").mkdir()
    torch.save(base.state_dict(), root / "binonly" / "pytorch_model.bin")
    pd.DataFrame({"path": ["../../etc/passwd", "/etc/hostname"], "label": [0, 1], "g": ["a", "b"]}).to_csv(
        root / "images.csv", index=False
    )
    pd.DataFrame({"path": ["userdir"], "label": [0], "g": ["a"]}).to_csv(root / "imagedirs.csv", index=False)
    _broken_hatexplain(root, data_dir)
    return root


def _remote_code_checkpoint(folder: Path, marker: Path) -> None:
    """A checkpoint whose config needs its own code (``auto_map``, unknown ``model_type``); that code
    would write ``marker``."""
    folder.mkdir()
    config = {
        "model_type": "fairmerge-remote-test",
        "auto_map": {
            "AutoConfig": "remote.RemoteConfig",
            "AutoModelForSequenceClassification": "remote.RemoteModel",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "remote.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class RemoteConfig(PretrainedConfig):\n    model_type = 'fairmerge-remote-test'\n"
    )
    vectors_tiny.save_tokenizer(folder)


def _broken_hatexplain(root: Path, data_dir: Path) -> None:
    """Copies of the HateXplain folder (links to the real files) with one file broken each:
    ``hx-trunc`` (MBIB .csv.gz cut in half), ``hx-json`` (divisions not JSON), ``hx-weak``
    (weak targets random bytes)."""
    source = data_dir / "hatexplain"
    broken = {
        "hx-trunc": ("mbib_092-HateXplain.csv.gz", lambda data: data[: len(data) // 2]),
        "hx-json": ("post_id_divisions.json", lambda data: b"{not json"),
        "hx-weak": ("weak_targets_final_hateXplain.csv.gz", lambda data: bytes(range(7, 250)) * 4),
    }
    for name, (file, change) in broken.items():
        folder = root / name / "hatexplain"
        folder.mkdir(parents=True)
        for original in source.iterdir():
            if original.name == file:
                (folder / file).write_bytes(change(original.read_bytes()))
            else:
                (folder / original.name).symlink_to(original)


@pytest.fixture(scope="module")
def scratch_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache root outside the watched folders (a row that trains fills it)."""
    return tmp_path_factory.mktemp("cache")


def main_ok(args: list[str]) -> bool:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["fairmerge", *args])
        main()
    return True


def _mount(target: Path, options: str) -> str | None:
    """Mount a tmpfs at ``target``; the reason it cannot be done, or None."""
    target.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    return None if result.returncode == 0 else (result.stderr.strip() or "mount failed")


@pytest.fixture(scope="module")
def mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path | str]]:
    """``full``: a 64 KiB tmpfs filled to the last byte; ``ro``: a read-only tmpfs. Where mounting
    is not allowed (not root, a container without CAP_SYS_ADMIN) the value is the reason."""
    root = tmp_path_factory.mktemp("mounts")
    found: dict[str, Path | str] = {}
    try:
        for name, options in (("full", "size=64k"), ("ro", "size=64k,ro")):
            reason = _mount(root / name, options)
            found[name] = root / name if reason is None else f"cannot mount a tmpfs here: {reason}"
        if isinstance(found["full"], Path):
            _fill(found["full"] / "filler")
        yield found
    finally:
        for mounted in found.values():
            if isinstance(mounted, Path):
                subprocess.run(["umount", str(mounted)], check=True)


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the filesystem is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_fails_cleanly(
    case: Case,
    world: Path,
    scratch_cache: Path,
    mounts: dict[str, Path | str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    places = {"w": world, "o": tmp_path, "c": scratch_cache, **mounts}
    for name in ("full", "ro"):
        if "{" + name + "}" in case.argv and isinstance(mounts[name], str):
            pytest.skip(str(mounts[name]))
    argv = [part.format(**places) for part in shlex.split(case.argv)]
    watched = [world, tmp_path, *(m for m in mounts.values() if isinstance(m, Path))]
    before = [_snapshot(root) for root in watched]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fairmerge", *argv])
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 8))  # "y" to any prompt, e.g. "run custom code?"
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2, err
    assert "Traceback" not in out + err
    assert not re.search(r"\.py:\d+", err), err  # no warning with a source path
    assert not (world / "MARKER").exists()  # a checkpoint's own code never ran
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    names = (case.names,) if isinstance(case.names, str) else case.names
    assert all(name.format(**places) in errors[0] for name in names), errors[0]
    assert [_snapshot(root) for root in watched] == before


def test_every_command_is_in_the_table() -> None:
    """A new command (or sub-command) joins the table above."""
    import typer.main

    group = typer.main.get_command(app)
    commands: list[str] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        commands += [f"{name} {sub}" for sub in subcommands] if subcommands else [name]
    covered = {c.argv.split(" ", 2)[0] for c in CASES} | {" ".join(c.argv.split()[:2]) for c in CASES}
    missing = [c for c in commands if c not in covered and c not in {"data list"}]
    assert not missing, f"add bad-input cases for {missing}"
