"""The study's report: one self-contained HTML file (figures embedded as base64, no JS, no external URL).

``write_report`` draws every figure into ``OUT/plots`` and writes ``OUT/report.html``. The figures are
drawn into a temporary directory that replaces ``OUT/plots`` only once the whole HTML is built, and the
HTML file is written atomically, so bad input leaves no partial output behind.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from fairmerge.atomic import atomic_directory, atomic_write_text
from fairmerge.errors import DataError
from fairmerge.report import plots, search_figures
from fairmerge.report.comparison_table import LEGEND, comparison_matrix
from fairmerge.report.frames import attributes_of, group_sizes, validate_metrics
from fairmerge.report.reading import how_to_read
from fairmerge.report.tables import (
    NA,
    comparison_display,
    display_headline,
    fmt_count,
    fmt_lambda,
    fmt_number,
    fmt_plain,
    fmt_significant,
    format_metric_table,
    group_size_table,
    multi_seed_tables,
    records_table,
    select_columns,
    strategy_display,
)
from fairmerge.study.summary import StudySummary
from fairmerge.study.verdict import classify, headline_text

REPORT_NAME = "report.html"
PLOTS_DIR = "plots"
BOUND_COLUMNS: tuple[str, ...] = ("lambda", "attribute", "observed_dpd", "bound")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1500px; margin: 0 auto; padding: 1em 2em; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
nav a { margin-right: 0.9em; font-size: 0.9em; }
table.tbl { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em 0; }
table.tbl th, table.tbl td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
table.tbl th { background: #f4f6f8; }
table.tbl td:first-child, table.tbl th:first-child { text-align: left; }
table.tbl tr:nth-child(even) td { background: #fbfbfb; }
.side-by-side { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
figure { margin: 0.5em 0 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 70em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
.note { background: #f5f8ff; border-left: 4px solid #5b7bd5; padding: 0.5em 1em; }
.verdict { background: #fffaf0; border-left: 4px solid #e0a030; padding: 0.5em 1em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
"""

BOUND_ASSUMPTIONS = (
    "The bound follows the merge path θ(λ) = θ_base + λ·τ with τ = Σ τ_g. It assumes that each "
    "qualifying group's selection rate s_g is Lipschitz along that one direction: |s_g(λ) − s_g(λ′)| "
    "≤ L_g·|λ − λ′|·‖τ‖. Then DPD(λ) ≤ DPD(0) + (L(1) + L(2))·λ·‖τ‖, with L(1) ≥ L(2) the two "
    "largest constants. The constants are estimated by finite differences on the validation λ grid, "
    "so the bound is empirical, not certified: on the grid used for the estimate it holds by "
    "construction, and only λ held out from the estimate can falsify it. It ignores sampling noise "
    "in small groups, it is computed for the argmax decision at a fixed threshold, it covers the "
    "single merge direction (not per-group coefficients), and it says nothing certain about test. "
    "A bound above 1 is vacuous, since DPD never exceeds 1. The derivation and its limits are in "
    "<code>docs/bound.md</code> of the fairmerge repository."
)


def write_report(
    out_dir: Path,
    *,
    metrics: pd.DataFrame,
    summary: StudySummary | Mapping[str, Any],
    similarity: pd.DataFrame | None,
    bound: pd.DataFrame | None,
    strategies: pd.DataFrame | None,
    provenance: dict[str, Any],
) -> Path:
    """Write ``out_dir/plots/*.png`` and the self-contained ``out_dir/report.html``; return the report path.

    Parameters
    ----------
    out_dir : the study's output directory.
    metrics : the tidy ``metrics.csv`` table (``model, lambda, split, attribute, group, metric, value,
        ci_low, ci_high``).
    summary : ``summary.json`` as read (validated once as a :class:`StudySummary`), or the summary.
    similarity : square cosine-similarity table between subgroup task vectors, or None.
    bound : rows ``lambda, attribute, observed_dpd, bound`` along the merge path, or None.
    strategies : one row per (strategy, decision) with the selected λ and test metrics, or None.
    provenance : config, data file hashes, model hash, package versions, seeds.
    """
    metrics = validate_metrics(metrics)
    summary = read_summary(summary)
    _check_inputs(similarity, bound, strategies, provenance)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_directory(out_dir / PLOTS_DIR, overwrite=True) as plot_dir:
        figures = _draw(plot_dir, metrics, summary, similarity, bound)
        figures.update(search_figures.plot_search(out_dir / "pareto_front.csv", plot_dir))
        images = {k: base64.b64encode(p.read_bytes()).decode("ascii") for k, p in figures.items() if p}
        document = render_html(
            metrics=metrics,
            summary=summary,
            bound=bound,
            strategies=strategies,
            provenance=provenance,
            images=images,
        )
    report = out_dir / REPORT_NAME
    atomic_write_text(report, document)
    return report


def _draw(
    plot_dir: Path,
    metrics: pd.DataFrame,
    summary: StudySummary,
    similarity: pd.DataFrame | None,
    bound: pd.DataFrame | None,
) -> dict[str, Path | None]:
    """Every study figure into ``plot_dir``, by section (None: nothing to draw)."""
    selected = summary.selected
    return {
        "curves": plots.plot_lambda_curves(metrics, selected, plot_dir / "lambda_curves.png"),
        "per-group": plots.plot_group_accuracy(metrics, selected, plot_dir / "group_accuracy.png"),
        "pareto": plots.plot_pareto(metrics, selected, plot_dir / "pareto.png"),
        "injection": plots.plot_injection_effects(
            metrics, summary.worst_group.group, plot_dir / "injection_effects.png"
        ),
        "similarity": plots.plot_similarity(similarity, plot_dir / "similarity.png"),
        "bound": plots.plot_bound(bound, plot_dir / "bound.png"),
        "comparisons": plots.plot_comparisons(
            comparison_rows(summary),
            plot_dir / "comparisons.png",
            delta=summary.selection.delta,
            unedited=summary.unedited(),
        ),
        "training": plots.plot_training_curves(summary.training_curves, plot_dir / "training_curves.png"),
    }


def read_summary(summary: StudySummary | Mapping[str, Any]) -> StudySummary:
    """``summary.json``'s content as a :class:`StudySummary` (a one-line error naming the bad field)."""
    if isinstance(summary, StudySummary):
        return summary
    if not isinstance(summary, Mapping):
        raise DataError(f"summary must be a mapping (summary.json), got {type(summary).__name__}")
    try:
        return StudySummary.model_validate(summary)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DataError(f"summary.json: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def comparison_rows(summary: StudySummary) -> list[dict[str, Any]]:
    """The comparisons as plain rows, for the table and plot helpers the terminal output shares."""
    return [comparison.model_dump() for comparison in summary.comparisons]


def _check_inputs(similarity: Any, bound: Any, strategies: Any, provenance: Any) -> None:
    """Reject malformed optional inputs before anything is drawn."""
    if not isinstance(provenance, Mapping):
        raise DataError(f"provenance must be a mapping, got {type(provenance).__name__}")
    for name, frame in (("similarity", similarity), ("bound", bound), ("strategies", strategies)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise DataError(f"{name} must be a pandas DataFrame or None, got {type(frame).__name__}")
    if similarity is not None and similarity.shape[0] != similarity.shape[1]:
        raise DataError(f"similarity must be square (groups × groups), got shape {similarity.shape}")
    if bound is not None:
        missing = [c for c in BOUND_COLUMNS if c not in bound.columns]
        if missing:
            raise DataError(f"bound is missing columns {missing}; expected {list(BOUND_COLUMNS)}")


# ---------------------------------------------------------------------------------------------- HTML


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return f"<p>{NA}</p>"
    return frame.to_html(index=False, escape=True, border=0, classes="tbl", na_rep=NA)


def _figure(images: Mapping[str, str], key: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="data:image/png;base64,{images[key]}" alt="{_esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}">\n<h2>{_esc(title)}</h2>\n{body}\n</section>'


def _facts(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(fmt_plain(v))}</dd>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>'


def _paragraphs(text: str, css_class: str) -> str:
    parts = [p.strip() for p in str(text).split("\n\n") if p.strip()]
    body = "".join(f"<p>{_esc(p)}</p>".replace("\n", "<br>") for p in parts)
    return f'<div class="{css_class}">{body}</div>'


def _verdict_block(summary: StudySummary, images: Mapping[str, str]) -> str:
    """The headline, the comparison table, the forest plot, then the long verdict folded away."""
    headline = summary.headline_text or headline_text(summary.to_json_dict())
    body = "<h3>Verdict</h3>" + _paragraphs(headline, "verdict")
    if summary.comparisons:
        matrix = comparison_matrix(comparison_rows(summary), summary.unedited())
        body += "<h4>Every model vs FFT on test</h4>" + _table(matrix.edits)
        if not matrix.unedited.empty:
            body += (
                "<h4>Unedited points: validation chose λ = 0 (first seed), so the model is θ_base or FFT "
                "itself</h4>" + _table(matrix.unedited)
            )
        reasons = "".join(f"<li>({n}) {_esc(r)}</li>" for n, r in enumerate(matrix.reasons, 1))
        body += f'<p class="legend">{_esc(LEGEND)}</p>' + (f"<ul>{reasons}</ul>" if reasons else "")
    if "comparisons" in images:
        caption = (
            "Each model's Δ vs FFT with its interval, per metric, against 0. Shaded: the accuracy band ±δ "
            "of the selection rule. Red: the declared primary comparison. Hollow: exploratory (no claim). "
            "Undefined comparisons are not drawn (counted under the plot)."
        )
        body += _figure(images, "comparisons", "forest plot of the comparisons with FFT", _esc(caption))
    if summary.verdict:
        body += "<details><summary>Every comparison in words</summary>" + _paragraphs(
            summary.verdict, "verdict"
        )
        body += "</details>"
    return body


def _summary_section(summary: StudySummary, images: Mapping[str, str]) -> str:
    selection, worst = summary.selection, summary.worst_group
    facts = {
        "dataset": summary.dataset,
        "model": summary.model,
        "label scheme": summary.label_scheme,
        "attributes": summary.attributes,
        "seeds": summary.seeds,
        "selection rule": selection.rule,
        **{f"selection {k}": v for k, v in selection.model_dump().items() if k != "rule"},
        "worst group (validation)": f"{worst.attribute} / {worst.group} (by {worst.criterion})",
    }
    body = _facts(list(facts.items())) + _verdict_block(summary, images)
    if summary.selected:
        rows = [
            {
                "model": label,
                "λ": fmt_lambda(entry.lambdas or entry.lam),
                "rule": entry.rule,
                "feasible": entry.feasible,
                "reason": entry.reason,
                "is (no edit)": entry.unedited or "",
            }
            for label, entry in summary.selected.items()
        ]
        body += "<h3>Selected on validation</h3>" + _table(records_table(rows))
    return _section("summary", "Summary", body)


def _headline_section(summary: StudySummary, metrics: pd.DataFrame, attributes: list[str]) -> str:
    convention = {"sum": "λ (θ_base + λ·Σ τ_g)", "mean": "λ (θ_base + (λ/G)·Σ τ_g)"}
    shown = display_headline(summary.headline, summary.selected, attributes)
    shown = shown.rename(columns={"λ": convention.get(summary.lambda_convention, "λ")})
    headline = _table(shown)
    sizes = group_size_table({split: group_sizes(metrics, split) for split in ("val", "test")})
    body = (
        "<p>Test split, evaluated once at the points selected on validation. "
        "Brackets: 95% intervals (Wilson score for accuracy and rates; DPD and EOD: pairwise score bounds "
        "with the zero-gap permutation test; coverage measured in docs/statistics.md). "
        "Each gap sits next to its noise floor: the 95th percentile of the gap when group membership "
        "is permuted (no real difference); a gap below its floor is indistinguishable from noise.</p>"
        f'<div class="side-by-side"><div>{headline}</div>'
        f"<div><h3>Group sizes</h3>{_table(sizes)}</div></div>"
    )
    left_out = [r for r in summary.gap_groups if not r.get("entered")]
    if left_out:
        reasons = "; ".join(
            f"{r.get('attribute')}/{r.get('group')} not in {r.get('metric')}: {r.get('reason')}"
            for r in left_out
        )
        body += (
            "<p>A group enters DPD with enough posts, the TPR gap with enough positives and the FPR gap with "
            f"enough negatives (test split). Left out: {_esc(reasons)}.</p>"
        )
    body += (
        "<p>Measured coverage of these intervals (benchmarks/ci_coverage.py, at this test split's group "
        "sizes) is near nominal for accuracy but below it for DPD and EOD: read their brackets as "
        "optimistic (docs/statistics.md).</p>"
    )
    comparisons = comparison_rows(summary)
    if comparisons:
        outcomes = [classify(row) for row in comparisons]
        detectable = {a: summary.mde.get(a) or {} for a in attributes}
        floors = ", ".join(
            f"{a}: ΔDPD {fmt_number(m.get('dpd'))}, ΔEOD {fmt_number(m.get('eod'))}"
            for a, m in detectable.items()
        )
        body += (
            '<h3 id="gap-tests">Differences to FFT on test (t interval over seeds)</h3>'
            "<p>Metric of the method minus FFT's on the same posts, averaged over seeds; the interval "
            "is a t interval over seeds (How to read this). p (Holm): the primary's own p; Holm-adjusted "
            "among the declared secondaries; none for exploratory rows. A declared difference counts only "
            "when its (corrected) p-value is below 0.05. Smallest "
            f"differences this test split can detect (80% power, α = 0.05): {_esc(floors)}.</p>"
            + _table(comparison_display(comparisons, outcomes))
        )
    return _section("headline", "Headline results (test)", body)


def _degenerate_words(strategies: pd.DataFrame) -> str:
    """Families degenerate at every λ > 0, said in words (their selected point is then θ_base)."""
    if "degenerate_everywhere" not in strategies.columns:
        return ""
    bad = strategies[strategies["degenerate_everywhere"].astype(bool)]
    sentences = [
        f"merge with recipe {row.strategy} / head {row.head} / λ {row.convention} ({row.decision}) is "
        "degenerate at every λ > 0 (constant predictions, or validation accuracy below θ_base's): "
        "no point of it is a usable model, and its 'selected' point is θ_base itself."
        for row in bad.itertuples()
    ]
    return "".join(f'<p class="warning">{_esc(s)}</p>' for s in sentences)


def _strategies_section(strategies: pd.DataFrame, summary: StudySummary, attributes: list[str]) -> str:
    convention = summary.lambda_convention
    body = (
        "<p>Each recipe: how the subgroup training sets were built (strategy), θ_base's head (random, "
        "linear-probed, or linear-probed and frozen during the subgroup fine-tunes) and λ's convention "
        "(sum: θ_base + λ·Σ τ_g; mean: θ_base + (λ/G)·Σ τ_g), under both decisions (argmax, or a threshold "
        "re-chosen on validation): λ selected on validation, test metrics with 95% bootstrap CIs, and a "
        "flag when the selected point is degenerate, next to the FFT, LoRA and post-processing "
        f"(ThresholdOptimizer) references. The main recipe's λ is in the {_esc(convention)} convention.</p>"
        + _degenerate_words(strategies)
        + _table(strategy_display(strategies, summary.headline, attributes))
    )
    return _section("strategies", "Recipes: training set × head × λ convention", body)


def _sensitivity_section(rows: Sequence[Mapping[str, Any]], attributes: list[str]) -> str:
    frame = pd.DataFrame([dict(r) for r in rows])
    frame["rule"] = [
        f"{rule} (the study's)" if own else str(rule)
        for rule, own in zip(frame["rule"], frame["study_rule"], strict=True)
    ]
    shown = select_columns(frame.drop(columns=["study_rule"]), attributes, ("dpd", "eod"))
    shown.insert(0, "rule", frame["rule"])
    body = (
        "<p>A sensitivity analysis, not a result: each family's point re-selected on validation under every "
        "rule and evaluated on test. The headline reports only the study's rule; this table shows how much "
        "that choice matters.</p>" + _table(format_metric_table(shown, attributes))
    )
    return _section("sensitivity", "Selection sensitivity (test)", body)


def _targets_section(rows: Sequence[Mapping[str, Any]]) -> str:
    frame = pd.DataFrame(
        {
            "vector": [str(r.get("vector")) for r in rows],
            "attribute": [str(r.get("attribute")) for r in rows],
            "gold posts (val+test)": [fmt_count(r.get("gold_n")) for r in rows],
            "weakly assigned": [fmt_count(r.get("weak_n")) for r in rows],
            "precision": [fmt_number(r.get("precision")) for r in rows],
            "recall": [fmt_number(r.get("recall")) for r in rows],
            "flag": [str(r.get("flag") or "") for r in rows],
        }
    )
    body = (
        "<p>Each subgroup vector is trained on the posts a third-party file assigns to the group (weak "
        "targets). Against the gold val/test targets (≥ 2 of 3 annotators), a precision below 0.5 means "
        "the vector learns mostly from posts outside its group: read its effects with that in mind.</p>"
        + _table(frame)
    )
    return _section("targets", "Training-target quality of the subgroup vectors", body)


def _search_section(rows: Sequence[Mapping[str, Any]]) -> str:
    """``summary.json``'s ``search`` table: each searcher's hypervolume on validation and test."""
    frame = pd.DataFrame(
        {
            "method": [str(r.get("method")) for r in rows],
            "HV val": [fmt_number(r.get("hv_val")) for r in rows],
            "HV test [95 % interval]": [
                f"{fmt_number(r.get('hv_test'))} [{fmt_number(r.get('hv_test_ci_low'))}, "
                f"{fmt_number(r.get('hv_test_ci_high'))}]"
                for r in rows
            ],
            "front size": [fmt_count(r.get("front_size")) for r in rows],
            "model evaluations": [fmt_count(r.get("n_evaluations")) for r in rows],
            "wall s": [fmt_number(r.get("wall_s"), 1) for r in rows],
            "seeds": [fmt_count(r.get("n_seeds")) for r in rows],
        }
    )
    body = (
        "<p>Hypervolume of each searcher's front of (accuracy, 1 − DPD, 1 − EOD) against the configured "
        "reference point, on validation and with the front scored on test (higher is better). The test "
        "interval is a bootstrap over posts (and seeds); its coverage has not been measured, and methods "
        "whose intervals overlap are not ranked by it. Rows are sorted by the test point estimate.</p>"
        + _table(frame)
    )
    return _section("search-table", "Coefficient searchers by hypervolume", body)


def _bound_checks(bound: pd.DataFrame) -> pd.DataFrame:
    """Per attribute: how many λ the constants were estimated on, and how the held-out λ fared.

    On the estimation grid the bound holds by construction (docs/bound.md), so only held-out λ test it.
    """
    frame = bound.copy()
    if "holds" not in frame.columns:
        frame["holds"] = (frame["observed_dpd"] <= frame["bound"] + 1e-12).where(
            frame["observed_dpd"].notna() & frame["bound"].notna()
        )
    if "in_estimation" not in frame.columns:
        frame["in_estimation"] = True
    rows = []
    for attribute, part in frame.groupby("attribute", sort=False):
        held_out = part[~part["in_estimation"].astype(bool)]
        checked = held_out["holds"].dropna().astype(bool)
        row: dict[str, str] = {
            "attribute": str(attribute),
            "λ for the estimate": str(int(part["in_estimation"].astype(bool).sum())),
            "held-out λ: observed ≤ bound": f"{int(checked.sum())} of {len(checked)}" if len(checked) else NA,
            "max observed DPD": fmt_number(part["observed_dpd"].max()),
        }
        for column, title in (("lipschitz_max", "L(1)"), ("lipschitz_second", "L(2)"), ("tau_norm", "‖τ‖")):
            if column in part.columns:
                row[title] = fmt_significant(part[column].iloc[0])
        if "lipschitz_group" in part.columns:
            row["steepest group"] = fmt_plain(part["lipschitz_group"].iloc[0] or None)
        rows.append(row)
    return pd.DataFrame(rows)


def _bound_section(bound: pd.DataFrame, images: Mapping[str, str]) -> str:
    body = (
        _figure(
            images,
            "bound",
            "observed DPD vs bound",
            "Observed validation DPD along the merge path (solid) and the bound (dashed); hollow "
            "markers are λ not used to estimate the constants (the only real checks).",
        )
        + _table(_bound_checks(bound))
        + f"<p>{BOUND_ASSUMPTIONS}</p>"
    )
    return _section("bound", "λ–DPD bound", body)


def _multi_seed_section(rows: list[dict[str, Any]], attributes: list[str], *, comparisons_shown: bool) -> str:
    """Mean ± std over seeds, and where the seed-aware comparisons with FFT are."""
    spread = multi_seed_tables(rows, attributes)[0]
    body = "<h3>Mean ± standard deviation over seeds (test)</h3>" + _table(spread)
    if comparisons_shown:
        body += (
            '<p>The comparisons with FFT, which resample seeds and posts, are in the <a href="#gap-tests">'
            "headline section</a>.</p>"
        )
    return _section("multi-seed", "Across seeds", body)


def _timings_section(timings: Mapping[str, Any]) -> str:
    rows = [{"stage": k, "seconds": fmt_number(v, 1)} for k, v in timings.items()]
    if "total" not in timings:
        numeric = [float(v) for v in timings.values() if isinstance(v, int | float) and not math.isnan(v)]
        rows.append({"stage": "total (sum of stages)", "seconds": fmt_number(sum(numeric), 1)})
    return _section("timings", "Time per stage", _table(pd.DataFrame(rows)))


def _jsonable(value: Any) -> Any:
    """Plain JSON types only (numpy scalars, paths and the like become strings or numbers)."""
    return json.loads(json.dumps(value, default=str))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple)


def _provenance_item(key: str, value: Any) -> str:
    """Multi-line text and nested values (the config) as a pre block, flat mappings as a table."""
    if isinstance(value, str) and "\n" in value:
        return f"<pre>{_esc(value)}</pre>"
    children = list(value.values()) if isinstance(value, Mapping) else value
    nested = isinstance(value, Mapping | list | tuple) and not all(_is_scalar(v) for v in children)
    if key == "config" or nested:
        text = yaml.safe_dump(_jsonable(value), sort_keys=False, allow_unicode=True)
        return f"<pre>{_esc(text)}</pre>"
    if isinstance(value, Mapping):
        names = [str(k) for k in value]
        return _table(pd.DataFrame({"name": names, "value": [fmt_plain(v) for v in value.values()]}))
    return f"<p>{_esc(fmt_plain(value))}</p>"


def _provenance_section(provenance: Mapping[str, Any]) -> str:
    parts = [f"<h3>{_esc(key)}</h3>{_provenance_item(str(key), value)}" for key, value in provenance.items()]
    return _section("provenance", "Provenance", "".join(parts) or f"<p>{NA}</p>")


# (id, navigation label, section title, caption) of the sections that are one figure each
FIGURE_SECTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "curves",
        "λ curves",
        "Accuracy, DPD and EOD vs λ (validation)",
        "Merge sweep on validation. Solid lines: argmax decision; dashed: threshold re-chosen on validation "
        "(when present). Horizontal lines: θ_base, FFT and LoRA on validation. "
        "Vertical line: the selected λ.",
    ),
    (
        "per-group",
        "Per group",
        "Per-group accuracy vs λ (validation)",
        "Accuracy of each group along the merge sweep; the legend gives each group's validation size. "
        "A line with gaps means the accuracy is undefined (empty group) at those points.",
    ),
    (
        "pareto",
        "Pareto",
        "Accuracy–fairness trade-off (validation)",
        "Every swept merge and injection point on validation (one colour per family and training-set "
        "strategy; hollow: calibrated threshold); black: the non-dominated front; red and purple symbols: "
        "baselines; numbered stars: the points selected on validation.",
    ),
    (
        "injection",
        "Injection",
        "Worst-group and per-group injection (validation)",
        "θ_FFT + λ·τ_g for each subgroup vector g, as a difference to FFT on validation. Some injections "
        "help a group or narrow the gap, others hurt; the thick line is the worst group.",
    ),
    (
        "training",
        "Training",
        "Training curves",
        "Train loss, validation loss and validation accuracy per evaluation of FFT, LoRA and every subgroup "
        "fine-tune; each stops early on validation loss and keeps its best evaluation (ringed).",
    ),
    (
        "similarity",
        "Similarity",
        "Similarity between subgroup task vectors",
        "Cosine similarity between the subgroup task vectors τ_g = θ_g − θ_base.",
    ),
)


def _how_to_read_section(summary: StudySummary, provenance: Mapping[str, Any]) -> str:
    config = provenance.get("config") or summary.provenance.get("config") or {}
    box = how_to_read(config, comparison_rows(summary))
    return _section("how-to-read", "How to read this", f'<div class="note">{box}</div>')


def render_html(
    *,
    metrics: pd.DataFrame,
    summary: StudySummary | Mapping[str, Any],
    bound: pd.DataFrame | None,
    strategies: pd.DataFrame | None,
    provenance: Mapping[str, Any],
    images: Mapping[str, str],
) -> str:
    """The report as one HTML string; sections whose input is absent are left out."""
    summary = read_summary(summary)
    attributes = summary.attributes or attributes_of(metrics)
    sections: list[tuple[str, str, str]] = [  # (id, navigation label, html)
        ("summary", "Summary", _summary_section(summary, images)),
        ("how-to-read", "How to read this", _how_to_read_section(summary, provenance)),
        ("headline", "Headline", _headline_section(summary, metrics, attributes)),
    ]
    if strategies is not None and not strategies.empty:
        sections.append(("strategies", "Strategies", _strategies_section(strategies, summary, attributes)))
    for key, label, title, caption in (*FIGURE_SECTIONS, *search_figures.SECTIONS):
        if key in images:
            sections.append((key, label, _section(key, title, _figure(images, key, title, _esc(caption)))))
    if summary.search:
        sections.append(("search-table", "Searchers", _search_section(summary.search)))
    if bound is not None and "bound" in images:
        sections.append(("bound", "Bound", _bound_section(bound, images)))
    if summary.selection_sensitivity:
        sections.append(
            ("sensitivity", "Sensitivity", _sensitivity_section(summary.selection_sensitivity, attributes))
        )
    if summary.target_quality:
        sections.append(("targets", "Targets", _targets_section(summary.target_quality)))
    if summary.multi_seed:
        shown = bool(summary.comparisons)
        multi_seed = _multi_seed_section(summary.multi_seed, attributes, comparisons_shown=shown)
        sections.append(("multi-seed", "Seeds", multi_seed))
    if summary.timings_s:
        sections.append(("timings", "Timings", _timings_section(summary.timings_s)))
    sections.append(("provenance", "Provenance", _provenance_section(provenance)))

    title = f"fairmerge report — {summary.dataset} · {summary.model}"
    nav = " ".join(f'<a href="#{sid}">{_esc(label)}</a>' for sid, label, _ in sections)
    body = "\n".join(section for _, _, section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_esc(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )
