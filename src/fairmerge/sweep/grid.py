"""Evaluate a merged model over a grid of uniform coefficients, optionally refining near the best.

:func:`refined_grid` asks for the metrics at each λ (whoever writes the weights); :func:`sweep`
edits one model in place (:class:`InPlaceMerger`) and hands it to ``evaluate`` at each λ. The
tidy metric frames come back concatenated with a ``lambda`` column. Refinement adds the midpoints
between the currently selected λ and its evaluated neighbours, ``refine_rounds`` times, where
"selected" is any validation rule (:func:`fairmerge.sweep.selection.select_point` by default: accuracy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness.metrics import COLUMNS
from fairmerge.sweep.selection import Selection, points_from_metrics, select_point
from fairmerge.vectors.inplace import InPlaceMerger

Evaluate = Callable[[torch.nn.Module], pd.DataFrame]
"""Takes the (edited) model, returns a tidy frame: attribute, group, metric, value, ci_low, ci_high."""

EvaluateAt = Callable[[float], pd.DataFrame]
"""Takes a λ, returns the tidy metrics of the model at that λ (the caller writes the weights)."""

Selector = Callable[[pd.DataFrame], Selection]
"""Takes a points table (see :func:`points_from_metrics`), returns the selected point."""

METRIC_COLUMNS = tuple(COLUMNS)
_DECIMALS = 10  # λ values equal to this many decimals are the same point


def sweep(
    merger: InPlaceMerger,
    lambdas: Sequence[float],
    evaluate: Evaluate,
    *,
    refine_rounds: int = 0,
    selector: Selector | None = None,
    selection_split: str = "val",
    progress: bool = True,
) -> pd.DataFrame:
    """Metrics of ``base + λ·Σ τ`` for every λ, as one tidy frame with a leading ``lambda`` column.

    ``evaluate(model)`` must return the tidy metrics of the model as it is (validation data, for
    selection). Refinement as in :func:`refined_grid`. The model is restored to the base afterwards.
    """
    try:
        return refined_grid(
            lambdas,
            lambda lam: evaluate(merger.set_coefficients(lam)),
            refine_rounds=refine_rounds,
            selector=selector,
            selection_split=selection_split,
            progress=progress,
        )
    finally:
        merger.restore()


def refined_grid(
    lambdas: Sequence[float],
    evaluate_at: EvaluateAt,
    *,
    refine_rounds: int = 0,
    selector: Selector | None = None,
    selection_split: str = "val",
    progress: bool = True,
) -> pd.DataFrame:
    """``evaluate_at(λ)`` for every λ of the grid, as one tidy frame with a leading ``lambda`` column.

    With ``refine_rounds > 0``, after the grid the point chosen by ``selector`` (default: max
    accuracy) gets the midpoints to its neighbouring evaluated λ added, and this is repeated; if
    the frames have a ``split`` column only ``selection_split`` rows are used for that choice.
    Rows are ordered by λ.
    """
    grid = _unique(lambdas)
    if not grid:
        raise ConfigError("sweep needs at least one λ, got none")
    if refine_rounds < 0:
        raise ConfigError(f"refine_rounds must be >= 0, got {refine_rounds}")
    choose = selector or (lambda points: select_point(points, "accuracy"))
    frames: dict[float, pd.DataFrame] = {}
    bar = tqdm(total=len(grid), desc="λ sweep", unit="point", disable=not progress, leave=False)
    try:
        _evaluate_points(grid, evaluate_at, frames, bar)
        for _ in range(refine_rounds):
            evaluated = sorted(frames)
            best = choose(points_from_metrics(_selection_rows(_concat(frames), selection_split))).lam
            new = [m for m in _midpoints(evaluated, best) if _key(m) not in frames]
            if not new:
                break
            bar.total = (bar.total or 0) + len(new)
            _evaluate_points(new, evaluate_at, frames, bar)
    finally:
        bar.close()
    return _concat(frames)


def _evaluate_points(
    lambdas: Sequence[float],
    evaluate_at: EvaluateAt,
    frames: dict[float, pd.DataFrame],
    bar: tqdm,
) -> None:
    for lam in lambdas:
        bar.set_postfix(lam=f"{lam:g}")
        frame = evaluate_at(lam)
        _check_frame(frame, lam)
        frames[_key(lam)] = frame.assign(**{"lambda": lam})[["lambda", *frame.columns]]
        bar.update(1)


def _selection_rows(tidy: pd.DataFrame, split: str) -> pd.DataFrame:
    if "split" not in tidy.columns:
        return tidy
    rows = tidy[tidy["split"] == split]
    if rows.empty:
        raise DataError(f"evaluate's frames have no rows of split {split!r} to refine the sweep on")
    return rows


def _midpoints(evaluated: list[float], best: float) -> list[float]:
    """Midpoints between ``best`` and its left / right neighbours in the evaluated grid."""
    position = int(np.argmin([abs(x - best) for x in evaluated]))
    out = []
    if position > 0:
        out.append((evaluated[position - 1] + evaluated[position]) / 2)
    if position < len(evaluated) - 1:
        out.append((evaluated[position] + evaluated[position + 1]) / 2)
    return out


def _unique(lambdas: Sequence[float]) -> list[float]:
    out: dict[float, float] = {}
    for lam in lambdas:
        value = float(lam)
        if not math.isfinite(value):
            raise ConfigError(f"λ must be finite, got {lam!r}")
        out.setdefault(_key(value), value)
    return list(out.values())


def _key(lam: float) -> float:
    return round(float(lam), _DECIMALS)


def _concat(frames: dict[float, pd.DataFrame]) -> pd.DataFrame:
    ordered = [frames[k] for k in sorted(frames)]
    return pd.concat(ordered, ignore_index=True)


def _check_frame(frame: object, lam: float) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"evaluate returned {type(frame).__name__} at λ={lam:g}, expected a pandas DataFrame")
    missing = [c for c in METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"evaluate's frame at λ={lam:g} lacks column {missing[0]!r}; expected {list(METRIC_COLUMNS)}"
        )
    if "lambda" in frame.columns:
        raise DataError("evaluate's frame already has a 'lambda' column; sweep adds it")
