"""The linear probe behind ``head="linear_probe"``: L2-regularised logistic regression on frozen features.

Kumar et al. (LP-FT, ICLR 2022) fit the probe as a logistic regression on the frozen model's
features; so does this module, with scikit-learn's L-BFGS solver. That is exact (the problem is
convex, so the result does not depend on the head's random start or a batch order) and several
times cheaper than the training loop with a frozen body, which runs the body once per epoch: here
it runs once over the training and validation posts. The features are the input of the head's
output layer (the linear layer that produces the logits), read by a forward pre-hook; a decoder's
``score`` layer sees every position, and the model's own pooling, the last real token, is applied.
The regularisation strength is chosen by validation loss from ``PROBE_CS``.

An output layer without a bias (decoder ``score`` layers: Qwen2, Llama, Mistral …) cannot hold an
intercept, so there the probe is fit without one (``fit_intercept=False``): the logistic regression
the layer can represent exactly, rather than a fitted intercept silently dropped.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from fairmerge.data.types import TextSplit
from fairmerge.errors import DataError, ModelError
from fairmerge.inference import EncodedInputs, InputProcessor, collate, encode_inputs, length_bucketed_batches
from fairmerge.training.config import TrainConfig
from fairmerge.training.heads import head_modules
from fairmerge.training.loop import FitResult, training_runtime

PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
"""Inverse L2 strengths tried (scikit-learn's C); the one with the lowest validation loss is kept."""


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The head's last linear layer with one output per label (BERT ``classifier``, Llama ``score`` …)."""
    num_labels = int(getattr(model.config, "num_labels", 2))
    layers = [
        module
        for name in head_modules(model)
        for module in getattr(model, name).modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels
    ]
    if not layers:
        raise ModelError(f"{type(model).__name__}: no linear layer with {num_labels} outputs in its head")
    return layers[-1]


@torch.inference_mode()
def head_features(model: torch.nn.Module, encoded: EncodedInputs, *, batch_size: int = 128) -> np.ndarray:
    """What the output layer receives for each example (n × hidden, float32), in ``encoded``'s order."""
    layer = output_layer(model)
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
    was_training = model.training
    model.eval()
    out = np.empty((len(encoded), layer.in_features), dtype=np.float32)
    try:
        for idx in length_bucketed_batches(encoded.lengths, batch_size):
            batch = collate(encoded, idx)
            captured.clear()
            model(**batch)
            x = captured[-1]
            if x.ndim == 3:  # applied at every position: the model reads the last real token
                x = x[torch.arange(len(idx)), batch["attention_mask"].sum(dim=1) - 1]
            out[idx] = x.float().numpy()
    finally:
        hook.remove()
        model.train(was_training)
    return out


def fit_linear_probe(
    model: torch.nn.Module,
    tokenizer: InputProcessor,
    train: TextSplit,
    val: TextSplit,
    config: TrainConfig,
    *,
    description: str = "linear probe",
) -> FitResult:
    """Fit the output layer of ``model`` in place on frozen features; the rest stays bit-identical.

    One history entry per C of ``PROBE_CS`` (train/val loss, val accuracy); the kept one is the
    lowest validation loss.
    """
    if len(np.unique(train.labels)) < 2:
        raise DataError(f"{description}: the training set has a single class")
    model.to("cpu")
    start = time.perf_counter()
    x_train = head_features(model, encode_inputs(tokenizer, train, max_length=config.max_length),
                            batch_size=config.eval_batch_size)  # fmt: skip
    x_val = head_features(model, encode_inputs(tokenizer, val, max_length=config.max_length),
                          batch_size=config.eval_batch_size)  # fmt: skip
    layer = output_layer(model)
    classes = np.arange(layer.out_features)
    history: list[dict[str, float]] = []
    fitted: list[LogisticRegression] = []
    for c in PROBE_CS:
        probe = LogisticRegression(
            C=c, fit_intercept=layer.bias is not None, max_iter=5000, random_state=config.seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # weak C: lbfgs stops at max_iter
            probe.fit(x_train, train.labels)
        fitted.append(probe)
        history.append(
            {
                "C": c,
                "train_loss": float(log_loss(train.labels, probe.predict_proba(x_train), labels=classes)),
                "val_loss": float(log_loss(val.labels, probe.predict_proba(x_val), labels=classes)),
                "val_accuracy": float((probe.predict(x_val) == val.labels).mean()),
            }
        )
    best = int(np.argmin([h["val_loss"] for h in history]))
    _set_output_layer(layer, fitted[best], classes)
    seconds = time.perf_counter() - start
    return FitResult(
        best_index=best,
        history=history,
        stop_reason=f"logistic regression, C={PROBE_CS[best]:g} chosen by val loss",
        train_seconds=seconds,
        samples_per_s=len(train) / seconds,
        n_train=len(train),
        n_val=len(val),
        runtime=training_runtime(config.replace(device="cpu")),
    )


@torch.no_grad()
def _set_output_layer(layer: torch.nn.Linear, probe: LogisticRegression, classes: np.ndarray) -> None:
    """Logits with the probe's probabilities: binary z1 − z0 = w·x + b is split as ±(w·x + b)/2.
    A layer without a bias gets a probe fit without an intercept (b = 0)."""
    if list(probe.classes_) != list(classes):
        raise DataError(f"linear probe: the training labels {list(probe.classes_)} are not {list(classes)}")
    coef = torch.as_tensor(probe.coef_, dtype=layer.weight.dtype)
    intercept = torch.as_tensor(probe.intercept_, dtype=layer.weight.dtype)
    if len(classes) == 2:
        coef, intercept = torch.cat([-coef, coef]) / 2, torch.cat([-intercept, intercept]) / 2
    layer.weight.copy_(coef)
    if layer.bias is not None:
        layer.bias.copy_(intercept)
    elif probe.fit_intercept:
        raise ModelError("linear probe: the output layer has no bias for the probe's intercept")
