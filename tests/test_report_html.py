"""End-to-end tests of the HTML report on a small, realistic study output (no model, no data needed)."""

from __future__ import annotations

import functools
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import DataError
from fairmerge.report import write_report
from fairmerge.report.tables import NA
from fairmerge.study.multiseed import aggregate_seeds
from fairmerge.study.outputs import headline_row, headline_table
from fairmerge.sweep import dpd_bound_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_SECTIONS = (
    "summary",
    "how-to-read",
    "headline",
    "strategies",
    "curves",
    "per-group",
    "pareto",
    "injection",
    "similarity",
    "bound",
    "multi-seed",
    "timings",
    "provenance",
)
ALL_PLOTS = {
    "comparisons.png",
    "lambda_curves.png",
    "group_accuracy.png",
    "pareto.png",
    "injection_effects.png",
    "similarity.png",
    "bound.png",
}
HOSTILE = "Other $ & <x>"  # a group name from user data: must be escaped in HTML, drawn verbatim in plots
# attribute -> {group: (val n, test n)}; the small groups get NaN rates and are excluded from gaps.
GROUPS = {
    "race": {
        "African": (310, 315),
        "Arab": (77, 67),
        "Asian": (34, 36),
        "Caucasian": (48, 52),
        "Hispanic": (12, 11),
        HOSTILE: (8, 9),
    },
    "gender": {"Women": (151, 147), "Men": (6, 6)},
}
MIN_GROUP_SIZE = 30
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _model_rows(model: str, lam: float, split: str, rng: np.random.Generator, *, ci: bool) -> list[dict]:
    """Rows of one evaluated model in the tidy metrics format, NaN where a rate is undefined."""
    rows: list[dict[str, Any]] = []

    def add(attribute: str, group: str, metric: str, value: float) -> None:
        width = 0.03 if ci and not math.isnan(value) and metric != "n" else math.nan
        rows.append(
            {
                "model": model,
                "lambda": lam,
                "split": split,
                "attribute": attribute,
                "group": group,
                "metric": metric,
                "value": value,
                "ci_low": value - width,
                "ci_high": value + width,
            }
        )

    idx = 0 if split == "val" else 1
    total = sum(sizes[g][idx] for sizes in GROUPS.values() for g in sizes) + 1200
    add("all", "all", "n", float(total))
    for metric in ("accuracy", "selection_rate", "tpr", "fpr"):
        add("all", "all", metric, float(rng.uniform(0.4, 0.85)))
    for attribute, sizes in GROUPS.items():
        accs, sels, tprs, fprs = [], [], [], []
        for group, ns in sizes.items():
            n = ns[idx]
            add(attribute, group, "n", float(n))
            small = n < MIN_GROUP_SIZE
            values = {m: float(rng.uniform(0.3, 0.95)) for m in ("accuracy", "selection_rate", "tpr")}
            values["fpr"] = math.nan if small else float(rng.uniform(0.05, 0.5))  # no negatives
            for metric, value in values.items():
                add(attribute, group, metric, value)
            if not small:
                accs.append(values["accuracy"])
                sels.append(values["selection_rate"])
                tprs.append(values["tpr"])
                fprs.append(values["fpr"])
        qualifying = len(accs)
        gap = (lambda xs: max(xs) - min(xs)) if qualifying >= 2 else (lambda xs: math.nan)
        add(attribute, "all", "dpd", gap(sels))
        add(attribute, "all", "eod", max(gap(tprs), gap(fprs)) if qualifying >= 2 else math.nan)
        add(attribute, "all", "worst_group_accuracy", min(accs) if accs else math.nan)
        add(attribute, "all", "n_groups", float(qualifying))
    return rows


STRATEGIES = ("targeted", "targeted+background", "balanced")
# label -> λ selected on validation (the study evaluates test only at these points)
SELECTED = {
    "merge": 0.5,
    "merge@calibrated": 0.25,
    "merge[targeted+background]": 0.75,
    "merge[targeted+background]@calibrated": 0.5,
    "merge[balanced]": 1.0,
    "merge[balanced]@calibrated": 0.0,
    "inject:African": 0.5,
}


def _metrics(seed: int = 0) -> pd.DataFrame:
    """The tidy metrics.csv of a study: baselines on both splits, val sweeps, test at selected λ."""
    return _cached_metrics(seed).copy()


@functools.cache
def _cached_metrics(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for model in ("base", "fft", "lora", "fft@calibrated", "threshold_optimizer", "merge_pergroup"):
        for split in ("val", "test"):
            rows += _model_rows(model, math.nan, split, rng, ci=True)
    for family in ("merge", "merge[targeted+background]", "merge[balanced]"):
        for model in (family, f"{family}@calibrated"):
            for lam in LAMBDAS:
                rows += _model_rows(model, lam, "val", rng, ci=False)  # fast sweeps: no bootstrap
    for group in ("African", "Arab", "Women"):
        for lam in (0.0, 0.5, 1.0):
            rows += _model_rows(f"inject:{group}", lam, "val", rng, ci=False)
    for model, lam in SELECTED.items():
        rows += _model_rows(model, lam, "test", rng, ci=True)
    return pd.DataFrame(rows)


LAMBDA = "λ (θ_base + λ·Σ τ_g)"  # the headline labels λ with its convention


def _comparison(model: str, attribute: str, metric: str, delta: float, p_holm: float) -> dict[str, Any]:
    undefined = math.isnan(delta)
    return {
        "model": model,
        "attribute": attribute,
        "metric": metric,
        "delta": None if undefined else delta,
        "ci_low": None if undefined else delta - 0.1,
        "ci_high": None if undefined else delta + 0.05,
        "p_value": None if undefined else p_holm / 2,
        "p_holm": None if undefined else p_holm,
        "primary": (model, attribute, metric) == ("merge", "race", "eod"),
        "n_seeds": 2,
        "method": "two-level bootstrap (seeds, posts)",
    }


def _summary() -> dict[str, Any]:
    """summary.json as ``fairmerge.study.run`` builds it, from the real headline / multi-seed code."""
    attributes = list(GROUPS)
    headlines = [headline_table(_metrics(seed), attributes) for seed in (0, 1)]
    stats = aggregate_seeds(headlines)
    comparisons = [
        _comparison("merge", "race", "dpd", -0.2, 0.01),
        _comparison("merge", "race", "eod", -0.05, 0.3),
        _comparison("merge", "gender", "eod", math.nan, math.nan),
        _comparison("inject:worst", "race", "eod", 0.3, 0.001),
    ]
    selected: dict[str, dict[str, Any]] = {
        label: {"lambda": lam, "lambdas": None, "rule": "constrained", "feasible": True, "reason": "ok"}
        for label, lam in SELECTED.items()
    }
    selected["merge@calibrated"].update(feasible=False, reason="no λ meets ε; fell back to <fairest>")
    selected["merge[balanced]@calibrated"]["unedited"] = "θ_base"  # λ = 0: no edit
    selected["merge_pergroup"] = {
        "lambda": None,
        "lambdas": {"African": 0.3, "Arab": 0.7},
        "rule": "per-group TPE search (constrained)",
        "feasible": True,
        "reason": "16 trials on validation",
    }
    return {
        "dataset": "hatexplain",
        "model": "all-MiniLM-L6-v2",
        "label_scheme": "hate",
        "attributes": attributes,
        "seeds": [0, 1],
        "selection": {"rule": "constrained", "epsilon": 0.1, "delta": 0.02, "split": "val"},
        "lambda_convention": "sum",
        "selected": selected,
        "worst_group": {
            "attribute": "race",
            "group": "African",
            "label": "race:African",
            "criterion": "accuracy",
        },
        "headline": headlines[0],
        "comparisons": comparisons,
        "mde": {"race": {"dpd": 0.21, "eod": 0.38}, "gender": {"dpd": None, "eod": None}},
        "timings_s": {"data": 3.2, "fft": 281.0, "subgroups": 400.5, "sweep": 120.25, "total": 812.4},
        "verdict": "No strategy keeps accuracy within 2 points of FFT with a lower EOD.\n\n"
        "Differences are inside the CIs <script>alert(1)</script>.",
        "multi_seed": stats.to_dict(orient="records"),
    }


def _similarity() -> pd.DataFrame:
    groups = ["African", "Arab", "Asian", "Women"]
    values = np.array(
        [
            [1.0, 0.42, 0.31, 0.2],
            [0.42, 1.0, 0.5, -0.1],
            [0.31, 0.5, 1.0, math.nan],
            [0.2, -0.1, math.nan, 1.0],
        ]
    )
    return pd.DataFrame(values, index=groups, columns=groups)


def _bound() -> pd.DataFrame:
    """The real bound table on the fixture's merge path; λ 0.25 and 0.75 are held out."""
    metrics = _metrics()
    val = metrics[(metrics["model"] == "merge") & (metrics["split"] == "val")]
    return pd.concat(
        [dpd_bound_table(val, 2.0, a, estimate_on=[0.0, 0.5, 1.0]) for a in GROUPS], ignore_index=True
    )


def _strategies() -> pd.DataFrame:
    """One row per (strategy, decision), as the study's runner builds it."""
    metrics = _metrics()
    rows = []
    for strategy in STRATEGIES:
        family = "merge" if strategy == "targeted" else f"merge[{strategy}]"
        for decision, label in (("argmax", family), ("calibrated", f"{family}@calibrated")):
            rows.append(
                {"strategy": strategy, "decision": decision, **headline_row(metrics, label, list(GROUPS))}
            )
    return pd.DataFrame(rows)


def _provenance() -> dict[str, Any]:
    return {
        "config": {
            "name": "hatexplain-minilm <script>x</script>",
            "attributes": ["race", "gender"],
            "sweep": {"lambdas": list(LAMBDAS)},
        },
        "data_files": {"hatexplain_test_annotators.csv.gz": "1fa58d30932f"},
        "model_hash": "ab12cd34",
        "versions": {"torch": "2.13.0", "fairmerge": "0.1.0"},
        "seeds": [0, 1],
    }


class _Tables(HTMLParser):
    """Collects every table's rows (cell text) under the id of its enclosing section."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.section = dict(attrs).get("id") or ""
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self.tables[self.section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self.section][-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table_rows(document: str, section: str, index: int = 0) -> list[dict[str, str]]:
    parser = _Tables()
    parser.feed(document)
    header, *rows = parser.tables[section][index]
    return [dict(zip(header, row, strict=True)) for row in rows]


def _visible(document: str) -> str:
    """The document without the base64 image payloads (random letters would match any word)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,", document)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("study")
    path = write_report(
        out,
        metrics=_metrics(),
        summary=_summary(),
        similarity=_similarity(),
        bound=_bound(),
        strategies=_strategies(),
        provenance=_provenance(),
    )
    return path, path.read_text(encoding="utf-8")


def test_every_section_and_plot_is_written(full_report: tuple[Path, str]) -> None:
    path, document = full_report
    assert path == path.parent / "report.html"
    for section in ALL_SECTIONS:
        assert f'<section id="{section}">' in document, section
    pngs = {p.name: p.read_bytes() for p in (path.parent / "plots").glob("*.png")}
    assert set(pngs) == ALL_PLOTS
    for name, data in pngs.items():
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, name
    assert document.count('src="data:image/png;base64,') == len(ALL_PLOTS)
    assert not list(path.parent.glob(".*")), "temporary files left behind"
    summary = document.split('<section id="summary">')[1].split("</section>")[0]
    assert "is (no edit)" in summary and summary.count("θ_base") == 1  # the λ = 0 pick, named


def test_report_is_self_contained_and_escaped(full_report: tuple[Path, str]) -> None:
    _, document = full_report
    text = _visible(document)
    assert not re.search(r"(https?:)?//[a-z0-9]", text, re.IGNORECASE)
    assert "<script" not in text.lower()
    assert "&lt;script&gt;" in text  # from the verdict and the config
    assert "Other $ &amp; &lt;x&gt;" in text  # a hostile group name in the group-size table
    assert "&lt;fairest&gt;" in text


def test_missing_values_render_as_na(full_report: tuple[Path, str]) -> None:
    _, document = full_report
    assert not re.search(r"\bnan\b", _visible(document), re.IGNORECASE)
    headline = {row["model"]: row for row in _table_rows(document, "headline")}
    assert headline["fft"]["gender DPD"] == "n/a"  # undefined with one qualifying group: not 0
    assert headline["fft"]["gender EOD"] == "n/a"
    assert headline["base"][LAMBDA] == "n/a"
    assert headline["merge"][LAMBDA] == "0.5"
    assert headline["merge_pergroup"][LAMBDA] == "African=0.3, Arab=0.7"
    assert re.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", headline["fft"]["accuracy"])
    assert headline["fft"]["race groups in gaps"] == "4"
    sizes = {(r["attribute"], r["group"]): r for r in _table_rows(document, "headline", 1)}
    assert sizes[("race", "African")]["n (test)"] == "315"
    assert sizes[("gender", "Men")]["n (val)"] == "6"
    assert headline["merge[balanced]@calibrated"][LAMBDA] == "0.0"
    tests = {(r["model"], r["attribute"], r["metric"]): r for r in _table_rows(document, "headline", 2)}
    assert tests[("merge", "race", "DPD")]["Δ vs FFT [95% CI]"] == "-0.200 [-0.300, -0.150]"
    assert tests[("merge", "race", "DPD")]["p"] == "0.005"
    assert tests[("merge", "gender", "EOD")]["Δ vs FFT [95% CI]"] == "n/a"  # undefined, not 0
    seeds = {row["model"]: row for row in _table_rows(document, "multi-seed")}
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", seeds["fft"]["race EOD (mean ± std)"])
    assert seeds["base"]["λ (mean ± std)"] == "n/a"
    assert 'href="#gap-tests"' in document  # the paired tests are shown once, in the headline
    bound = {row["attribute"]: row for row in _table_rows(document, "bound")}
    assert re.fullmatch(r"[0-2] of 2", bound["race"]["held-out λ: observed ≤ bound"])
    assert bound["gender"]["max observed DPD"] == "n/a"
    timings = {row["stage"]: row["seconds"] for row in _table_rows(document, "timings")}
    assert timings["total"] == "812.4" and len(timings) == 5  # the study's total, not a second sum


def test_strategy_table_lists_every_strategy_next_to_references(full_report: tuple[Path, str]) -> None:
    _, document = full_report
    rows = _table_rows(document, "strategies")
    pairs = {(r["strategy"], r["decision"]) for r in rows}
    for strategy in ("targeted", "targeted+background", "balanced"):
        assert {(strategy, "argmax"), (strategy, "calibrated")} <= pairs
    assert {
        ("fft (reference)", "argmax"),
        ("fft (reference)", "calibrated"),
        ("lora (reference)", "argmax"),
        ("threshold_optimizer (reference)", "argmax"),
    } <= pairs
    assert all(re.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", r["accuracy"]) for r in rows)


def test_comparisons_show_intervals_corrected_p_and_outcomes(full_report: tuple[Path, str]) -> None:
    _, document = full_report
    rows = {(r["model"], r["attribute"], r["metric"]): r for r in _table_rows(document, "headline", 2)}
    assert rows[("merge", "race", "DPD")]["outcome"] == "lower"
    assert rows[("merge", "race", "EOD")]["p (Holm)"] == "primary"
    assert rows[("merge", "race", "EOD")]["outcome"] == "no detectable difference"
    assert rows[("merge", "gender", "EOD")]["Δ vs FFT [95% CI]"] == "n/a"
    assert rows[("merge", "gender", "EOD")]["outcome"] == "undefined"
    assert rows[("inject:worst", "race", "EOD")]["outcome"] == "higher"
    assert "race: ΔDPD 0.210, ΔEOD 0.380" in document


def test_optional_inputs_omit_their_sections(tmp_path: Path) -> None:
    summary = _summary()
    del summary["multi_seed"]
    metrics = _metrics()
    metrics = metrics[~metrics["model"].str.startswith("inject:")]
    # a previous run left every plot behind: the new report must not keep stale figures
    write_report(
        tmp_path,
        metrics=_metrics(),
        summary=_summary(),
        similarity=_similarity(),
        bound=_bound(),
        strategies=_strategies(),
        provenance=_provenance(),
    )
    path = write_report(
        tmp_path,
        metrics=metrics,
        summary=summary,
        similarity=None,
        bound=None,
        strategies=None,
        provenance=_provenance(),
    )
    document = path.read_text(encoding="utf-8")
    for section in ("strategies", "similarity", "bound", "multi-seed", "injection"):
        assert f'id="{section}"' not in document and f'href="#{section}"' not in document, section
    for section in ("summary", "headline", "curves", "per-group", "pareto", "timings", "provenance"):
        assert f'<section id="{section}">' in document, section
    names = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert names == {"lambda_curves.png", "group_accuracy.png", "pareto.png", "comparisons.png"}
    assert document.count('src="data:image/png;base64,') == 4


def test_bad_input_leaves_no_output(tmp_path: Path) -> None:
    """A missing column, or a summary.json that does not validate (a one-line error naming the field)."""
    malformed = _summary() | {"selection": {"rule": "constrained"}}  # epsilon and delta missing
    for message, change in (
        ("ci_high", {"metrics": _metrics().drop(columns="ci_high")}),
        ("observed_dpd", {"bound": _bound().drop(columns="observed_dpd")}),
        (r"^summary.json: selection.epsilon: Field required \(2 problem", {"summary": malformed}),
    ):
        inputs: dict[str, Any] = {"metrics": _metrics(), "summary": _summary(), "provenance": {}}
        inputs |= {"similarity": None, "bound": None, "strategies": None} | change
        with pytest.raises(DataError, match=message):
            write_report(tmp_path, **inputs)
    assert list(tmp_path.iterdir()) == []


def test_how_to_read_states_the_configured_method_correction_and_thresholds(tmp_path: Path) -> None:
    from fairmerge.report.html import render_html
    from fairmerge.study.config import load_config

    overrides = ["evaluation.min_group_size=17", "evaluation.min_positives=6", "evaluation.min_negatives=9"]
    overrides += ["evaluation.n_resamples=321", "secondary=[{model: lora, attribute: race, metric: dpd}]"]
    overrides += ["primary={model: merge_pergroup, attribute: gender, metric: eod}", "selection.delta=0.03"]
    config = load_config(None, overrides=overrides).to_dict()
    summary = _summary() | {"provenance": {"config": config}}
    for row in summary["comparisons"]:
        row["method"] = "2 paired seeds, fiducial interval"
    document = render_html(
        metrics=_metrics(), summary=summary, bound=None, strategies=None, provenance={}, images={}
    )
    box = _visible(document).split('<section id="how-to-read">')[1].split("</section>")[0]
    assert "at least 17 test posts" in box and "at least 6 positives" in box and "at least 9 negatives" in box
    assert "321 resamples" in box and "2 paired seeds, fiducial interval" in box and "Wilson score" in box
    assert "(merge_pergroup gender EOD) is tested alone" in box
    assert "over the 1 declared secondary comparisons only (lora race DPD)" in box
    assert "−δ = −0.03" in box
    assert "percentile interval" not in box  # the old fixed text named a method the code does not use
    summary_section = document.split('<section id="summary">')[1].split("</section>")[0]
    assert "Every model vs FFT on test" in summary_section and "<details>" in summary_section


def test_a_search_run_gets_its_hypervolume_table(tmp_path: Path) -> None:
    summary = _summary() | {
        "search": [
            {
                "rank": 1,
                "method": "nsga2",
                "hv_val": 0.41,
                "hv_test": 0.38,
                "hv_test_ci_low": 0.35,
                "hv_test_ci_high": 0.4,
                "front_size": 3.0,
                "n_evaluations": 8.0,
                "wall_s": 12.5,
                "n_seeds": 1,
            },
            {
                "rank": 2,
                "method": "grid",
                "hv_val": 0.37,
                "hv_test": 0.36,
                "hv_test_ci_low": math.nan,
                "hv_test_ci_high": math.nan,
                "front_size": 2.0,
                "n_evaluations": 8.0,
                "wall_s": 9.0,
                "n_seeds": 1,
            },
        ]
    }
    path = write_report(
        tmp_path,
        metrics=_metrics(),
        summary=summary,
        similarity=None,
        bound=None,
        strategies=None,
        provenance=_provenance(),
    )
    document = path.read_text(encoding="utf-8")
    section = document.split('<section id="search-table">')[1].split("</section>")[0]
    assert "0.380 [0.350, 0.400]" in section and "<td>12.5</td>" in section
    assert "nsga2" in section and "grid" in section
    assert "coverage has not been measured" in section
    assert f"[{NA}, {NA}]" in section  # an undefined interval is n/a, never 0
    assert '<section id="search-table">' not in write_report(
        tmp_path / "plain",
        metrics=_metrics(),
        summary=_summary(),
        similarity=None,
        bound=None,
        strategies=None,
        provenance=_provenance(),
    ).read_text(encoding="utf-8")
