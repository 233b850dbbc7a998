"""The ten-second verdict: a headline of at most three sentences, a marked table and a forest plot."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fairmerge.report.comparison_table import comparison_matrix
from fairmerge.report.plots import plot_comparisons
from fairmerge.study.printing import print_headline
from fairmerge.study.verdict import headline_text

NAN = float("nan")


def _row(
    model: str, attribute: str, metric: str, delta: float, low: float, high: float, **extra: Any
) -> dict:
    role = extra.pop("role", "exploratory")
    p = extra.pop("p", NAN)
    return {
        "model": model,
        "attribute": attribute,
        "metric": metric,
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "p_holm": p if role != "exploratory" else NAN,
        "primary": role == "primary",
        "role": role,
        "n_seeds": 3,
        "labels_dpd": extra.pop("labels_dpd", NAN),
        "reason": extra.pop("reason", ""),
        "method": "t-test over 3 paired seeds",
    }


def _summary(primary: dict, *, power: Any = None, extra: list[dict] | None = None) -> dict[str, Any]:
    rows = [
        _row("merge", "all", "accuracy", -0.01, -0.015, -0.005, role="secondary", p=0.001),
        primary,
        _row("merge", "race", "dpd", -0.02, -0.05, 0.01, role="secondary", p=0.3, labels_dpd=0.41),
        _row("merge", "gender", "eod", NAN, NAN, NAN, reason="fewer than two qualifying groups"),
        _row("lora", "all", "accuracy", 0.0, -0.01, 0.01),
        _row("lora", "race", "eod", -0.08, -0.12, -0.04),
        _row("inject:worst", "all", "accuracy", 0.0, -0.001, 0.001),
        _row("inject:worst", "race", "eod", 0.05, 0.02, 0.08),
        *(extra or []),
    ]
    return {
        "comparisons": rows,
        "selection": {"rule": "constrained", "epsilon": 0.1, "delta": 0.02},
        "selected": {"merge": {"unedited": None}, "inject:worst": {"unedited": "θ_base"}},
        "power": power,
        "timings_s": {"train": 10.0, "total": 12.5},
    }


POWER = {"power": 0.42, "se": 0.02, "effect": -0.1, "n_seeds": 3, "alpha": 0.05}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z])", text) if s]


@pytest.mark.parametrize(
    ("primary", "answer"),
    [
        (_row("merge", "race", "eod", -0.06, -0.09, -0.03, role="primary", p=0.001), "lower"),
        (_row("merge", "race", "eod", 0.06, 0.03, 0.09, role="primary", p=0.001), "higher"),
        (_row("merge", "race", "eod", -0.01, -0.04, 0.02, role="primary", p=0.5), "no detectable difference"),
    ],
)
def test_headline_states_the_primary_answer_its_interval_and_power(primary: dict, answer: str) -> None:
    text = headline_text(_summary(primary, power=POWER))
    sentences = _sentences(text)
    assert len(sentences) == 3, sentences
    assert sentences[0].startswith("Primary comparison, merge vs FFT on race EOD: " + answer + " (")
    assert f"95% CI [{primary['ci_low']:.3f}, {primary['ci_high']:.3f}]" in sentences[0]
    assert "power 42%" in sentences[1] and "|Δ| of 0.10" in sentences[1] and "3 seeds" in sentences[1]
    if answer == "lower":  # declared, rejects, accuracy interval within δ: named with its interval
        assert sentences[2] == (
            "Within δ = 0.02 of FFT's accuracy and detectably fairer: merge on race EOD "
            "(Δ = -0.060, 95% CI [-0.090, -0.030])."
        )
    else:  # lora's exploratory interval below 0 is no claim; inject:worst is unedited
        assert sentences[2] == "No edit is both within δ = 0.02 of FFT's accuracy and detectably fairer."
    assert "lora" not in text and "inject" not in text  # it does not list every model


def test_headline_for_an_undefined_primary_and_no_power() -> None:
    primary = _row("merge", "race", "eod", NAN, NAN, NAN, role="primary", reason="one qualifying group")
    sentences = _sentences(headline_text(_summary(primary)))
    assert sentences[0] == (
        "Primary comparison, merge vs FFT on race EOD: undefined (one qualifying group); no test."
    )
    assert sentences[1] == "The design's power for it was not simulated."


def test_an_unedited_point_is_never_the_fairer_edit() -> None:
    primary = _row("merge", "race", "eod", -0.01, -0.04, 0.02, role="primary", p=0.5)
    lower = _row("inject:worst", "race", "dpd", -0.1, -0.15, -0.05, role="secondary", p=0.001)
    text = headline_text(_summary(primary, power=POWER, extra=[lower]))
    assert text.endswith("No edit is both within δ = 0.02 of FFT's accuracy and detectably fairer.")


def test_table_marks_outcomes_roles_and_groups_unedited_points_apart() -> None:
    primary = _row("merge", "race", "eod", -0.06, -0.09, -0.03, role="primary", p=0.001)
    matrix = comparison_matrix(_summary(primary)["comparisons"], {"inject:worst": "θ_base"})
    assert list(matrix.edits["model"]) == ["merge", "lora"]
    assert list(matrix.unedited["model"]) == ["inject:worst = θ_base"]
    merge = matrix.edits.set_index("model").loc["merge"]
    lora = matrix.edits.set_index("model").loc["lora"]
    assert merge["Δacc"] == "-0.010 ▼ S\n[-0.015, -0.005]"
    assert merge["race ΔEOD"] == "-0.060 ▼ P\n[-0.090, -0.030]"
    assert merge["race ΔDPD (labels 0.41)"] == "-0.020 ○ S\n[-0.050, 0.010]"  # next to the labels' DPD
    assert merge["gender ΔEOD"] == "n/a (1) E" and matrix.reasons == ["fewer than two qualifying groups"]
    assert lora["race ΔEOD"].startswith("-0.080 ▼ E")  # exploratory: marked, role says no claim
    assert matrix.unedited.iloc[0]["race ΔEOD"].startswith("+0.050 ▲ E")
    assert lora["gender ΔEOD"] == ""  # not compared: empty, not n/a


def test_a_secondary_excluding_zero_without_holm_is_tagged_ns() -> None:
    row = _row("merge", "race", "dpd", -0.05, -0.09, -0.01, role="secondary", p=0.2)
    matrix = comparison_matrix([row], {})
    assert matrix.edits.iloc[0, 1] == "-0.050 ▼ S ns\n[-0.090, -0.010]"


def test_forest_plot_is_written_and_skipped_without_rows(tmp_path: Path) -> None:
    primary = _row("merge", "race", "eod", -0.06, -0.09, -0.03, role="primary", p=0.001)
    path = plot_comparisons(
        _summary(primary)["comparisons"],
        tmp_path / "comparisons.png",
        delta=0.02,
        unedited={"inject:worst": "θ_base"},
    )
    assert path is not None and path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5_000
    undefined = [_row("merge", "race", "eod", NAN, NAN, NAN, role="primary")]
    assert plot_comparisons(undefined, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_terminal_prints_headline_table_paths_and_times_within_120_columns() -> None:
    label = "merge[targeted+background]@calibrated"
    primary = _row(label, "race", "eod", -0.06, -0.09, -0.03, role="primary")
    summary = _summary(primary, power=POWER)
    summary["headline_text"] = headline_text(summary)
    buffer = io.StringIO()
    print_headline(summary, Path("out"), Console(file=buffer, width=80))  # a log, not a terminal
    text = buffer.getvalue()
    assert text.startswith(summary["headline_text"][:40])
    assert "merge[targeted+background]@calibrated" in text  # labels verbatim, never read as markup
    assert "-0.060" in text and "…" not in text  # no number cut
    assert "wrote out/metrics.csv" in text and "time per stage (s): train 10.0, total 12.5" in text
    assert "(1) fewer than two qualifying groups" in text
    table = [line for line in text.splitlines() if " | " in line]  # the table's rows (no outer edge)
    assert len(table) >= 3 and max(len(line) for line in table) <= 120


def test_fast_run_ends_with_one_screen_headline_table_paths_and_times(fast_study: tuple[Path, Path]) -> None:
    """What a run prints once it is done fits 60 lines at 120 columns; summary.json keeps the rest."""
    import json
    import math

    out, _ = fast_study
    summary = json.loads((out / "summary.json").read_text())
    headline = summary["headline_text"]
    assert headline and len(_sentences(headline)) <= 3 and len(summary["verdict"]) > len(headline)
    lines = (out.parent / "stderr.txt").read_text().replace("\r", "\n").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(headline[:40]))
    tail = lines[start:]
    assert sum(max(1, math.ceil(len(line) / 120)) for line in tail) <= 60, "\n".join(tail)
    assert any(line.startswith("wrote ") for line in tail)
    assert any(line.startswith("time per stage (s): ") for line in tail)
    assert (out / "plots" / "comparisons.png").read_bytes().startswith(b"\x89PNG")
