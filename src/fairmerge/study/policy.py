"""The study's selection policy: the configured rule on validation points, with FFT as the reference.

A model that labels every post alike has DPD = EOD = 0 and would satisfy any fairness constraint
while being useless; such points stay in the tables but are never selected while another exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fairmerge.errors import DataError
from fairmerge.labels import ModelLabel
from fairmerge.study.config import SelectionSection
from fairmerge.study.metric_rows import MetricRows
from fairmerge.sweep.selection import Selection, get_rule, points_from_metrics, select_point


@dataclass(frozen=True)
class SelectionPolicy:
    """Rule, ε, δ, FFT's val accuracy and the attributes whose gaps are defined."""

    section: SelectionSection
    reference_accuracy: float
    gap_attributes: list[str]

    @classmethod
    def from_fft(
        cls, section: SelectionSection, fft_val: pd.DataFrame, attributes: list[str], min_group_size: int
    ) -> SelectionPolicy:
        """The policy of a seed, from FFT's val rows (the reference every selection compares with)."""
        accuracy = fft_val[(fft_val.attribute == "all") & (fft_val.metric == "accuracy")].value
        gaps = fft_val[(fft_val.group == "all") & fft_val.metric.isin(["dpd", "eod"])]
        defined = gaps.groupby("attribute")["value"].apply(lambda v: v.notna().all())
        # An attribute with a single qualifying group (gender on HateXplain: 6 posts target men) has no
        # gap to constrain; it is reported but left out of selection.
        gap_attributes = [a for a in attributes if bool(defined.get(a, False))]
        if get_rule(section.rule).needs_gaps and not gap_attributes:
            raise DataError(
                f"no attribute of {attributes} has two groups with >= {min_group_size} validation posts, "
                f"so DPD/EOD are undefined and the {section.rule!r} rule cannot be applied; lower "
                "evaluation.min_group_size, evaluate more validation posts, or use selection.rule "
                "'accuracy' or 'worst_group'"
            )
        return cls(section, float(accuracy.iloc[0]), gap_attributes)

    def select(self, table: pd.DataFrame, label: ModelLabel, evaluated: MetricRows) -> Selection:
        """Apply the rule to a points table (:func:`points_from_metrics`) of ``label``; ``evaluated``
        says which of its points predict one class."""
        constant = table["lambda"].apply(lambda lam: evaluated.is_constant(label, float(lam)))
        if constant.any() and not constant.all():
            table = table[~constant]
        return select_point(
            table,
            self.section.rule,
            epsilon=self.section.epsilon,
            delta=self.section.delta,
            reference_accuracy=self.reference_accuracy,
            attributes=self.gap_attributes,
        )

    def select_family(self, label: ModelLabel, evaluated: MetricRows) -> Selection:
        """The rule applied to every val point of ``label`` in ``evaluated`` (a family's rows)."""
        return self.select(points_from_metrics(evaluated.rows(label, "val")), label, evaluated)
