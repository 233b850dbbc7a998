"""Rebuild a selected point's weights through the one merge engine, and fold a threshold into its head.

The merge is :func:`fairmerge.vectors.merge_state_dict` on the cached checkpoints with the study's own
terms (λ on the summed vectors, each scaled by 1/G under the ``mean`` convention; one λ_g per vector;
injection into θ_FFT), so the kernel computes the bits the study's in-place sweep evaluated.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import PreTrainedModel

from fairmerge.errors import ModelError
from fairmerge.export.ingredients import Ingredients
from fairmerge.models import load_classifier, to_model_keys
from fairmerge.training import finetune_vector
from fairmerge.vectors import CheckpointReader, merge_state_dict


def rebuild(ingredients: Ingredients) -> PreTrainedModel:
    """The point's classifier in memory (fp32, as the study scored it)."""
    model = load_classifier(str(ingredients.start))
    reader = CheckpointReader(ingredients.start)
    start = {key: reader.get(key) for key in reader.specs}
    vectors = [finetune_vector(ingredients.base, f.path) for f in ingredients.finetunes]
    if ingredients.scale != 1.0:
        vectors = [ingredients.scale * vector for vector in vectors]
    lam = ingredients.point.lam or 0.0
    lambdas = lam if ingredients.uniform else [f.weight for f in ingredients.finetunes]
    merged = merge_state_dict(start, vectors, lambdas, method=ingredients.method)
    _, unexpected = model.load_state_dict(to_model_keys(model, merged), strict=False)
    if unexpected:
        raise ModelError(f"the merged weights hold tensors the model does not have: {unexpected[:3]}")
    return model


def head_bias(model: PreTrainedModel) -> tuple[str, nn.Parameter]:
    """The classification head's bias: that of the last linear layer with ``num_labels`` outputs."""
    n = int(model.config.num_labels or 2)
    heads = [
        (name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == n
    ]
    if not heads:
        raise ModelError(f"{type(model).__name__}: no linear classification head with {n} outputs found")
    name, head = heads[-1]
    if head.bias is None:
        raise ModelError(
            f"{type(model).__name__}'s head {name!r} has no bias: "
            "a calibrated threshold cannot be folded into it"
        )
    return f"{name}.bias", head.bias


def logit(threshold: float) -> float:
    """log(t / (1 − t)) for a threshold strictly between 0 and 1."""
    if not 0.0 < threshold < 1.0:
        raise ModelError(
            f"the calibrated threshold {threshold!r} makes a constant predictor; "
            "it cannot be folded into a head"
        )
    return math.log(threshold) - math.log1p(-threshold)


@torch.no_grad()
def fold_threshold(model: PreTrainedModel, threshold: float) -> tuple[str, float]:
    """Shift the positive class's bias by −logit(t): argmax then predicts 1 exactly when P(y=1) > t.

    fairmerge predicts positive when ``softmax(z)[1] > t``, i.e. ``z1 − z0 > logit(t)``; after the
    shift that is ``z1' > z0``, and argmax breaks a tie towards label 0, as ``>`` does. Returns the
    bias tensor's name and the shift applied.
    """
    name, bias = head_bias(model)
    shift = -logit(threshold)
    bias[1] = torch.tensor(float(bias[1].double()) + shift, dtype=bias.dtype)
    return name, shift
