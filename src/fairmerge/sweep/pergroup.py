"""Search one merge coefficient per subgroup vector on validation (the study's open question).

θ = θ_base + Σ_g λ_g τ_g has as many knobs as vectors, too many for a grid. Optuna's TPE sampler
(seeded, so a search is reproducible) spends a fixed budget of evaluations; the best uniform λ from
the grid sweep is enqueued as the first trial, so the search can only match or improve on it. The
objective is a selection rule turned into one score (:func:`fairmerge.sweep.selection.rule_scores`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
import pandas as pd

from fairmerge.errors import ConfigError
from fairmerge.fairness.registry import wide_column
from fairmerge.sweep.selection import Rule, fairness_attributes, get_rule, point_metrics, rule_scores

EvaluateCoefficients = Callable[[Sequence[float]], pd.DataFrame]
"""Sets the model to the given λ per vector, returns its tidy validation metrics."""


@dataclass(frozen=True)
class GroupSearchResult:
    """Best λ per vector name, its score, the enqueued start's score, and one row per trial.

    ``trials`` columns: ``trial``, ``start`` (True for the enqueued uniform start),
    ``lambda_<name>`` per vector, ``objective``, then the headline metrics of the trial.
    """

    best: dict[str, float]
    value: float
    start_value: float
    trials: pd.DataFrame


def search_group_coefficients(
    evaluate: EvaluateCoefficients,
    names: Sequence[str],
    *,
    n_trials: int = 20,
    seed: int = 0,
    rule: Rule = "constrained",
    epsilon: float = 0.1,
    delta: float = 0.02,
    reference_accuracy: float | None = None,
    penalty: float = 10.0,
    start: float | Sequence[float] | None = None,
    low: float = 0.0,
    high: float = 1.0,
    progress: bool = False,
) -> GroupSearchResult:
    """Maximise the ``rule`` score over λ ∈ [low, high]^len(names) with ``n_trials`` evaluations.

    ``evaluate(lambdas)`` receives one λ per name, in order. ``start`` (the best uniform λ, or one
    value per name) is evaluated first. The best trial wins; ties go to the earliest trial, so the
    start wins a tie. Attributes whose DPD or EOD is undefined at the first trial (too few
    qualifying groups, a fixed property of the data) are left out of the score, with a warning.
    """
    names = list(names)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"names must be non-empty and unique, got {names}")
    if n_trials < 1:
        raise ConfigError(f"n_trials must be >= 1, got {n_trials}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"need finite low < high, got [{low}, {high}]")
    first = _start_values(start, names, low, high)

    rows: list[dict[str, object]] = []
    attributes: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        lambdas = [trial.suggest_float(name, low, high) for name in names]
        metrics = pd.DataFrame([point_metrics(evaluate(lambdas))])
        if not rows and get_rule(rule).needs_gaps:
            attributes.extend(_defined_attributes(metrics))
        score = float(
            rule_scores(
                metrics,
                rule,
                epsilon=epsilon,
                delta=delta,
                reference_accuracy=reference_accuracy,
                penalty=penalty,
                attributes=attributes or None,
            ).iloc[0]
        )
        rows.append(
            {
                "trial": trial.number,
                "start": first is not None and trial.number == 0,
                **{f"lambda_{n}": lam for n, lam in zip(names, lambdas, strict=True)},
                "objective": score,
                **{str(k): v for k, v in metrics.iloc[0].items()},
            }
        )
        return score

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, n_trials // 3)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if first is not None:
        study.enqueue_trial(dict(zip(names, first, strict=True)))
    with _quiet_optuna():
        study.optimize(objective, n_trials=n_trials, show_progress_bar=progress)

    trials = pd.DataFrame(rows)
    best_row = trials.iloc[int(trials["objective"].to_numpy().argmax())]  # first maximum: earliest trial
    return GroupSearchResult(
        best={n: float(best_row[f"lambda_{n}"]) for n in names},
        value=float(best_row["objective"]),
        start_value=float(trials["objective"].iloc[0]) if first is not None else float("nan"),
        trials=trials,
    )


def _start_values(
    start: float | Sequence[float] | None, names: list[str], low: float, high: float
) -> list[float] | None:
    if start is None:
        return None
    values = [float(start)] * len(names) if isinstance(start, int | float) else [float(x) for x in start]
    if len(values) != len(names):
        raise ConfigError(f"start has {len(values)} values for {len(names)} vectors")
    if any(not low <= v <= high for v in values):
        raise ConfigError(f"start {values} lies outside the search range [{low}, {high}]")
    return values


def _defined_attributes(metrics: pd.DataFrame) -> list[str]:
    found = fairness_attributes(metrics)
    usable = [
        a
        for a in found
        if metrics[[wide_column(a, "dpd"), wide_column(a, "eod")]].notna().all(axis=1).iloc[0]
    ]
    for attribute in sorted(set(found) - set(usable)):
        warnings.warn(
            f"attribute {attribute!r}: DPD or EOD undefined; left out of the per-group search objective",
            stacklevel=3,
        )
    return usable


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; keep the console for our own progress output."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
