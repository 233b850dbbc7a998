"""CLI commands: ``fairmerge vector``, ``fairmerge merge`` and ``fairmerge inspect`` (task vectors)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table

from fairmerge.errors import ConfigError, VectorError
from fairmerge.outputs_guard import check_new_output, check_output_file, writing
from fairmerge.vectors import METHODS, TaskVector, merge_checkpoints
from fairmerge.vectors.merge import validate_merge_args

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})
_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def parse_size(text: str) -> int:
    """``"5GB"`` → 5·10⁹ bytes, ``"500MiB"`` → 500·2²⁰ bytes, ``"1000"`` → 1000 bytes."""
    match = _SIZE.match(text)
    if not match or match[2].lower() not in _UNITS:
        raise ConfigError(f"cannot read size {text!r}; write e.g. 5GB, 500MB or 2GiB")
    size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < 1:
        raise ConfigError(f"size {text!r} must be positive")
    return size


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("vector")(vector)
    app.command("merge")(merge)
    app.command("inspect")(inspect_vectors)


def vector(
    base: Path = typer.Argument(..., help="Base checkpoint directory (Hugging Face format)."),
    finetuned: Path = typer.Argument(
        ..., help="Fine-tuned checkpoint directory (same architecture) or peft LoRA adapter folder."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Task vector file to write (.safetensors)."),
    exclude_head: bool = typer.Option(False, "--exclude-head", help="Leave the classification head out."),
    dtype: str | None = typer.Option(
        None, "--dtype", help="Store deltas in this dtype (float32, bfloat16, ...); default: the base's."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUTPUT if it exists (without it, an existing file is an error)."
    ),
) -> None:
    """Write the task vector τ = FINETUNED − BASE as safetensors, reading one tensor at a time.

    FINETUNED may be a peft LoRA adapter folder (adapter_config.json): τ is then its exact low-rank
    update, plus the weights it saves in full against BASE.

    Example: fairmerge vector runs/base runs/ft-african -o tau_african.safetensors
    """
    check_output_file(output, overwrite=overwrite, flag="--output")
    if dtype is not None and dtype not in _DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    chosen = _DTYPES[dtype] if dtype else None
    if is_adapter(finetuned):
        tau = TaskVector.from_lora_adapter(finetuned, base, include_head=not exclude_head, dtype=chosen)
    else:
        tau = TaskVector.from_checkpoints(base, finetuned, include_head=not exclude_head, dtype=chosen)
    if len(tau) == 0:
        raise VectorError(f"{base} and {finetuned} share no float tensor: the task vector would be empty")
    with writing(output):
        tau.save(output)
    typer.echo(f"wrote {output}: {len(tau)} tensors, {tau.num_parameters:,} parameters")


def merge(
    base: Path = typer.Argument(..., help="Checkpoint directory the vectors are added to."),
    vectors: list[Path] = typer.Option(..., "--vector", "-v", help="Task vector file (repeatable)."),
    lambdas: list[float] = typer.Option(
        ..., "--lambda", "-l", help="Coefficient: once for all vectors, or once per --vector in order."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output checkpoint directory."),
    method: str = typer.Option(
        "task_arithmetic", "--method", "-m", help=f"Merge method: {' | '.join(METHODS)}."
    ),
    density: float | None = typer.Option(
        None, "--density", help="ties/dare: share of each vector's coordinates kept, in (0, 1]."
    ),
    seed: int = typer.Option(0, "--seed", help="dare: random seed."),
    max_shard_size: str = typer.Option("5GB", "--max-shard-size", help="Largest output shard, e.g. 2GB."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUTPUT if it exists (without it, an existing path is an error)."
    ),
) -> None:
    """Write BASE + combine(λ, τ) as a checkpoint directory that transformers loads as is.

    Streams tensor by tensor, so models larger than memory merge too. Config and tokenizer files
    of BASE are copied. With --method inject, BASE may be any model with matching keys
    (e.g. the full fine-tune: θ_FFT + λ·τ_worst).

    Example: fairmerge merge runs/base -v tau_a.safetensors -l 0.3 -v tau_b.safetensors -l 0.5 -o merged
    """
    shard_bytes = parse_size(max_shard_size)
    validate_merge_args(len(vectors), lambdas, method=method, density=density, seed=seed)
    check_new_output(output, overwrite=overwrite, flag="--output")
    with writing(output):
        out = merge_checkpoints(
            base,
            [_nonempty(path, base, method) for path in vectors],
            lambdas,
            output,
            method=method,
            density=density,
            seed=seed,
            max_shard_bytes=shard_bytes,
            overwrite=overwrite,
            progress=True,
        )
    typer.echo(f"wrote {out}")


def is_adapter(path: Path) -> bool:
    """Whether ``path`` is a peft adapter folder."""
    return path.is_dir() and (path / "adapter_config.json").is_file()


def _nonempty(path: Path, base: Path, method: str) -> TaskVector:
    """The vector saved at ``path`` (a file, or a LoRA adapter folder against ``base``), read lazily;
    one with no tensor would merge to a copy of the base."""
    if is_adapter(path):
        if method == "inject":
            raise VectorError(
                f"--vector {path} is a LoRA adapter, whose fully saved weights are deltas against its "
                f"own base, not {base}; write its vector first: fairmerge vector ADAPTER_BASE {path} "
                "-o tau.safetensors"
            )
        tau = TaskVector.from_lora_adapter(path, base, lazy=True)
    elif path.is_dir():
        raise VectorError(f"--vector {path} is a folder: give a task vector file or a LoRA adapter folder")
    else:
        tau = TaskVector.load(path, lazy=True)
    if len(tau) == 0:
        raise VectorError(f"--vector {path} holds no tensor; merging it would only copy the base")
    return tau


def inspect_vectors(
    vectors: list[Path] = typer.Argument(..., help="Task vector files."),
    per_tensor: bool = typer.Option(
        False, "--per-tensor", help="Norm of every tensor instead of every layer."
    ),
) -> None:
    """Print each vector's size, dtype, origin and norms (global and per layer), then the
    pairwise cosine similarity and sign-conflict rate.

    Example: fairmerge inspect tau_african.safetensors tau_arab.safetensors
    """
    console = Console()
    folders = [path for path in vectors if path.is_dir()]
    if folders:
        raise VectorError(
            f"{folders[0]} is a folder, not a task vector file; write one first with "
            "fairmerge vector BASE FINETUNED_OR_ADAPTER -o tau.safetensors"
        )
    loaded = [TaskVector.load(path, lazy=True) for path in vectors]
    names = [path.name for path in vectors]
    for name, tau in zip(names, loaded, strict=True):
        info = tau.summary("tensor" if per_tensor else "layer")
        head = Table(title=name, show_header=False)
        head.add_row("tensors", f"{info['tensors']:,}")
        head.add_row("parameters", f"{info['parameters']:,}")
        head.add_row("size", f"{info['bytes'] / 1e6:,.2f} MB")
        head.add_row("dtype", ", ".join(info["dtypes"]))
        head.add_row("norm", f"{info['norm']:.6g}")
        for key, value in sorted(info["metadata"].items()):
            head.add_row(key, value)
        console.print(head)
        norms = Table(title=f"{name}: norm per {'tensor' if per_tensor else 'layer'}")
        norms.add_column("tensor" if per_tensor else "layer")
        norms.add_column("norm", justify="right")
        for layer, value in info["norms"].items():
            norms.add_row(layer, f"{value:.6g}")
        console.print(norms)
    if len(loaded) > 1:
        pairs = Table(title="pairwise similarity")
        pairs.add_column("vector a")
        pairs.add_column("vector b")
        pairs.add_column("cosine", justify="right")
        pairs.add_column("sign conflicts", justify="right")
        for (i, a), (j, b) in itertools.combinations(enumerate(loaded), 2):
            pairs.add_row(
                names[i], names[j], f"{a.cosine_similarity(b):.4f}", f"{a.sign_conflict_rate(b):.4f}"
            )
        console.print(pairs)
