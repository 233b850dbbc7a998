"""The report's figures: one function per figure, each writes one PNG atomically and returns its path.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no GUI
backend). Every function returns ``None`` when its input holds nothing to draw, so the caller can
leave the section out instead of showing an empty plot. Curves over λ are validation curves: λ is
selected on validation; a test curve, if one exists, is labelled as not used for selection.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fairmerge.atomic import atomic_write_bytes
from fairmerge.report.frames import (
    ModelLabel,
    attribute_of_group,
    attributes_of,
    curve,
    groups_of,
    models_present,
    pareto_mask,
    parse_model,
    point_value,
    selected_lambda,
    with_decision,
)
from fairmerge.report.tables import is_missing
from fairmerge.study.summary import SelectedEntry

DPI = 110
# Reference (λ-free) models drawn as horizontal lines on the λ curves, with one line style each.
REFERENCE_STYLES: dict[str, tuple[str, Any]] = {
    "base": ("θ_base", (0, (1, 1.5))),
    "fft": ("FFT", (0, (6, 2))),
    "lora": ("LoRA", (0, (4, 1.5, 1, 1.5))),
}
BASELINE_MARKERS: dict[str, str] = {
    "base": "v",
    "fft": "D",
    "lora": "P",
    "threshold_optimizer": "X",
    "merge_pergroup": "h",
}
FAMILY_COLORS: dict[str, str] = {"merge": "tab:blue", "inject": "tab:orange"}
TEST_CURVE_LABEL = "test (not used for selection)"
MIN_TEST_POINTS = 3


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """House style; mathtext is off so group names with ``$`` or ``_`` are drawn verbatim."""
    with matplotlib.rc_context(
        {
            "text.parse_math": False,
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.fontsize": 8,
            "legend.framealpha": 0.85,
        }
    ):
        yield


def _new_figure(nrows: int, ncols: int, *, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    # Software metadata off: byte-stable output and no URL inside the file.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return path


def _palette(n: int) -> Any:
    """A qualitative colour map with enough distinct colours for ``n`` lines."""
    return matplotlib.colormaps["tab10" if n <= 10 else "tab20"]


def _legend_below(ax: Axes, handles: list[Any], labels: list[str]) -> None:
    """A legend under the axes, so it never hides a curve."""
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)


def _figure_legend(fig: Figure, axes: np.ndarray, **kwargs: Any) -> None:
    """One legend for the whole figure: every distinct entry of every panel, once."""
    entries: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(list(entries.values()), list(entries.keys()), **kwargs)


def _prefer_argmax(labels: Sequence[ModelLabel]) -> list[ModelLabel]:
    """The argmax-decision labels, or the calibrated ones when no argmax label exists."""
    argmax = [lab for lab in labels if not lab.calibrated]
    return argmax or list(labels)


def _band(ax: Axes, frame: pd.DataFrame, color: Any) -> None:
    ok = frame["ci_low"].notna() & frame["ci_high"].notna()
    if ok.any():
        ax.fill_between(
            frame["lambda"].where(ok),
            frame["ci_low"].where(ok),
            frame["ci_high"].where(ok),
            color=color,
            alpha=0.15,
            linewidth=0,
        )


def _mark_selected(ax: Axes, selected: Mapping[str, SelectedEntry], labels: Sequence[ModelLabel]) -> None:
    for lab in labels:
        lam = selected_lambda(selected, lab.label)
        if lam is not None:
            ax.axvline(
                lam,
                color="black",
                linewidth=1.0,
                linestyle="--" if lab.calibrated else "-",
                alpha=0.6,
                label=f"selected λ={lam:g} ({lab.label})",
            )


def _merge_variant_style(lab: ModelLabel) -> dict[str, Any]:
    return {"linestyle": "--", "marker": "s"} if lab.calibrated else {"linestyle": "-", "marker": "o"}


def _test_curve(
    ax: Axes, metrics: pd.DataFrame, label: str, metric: str, attribute: str, drawn: list[bool]
) -> None:
    """Draw a test curve over λ (grey, labelled as not used for selection) when enough test points exist."""
    test = curve(metrics, model=label, metric=metric, split="test", attribute=attribute)
    if test["value"].notna().sum() >= MIN_TEST_POINTS:
        ax.plot(
            test["lambda"],
            test["value"],
            color="grey",
            linewidth=1.0,
            linestyle=":",
            label=None if drawn[0] else TEST_CURVE_LABEL,
        )
        drawn[0] = True


def plot_lambda_curves(
    metrics: pd.DataFrame, selected: Mapping[str, SelectedEntry], path: Path
) -> Path | None:
    """Accuracy, DPD and EOD against λ on validation for the merge sweep.

    One panel per metric; one line per attribute for the gaps; bootstrap CI bands where present;
    θ_base / FFT / LoRA validation values as horizontal reference lines; the selected λ marked.
    """
    merges = models_present(metrics, family="merge")
    if not merges:
        return None
    attrs = attributes_of(metrics)
    colors = matplotlib.colormaps["tab10"]
    with _style():
        fig, axes = _new_figure(1, 3, width=15.0, height=6.2)
        panels = [
            ("accuracy", "accuracy (overall)"),
            ("dpd", "DPD (lower is fairer)"),
            ("eod", "EOD (lower is fairer)"),
        ]
        for ax, (metric, title) in zip(axes[0], panels, strict=True):
            test_drawn = [False]
            series = (
                [("all", "tab:blue")]
                if metric == "accuracy"
                else [(a, colors(i % 10)) for i, a in enumerate(attrs)]
            )
            for attribute, color in series:
                for lab in merges:
                    frame = curve(metrics, model=lab.label, metric=metric, attribute=attribute)
                    if frame["value"].isna().all():
                        continue  # e.g. a gap over fewer than two qualifying groups: undefined
                    name = lab.label if attribute == "all" else f"{attribute} · {lab.label}"
                    ax.plot(
                        frame["lambda"],
                        frame["value"],
                        color=color,
                        label=name,
                        markersize=3.5,
                        **_merge_variant_style(lab),
                    )
                    _band(ax, frame, color)
                    if not lab.calibrated:
                        _test_curve(ax, metrics, lab.label, metric, attribute, test_drawn)
                for ref, (_, dash) in REFERENCE_STYLES.items():
                    value = point_value(metrics, model=ref, metric=metric, attribute=attribute)
                    if not math.isnan(value):
                        ax.axhline(
                            value,
                            color=color if metric != "accuracy" else "dimgrey",
                            linestyle=dash,
                            linewidth=1.1,
                            alpha=0.9,
                        )
            _mark_selected(ax, selected, merges)
            handles, labels = ax.get_legend_handles_labels()
            for ref, (ref_name, dash) in REFERENCE_STYLES.items():
                if metrics["model"].eq(ref).any():
                    handles.append(Line2D([], [], color="dimgrey", linestyle=dash))
                    labels.append(f"{ref_name} (val, reference)")
            _legend_below(ax, handles, labels)
            ax.set_title(f"{title} vs λ — validation")
            ax.set_xlabel("λ (merge coefficient)")
            ax.set_ylabel(metric.upper() if metric != "accuracy" else "accuracy")
        fig.suptitle("Merge sweep θ_base + λ·Σ τ_g on validation (bands: 95% bootstrap CI)")
        return _save(fig, path)


def plot_group_accuracy(
    metrics: pd.DataFrame, selected: Mapping[str, SelectedEntry], path: Path
) -> Path | None:
    """Per-group validation accuracy against λ for the merge sweep: one panel per attribute,
    one line per group, validation group sizes in the legend."""
    merges = _prefer_argmax(models_present(metrics, family="merge"))
    attrs = attributes_of(metrics)
    if not merges or not attrs:
        return None
    lab = merges[0]
    ncols = min(2, len(attrs))
    nrows = math.ceil(len(attrs) / ncols)
    colors = _palette(max(len(groups_of(metrics, a)) for a in attrs))
    with _style():
        fig, axes = _new_figure(nrows, ncols, width=7.0 * ncols, height=4.2 * nrows)
        for ax in axes.flat[len(attrs) :]:
            ax.set_visible(False)
        for ax, attribute in zip(axes.flat, attrs, strict=False):
            for i, group in enumerate(groups_of(metrics, attribute)):
                frame = curve(metrics, model=lab.label, metric="accuracy", attribute=attribute, group=group)
                sizes = curve(metrics, model=lab.label, metric="n", attribute=attribute, group=group)
                n = sizes["value"].dropna()
                size = f"n={int(n.iloc[0])}" if len(n) else "n=n/a"
                ax.plot(
                    frame["lambda"],
                    frame["value"],
                    marker="o",
                    markersize=3,
                    color=colors(i % colors.N),
                    label=f"{group} ({size})",
                )
            overall = curve(metrics, model=lab.label, metric="accuracy")
            ax.plot(overall["lambda"], overall["value"], color="black", linewidth=2.0, label="overall")
            _mark_selected(ax, selected, [lab])
            ax.set_title(f"{attribute}: accuracy per group vs λ — validation ({lab.label})")
            ax.set_xlabel("λ (merge coefficient)")
            ax.set_ylabel("accuracy")
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return _save(fig, path)


def _swept_points(metrics: pd.DataFrame, attribute: str, gap: str) -> pd.DataFrame:
    """Validation (model, λ, accuracy, gap) for every swept merge / injection point."""
    val = metrics[(metrics["split"] == "val") & metrics["lambda"].notna()]
    kinds = val["model"].map(lambda m: parse_model(m).family)
    val = val[kinds.isin(["merge", "inject"])]
    acc = val[(val["metric"] == "accuracy") & (val["attribute"] == "all") & (val["group"] == "all")]
    gp = val[(val["metric"] == gap) & (val["attribute"] == attribute) & (val["group"] == "all")]
    keys = ["model", "lambda"]
    acc = acc.drop_duplicates(keys, keep="last")[[*keys, "value"]].rename(columns={"value": "accuracy"})
    gp = gp.drop_duplicates(keys, keep="last")[[*keys, "value"]].rename(columns={"value": "gap"})
    return acc.merge(gp, on=keys, how="inner")


def plot_pareto(metrics: pd.DataFrame, selected: Mapping[str, SelectedEntry], path: Path) -> Path | None:
    """Accuracy against DPD and against EOD on validation, one row per attribute.

    All swept merge / injection points, the non-dominated front highlighted, baselines marked and the
    selected points starred.
    """
    points = {
        (attribute, gap): _swept_points(metrics, attribute, gap).dropna(subset=["accuracy", "gap"])
        for attribute in attributes_of(metrics)
        for gap in ("dpd", "eod")
    }
    # an attribute with fewer than two qualifying groups has no gap to trade off against
    attrs = list(dict.fromkeys(a for (a, _), pts in points.items() if len(pts)))
    if not attrs:
        return None
    picks = [(label, lam) for label in selected if (lam := selected_lambda(selected, label)) is not None]
    families = sorted({parse_model(str(m)).variant for pts in points.values() for m in pts["model"]})
    extra = _palette(len(families) + 3)
    colors = {f: FAMILY_COLORS.get(f, extra((i + 2) % extra.N)) for i, f in enumerate(families)}
    with _style():
        fig, axes = _new_figure(len(attrs), 2, width=13.0, height=4.0 * len(attrs) + 0.6)
        for row, attribute in enumerate(attrs):
            for col, gap in enumerate(("dpd", "eod")):
                ax = axes[row, col]
                pts = points[(attribute, gap)]
                if pts.empty:
                    ax.text(
                        0.5,
                        0.5,
                        f"{attribute} {gap.upper()} undefined at every point",
                        transform=ax.transAxes,
                        ha="center",
                        va="center",
                        color="dimgrey",
                    )
                for (family, calibrated), part in pts.groupby(
                    [
                        pts["model"].map(lambda m: parse_model(m).variant),
                        pts["model"].map(lambda m: parse_model(m).calibrated),
                    ],
                    sort=True,
                ):
                    color = colors[str(family)]
                    ax.scatter(
                        part["gap"],
                        part["accuracy"],
                        s=22,
                        alpha=0.75,
                        facecolors="none" if calibrated else color,
                        edgecolors=color,
                        label=f"{family} points" + (" (calibrated)" if calibrated else ""),
                    )
                front = pts[pareto_mask(pts["accuracy"], pts["gap"])].sort_values("gap")
                if len(front):
                    ax.plot(
                        front["gap"],
                        front["accuracy"],
                        color="black",
                        linewidth=1.3,
                        drawstyle="steps-post",
                        marker="o",
                        markersize=6,
                        markerfacecolor="none",
                        label="Pareto front",
                    )
                for label in pd.unique(metrics.loc[metrics["lambda"].isna(), "model"]):
                    parsed = parse_model(str(label))
                    marker = BASELINE_MARKERS.get(parsed.variant)
                    if marker is None:
                        continue
                    x = point_value(metrics, model=parsed.label, metric=gap, attribute=attribute)
                    y = point_value(metrics, model=parsed.label, metric="accuracy")
                    if not (math.isnan(x) or math.isnan(y)):
                        ax.scatter(
                            [x],
                            [y],
                            marker=marker,
                            s=60,
                            color="tab:red" if not parsed.calibrated else "tab:purple",
                            edgecolors="black",
                            linewidths=0.5,
                            zorder=5,
                            label=parsed.label,
                        )
                for number, (label, lam) in enumerate(picks, start=1):
                    hit = pts[(pts["model"] == label) & np.isclose(pts["lambda"], lam, atol=1e-9)]
                    if len(hit):
                        # numbered stars keep long labels out of the plot; the legend says which is which
                        x, y = float(hit["gap"].iloc[0]), float(hit["accuracy"].iloc[0])
                        ax.scatter(
                            [x],
                            [y],
                            marker="*",
                            s=180,
                            color="gold",
                            edgecolors="black",
                            linewidths=0.7,
                            zorder=6,
                            label=f"{number}: selected {label} (λ={lam:g})",
                        )
                        ax.annotate(
                            str(number),
                            (x, y),
                            xytext=(5, 5),
                            textcoords="offset points",
                            fontsize=8,
                            fontweight="bold",
                            zorder=7,
                        )
                ax.set_xlabel(f"{attribute} {gap.upper()} (validation, lower is fairer)")
                ax.set_ylabel("accuracy (validation)")
                ax.set_title(f"accuracy vs {attribute} {gap.upper()}")
        _figure_legend(fig, axes, loc="outside right center")
        fig.suptitle("Pareto view on validation: up and to the left is better")
        return _save(fig, path)


def plot_injection_effects(metrics: pd.DataFrame, worst_group: str | None, path: Path) -> Path | None:
    """Effect of injecting each group's vector into FFT, relative to FFT, on validation.

    For each injected group g (θ_FFT + λ·τ_g): Δ overall accuracy, Δ accuracy of g itself and Δ EOD
    of g's attribute at each λ. Lines above / below zero show which injections help and which hurt;
    ``worst_group`` (FFT's worst group on val) is drawn thick.
    """
    injections = _prefer_argmax(models_present(metrics, family="inject"))
    if not injections:
        return None
    colors = _palette(len(injections))
    with _style():
        fig, axes = _new_figure(1, 3, width=16.0, height=4.6)
        titles = (
            "Δ overall accuracy",
            "Δ accuracy of the injected group",
            "Δ EOD of the group's attribute (lower is fairer)",
        )
        for i, lab in enumerate(injections):
            group = lab.target or lab.label
            attribute = attribute_of_group(metrics, group)
            reference = with_decision("fft", lab.calibrated)
            is_worst = group == worst_group
            style = {
                "color": colors(i % colors.N),
                "marker": "o",
                "markersize": 3.5,
                "linewidth": 2.6 if is_worst else 1.3,
            }
            name = f"{group}" + (" (worst group)" if is_worst else "")
            specs = [("accuracy", "all", "all"), ("accuracy", attribute, group), ("eod", attribute, "all")]
            for ax, (metric, attr, grp) in zip(axes[0], specs, strict=True):
                if attr is None:
                    continue
                frame = curve(metrics, model=lab.label, metric=metric, attribute=attr, group=grp)
                ref = point_value(metrics, model=reference, metric=metric, attribute=attr, group=grp)
                if frame.empty or math.isnan(ref):
                    continue
                ax.plot(frame["lambda"], frame["value"] - ref, label=name, **style)
        for ax, title in zip(axes[0], titles, strict=True):
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_title(f"{title} vs FFT — validation")
            ax.set_xlabel("λ (injection coefficient, θ_FFT + λ·τ_g)")
            ax.set_ylabel("difference to FFT")
        _figure_legend(fig, axes, loc="outside lower center", ncols=6, title="injected group g")
        fig.suptitle("Injecting one subgroup vector into FFT: above 0 helps accuracy, below 0 narrows EOD")
        return _save(fig, path)


def plot_similarity(similarity: pd.DataFrame | None, path: Path) -> Path | None:
    """Heat-map of cosine similarity between subgroup task vectors, values annotated."""
    if similarity is None or similarity.empty:
        return None
    values = similarity.to_numpy(dtype=float)
    n = values.shape[0]
    side = max(4.5, 0.75 * n + 2.5)
    cmap = matplotlib.colormaps["RdBu_r"]
    with _style():
        fig, axes = _new_figure(1, 1, width=side + 1.2, height=side)
        ax = axes[0, 0]
        image = ax.imshow(values, cmap=cmap, vmin=-1.0, vmax=1.0)
        ax.grid(False)
        ax.set_xticks(range(values.shape[1]), [str(c) for c in similarity.columns], rotation=45, ha="right")
        ax.set_yticks(range(n), [str(i) for i in similarity.index])
        for (r, c), v in np.ndenumerate(values):
            text = "n/a" if math.isnan(v) else f"{v:.2f}"
            ax.text(
                c,
                r,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if not math.isnan(v) and abs(v) > 0.6 else "black",
            )
        fig.colorbar(image, ax=ax, label="cosine similarity")
        ax.set_title("Cosine similarity between subgroup task vectors τ_g")
        return _save(fig, path)


def plot_bound(bound: pd.DataFrame | None, path: Path) -> Path | None:
    """Observed validation DPD along the merge path next to its empirical upper bound, per attribute.

    DPD never exceeds 1, so the axis stops just above 1 and a bound above it is drawn at the edge.
    """
    if bound is None or bound["observed_dpd"].isna().all():
        return None
    colors = matplotlib.colormaps["tab10"]
    with _style():
        fig, axes = _new_figure(1, 1, width=8.0, height=4.6)
        ax = axes[0, 0]
        top = 1.05
        if (bound["bound"] > 1.0).any():
            ax.text(
                0.99,
                0.02,
                "bound > 1 is vacuous (DPD ≤ 1): drawn at the top edge",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                color="dimgrey",
            )
        for i, (attribute, part) in enumerate(bound.groupby("attribute", sort=False)):
            part = part.sort_values("lambda")
            if part["observed_dpd"].isna().all():
                continue  # fewer than two qualifying groups: no DPD to bound
            color = colors(i % 10)
            ax.plot(
                part["lambda"],
                part["observed_dpd"],
                color=color,
                marker="o",
                markersize=4,
                label=f"{attribute}: observed DPD",
            )
            if "in_estimation" in part.columns:
                held = part[~part["in_estimation"].astype(bool)]
                if len(held):
                    ax.scatter(
                        held["lambda"],
                        held["observed_dpd"],
                        s=45,
                        facecolors="white",
                        edgecolors=color,
                        zorder=4,
                        label=f"{attribute}: held-out λ (a real check)",
                    )
            ax.plot(
                part["lambda"],
                part["bound"].clip(upper=top),
                color=color,
                linestyle="--",
                label=f"{attribute}: bound",
            )
        ax.set_ylim(0.0, top)
        ax.set_xlabel("λ (merge coefficient)")
        ax.set_ylabel("DPD (validation)")
        ax.set_title("Observed DPD vs the λ–DPD bound along θ_base + λ·Σ τ_g")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return _save(fig, path)


TRAINING_PANELS = (
    ("train_loss", "train loss"),
    ("val_loss", "validation loss"),
    ("val_accuracy", "validation accuracy"),
)


def plot_training_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path | None:
    """Train loss, validation loss and validation accuracy per evaluation of every fine-tune.

    ``histories`` maps a model's name (``fft``, ``lora``, ``race/African [targeted]`` …) to the
    ``history`` of its training-cache entry; entries without an ``epoch`` (a linear probe) are left
    out. FFT and LoRA are drawn thick; each fine-tune's lowest validation loss is ringed (the
    evaluation kept under the default ``select_by: loss``).
    """
    drawn = {name: [h for h in hist if h.get("epoch") is not None] for name, hist in histories.items()}
    drawn = {name: hist for name, hist in drawn.items() if hist}
    if not drawn:
        return None
    colors = _palette(len(drawn))
    with _style():
        fig, axes = _new_figure(1, 3, width=13.0, height=4.4)
        for i, (name, hist) in enumerate(drawn.items()):
            epochs = [float(h["epoch"]) for h in hist]
            main = name in ("fft", "lora")
            color = colors(i % colors.N)
            best = int(np.nanargmin([float(h["val_loss"]) for h in hist]))
            for ax, (key, _title) in zip(axes[0], TRAINING_PANELS, strict=True):
                values = [float(h[key]) for h in hist]
                ax.plot(epochs, values, color=color, linewidth=2.2 if main else 1.0, marker="o",
                        markersize=3.5 if main else 2.5, label=name)  # fmt: skip
                ax.scatter([epochs[best]], [values[best]], s=60, facecolors="none",
                           edgecolors=[color], zorder=4)  # fmt: skip
        for ax, (_key, title) in zip(axes[0], TRAINING_PANELS, strict=True):
            ax.set_xlabel("epoch")
            ax.set_title(title)
        _figure_legend(fig, axes, loc="outside right center")
        fig.suptitle("Training curves (ring: lowest validation loss, the evaluation kept)")
        return _save(fig, path)


def plot_comparisons(
    comparisons: Sequence[Mapping[str, Any]],
    path: Path,
    *,
    delta: float = 0.0,
    unedited: Mapping[str, str] | None = None,
) -> Path | None:
    """Forest plot: each model's Δ vs FFT with its interval, one panel per metric column, against 0.

    Unedited points (λ = 0; ``unedited``: model → θ_base or FFT) are named as what they are. The
    accuracy panel shades the δ band of the selection rule (``delta``: a loss within δ counts as kept);
    the primary comparison is drawn in red; undefined comparisons are left out and counted in a note.
    """
    drawn = [r for r in comparisons if not any(is_missing(r.get(k)) for k in ("delta", "ci_low", "ci_high"))]
    if not drawn:
        return None
    panels = sorted(
        dict.fromkeys((str(r["attribute"]), str(r["metric"])) for r in drawn),
        key=lambda k: (k[1] != "accuracy", k[0], k[1]),
    )
    models = list(dict.fromkeys(str(r["model"]) for r in comparisons))
    unedited = unedited or {}
    names = [f"{m} = {unedited[m]} (λ = 0)" if m in unedited else m for m in models]
    with _style():
        fig, axes = _new_figure(
            1, len(panels), width=2.6 * len(panels) + 1.5, height=0.32 * len(models) + 1.6
        )
        for ax, (attribute, metric) in zip(axes[0], panels, strict=True):
            if metric == "accuracy" and delta > 0:
                ax.axvspan(-delta, delta, color="tab:green", alpha=0.12, label=f"±δ = {delta:g} (accuracy)")
            ax.axvline(0.0, color="black", linewidth=0.8)
            for row in drawn:
                if (str(row["attribute"]), str(row["metric"])) != (attribute, metric):
                    continue
                primary = row.get("role") == "primary" or bool(row.get("primary"))
                y = models.index(str(row["model"]))
                low, mid, high = float(row["ci_low"]), float(row["delta"]), float(row["ci_high"])
                ax.errorbar(
                    mid,
                    y,
                    xerr=[[mid - low], [high - mid]],
                    fmt="o",
                    mfc="white" if row.get("role") == "exploratory" else None,
                    color="tab:red" if primary else "tab:blue",
                    capsize=2,
                    label="primary" if primary else None,
                )
            ax.set_yticks(range(len(models)), names if ax is axes[0][0] else [""] * len(models))
            ax.set_ylim(len(models) - 0.5, -0.5)
            name = {"accuracy": "Δ accuracy", "dpd": "Δ DPD", "eod": "Δ EOD"}.get(metric, metric)
            ax.set_title(name if attribute == "all" else f"{attribute} {name}")
        undefined = len(comparisons) - len(drawn)
        note = "95% intervals vs FFT; hollow: exploratory (no claim)"
        if undefined:
            note += f"; {undefined} undefined comparison{'s' if undefined != 1 else ''} not drawn"
        fig.supxlabel(note, fontsize=8)
        _figure_legend(fig, axes, loc="outside upper right", fontsize=7)
        return _save(fig, path)
