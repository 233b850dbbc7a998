"""``mergekit.yaml`` (rebuild the weights outside fairmerge) and ``fairmerge.json`` (what was exported).

Every exported point is a task-arithmetic combination of full checkpoints (a LoRA fine-tune's cache
entry is its merged checkpoint), so mergekit's ``task_arithmetic`` rebuilds it: θ_base plus each
fine-tune's weight; an injection θ_FFT + λ·τ_g is θ_base + 1·(θ_FFT − θ_base) + λ·(θ_g − θ_base).
mergekit cannot shift a bias: a calibrated point's bias shift is applied afterwards (docs/export.md).
"""

from __future__ import annotations

from typing import Any

import yaml

from fairmerge.export.ingredients import Ingredients


def mergekit_config(ingredients: Ingredients) -> dict[str, Any]:
    """A mergekit config whose output equals the exported weights before any threshold fold."""
    models = [{"model": str(f.path), "parameters": {"weight": f.weight}} for f in ingredients.finetunes]
    if ingredients.method == "inject":
        models.insert(0, {"model": str(ingredients.start), "parameters": {"weight": 1.0}})
    return {
        "merge_method": "task_arithmetic",
        "base_model": str(ingredients.base),
        "models": models,
        "parameters": {"normalize": False},
        "dtype": "float32",
    }


def mergekit_yaml(ingredients: Ingredients) -> str:
    head = (
        f"# {ingredients.point.label} of seed {ingredients.point.seed}, rebuilt by mergekit from the "
        "fairmerge training cache.\n# Run: mergekit-yaml mergekit.yaml OUT_DIR. A @calibrated model "
        "also needs fairmerge.json's bias shift (docs/export.md).\n"
    )
    return head + yaml.safe_dump(mergekit_config(ingredients), sort_keys=False)


def export_record(
    ingredients: Ingredients,
    *,
    run_dir: str,
    study_config: dict[str, Any],
    threshold: float | None,
    bias: tuple[str, float] | None,
    id2label: dict[int, str],
) -> dict[str, Any]:
    """``fairmerge.json``: run, seed, label, coefficients, threshold and cache entries of the export.

    ``study_config`` (the run's resolved config) and ``seed`` let ``fairmerge evaluate DIR --dataset``
    score the run's own split with the run's settings (:func:`fairmerge.study_split.exported_run`).
    """
    point = ingredients.point
    return {
        "run": run_dir,
        "seed": point.seed,
        "label": str(point.label),
        "family": point.label.family,
        "start": {"name": ingredients.start_name, "path": str(ingredients.start)},
        "base": str(ingredients.base),
        "merge_method": ingredients.method,
        "lambda_convention": ingredients.convention,
        "lambda": point.lam,
        "lambdas": point.lambdas,
        "coefficients": {f.name: f.weight for f in ingredients.finetunes},
        "selection": {"rule": point.rule, "feasible": point.feasible, "reason": point.reason},
        "decision": point.label.decision,
        "threshold": threshold,
        "decision_rule": "positive when P(y=1) > threshold" if threshold is not None else "argmax",
        "bias_shift": None if bias is None else {"tensor": bias[0], "added_to_label_1": bias[1]},
        "id2label": {str(k): v for k, v in id2label.items()},
        "cache_entries": {
            name: {"kind": path.parent.name, "key": path.name, "path": str(path)}
            for name, path in ingredients.cache_entries.items()
        },
        "study_config": study_config,
    }
