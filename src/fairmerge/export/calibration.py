"""The validation threshold of a ``@calibrated`` point, chosen again exactly as the study chose it.

The study scored each point on the (possibly sub-sampled) validation split and picked the
threshold with :func:`fairmerge.fairness.calibration.choose_threshold`; here the rebuilt model is
scored on the same posts, with the same truncation, batch size and precision.
"""

from __future__ import annotations

from transformers import PreTrainedModel

from fairmerge.data.types import GroupedTextDataset
from fairmerge.evaluation import score_split
from fairmerge.fairness.calibration import choose_threshold
from fairmerge.inference import InputProcessor, encode_inputs
from fairmerge.study.config import StudyConfig


def validation_threshold(
    model: PreTrainedModel, processor: InputProcessor, dataset: GroupedTextDataset, config: StudyConfig
) -> float:
    """The threshold ``choose_threshold`` picks on the rebuilt model's validation scores."""
    evaluation = config.evaluation
    val = dataset["val"]
    encoded = encode_inputs(processor, val, max_length=evaluation.max_length)
    scores = score_split(model, encoded, batch_size=evaluation.batch_size, precision=evaluation.precision)
    return choose_threshold(val.labels, scores, objective=evaluation.calibration_objective)
