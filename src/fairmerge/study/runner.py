"""One seed of the study: fine-tunes (cached), subgroup vectors, sweeps on validation, test once.

The order of work mirrors the paper (FFT and LoRA baselines, subgroup task vectors, the uniform-λ
merge θ_base + λ·Σ τ_g, injection θ_FFT + λ·τ_g) and adds what it left open: per-group coefficients,
validation-only selection under explicit rules, calibrated decision thresholds, subgroup
training-set strategies, a post-processing baseline and the empirical λ–DPD bound.
One model stays in memory; its weights are rewritten in place for every point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from safetensors.torch import load_file

from fairmerge.data.types import GroupedTextDataset
from fairmerge.errors import DataError
from fairmerge.fairness.calibration import (
    choose_threshold,
    predict_at,
    sensitive_values,
    threshold_optimizer_baseline,
)
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.study.config import StudyConfig
from fairmerge.study.evaluator import SplitEvaluator, evaluation_subset
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.timing import StageTimer
from fairmerge.sweep.bound import dpd_bound_table
from fairmerge.sweep.grid import sweep
from fairmerge.sweep.inplace import InPlaceMerger
from fairmerge.sweep.pergroup import search_group_coefficients
from fairmerge.sweep.selection import Selection, points_from_metrics, select_point
from fairmerge.training import (
    TrainConfig,
    TrainingCache,
    make_base_checkpoint,
    train_fft,
    train_lora,
    train_subgroups,
)
from fairmerge.vectors import TaskVector

ARGMAX, CALIBRATED = "argmax", "calibrated"


@dataclass
class Point:
    """One candidate model: a family (``merge``, ``inject:African`` …) and its coefficients."""

    family: str
    lam: float | None
    coefficients: list[float] | None
    key: str
    lambdas: dict[str, float] | None = None


@dataclass
class SeedOutcome:
    """Everything one seed produced, ready to be written out."""

    seed: int
    metrics: pd.DataFrame
    selected: dict[str, dict[str, Any]]
    worst_group: dict[str, str]
    similarity: pd.DataFrame
    bound: pd.DataFrame
    strategies: pd.DataFrame
    pergroup_trials: pd.DataFrame
    test_predictions: dict[str, np.ndarray]
    test_labels: np.ndarray
    test_memberships: dict[str, pd.DataFrame]
    timings: StageTimer
    checkpoints: dict[str, str] = field(default_factory=dict)


def _train_config(values: dict[str, Any], seed: int) -> TrainConfig:
    return TrainConfig(**{**values, "seed": seed})


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """All weights of a saved checkpoint directory (single or sharded safetensors)."""
    files = sorted(path.glob("*.safetensors"))
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def _vector_label(attribute: str, group: str) -> str:
    return group if attribute in ("race", "gender") else f"{attribute}:{group}"


class SeedRun:
    """The study for one seed. ``run()`` returns a SeedOutcome."""

    def __init__(
        self,
        config: StudyConfig,
        dataset: GroupedTextDataset,
        seed: int,
        *,
        training_cache: TrainingCache,
        score_cache: ScoreCache,
        console: Console,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.seed = seed
        self.training_cache = training_cache
        self.score_cache = score_cache
        self.timer = StageTimer(console)
        self.frames: list[pd.DataFrame] = []
        self.val_scores: dict[str, np.ndarray] = {}
        self.test_scores: dict[str, np.ndarray] = {}
        self.constant_points: dict[str, set[float]] = {}

    # ---- training -------------------------------------------------------------------------------
    def _train(self) -> tuple[Path, Path, Path, dict[str, dict[str, Path]]]:
        config, seed = self.config, self.seed
        with self.timer("train: base"):
            base_dir = make_base_checkpoint(config.model, seed=seed, cache=self.training_cache)
        with self.timer("train: fft"):
            fft_dir = train_fft(
                self.dataset,
                base_dir=base_dir,
                config=_train_config(config.fft, seed),
                cache=self.training_cache,
            )
        with self.timer("train: lora"):
            lora_dir = train_lora(
                self.dataset,
                base_dir=base_dir,
                config=_train_config(config.lora, seed),
                cache=self.training_cache,
            )
        subgroup_dirs: dict[str, dict[str, Path]] = {}
        for strategy in [config.subgroups.strategy, *config.subgroups.compare]:
            with self.timer(f"train: subgroups ({strategy})"):
                trained = train_subgroups(
                    self.dataset,
                    config.attributes,
                    base_dir=base_dir,
                    config=_train_config(config.subgroups.train, seed),
                    strategy=strategy,
                    min_train_size=config.subgroups.min_train_size,
                    cache=self.training_cache,
                    method=config.subgroups.method,
                )
            subgroup_dirs[strategy] = {_vector_label(a, g): path for (a, g), path in trained.items()}
        return base_dir, fft_dir, lora_dir, subgroup_dirs

    # ---- evaluation helpers ---------------------------------------------------------------------
    def _point_key(self, point: Point) -> str:
        return f"seed{self.seed}|{point.key}"

    def _record_val(self, point: Point, scores: np.ndarray, n_resamples: int) -> pd.DataFrame:
        """Val metrics of a point under both decisions (argmax and a val-calibrated threshold).

        Returns the argmax frame.
        """
        self.val_scores[point.key] = scores
        frame = self.val.metrics(scores, n_resamples=n_resamples, seed=self.seed)
        self._append(point, frame, ARGMAX)
        self._note_constant(point.family, point.lam, scores, 0.5)
        if self.config.evaluation.calibrate:
            threshold = self._threshold(scores)
            self._note_constant(f"{point.family}@{CALIBRATED}", point.lam, scores, threshold)
            calibrated = self.val.metrics(
                scores, threshold=threshold, n_resamples=n_resamples, seed=self.seed
            )
            self._append(point, calibrated, CALIBRATED)
        return frame

    def _note_constant(self, label: str, lam: float | None, scores: np.ndarray, threshold: float) -> None:
        """Remember points that label every val post alike: trivially 'fair' (DPD = EOD = 0)."""
        predictions = predict_at(scores, threshold)
        if lam is not None and predictions.min() == predictions.max():
            self.constant_points.setdefault(label, set()).add(round(lam, 6))

    def _threshold(self, val_scores: np.ndarray) -> float:
        return choose_threshold(
            self.val.split.labels, val_scores, objective=self.config.evaluation.calibration_objective
        )

    def _append(self, point: Point, frame: pd.DataFrame, decision: str) -> None:
        frame = frame.copy()
        frame.insert(0, "model", point.family if decision == ARGMAX else f"{point.family}@{CALIBRATED}")
        frame.insert(1, "lambda", np.nan if point.lam is None else point.lam)
        self.frames.append(frame)

    def _evaluate_point(
        self, point: Point, set_weights: Callable[[], object], n_resamples: int
    ) -> pd.DataFrame:
        """Val scores of a point (from the score cache when possible); records and returns metrics."""
        key = self._point_key(point)
        scores = self.val.scores(self.model, key, set_weights)
        return self._record_val(point, scores, n_resamples)

    def _test_once(self, point: Point, decision: str, set_weights: Callable[[], object]) -> np.ndarray:
        """Test metrics of a selected point, with bootstrap CIs; returns the test predictions."""
        key = self._point_key(point)
        scores = self.test.scores(self.model, key, set_weights)
        self.test_scores[point.key] = scores
        threshold = 0.5 if decision == ARGMAX else self._threshold(self.val_scores[point.key])
        frame = self.test.metrics(
            scores, threshold=threshold, n_resamples=self.config.evaluation.n_resamples, seed=self.seed
        )
        self._append(point, frame, decision)
        return predict_at(scores, threshold)

    # ---- the study ------------------------------------------------------------------------------
    def run(self) -> SeedOutcome:
        config = self.config
        base_dir, fft_dir, lora_dir, subgroup_dirs = self._train()
        main_strategy = config.subgroups.strategy
        if not subgroup_dirs[main_strategy]:
            raise DataError(
                f"no subgroup of {config.attributes} has >= {config.subgroups.min_train_size} training posts"
            )

        with self.timer("evaluate: set-up"):
            self._set_up_evaluation(base_dir, fft_dir, lora_dir, subgroup_dirs)

        with self.timer("evaluate: baselines (val)"):
            for name in ("base", "fft", "lora"):
                self._evaluate_point(Point(name, None, None, name), self._loader(name), self._val_resamples)

        self.fft_val = self.frames_of("fft", "val")  # the reference every selection compares with
        self._check_gaps_defined()
        with self.timer("sweep: merge (val)"):
            merge_points = self._merge_sweep(main_strategy, "merge")

        with self.timer("sweep: per-group coefficients (val)"):
            pergroup_point, trials = self._pergroup_search(main_strategy, merge_points)

        with self.timer("sweep: injection (val)"):
            worst = self._worst_group()
            inject_points = self._injection_sweeps(worst)

        with self.timer("sweep: strategies (val)"):
            strategy_points = {s: self._merge_sweep(s, f"merge[{s}]") for s in config.subgroups.compare}

        with self.timer("select + test"):
            selected, predictions = self._select_and_test(
                merge_points, pergroup_point, inject_points[worst["label"]], strategy_points
            )
            predictions.update(self._threshold_optimizer())

        metrics = pd.concat(self.frames, ignore_index=True)
        bound = self._bound(metrics)
        return SeedOutcome(
            seed=self.seed,
            metrics=metrics,
            selected=selected,
            worst_group=worst,
            similarity=self._similarity(main_strategy),
            bound=bound,
            strategies=self._strategy_table(metrics, selected),
            pergroup_trials=trials,
            test_predictions=predictions,
            test_labels=self.test.split.labels,
            test_memberships=self.test.split.memberships(config.attributes),
            timings=self.timer,
            checkpoints={"base": str(base_dir), "fft": str(fft_dir), "lora": str(lora_dir)},
        )

    @property
    def _val_resamples(self) -> int:
        return min(self.config.evaluation.n_resamples, 200)

    def _set_up_evaluation(
        self, base_dir: Path, fft_dir: Path, lora_dir: Path, subgroup_dirs: dict[str, dict[str, Path]]
    ) -> None:
        config, evaluation = self.config, self.config.evaluation
        tokenizer = load_tokenizer(str(base_dir))
        common = {
            "attributes": config.attributes,
            "max_length": evaluation.max_length,
            "min_group_size": evaluation.min_group_size,
            "batch_size": evaluation.batch_size,
            "cache": self.score_cache,
        }
        val_split = evaluation_subset(
            self.dataset["val"], evaluation.max_val_samples, config.attributes, seed=0
        )
        test_split = evaluation_subset(
            self.dataset["test"], evaluation.max_test_samples, config.attributes, seed=0
        )
        self.val = SplitEvaluator.build("val", val_split, tokenizer, **common)  # type: ignore[arg-type]
        self.test = SplitEvaluator.build("test", test_split, tokenizer, **common)  # type: ignore[arg-type]
        self.model = load_classifier(str(base_dir))
        self.states = {
            "base": _load_state(base_dir),
            "fft": _load_state(fft_dir),
            "lora": _load_state(lora_dir),
        }
        self.vectors = {
            strategy: {
                label: TaskVector.from_checkpoints(base_dir, path).materialize()
                for label, path in dirs.items()
            }
            for strategy, dirs in subgroup_dirs.items()
        }

    def _loader(self, name: str) -> Callable[[], None]:
        def load() -> None:
            self.model.load_state_dict(self.states[name], strict=False)

        return load

    def _merge_sweep(self, strategy: str, family: str) -> list[Point]:
        """θ_base + λ·Σ τ_g over the λ grid (plus refinement around the selected point) on val."""
        vectors = list(self.vectors[strategy].values())
        merger = InPlaceMerger(self.model, self.states["base"], vectors)
        points: list[Point] = []

        def evaluate(_model: torch.nn.Module) -> pd.DataFrame:
            lam = float(merger.coefficients[0])
            key = "base" if lam == 0 else f"{family}|lam={lam:.4f}"
            point = Point(family, lam, [lam] * len(vectors), key)
            points.append(point)
            return self._evaluate_point(point, lambda: None, self._val_resamples)

        sweep(
            merger,
            self.config.sweep.lambdas if family == "merge" else self.config.sweep.compare_lambdas,
            evaluate,
            refine_rounds=self.config.sweep.refine_rounds if family == "merge" else 0,
            selector=lambda table: self._select_rule(table, family),
            progress=False,
        )
        return points

    def _pergroup_search(self, strategy: str, merge_points: list[Point]) -> tuple[Point, pd.DataFrame]:
        """One λ_g per subgroup vector, searched on val with a seeded, budgeted TPE."""
        labels = list(self.vectors[strategy])
        merger = InPlaceMerger(self.model, self.states["base"], list(self.vectors[strategy].values()))
        uniform = self._selection("merge", ARGMAX).lam

        def objective(lambdas: Sequence[float]) -> pd.DataFrame:
            key = "merge_pergroup|" + ",".join(f"{x:.4f}" for x in lambdas)
            point = Point("merge_pergroup", None, list(lambdas), key)
            scores = self.val.scores(
                self.model, self._point_key(point), lambda: merger.set_coefficients(list(lambdas))
            )
            return self.val.metrics(scores, seed=self.seed)

        result = search_group_coefficients(
            objective,
            labels,
            n_trials=self.config.sweep.pergroup_trials,
            rule=self.config.selection.rule,
            epsilon=self.config.selection.epsilon,
            delta=self.config.selection.delta,
            reference_accuracy=self._reference_accuracy(),
            start=[uniform] * len(labels),
            high=max(self.config.sweep.lambdas),
            seed=self.seed,
        )
        best = [result.best[label] for label in labels]
        point = Point("merge_pergroup", None, best, "merge_pergroup|" + ",".join(f"{x:.4f}" for x in best))
        point.lambdas = dict(result.best)
        self._evaluate_point(point, lambda: merger.set_coefficients(best), self._val_resamples)
        self._pergroup_merger = merger
        return point, result.trials

    def _reference_accuracy(self) -> float:
        """FFT's val accuracy: the reference of the ``fairest`` rule."""
        frame = self.fft_val
        return float(frame[(frame.attribute == "all") & (frame.metric == "accuracy")].value.iloc[0])

    def _worst_group(self) -> dict[str, str]:
        """The group with a vector that FFT serves worst on val (accuracy, or EOD contribution)."""
        fft = self.fft_val
        candidates = []
        for attribute in self.config.attributes:
            rows = fft[fft.attribute == attribute].pivot_table(
                index="group", columns="metric", values="value"
            )
            rows = rows[(rows.get("n", 0) >= self.config.evaluation.min_group_size) & (rows.index != "all")]
            for group, row in rows.iterrows():
                label = _vector_label(attribute, str(group))
                if label not in self.vectors[self.config.subgroups.strategy]:
                    continue
                if self.config.sweep.worst_group_criterion == "accuracy":
                    badness = -float(row["accuracy"])
                else:  # distance of the group's TPR/FPR from the other groups' median: its share of EOD
                    badness = max(abs(float(row[m]) - float(np.nanmedian(rows[m]))) for m in ("tpr", "fpr"))
                if not np.isnan(badness):
                    candidates.append((badness, attribute, str(group), label))
        if not candidates:
            raise DataError("no subgroup with a task vector has enough validation posts to rank groups")
        _, attribute, group, label = max(candidates)
        return {
            "attribute": attribute,
            "group": group,
            "label": label,
            "criterion": self.config.sweep.worst_group_criterion,
        }

    def _injection_sweeps(self, worst: dict[str, str]) -> dict[str, list[Point]]:
        """θ_FFT + λ·τ_g for the worst group (and every group when configured) on val."""
        strategy = self.config.subgroups.strategy
        labels = list(self.vectors[strategy]) if self.config.sweep.inject_all_groups else [worst["label"]]
        sweeps: dict[str, list[Point]] = {}
        for label in labels:
            family = f"inject:{label}"
            merger = InPlaceMerger(self.model, self.states["fft"], [self.vectors[strategy][label]])
            points = []
            for lam in self.config.sweep.injection_lambdas:
                key = "fft" if lam == 0 else f"{family}|lam={lam:.4f}"
                point = Point(family, float(lam), [float(lam)], key)
                self._evaluate_point(
                    point,
                    partial(merger.set_coefficients, float(lam)),
                    self._val_resamples,
                )
                points.append(point)
            merger.restore()
            sweeps[label] = points
        return sweeps

    def _selection(self, family: str, decision: str) -> Selection:
        """The configured rule applied to a family's val points (one decision variant)."""
        label = family if decision == ARGMAX else f"{family}@{CALIBRATED}"
        return self._select_rule(points_from_metrics(self.frames_of(label, "val")), label)

    def _select_rule(self, table: pd.DataFrame, label: str) -> Selection:
        """The configured rule on val points, never picking a constant predictor if another exists.

        A model that labels every post alike has DPD = EOD = 0 and would satisfy any fairness
        constraint while being useless; such points stay in the tables but are not selectable.
        """
        constant = table["lambda"].round(6).isin(self.constant_points.get(label, set()))
        if constant.any() and not constant.all():
            table = table[~constant]
        sel = self.config.selection
        return select_point(
            table,
            sel.rule,
            epsilon=sel.epsilon,
            delta=sel.delta,
            reference_accuracy=self._reference_accuracy(),
            attributes=self._gap_attributes(),
        )

    def _check_gaps_defined(self) -> None:
        if self.config.selection.rule in ("constrained", "fairest") and not self._gap_attributes():
            raise DataError(
                f"no attribute of {self.config.attributes} has two groups with >= "
                f"{self.config.evaluation.min_group_size} validation posts, so DPD/EOD are undefined and the "
                f"{self.config.selection.rule!r} rule cannot be applied; lower evaluation.min_group_size, "
                "evaluate more validation posts, or use selection.rule 'accuracy' or 'worst_group'"
            )

    def _gap_attributes(self) -> list[str]:
        """Attributes whose DPD and EOD are defined for FFT on val (>= 2 qualifying groups).

        An attribute with a single qualifying group (e.g. gender on HateXplain: 6 posts target men)
        has no gap to constrain; it is reported but left out of selection.
        """
        frame = self.fft_val
        gaps = frame[(frame.group == "all") & frame.metric.isin(["dpd", "eod"])]
        defined = gaps.groupby("attribute")["value"].apply(lambda v: v.notna().all())
        return [a for a in self.config.attributes if bool(defined.get(a, False))]

    def frames_of(self, model: str, split: str) -> pd.DataFrame:
        """All recorded metric rows of one model label on one split."""
        frame = pd.concat(self.frames, ignore_index=True)
        return frame[(frame.model == model) & (frame.split == split)]

    def _select_and_test(
        self,
        merge_points: list[Point],
        pergroup_point: Point,
        inject_points: list[Point],
        strategy_points: dict[str, list[Point]],
    ) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
        """Choose each family's point on val, then evaluate it on test exactly once."""
        selected: dict[str, dict[str, Any]] = {}
        predictions: dict[str, np.ndarray] = {}
        decisions = [ARGMAX, CALIBRATED] if self.config.evaluation.calibrate else [ARGMAX]
        for name in ("base", "fft", "lora"):
            for decision in decisions:
                label = name if decision == ARGMAX else f"{name}@{CALIBRATED}"
                point = Point(name, None, None, name)
                predictions[label] = self._test_once(point, decision, self._loader(name))
        strategy = self.config.subgroups.strategy
        families: list[tuple[list[Point], str, list[TaskVector]]] = [
            (merge_points, "base", list(self.vectors[strategy].values())),
            (inject_points, "fft", [self.vectors[strategy][inject_points[0].family.split(":", 1)[1]]]),
        ]
        families += [
            (points, "base", list(self.vectors[s].values())) for s, points in strategy_points.items()
        ]
        for points, start, vectors in families:
            family = points[0].family
            merger = InPlaceMerger(self.model, self.states[start], vectors)
            for decision in decisions:
                selection = self._selection(family, decision)
                point = next(p for p in points if p.lam is not None and np.isclose(p.lam, selection.lam))
                label = family if decision == ARGMAX else f"{family}@{CALIBRATED}"
                predictions[label] = self._test_once(
                    point,
                    decision,
                    partial(merger.set_coefficients, point.lam or 0.0),
                )
                selected[label] = {
                    "lambda": point.lam,
                    "lambdas": None,
                    "rule": selection.rule,
                    "feasible": selection.feasible,
                    "reason": selection.reason,
                }
            merger.restore()
        for decision in decisions:
            label = "merge_pergroup" if decision == ARGMAX else f"merge_pergroup@{CALIBRATED}"
            predictions[label] = self._test_once(
                pergroup_point,
                decision,
                lambda: self._pergroup_merger.set_coefficients(pergroup_point.coefficients or []),
            )
            selected[label] = {
                "lambda": None,
                "lambdas": pergroup_point.lambdas,
                "rule": f"per-group TPE search ({self.config.selection.rule})",
                "feasible": True,
                "reason": f"{self.config.sweep.pergroup_trials} trials on validation",
            }
        self._pergroup_merger.restore()
        return selected, predictions

    def _threshold_optimizer(self) -> dict[str, np.ndarray]:
        """fairlearn's ThresholdOptimizer on FFT's cached scores: the post-processing baseline."""
        attribute = self.config.evaluation.threshold_optimizer_attribute
        if not attribute or attribute not in self.config.attributes:
            return {}
        predictions = threshold_optimizer_baseline(
            self.val_scores["fft"],
            self.val.split.labels,
            sensitive_values(self.val.split.groups[attribute]),
            self.test_scores["fft"],
            sensitive_values(self.test.split.groups[attribute]),
            seed=self.seed,
        )
        frame = self.test.metrics(
            predictions.astype(np.float64), n_resamples=self.config.evaluation.n_resamples, seed=self.seed
        )
        self._append(Point("threshold_optimizer", None, None, "threshold_optimizer"), frame, ARGMAX)
        return {"threshold_optimizer": predictions}

    def _bound(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """Observed val DPD on the merge path next to the empirical Lipschitz bound."""
        vectors = list(self.vectors[self.config.subgroups.strategy].values())
        total = sum(vectors[1:], vectors[0])
        tau_norm = float(total.norm())
        val = metrics[(metrics.model == "merge") & (metrics.split == "val")]
        return pd.concat(
            [dpd_bound_table(val, tau_norm, attribute) for attribute in self.config.attributes],
            ignore_index=True,
        )

    def _similarity(self, strategy: str) -> pd.DataFrame:
        vectors = self.vectors[strategy]
        labels = list(vectors)
        matrix = [[vectors[a].cosine_similarity(vectors[b]) for b in labels] for a in labels]
        return pd.DataFrame(matrix, index=labels, columns=labels)

    def _strategy_table(self, metrics: pd.DataFrame, selected: dict[str, dict[str, Any]]) -> pd.DataFrame:
        """One row per (strategy, decision): the val-selected λ and its test headline metrics."""
        from fairmerge.study.outputs import headline_row

        rows = []
        strategies = [self.config.subgroups.strategy, *self.config.subgroups.compare]
        for strategy in strategies:
            family = "merge" if strategy == self.config.subgroups.strategy else f"merge[{strategy}]"
            for decision in [ARGMAX, CALIBRATED] if self.config.evaluation.calibrate else [ARGMAX]:
                label = family if decision == ARGMAX else f"{family}@{CALIBRATED}"
                row = headline_row(metrics, label, self.config.attributes)
                rows.append({"strategy": strategy, "decision": decision, **row})
        return pd.DataFrame(rows)
