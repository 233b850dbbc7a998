"""Model code shipped next to the weights when transformers does not know the architecture.

The bundled EfficientNet-Lite is registered with the auto classes by ``fairmerge.efficientnet``;
without fairmerge, transformers loads it from ``modeling_fairmerge.py`` in the checkpoint
(``trust_remote_code=True``, the Hub's mechanism for custom architectures). The file is written
from the classes' own source, so it cannot drift from what fairmerge trains.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from fairmerge import efficientnet
from fairmerge.errors import ModelError

MODULE = "modeling_fairmerge"
_HEADER = '''"""{name} as written by fairmerge.

Load with trust_remote_code=True; needs efficientnet-lite-pytorch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

MODEL_TYPE = {model_type!r}
FEATURES = {features!r}

'''


def needs_remote_code(model: PreTrainedModel) -> bool:
    return model.config.model_type not in CONFIG_MAPPING_NAMES


def write_remote_code(model: PreTrainedModel, folder: Path) -> None:
    """Write ``modeling_fairmerge.py`` and point config.json's ``auto_map`` at it (before saving)."""
    if not isinstance(model, efficientnet.EfficientNetLiteForImageClassification):
        raise ModelError(
            f"model type {model.config.model_type!r} is unknown to transformers and fairmerge has no "
            "code to ship for it"
        )
    parts: list[Any] = [
        efficientnet.EfficientNetLiteConfig,
        efficientnet.EfficientNetLiteForImageClassification,
        efficientnet._plain_pointwise_convs,
    ]
    header = _HEADER.format(
        name="EfficientNet-Lite", model_type=efficientnet.MODEL_TYPE, features=efficientnet.FEATURES
    )
    source = header + "\n\n".join(inspect.getsource(part) for part in parts)
    (folder / f"{MODULE}.py").write_text(source, encoding="utf-8")
    model.config.auto_map = {
        "AutoConfig": f"{MODULE}.EfficientNetLiteConfig",
        "AutoModelForImageClassification": f"{MODULE}.EfficientNetLiteForImageClassification",
    }
