"""The coefficient searches' figures (issue #20), drawn from ``pareto_front.csv`` when a study wrote one.

``search_fronts.png``: every method's front, accuracy against each gap objective, validation points
hollow and the same points on test filled with their interval bars (the selected point ringed);
``search_coefficients.png``: the learned searches' coefficients per group (and block), per μ.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fairmerge.report.plots import _figure_legend, _new_figure, _palette, _save, _style

SECTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "search-fronts",
        "Search fronts",
        "Accuracy–fairness fronts of the coefficient searchers (validation and test)",
        "Each searcher's non-dominated points on validation (hollow) and the same models on test (filled, "
        "95 % bootstrap interval bars; seed 0 where several seeds ran). Ringed: the point the selection "
        "rule took from the front, compared with FFT as merge[<method>]. hypervolume.csv ranks the fronts.",
    ),
    (
        "search-coefficients",
        "Learned λ",
        "Learned coefficients per group and block",
        "The coefficients λ_g (per block with blocks: quarters) the learned searches reached, one bar per "
        "fairness weight μ whose point is on the method's validation front (first seed); a μ whose point "
        "was dominated is not in pareto_front.csv and not drawn.",
    ),
)


def plot_search(fronts_csv: Path, plot_dir: Path) -> dict[str, Path]:
    """Both figures, keyed as in :data:`SECTIONS` (empty when the study ran no search)."""
    if not fronts_csv.is_file():
        return {}
    fronts = pd.read_csv(fronts_csv)
    if "seed" in fronts.columns:
        fronts = fronts[fronts["seed"] == fronts["seed"].min()]
    out = {"search-fronts": plot_fronts(fronts, plot_dir / "search_fronts.png")}
    learned = plot_learned_coefficients(fronts, plot_dir / "search_coefficients.png")
    return out | ({"search-coefficients": learned} if learned else {})


def _gaps(fronts: pd.DataFrame) -> list[str]:
    return [c for c in fronts.columns if c.endswith(("_dpd", "_eod")) and not c.startswith("lambda_")]


def plot_fronts(fronts: pd.DataFrame, path: Path) -> Path:
    """Accuracy (y) against each gap (x): one panel per gap, one colour per method."""
    gaps = _gaps(fronts)
    methods = list(dict.fromkeys(fronts["model"]))
    colors = _palette(len(methods))
    with _style():
        fig, axes = _new_figure(1, len(gaps), width=4.2 * len(gaps), height=3.8)
        for ax, gap in zip(axes[0], gaps, strict=True):
            for i, method in enumerate(methods):
                rows = fronts[fronts["model"] == method]
                val, test = rows[rows["split"] == "val"], rows[rows["split"] == "test"]
                color = colors(i)
                ax.scatter(
                    val[gap], val["accuracy"], facecolors="none", edgecolors=color, label=f"{method} (val)"
                )
                # bars drawn from the interval's ends, not as errors around the point: a basic
                # bootstrap interval of a gap can lie wholly on one side of its estimate
                ax.hlines(
                    test["accuracy"], test[f"{gap}_ci_low"], test[f"{gap}_ci_high"], color=color, lw=0.8
                )
                ax.vlines(test[gap], test["accuracy_ci_low"], test["accuracy_ci_high"], color=color, lw=0.8)
                ax.scatter(test[gap], test["accuracy"], s=16, color=color, label=f"{method} (test)")
                if "selected" in test.columns:
                    chosen = test[test["selected"].astype(bool)]
                    ax.scatter(chosen[gap], chosen["accuracy"], s=140, facecolors="none", edgecolors="black")
            ax.set_xlabel(f"{gap} (lower is fairer)")
            ax.set_ylabel("accuracy")
        _figure_legend(fig, axes, loc="outside lower center", ncols=min(5, 2 * len(methods)))
        return _save(fig, path)


def plot_learned_coefficients(fronts: pd.DataFrame, path: Path) -> Path | None:
    """Bars of every coefficient per μ, one panel per learned method (None when none ran)."""
    learned = fronts[fronts["model"].isin(["learned", "orthogonal"]) & (fronts["split"] == "val")]
    if learned.empty or "mu" not in learned.columns:
        return None
    names = [c for c in fronts.columns if c.startswith("lambda_")]
    methods = list(dict.fromkeys(learned["model"]))
    with _style():
        fig, axes = _new_figure(1, len(methods), width=max(4.5, 0.5 * len(names)) * len(methods), height=3.6)
        for ax, method in zip(axes[0], methods, strict=True):
            rows = learned[learned["model"] == method].sort_values("mu")
            width = 0.8 / max(len(rows), 1)
            colors = _palette(len(rows))
            for i, (_, row) in enumerate(rows.iterrows()):
                positions = [k + i * width for k in range(len(names))]
                ax.bar(
                    positions,
                    row[names].astype(float),
                    width=width,
                    color=colors(i),
                    label=f"μ = {row['mu']:g}",
                )
            ax.set_xticks([k + 0.4 - width / 2 for k in range(len(names))])
            ax.set_xticklabels([n.removeprefix("lambda_") for n in names], rotation=45, ha="right")
            ax.set_title(method)
            ax.set_ylabel("λ")
            ax.legend()
        return _save(fig, path)
