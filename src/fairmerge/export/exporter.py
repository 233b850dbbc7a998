"""``export_model``: one selected point of a finished run as a plain Hugging Face checkpoint.

The folder holds config.json (readable ``id2label``), model.safetensors, the tokenizer or image
processor, README.md (the model card), mergekit.yaml and fairmerge.json. Everything is checked and
computed first; the folder is then written atomically (nothing appears on failure).
"""

from __future__ import annotations

import json
from pathlib import Path

from fairmerge.data.images import ImageInputFormat
from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError
from fairmerge.export.calibration import validation_threshold
from fairmerge.export.card import model_card
from fairmerge.export.ingredients import find_ingredients
from fairmerge.export.recipe import export_record, mergekit_yaml
from fairmerge.export.remote_code import needs_remote_code, write_remote_code
from fairmerge.export.run_folder import RunFolder
from fairmerge.export.weights import fold_threshold, rebuild
from fairmerge.models import load_processor
from fairmerge.outputs_guard import check_output_dir, output_directory
from fairmerge.study.evaluator import evaluation_view
from fairmerge.study_split import EXPORT_RECORD

FLAG = "-o"
WHAT = "fairmerge export"


def run_dataset(run: RunFolder, data_dir: str | Path | None) -> GroupedTextDataset:
    """The run's dataset (the same files, checked by hash), cut to the run's evaluation view."""
    config = run.config
    from fairmerge.study.run import load_study_dataset

    dataset = load_study_dataset(config, data_dir)
    recorded = (run.summary.get("provenance") or {}).get("data_files_sha256")
    if recorded and recorded != dataset.provenance:
        changed = sorted(
            k for k in set(recorded) | set(dataset.provenance) if recorded.get(k) != dataset.provenance.get(k)
        )
        raise DataError(
            f"the data files differ from the run's ({', '.join(changed[:3])}); export with the run's data"
        )
    evaluation = config.evaluation
    return evaluation_view(
        dataset, evaluation.max_val_samples, evaluation.max_test_samples, config.attributes
    )


def id2label(label_scheme: str) -> dict[int, str]:
    """Readable class names from the dataset's label scheme ('hate: …' → not hate / hate)."""
    positive = label_scheme.split(":")[0].strip() or "positive"
    return {0: f"not {positive}", 1: positive}


def export_model(
    run_dir: str | Path,
    out: str | Path,
    *,
    label: str | None = None,
    seed: int | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Rebuild ``label`` (default: the verdict's headline model) of ``seed`` (default: the first)
    from the run's cache and write it to ``out``; return ``out``."""
    out = check_output_dir(out, overwrite=overwrite, flag=FLAG, what=WHAT)
    run = RunFolder.read(run_dir)
    chosen = label or run.headline_label()
    point = run.selected(chosen, run.check_seed(seed))
    dataset = run_dataset(run, data_dir)
    cache_root = Path(cache_dir).expanduser() if cache_dir else run.cache_root()
    ingredients = find_ingredients(run, point, dataset, cache_root)
    model = rebuild(ingredients)
    processor = load_processor(str(ingredients.start))
    threshold = bias = None
    if point.label.calibrated:
        threshold = validation_threshold(model, processor, dataset, run.scored_config)
        bias = fold_threshold(model, threshold)
    names = id2label(run.summary["label_scheme"])
    model.config.id2label = names
    model.config.label2id = {name: index for index, name in names.items()}
    task = "image-classification" if dataset["val"].modality == "image" else "text-classification"
    card = model_card(run, ingredients, threshold=threshold, task=task)
    record = export_record(
        ingredients,
        run_dir=str(run.path.resolve()),
        study_config=run.scored_config.to_dict(),
        threshold=threshold,
        bias=bias,
        id2label=names,
    )
    with output_directory(out, overwrite=overwrite, flag=FLAG, what=WHAT) as tmp:
        if needs_remote_code(model):
            write_remote_code(model, tmp)
        model.save_pretrained(tmp)
        if isinstance(processor, ImageInputFormat):
            processor.save_pretrained(tmp)
        else:
            processor.model_max_length = (
                run.config.evaluation.max_length
            )  # pipeline(truncation=True) cuts here
            processor.save_pretrained(tmp)
        card.save(tmp / "README.md")
        (tmp / "mergekit.yaml").write_text(mergekit_yaml(ingredients), encoding="utf-8")
        (tmp / EXPORT_RECORD).write_text(
            json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return out


def export_headline(
    run_dir: str | Path, out: str | Path, *, data_dir: str | Path | None = None, overwrite: bool = False
) -> Path:
    """The headline model of a finished run, exported to ``out`` (``fairmerge run … --export``)."""
    return export_model(run_dir, out, data_dir=data_dir, overwrite=overwrite)
