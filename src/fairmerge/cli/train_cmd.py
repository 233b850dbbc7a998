"""CLI commands: ``fairmerge train fft|lora|subgroups`` — thin wrappers over ``fairmerge.training``."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fairmerge.outputs_guard import check_output_dir, output_directory
from fairmerge.paths import CACHE_DIR_ENV, DATA_DIR_ENV, training_cache_dir

if TYPE_CHECKING:
    from fairmerge.training.config import Method

train_app = typer.Typer(
    help="Fine-tune θ_base (full, LoRA, or one per subgroup); results are cached and copied to --out.\n\n"
    'Several GPUs: accelerate launch --multi_gpu --num_processes 4 "$(which fairmerge)" train fft ... '
    "(or torchrun --nproc_per_node 4 ...); batch_size is per process.",
    no_args_is_help=True,
)

_CONFIG = typer.Argument(None, help="YAML with TrainConfig fields (top level or under 'train:').")
_DATA_DIR = typer.Option(None, "--data-dir", envvar=DATA_DIR_ENV, help="Directory with the data files.")
_OUT = typer.Option(
    ..., "--out", "-o", help="Output folder (written atomically; an earlier fairmerge output is replaced)."
)
_OVERWRITE = typer.Option(
    False, "--overwrite", help="Replace --out even if it holds files fairmerge did not write."
)
_DATASET = typer.Option("hatexplain", "--dataset", help="Registered dataset name.")
_LABEL_SCHEME = typer.Option(None, "--label-scheme", help="Dataset label scheme, e.g. hate or toxic.")
_MODEL = typer.Option("default", "--model", help="HF id or local dir ('default' = the bundled MiniLM).")
_CACHE_DIR = typer.Option(
    None,
    "--cache-dir",
    envvar=CACHE_DIR_ENV,
    help="Cache root, as for `fairmerge run` (fine-tunes live in DIR/training; default ~/.cache/fairmerge).",
)
_NO_CACHE = typer.Option(False, "--no-cache", help="Ignore cached results and train again.")
_SEED = typer.Option(None, "--seed", help="Override the config's seed (also seeds θ_base's head).")
_EPOCHS = typer.Option(None, "--epochs", help="Override the config's number of epochs.")
_LR = typer.Option(None, "--learning-rate", help="Override the config's learning rate.")
_MAX_TRAIN = typer.Option(None, "--max-train-samples", help="Stratified cap on training examples.")
_DEVICE = typer.Option(None, "--device", help="cpu or cuda (default: CUDA if available).")
_QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def _prepare(
    out: Path,
    overwrite: bool,
    config_path: Path | None,
    data_dir: Path | None,
    dataset_name: str,
    label_scheme: str | None,
    model: str,
    cache_dir: Path | None,
    no_cache: bool,
    **overrides: Any,
) -> tuple[Any, Any, Any, Path]:
    """Check ``out``, then load the config (``overrides``: the set command-line values), the
    dataset and the cache, and make θ_base."""
    from fairmerge.data import load_dataset
    from fairmerge.training import TrainConfig, TrainingCache, make_base_checkpoint

    check_output_dir(out, overwrite=overwrite, what="training output")  # before any training
    config = TrainConfig.from_yaml(config_path) if config_path is not None else TrainConfig()
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    options = {"label_scheme": label_scheme} if label_scheme is not None else {}
    dataset = load_dataset(dataset_name, data_dir, **options)
    cache = TrainingCache(training_cache_dir(cache_dir), enabled=not no_cache)
    base = make_base_checkpoint(model, seed=config.seed, cache=cache)
    return config, dataset, cache, base


def _publish(entries: dict[str, Path], out: Path, index: dict[str, Any] | None, overwrite: bool) -> None:
    """Copy cache entries into ``out`` (``""`` = out itself) atomically, plus an optional index file.

    Under a multi-process launcher only the main process writes.
    """
    from fairmerge.training.runtime import is_main_process, wait_for_everyone

    if not is_main_process():
        wait_for_everyone()
        return
    with output_directory(out, overwrite=overwrite, what="training output") as tmp:
        for relative, entry in entries.items():
            shutil.copytree(entry, tmp / relative if relative else tmp, dirs_exist_ok=True)
        if index is not None:
            (tmp / "subgroups.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    wait_for_everyone()


def _single_command(method: Method, summary: str, example: str) -> Callable[..., None]:
    """The ``train fft`` / ``train lora`` command: one fine-tune of θ_base, copied to --out."""

    def command(
        config: Path = _CONFIG,
        data_dir: Path = _DATA_DIR,
        out: Path = _OUT,
        dataset: str = _DATASET,
        label_scheme: str = _LABEL_SCHEME,
        model: str = _MODEL,
        cache_dir: Path = _CACHE_DIR,
        no_cache: bool = _NO_CACHE,
        seed: int = _SEED,
        epochs: int = _EPOCHS,
        learning_rate: float = _LR,
        max_train_samples: int = _MAX_TRAIN,
        device: str = _DEVICE,
        quiet: bool = _QUIET,
        overwrite: bool = _OVERWRITE,
    ) -> None:
        from fairmerge.training import train_fft, train_lora

        train_config, data, cache, base = _prepare(
            out, overwrite, config, data_dir, dataset, label_scheme, model, cache_dir, no_cache,
            seed=seed, epochs=epochs, learning_rate=learning_rate, max_train_samples=max_train_samples,
            device=device,
        )  # fmt: skip
        train = train_fft if method == "fft" else train_lora
        entry = train(data, base_dir=base, config=train_config, cache=cache, progress=not quiet)
        _publish({"": entry}, out, None, overwrite)
        typer.echo(f"{method} checkpoint: {out} (cache entry {entry})")

    command.__doc__ = f"{summary}\n\nExample: {example}"
    return command


train_app.command("fft")(
    _single_command(
        "fft",
        "Full fine-tuning of θ_base on the train split; best epoch chosen on val.",
        "fairmerge train fft --data-dir ../shared/data --out runs/fft --epochs 1 --max-train-samples 4000",
    )
)
train_app.command("lora")(
    _single_command(
        "lora",
        "LoRA fine-tune of θ_base; OUT holds the merged checkpoint and the adapter under OUT/adapter.",
        "fairmerge train lora lora.yaml --data-dir ../shared/data --out runs/lora",
    )
)


@train_app.command("subgroups")
def subgroups(
    config: Path = _CONFIG,
    data_dir: Path = _DATA_DIR,
    out: Path = _OUT,
    attribute: list[str] = typer.Option(
        ["race", "gender"], "--attribute", "-a", help="Attribute whose groups get a fine-tune; repeatable."
    ),
    strategy: str = typer.Option(
        "targeted", "--strategy", help="targeted, targeted+background, balanced or leave-one-in."
    ),
    min_train_size: int = typer.Option(50, "--min-train-size", help="Skip groups with fewer train posts."),
    dataset: str = _DATASET,
    label_scheme: str = _LABEL_SCHEME,
    model: str = _MODEL,
    cache_dir: Path = _CACHE_DIR,
    no_cache: bool = _NO_CACHE,
    seed: int = _SEED,
    epochs: int = _EPOCHS,
    learning_rate: float = _LR,
    max_train_samples: int = _MAX_TRAIN,
    device: str = _DEVICE,
    quiet: bool = _QUIET,
    overwrite: bool = _OVERWRITE,
) -> None:
    """One fine-tune of θ_base per group; writes OUT/<attribute>/<group>/ and OUT/subgroups.json.

    Example: fairmerge train subgroups --data-dir ../shared/data --out runs/sub -a race --strategy balanced
    """
    from fairmerge.training import train_subgroups

    train_config, data, cache, base = _prepare(
        out, overwrite, config, data_dir, dataset, label_scheme, model, cache_dir, no_cache,
        seed=seed, epochs=epochs, learning_rate=learning_rate, max_train_samples=max_train_samples,
        device=device,
    )  # fmt: skip
    paths = train_subgroups(
        data,
        attribute,
        base_dir=base,
        config=train_config,
        strategy=strategy,
        min_train_size=min_train_size,
        cache=cache,
        progress=not quiet,
    )
    entries = {f"{_safe(a)}/{_safe(g)}": path for (a, g), path in paths.items()}
    index = {
        "base": str(base),
        "strategy": strategy,
        "checkpoints": [
            {"attribute": a, "group": g, "dir": f"{_safe(a)}/{_safe(g)}", "cache_entry": str(path)}
            for (a, g), path in paths.items()
        ],
    }
    _publish(entries, out, index, overwrite)
    typer.echo(f"{len(paths)} subgroup checkpoint(s) in {out} (index: {out / 'subgroups.json'})")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def register(app: typer.Typer) -> None:
    """Add the ``train`` command group to the root app."""
    app.add_typer(train_app, name="train")
