"""A finished ``fairmerge run`` folder, read back: its summary, metrics, config and selected points.

``summary.json`` records what validation selected for the first seed; a later seed's uniform λ is
read from its ``seed-N/metrics.csv`` test rows (the per-group coefficients of later seeds are not
recorded, so they cannot be exported).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.labels import ModelLabel
from fairmerge.study.config import StudyConfig, builtin_config_names, load_config, validate_config

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.csv"


@dataclass(frozen=True)
class SelectedPoint:
    """What validation chose for one label and seed: λ (uniform) or λ_g (per group), and why."""

    label: ModelLabel
    seed: int
    lam: float | None
    lambdas: dict[str, float] | None
    rule: str
    reason: str
    feasible: bool


@dataclass(frozen=True)
class RunFolder:
    """The files of one run that an export reads (nothing is written here)."""

    path: Path
    summary: dict[str, Any]
    config: StudyConfig

    @classmethod
    def read(cls, path: str | Path) -> RunFolder:
        """Read ``path``; a folder that is not a finished run is a one-line :class:`DataError`."""
        folder = Path(path).expanduser()
        file = folder / SUMMARY_FILE
        if not file.is_file():
            raise DataError(f"{folder} is not a fairmerge run folder: it has no {SUMMARY_FILE}")
        try:
            summary = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{file} cannot be read as JSON ({exc})") from None
        raw = (summary.get("provenance") or {}).get("config")
        if not isinstance(raw, dict) or not summary.get("selected"):
            raise DataError(f"{file} has no provenance config or no selected models; rerun the study")
        return cls(folder, summary, validate_config(raw, f"{file} provenance.config"))

    @property
    def scored_config(self) -> StudyConfig:
        """The config with ``evaluation.precision`` as the run resolved it (``auto``'s recorded
        choice), so whatever scores the run's points again (an export's threshold, ``evaluate``)
        scores them in the run's own precision."""
        recorded = ((self.summary.get("provenance") or {}).get("evaluation_precision") or {}).get("resolved")
        if recorded is None or recorded == self.config.evaluation.precision:
            return self.config
        evaluation = self.config.evaluation.model_copy(update={"precision": recorded})
        return self.config.model_copy(update={"evaluation": evaluation})

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.summary["seeds"]]

    def headline_label(self) -> str:
        """The verdict's headline model: the config's primary comparison model."""
        primary = [c for c in self.summary.get("comparisons", []) if c.get("primary")]
        return str(primary[0]["model"]) if primary else self.config.primary.model

    def labels(self) -> list[str]:
        """Every label an export can rebuild: the selected points of the first seed."""
        return list(self.summary["selected"])

    def check_seed(self, seed: int | None) -> int:
        if seed is None:
            return self.seeds[0]
        if seed not in self.seeds:
            raise ConfigError(f"--seed {seed}: the run has seeds {self.seeds}")
        return seed

    def metrics(self, seed: int) -> pd.DataFrame:
        """``metrics.csv`` of ``seed`` (the run's own for the first seed, ``seed-N/`` for later ones)."""
        file = self.path / (METRICS_FILE if seed == self.seeds[0] else f"seed-{seed}/{METRICS_FILE}")
        if not file.is_file():
            raise DataError(f"{file} is missing from the run folder")
        return pd.read_csv(file)

    def test_rows(self, label: str, seed: int) -> pd.DataFrame:
        """The test metric rows of one model (one seed)."""
        frame = self.metrics(seed)
        return frame[(frame.model == label) & (frame.split == "test")].reset_index(drop=True)

    def selected(self, label: str, seed: int) -> SelectedPoint:
        """The point validation selected for ``label`` on ``seed``."""
        entries = self.summary["selected"]
        if label not in entries:
            raise ConfigError(
                f"--model {label!r} was not selected by this run; choose one of {list(entries)}"
            )
        entry = entries[label]
        parsed = ModelLabel.parse(label)
        later = (self.summary.get("selected_by_seed") or {}).get(str(seed), {})
        if label in later:  # recorded since later seeds' selections are kept in summary.json
            entry = later[label]
        if seed == self.seeds[0] or label in later:
            return SelectedPoint(
                parsed,
                seed,
                entry["lambda"],
                entry["lambdas"],
                entry["rule"],
                entry["reason"],
                bool(entry["feasible"]),
            )
        if entry["lambdas"] is not None:
            raise DataError(
                f"summary.json records the per-group coefficients of seed {self.seeds[0]} only; "
                f"{label} of seed {seed} cannot be rebuilt"
            )
        lambdas = self.test_rows(label, seed)["lambda"].dropna().unique()
        if len(lambdas) != 1:
            raise DataError(f"seed-{seed}/{METRICS_FILE} has no single test λ for {label}")
        return SelectedPoint(
            parsed, seed, float(lambdas[0]), None, entry["rule"], "selected on validation", True
        )

    def worst_group(self, seed: int) -> str:
        """The vector name ``inject:worst`` injected on ``seed``."""
        return str(self.summary["worst_groups_by_seed"][str(seed)])

    def cache_root(self) -> Path:
        """The cache root the run used (its FFT entry is ``ROOT/training/fft/KEY``)."""
        fft = ((self.summary.get("provenance") or {}).get("checkpoints") or {}).get("fft")
        if not fft:
            raise DataError(f"{self.path}/{SUMMARY_FILE} does not record the run's cache; pass --cache-dir")
        return Path(fft).parents[2]

    def rerun_command(self, seed: int, cache_root: Path) -> str:
        """The ``fairmerge run`` command that recomputes this run's cache entries for ``seed``."""
        return (
            f"fairmerge run {self._config_argument()} --seeds {seed} --cache-dir {cache_root} --out NEW_DIR"
        )

    def _config_argument(self) -> str:
        """The built-in config (and ``--fast``) that gives this run's config, else a generic pointer."""
        mine = self.config.to_dict()
        for name in builtin_config_names():
            for fast in (False, True):
                try:
                    if load_config(name, fast=fast).to_dict() == mine:
                        return name + (" --fast" if fast else "")
                except ConfigError:
                    continue
        return "CONFIG.yaml (summary.json's provenance.config)"


def finite(value: Any) -> float | None:
    """A JSON/CSV number as a float, None when absent or NaN (undefined)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
