"""Figure-level tests: what each plot draws (captured before it is saved), and when it draws nothing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fairmerge.report import plots
from fairmerge.report.frames import pareto_mask, validate_metrics
from fairmerge.study.summary import SelectedEntry

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
ODD_GROUP = "Other $x$ & _y"  # mathtext would choke on this; it must be drawn verbatim


def _rows(model: str, lam: float, split: str, acc: float, *, eod: float = 0.3) -> list[dict[str, Any]]:
    """A small tidy block: overall accuracy, race gaps and two race groups (one with an undefined FPR)."""
    base = {"model": model, "lambda": lam, "split": split, "ci_low": math.nan, "ci_high": math.nan}
    items = [
        ("all", "all", "accuracy", acc),
        ("race", "all", "dpd", 0.4 - 0.1 * acc),
        ("race", "all", "eod", eod),
        ("race", "African", "n", 310.0),
        ("race", "African", "accuracy", acc - 0.05),
        ("race", ODD_GROUP, "n", 8.0),
        ("race", ODD_GROUP, "accuracy", acc + 0.05),
        ("race", ODD_GROUP, "fpr", math.nan),
    ]
    return [{**base, "attribute": a, "group": g, "metric": m, "value": v} for a, g, m, v in items]


def _metrics(*, test_lambdas: tuple[float, ...] = (), injections: bool = True) -> pd.DataFrame:
    rows = _rows("fft", math.nan, "val", 0.80, eod=0.5) + _rows("fft", math.nan, "test", 0.81)
    for lam in LAMBDAS:
        rows += _rows("merge", lam, "val", 0.6 + 0.1 * lam)
        if injections:
            rows += _rows("inject:African", lam, "val", 0.80 + 0.02 * lam, eod=0.5 - 0.1 * lam)
    for lam in test_lambdas:
        rows += _rows("merge", lam, "test", 0.55 + 0.1 * lam)
    return validate_metrics(pd.DataFrame(rows))


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Figures handed to ``plots._save`` (still saved, so the PNG path is real)."""
    figures: list[Figure] = []
    original = plots._save

    def spy(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return figures


def _legend_texts(fig: Figure, axis: int = 0) -> list[str]:
    legend = fig.axes[axis].get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


SELECTED = {
    "merge": SelectedEntry.model_validate(
        {"lambda": 0.5, "lambdas": None, "rule": "constrained", "feasible": True, "reason": "ok"}
    )
}


def test_test_curve_is_labelled_not_used_for_selection(tmp_path: Path, captured: list[Figure]) -> None:
    plots.plot_lambda_curves(_metrics(test_lambdas=LAMBDAS), SELECTED, tmp_path / "a.png")
    plots.plot_lambda_curves(_metrics(test_lambdas=(0.5,)), SELECTED, tmp_path / "b.png")
    with_test, selected_only = captured
    assert plots.TEST_CURVE_LABEL in _legend_texts(with_test)
    assert plots.TEST_CURVE_LABEL not in _legend_texts(selected_only)
    assert "selected λ=0.5 (merge)" in _legend_texts(selected_only)
    assert "FFT (val, reference)" in _legend_texts(selected_only)


def test_group_curves_name_groups_verbatim_with_sizes(tmp_path: Path, captured: list[Figure]) -> None:
    path = plots.plot_group_accuracy(_metrics(), SELECTED, tmp_path / "groups.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    texts = _legend_texts(captured[0])
    assert "African (n=310)" in texts and f"{ODD_GROUP} (n=8)" in texts


def test_injection_effects_are_differences_to_fft(tmp_path: Path, captured: list[Figure]) -> None:
    plots.plot_injection_effects(_metrics(), "African", tmp_path / "inject.png")
    acc_ax, group_ax, eod_ax = captured[0].axes

    def ydata(ax: Any) -> np.ndarray:
        return np.asarray(ax.lines[0].get_ydata(), dtype=float)

    expected_acc = np.array([0.02 * lam for lam in LAMBDAS])
    np.testing.assert_allclose(ydata(acc_ax), expected_acc, atol=1e-12)
    np.testing.assert_allclose(ydata(group_ax), expected_acc, atol=1e-12)
    np.testing.assert_allclose(ydata(eod_ax), -5 * expected_acc, atol=1e-12)
    assert acc_ax.lines[0].get_label() == "African (worst group)"


def test_bound_above_one_is_clipped(tmp_path: Path, captured: list[Figure]) -> None:
    bound = pd.DataFrame(
        {"lambda": LAMBDAS, "attribute": "race", "observed_dpd": 0.3, "bound": [0.3, 0.8, 1.3, 1.8, 2.3]}
    )
    plots.plot_bound(bound, tmp_path / "bound.png")
    ax = captured[0].axes[0]
    assert np.asarray(ax.lines[1].get_ydata(), dtype=float).max() <= ax.get_ylim()[1]
    assert any("vacuous" in t.get_text() for t in ax.texts)


def test_figures_without_data_are_not_drawn(tmp_path: Path) -> None:
    no_sweep = _metrics()
    no_sweep = no_sweep[no_sweep["model"] == "fft"]
    assert plots.plot_lambda_curves(no_sweep, {}, tmp_path / "c.png") is None
    assert plots.plot_group_accuracy(no_sweep, {}, tmp_path / "g.png") is None
    assert plots.plot_pareto(no_sweep, {}, tmp_path / "p.png") is None
    assert plots.plot_injection_effects(_metrics(injections=False), None, tmp_path / "i.png") is None
    assert plots.plot_similarity(None, tmp_path / "s.png") is None
    assert (
        plots.plot_bound(
            pd.DataFrame(columns=["lambda", "attribute", "observed_dpd", "bound"]), tmp_path / "b.png"
        )
        is None
    )
    assert list(tmp_path.iterdir()) == []


def test_pareto_front_keeps_only_non_dominated_points() -> None:
    acc = [0.80, 0.70, 0.75, 0.60, math.nan, 0.80]
    gap = [0.50, 0.20, 0.40, 0.30, 0.01, 0.50]
    # 3 is dominated by 1; 4 is NaN; 0 and 5 tie (neither dominates the other)
    assert pareto_mask(acc, gap).tolist() == [True, True, True, False, False, True]
    assert pareto_mask([], []).tolist() == []
