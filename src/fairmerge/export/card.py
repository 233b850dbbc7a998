"""The exported model's card (``README.md``, Hugging Face model-card format), every number from the run.

Metadata (``base_model``, ``datasets``, ``license``, ``tags``, ``model-index``) is written through
``huggingface_hub.ModelCardData``; the body is tables of ``metrics.csv``'s test rows and
``summary.json``'s comparisons, gap groups, verdict and target quality. Undefined numbers read n/a.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from fairmerge.export.ingredients import Ingredients
from fairmerge.export.run_folder import RunFolder

HUB_BASES = {"default": "sentence-transformers/all-MiniLM-L6-v2"}
DATASETS = {  # registry name → (Hub dataset id, license of the exported weights)
    "hatexplain": ("Hate-speech-CNERG/hatexplain", "cc-by-4.0"),
    "sbic": ("allenai/social_bias_frames", "cc-by-4.0"),
    "mhs": ("ucberkeley-dlab/measuring-hate-speech", "cc-by-4.0"),
    "civil_comments": ("google/civil_comments", "cc0-1.0"),
    "utkface": ("utkface", "other"),
}
GROUP_METRICS = ("accuracy", "selection_rate", "tpr", "fpr")
GAPS = ("dpd", "eod", "tpr_gap", "fpr_gap")


def number(value: Any, digits: int = 4) -> str:
    """A number as the card prints it; None / NaN read n/a, and words (e.g. "out of reach") stay."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{float(value):.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _with_ci(row: pd.Series) -> str:
    if pd.isna(row.ci_low):
        return number(row.value)
    return f"{number(row.value)} [{number(row.ci_low)}, {number(row.ci_high)}]"


def _value(rows: pd.DataFrame, attribute: str, group: str, metric: str) -> pd.Series | None:
    found = rows[(rows.attribute == attribute) & (rows.group == group) & (rows.metric == metric)]
    return None if found.empty else found.iloc[0]


def group_table(rows: pd.DataFrame) -> str:
    """Per attribute and group: n, then each metric with its 95 % interval."""
    body = []
    groups = rows[(rows.metric == "n")][["attribute", "group"]].drop_duplicates()
    for attribute, group in groups.itertuples(index=False):
        n = _value(rows, attribute, group, "n")
        cells = [
            _with_ci(r) if (r := _value(rows, attribute, group, m)) is not None else "n/a"
            for m in GROUP_METRICS
        ]
        body.append([attribute, group, number(None if n is None else n.value, 0), *cells])
    return _table(["attribute", "group", "n", *GROUP_METRICS], body)


def gap_table(rows: pd.DataFrame, attributes: Sequence[str]) -> str:
    """Per attribute and gap: value with interval, and the permutation noise floor and p-value."""
    body = []
    for attribute in attributes:
        for gap in GAPS:
            row = _value(rows, attribute, "all", gap)
            if row is None:
                continue
            floor = _value(rows, attribute, "all", f"{gap}_noise_floor")
            p = _value(rows, attribute, "all", f"{gap}_perm_p")
            body.append(
                [
                    attribute,
                    gap,
                    _with_ci(row),
                    number(None if floor is None else floor.value),
                    number(None if p is None else p.value),
                ]
            )
    return _table(["attribute", "gap", "value [95% CI]", "noise floor", "permutation p"], body)


def comparison_table(comparisons: Sequence[dict[str, Any]]) -> str:
    body = [
        [
            c["attribute"],
            c["metric"],
            f"{number(c['delta'])} [{number(c['ci_low'])}, {number(c['ci_high'])}]",
            number(c["p_value"]),
            _holm_cell(c),
            number(c.get("mde")),
            str(c.get("n_seeds") or "n/a"),
            c.get("method") or c.get("reason") or "",
        ]
        for c in comparisons
    ]
    header = ["attribute", "metric", "Δ vs FFT [95% CI]", "p", "Holm p", "MDE", "seeds", "interval"]
    return _table(header, body)


def _holm_cell(comparison: dict[str, Any]) -> str:
    if comparison["primary"]:
        return "primary (not adjusted)"
    if comparison.get("role") == "exploratory":
        return "exploratory (no claim)"
    return number(comparison["p_holm"])


def left_out_table(gap_groups: Sequence[dict[str, Any]]) -> str:
    rows = [g for g in gap_groups if not g.get("entered")]
    if not rows:
        return "Every test group entered every gap."
    body = [
        [g["attribute"], g["metric"], g["group"], number(g.get("n"), 0), g.get("reason", "")] for g in rows
    ]
    return _table(["attribute", "gap", "group", "n", "why left out"], body)


def target_table(quality: Sequence[dict[str, Any]] | None) -> str:
    if not quality:
        return "The subgroup fine-tunes were trained on gold group targets (no weak targets)."
    body = [
        [
            q.get("vector", q["group"]),
            q["attribute"],
            number(q.get("precision")),
            number(q.get("recall")),
            q.get("flag") or "",
        ]
        for q in quality
    ]
    return (
        "The subgroup vectors were trained on weak (automatically assigned) group targets; their "
        "measured agreement with the gold targets:\n\n"
        + _table(["vector", "attribute", "precision", "recall", "flag"], body)
    )


def power_statement(summary: dict[str, Any]) -> str:
    power = summary.get("power")
    mde = summary.get("mde") or {}
    smallest = "; ".join(
        f"{attribute}: ΔDPD {number(v.get('dpd'), 3)}, ΔEOD {number(v.get('eod'), 3)}"
        for attribute, v in mde.items()
    )
    detectable = f" Smallest differences this test split can detect (80 % power, α = 0.05): {smallest}."
    if power is None:
        return (
            "summary.json has no `power` field: the run recorded no power analysis beyond the "
            "minimum detectable differences." + detectable
        )
    return (
        f"Simulated power of the primary comparison to detect a true Δ of {number(power.get('effect'), 2)} "
        f"with {power.get('n_seeds')} seed(s) at α = {number(power.get('alpha'), 2)}: "
        f"{number(power.get('power'), 2)} (Monte-Carlo SE {number(power.get('se'), 2)})." + detectable
    )


def eval_results(
    rows: pd.DataFrame, attributes: Sequence[str], dataset: tuple[str, str], task: str
) -> list[EvalResult]:
    """model-index entries: overall accuracy and every defined DPD / EOD on test."""
    wanted = [("all", "accuracy", "accuracy", "accuracy")]
    wanted += [(a, g, f"{g}", f"{a} {g.upper()}") for a in attributes for g in ("dpd", "eod")]
    results = []
    for attribute, metric, kind, name in wanted:
        row = _value(rows, attribute, "all", metric)
        if row is None or pd.isna(row.value):
            continue
        results.append(
            EvalResult(
                task_type=task,
                dataset_type=dataset[0],
                dataset_name=dataset[0],
                dataset_split="test",
                metric_type=kind,
                metric_name=name,
                metric_value=float(row.value),
            )
        )
    return results


def model_card(run: RunFolder, ingredients: Ingredients, *, threshold: float | None, task: str) -> ModelCard:
    """The card of one exported point (see the module docstring)."""
    summary = run.summary
    point = ingredients.point
    label = str(point.label)
    rows = run.test_rows(label, point.seed)
    fft = run.test_rows("fft", point.seed)
    dataset = DATASETS.get(summary["dataset"], (summary["dataset"], "other"))
    base = HUB_BASES.get(summary["model"], summary["model"])
    data = ModelCardData(
        base_model=base,
        datasets=[dataset[0]],
        license=dataset[1],
        license_name="utkface-non-commercial-research" if dataset[1] == "other" else None,
        tags=["fairmerge", "task-arithmetic", "model-merging", "fairness", task],
        pipeline_tag=task,
        model_name=f"fairmerge {summary['dataset']} {label}",
        eval_results=eval_results(rows, summary["attributes"], dataset, task) or None,
    )
    comparisons = [c for c in summary["comparisons"] if c["model"] == label]
    return ModelCard.from_template(
        data,
        template_str=_TEMPLATE,
        **_sections(run, ingredients, rows, fft, comparisons, threshold, base, task),
    )


def _sections(
    run: RunFolder,
    ingredients: Ingredients,
    rows: pd.DataFrame,
    fft: pd.DataFrame,
    comparisons: list[dict[str, Any]],
    threshold: float | None,
    base: str,
    task: str,
) -> dict[str, str]:
    summary = run.summary
    point = ingredients.point
    selection = summary["selection"]
    coefficients = _table(
        ["vector", "checkpoint", "weight"],
        [[f.name, f.path.name[:12], number(f.weight, 6)] for f in ingredients.finetunes],
    )
    lam = "per group" if point.lambdas else number(point.lam, 4)
    decision = (
        f"The validation-chosen threshold t = {threshold!r} is folded into the head's bias (label 1 "
        f"shifted by −logit(t)), so plain argmax predicts 1 exactly when fairmerge's P(y=1) > t."
        if threshold is not None
        else "Decisions are the argmax of the two logits (P(y=1) > 0.5)."
    )
    return {
        "label": str(point.label),
        "seed": str(point.seed),
        "dataset": summary["dataset"],
        "label_scheme": summary["label_scheme"],
        "base": base,
        "start": ingredients.start_name,
        "method": ingredients.method,
        "convention": ingredients.convention,
        "lam": lam,
        "coefficients": coefficients,
        "rule": f"{point.rule} (ε = {selection['epsilon']}, δ = {selection['delta']}, "
        f"chosen on {selection['split']}): {point.reason}"
        + ("" if point.feasible else " — no point met the rule's constraint"),
        "decision": decision,
        "groups": group_table(rows),
        "gaps": gap_table(rows, summary["attributes"]),
        "fft_groups": gap_table(fft, summary["attributes"]),
        "fft_accuracy": _with_ci(r) if (r := _value(fft, "all", "all", "accuracy")) is not None else "n/a",
        "comparisons": comparison_table(comparisons)
        if comparisons
        else "No comparison with FFT was recorded for this model.",
        "verdict": summary["verdict"],
        "power": power_statement(summary),
        "left_out": left_out_table(summary.get("gap_groups") or []),
        "targets": target_table(summary.get("target_quality")),
        "notes": " ".join(str(n) for n in (summary.get("provenance") or {}).get("dataset_notes") or [])
        or "none",
        "usage": _usage(task),
    }


def _usage(task: str) -> str:
    if task == "text-classification":
        return (
            "```python\nfrom transformers import pipeline\n"
            'classify = pipeline("text-classification", model="DIR")\n'
            "# truncation=True: the study truncated to the tokenizer's model_max_length\n"
            'classify("some post", truncation=True)\n```'
        )
    return (
        "```python\nfrom transformers import pipeline\n"
        'classify = pipeline("image-classification", model="DIR", trust_remote_code=True)\n'
        "# trust_remote_code: the bundled EfficientNet-Lite ships its model code in DIR\n"
        'classify("face.jpg")\n```'
    )


_TEMPLATE = """---
{{ card_data }}
---

# {{ label }} (fairmerge export, seed {{ seed }})

A {{ dataset }} classifier ({{ label_scheme }}) exported by `fairmerge export` from a finished study.

## What was merged and how

- Base model: `{{ base }}`; this model starts from {{ start }} and adds weighted subgroup task vectors
  (merge method `{{ method }}`, λ convention `{{ convention }}`, λ = {{ lam }}).
- Rule that chose the coefficients: {{ rule }}.
- Decision: {{ decision }}

{{ coefficients }}

## Test results by group

Every number is from the run's `metrics.csv` (test split, 95 % bootstrap intervals in brackets).

{{ groups }}

Gaps, each next to its permutation noise floor:

{{ gaps }}

## Comparison with full fine-tuning (FFT)

FFT's test accuracy: {{ fft_accuracy }}. FFT's gaps:

{{ fft_groups }}

This model minus FFT on test (`summary.json` comparisons):

{{ comparisons }}

Verdict of the run: {{ verdict }}

{{ power }}

## Groups left out of each gap

{{ left_out }}

## Known weaknesses

{{ targets }}

Dataset notes: {{ notes }}

## Intended use

Research on group fairness of {{ dataset }} classifiers and on model merging: reproducing and
auditing the study's numbers, and comparing against FFT.

## Out-of-scope use

Automated moderation, screening or any decision about people without human review; groups, languages
or domains the table above does not cover; any use the dataset's terms forbid.

## How to use

{{ usage }}

`fairmerge.json` records the run, its config, seed, coefficients, threshold and cache entries;
`mergekit.yaml` rebuilds the weights with mergekit (before the threshold's bias shift).
`fairmerge evaluate DIR --dataset {{ dataset }} --split test` re-scores this folder on the run's
test posts and reproduces the test table above (values and intervals).
"""
