"""The one training loop behind FFT, LoRA and subgroup fine-tunes.

Plain PyTorch rather than ``transformers.Trainer``: the loop is ~100 lines we can read end to end,
its batch order is exactly the seeded, length-bucketed one (Trainer re-samples and pads through its
own collator), per-example loss weights need no subclassing, and no per-step callbacks or logging
integrations cost time — the benchmark holds it to ≥ 0.9× a bare loop.

What it does: encode once (``encode_inputs``: tokenize texts or decode images); each epoch draw
length-bucketed, shuffled batches from a generator seeded by (seed, epoch) and pad each batch to
its own longest post (images need no padding); AdamW (no
weight decay on 1-D parameters: biases and LayerNorm/RMSNorm gains) with a linear warm-up/decay
schedule; gradient clipping; bf16 autocast on CUDA when supported; every ``eval_every_steps``
steps (default: every epoch end) score the validation split, keep the best evaluation by validation
loss or accuracy, and stop early after ``patience`` evaluations without improvement. ``epochs`` is
a maximum (the learning-rate schedule spans it). ``trainable`` freezes the head or the body. The
test split is never seen here.

Several GPUs: device placement, DDP wrapping and mixed precision go through ``accelerate``, so the
same code runs under a launcher without changes, e.g.::

    accelerate launch --multi_gpu --num_processes 4 "$(which fairmerge)" train fft --data-dir DIR --out OUT
    torchrun --nproc_per_node 4 "$(which fairmerge)" train fft --data-dir DIR --out OUT

Every rank draws the same batch list and takes every P-th batch (the list is cut to a multiple of P
so ranks step in lockstep), so ``batch_size`` is per process and the effective batch is P× larger;
every rank scores the whole (small) validation split; only the main process writes the result.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.inference import (
    InputProcessor,
    collate,
    encode_inputs,
    length_bucketed_batches,
    predict_logits,
)
from fairmerge.training.config import TrainConfig
from fairmerge.training.group_objectives import GroupDRO
from fairmerge.training.heads import head_parameter_names

logger = logging.getLogger("fairmerge.training")
_LOG_EVERY = 10  # steps between progress-bar loss updates (reading the loss syncs the GPU)


@dataclass(frozen=True)
class FitResult:
    """What one fine-tune did: one history entry per evaluation, the one kept, why it stopped, speed.

    A history entry holds ``epoch`` (epochs done, fractional between epoch ends), ``step``,
    ``samples`` (seen so far), ``train_loss`` (mean since the previous evaluation), ``val_loss``
    and ``val_accuracy``.
    """

    best_index: int
    history: list[dict[str, float]]
    stop_reason: str
    train_seconds: float
    samples_per_s: float
    n_train: int
    n_val: int
    runtime: dict[str, Any] = field(default_factory=dict)
    group_weights: dict[str, float] | None = None
    """Group DRO's final group weights q (None without Group DRO)."""

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_index]

    @property
    def best_epoch(self) -> float | None:
        """Epochs done at the kept evaluation (None for a linear probe, which has no epochs)."""
        return self.best.get("epoch")

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason.startswith("stopped early")


def training_runtime(config: TrainConfig) -> dict[str, Any]:
    """Device type, precision and process count a fine-tune with ``config`` will use.

    Part of the cache key: bf16 autocast and the effective batch size change the result.
    """
    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise ConfigError("device 'cuda' was requested but CUDA is not available")
    device = "cpu" if config.device == "cpu" or not cuda else "cuda"
    precision = "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "no"
    return {"device": device, "precision": precision, "num_processes": int(os.environ.get("WORLD_SIZE", "1"))}


def fit(
    model: torch.nn.Module,
    tokenizer: InputProcessor,
    train: TextSplit,
    val: TextSplit,
    config: TrainConfig,
    *,
    weights: np.ndarray | None = None,
    group_dro: GroupDRO | None = None,
    progress: bool = True,
    description: str = "train",
    val_note: str = "val split",
) -> FitResult:
    """Train ``model`` in place on ``train``; leave it at the best epoch on ``val``.

    ``weights`` (one per training example) scale the per-example loss; they are normalised to mean 1
    so the loss scale, and hence the learning rate, means the same with or without them.
    ``group_dro`` (over ``train``'s examples) replaces the batch's mean loss by its robust loss.
    """
    if config.learning_rate is None:
        raise ConfigError("fit() needs a resolved config: call config.resolved('fft' or 'lora') first")
    if len(train) == 0:
        raise DataError(f"{description}: the training set is empty")
    if len(val) == 0:
        raise DataError(f"{description}: the validation set is empty")
    weight_tensor = _normalised_weights(weights, len(train), description)
    if group_dro is not None and weight_tensor is not None:
        raise ConfigError(f"{description}: Group DRO takes no per-example loss weights")
    if group_dro is not None and group_dro.n_examples != len(train):
        raise DataError(f"{description}: Group DRO has {group_dro.n_examples} rows for {len(train)} examples")

    runtime = training_runtime(config)
    set_seed(config.seed)  # dropout masks (and any other torch randomness) follow the seed
    accelerator = _accelerator(runtime)
    main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    if group_dro is not None and world > 1:  # each rank would follow its own batches' group losses
        raise ConfigError(f"{description}: Group DRO runs in one process, not {world}")

    train_enc = encode_inputs(tokenizer, train, max_length=config.max_length)
    val_enc = encode_inputs(tokenizer, val, max_length=config.max_length)
    lengths = train_enc.lengths
    labels = torch.as_tensor(train.labels, dtype=torch.long)

    if -(-len(train) // config.batch_size) < world:
        raise DataError(f"{description}: {len(train)} examples give fewer batches than {world} processes")

    def batches_of(epoch: int) -> list[np.ndarray]:
        return epoch_batches(
            lengths, config.batch_size, seed=config.seed, epoch=epoch, rank=rank, world=world
        )

    first = batches_of(0)
    steps_per_epoch = len(first)
    total_steps = steps_per_epoch * config.epochs  # a maximum: early stopping may end sooner
    eval_every = config.eval_every_steps or steps_per_epoch
    _freeze(model, config.trainable, description)
    # fused: one kernel over all parameters (CPU and CUDA); 5x faster than the per-tensor loop on
    # the 22M-parameter MiniLM on CPU (0.027 s against 0.143 s a step)
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay), lr=config.learning_rate, fused=True
    )
    # Stepped once per optimizer step ourselves (accelerate's scheduler wrapper would step it once
    # per process, which assumes a total counted over the un-sharded data).
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(config.warmup_ratio * total_steps), total_steps
    )
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    trainable = [p for p in wrapped.parameters() if p.requires_grad]

    history: list[dict[str, float]] = []
    best_index, best_score, snapshot = -1, math.inf, None
    train_seconds, seen, step = 0.0, 0, 0
    stop_reason = f"ran the maximum of {config.epochs} epoch(s)"
    window_loss, window_steps = torch.zeros((), device=device), 0
    bar = tqdm(
        total=sum(len(b) for b in first) * config.epochs,
        desc=description,
        unit="samples",
        disable=not (progress and main),
        leave=False,
        dynamic_ncols=True,
    )
    try:
        stop = False
        for epoch in range(1, config.epochs + 1):
            wrapped.train()
            start = time.perf_counter()
            for idx in batches_of(epoch - 1):
                inputs = collate(train_enc, idx, train=True)
                batch = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
                target = labels[idx].to(device, non_blocking=True)
                logits = wrapped(**batch).logits.float()
                losses = F.cross_entropy(logits, target, reduction="none")
                if weight_tensor is not None:
                    losses = losses * weight_tensor[idx].to(device, non_blocking=True)
                loss = losses.mean() if group_dro is None else group_dro.loss(losses, idx)
                accelerator.backward(loss)
                if config.grad_clip is not None:
                    accelerator.clip_grad_norm_(trainable, config.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                window_loss += loss.detach()
                window_steps += 1
                step += 1
                seen += len(idx)
                bar.update(len(idx))
                if step % _LOG_EVERY == 0:
                    bar.set_postfix(
                        epoch=epoch, loss=f"{window_loss.item() / window_steps:.4f}", refresh=False
                    )
                if step % eval_every != 0 and step != total_steps:
                    continue
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # the step queue is asynchronous: time what ran
                train_seconds += time.perf_counter() - start
                unwrapped = accelerator.unwrap_model(wrapped)
                val_loss, val_accuracy = _evaluate(unwrapped, val_enc, val.labels, config)
                history.append(
                    {
                        "epoch": round(step / steps_per_epoch, 4),
                        "step": step,
                        "samples": seen,
                        "train_loss": float(window_loss.item()) / window_steps,
                        "val_loss": val_loss,
                        "val_accuracy": val_accuracy,
                    }
                )
                window_loss.zero_()
                window_steps = 0
                bar.set_postfix(
                    epoch=epoch, loss=f"{history[-1]['train_loss']:.4f}", val_acc=f"{val_accuracy:.3f}"
                )
                score = val_loss if config.select_by == "loss" else -val_accuracy
                if score < best_score:
                    best_index, best_score = len(history) - 1, score
                    # The final weights stay in the model; an earlier best is copied out.
                    snapshot = _trainable_state(unwrapped) if step < total_steps else None
                elif (
                    config.patience is not None
                    and len(history) - 1 - best_index >= config.patience
                    and step < total_steps  # at the last step, stopping is just finishing
                ):
                    stop_reason = (
                        f"stopped early: no better val {config.select_by} in {config.patience} evaluation(s)"
                    )
                    stop = True
                    break
                wrapped.train()
                start = time.perf_counter()
            if stop:
                break
        if best_index < 0:  # every validation loss was NaN
            raise ConfigError(
                f"{description}: training diverged (validation loss {history[-1]['val_loss']} at every "
                f"evaluation); lower learning_rate (now {config.learning_rate})"
            )
        if best_index != len(history) - 1 and snapshot is not None:
            _restore(accelerator.unwrap_model(wrapped), snapshot)
    finally:
        bar.close()
        accelerator.unwrap_model(wrapped, keep_fp32_wrapper=False)
        accelerator.free_memory()

    result = FitResult(
        best_index=best_index,
        history=history,
        stop_reason=stop_reason,
        train_seconds=train_seconds,
        samples_per_s=seen / train_seconds if train_seconds > 0 else float("nan"),
        n_train=len(train),
        n_val=len(val),
        runtime=runtime,
        group_weights=None if group_dro is None else group_dro.weights,
    )
    summary = (
        f"{description}: {history[-1]['epoch']:g} epoch(s) ({stop_reason}), {len(train)} examples, "
        f"{train_seconds:.1f}s ({result.samples_per_s:.1f} samples/s); best at epoch "
        f"{result.best['epoch']:g} by val {config.select_by}: "
        f"val loss {result.best['val_loss']:.4f}, val accuracy {result.best['val_accuracy']:.3f} ({val_note})"
    )
    logger.info(summary)
    if progress and main:
        tqdm.write(summary, file=sys.stderr)
    return result


def epoch_batches(
    lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[np.ndarray]:
    """This process's batches for one epoch: length-bucketed, shuffled by a (seed, epoch) generator.

    All ranks draw the same list and take every ``world``-th batch of it, cut to a multiple of
    ``world`` so that every rank makes the same number of steps.
    """
    state = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    batches = length_bucketed_batches(lengths, batch_size, shuffle=True, seed=state)
    return batches[rank : len(batches) - len(batches) % world : world]


def _accelerator(runtime: dict[str, Any]) -> Accelerator:
    try:
        return Accelerator(cpu=runtime["device"] == "cpu", mixed_precision=runtime["precision"])
    except ValueError as exc:  # accelerate's process-wide state cannot switch device or precision
        wanted = f"{runtime['device']} with precision {runtime['precision']}"
        raise ConfigError(f"cannot train on {wanted} in this process: {exc}") from exc


def _normalised_weights(weights: np.ndarray | None, n: int, description: str) -> torch.Tensor | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError(
            f"{description}: loss weights must be {n} finite non-negative numbers with a positive sum"
        )
    return torch.as_tensor(w * (n / w.sum()), dtype=torch.float32)


def _freeze(model: torch.nn.Module, trainable: str, description: str) -> None:
    """Switch off gradients outside what ``trainable`` names ('all', 'body' or 'head')."""
    if trainable == "all" or isinstance(model, PeftModel):  # peft froze all but adapters (+ head)
        return

    head = head_parameter_names(model)
    for name, param in model.named_parameters():
        if (name in head) == (trainable == "body"):
            param.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"{description}: trainable={trainable!r} leaves no parameter to train")


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: biases and norm gains (all 1-D) are not decayed."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _evaluate(
    model: torch.nn.Module, encoded: Any, labels: np.ndarray, config: TrainConfig
) -> tuple[float, float]:
    """Mean cross-entropy and argmax accuracy on the validation examples."""
    logits = torch.from_numpy(predict_logits(model, encoded, batch_size=config.eval_batch_size))  # type: ignore[arg-type]
    target = torch.as_tensor(labels, dtype=torch.long)
    loss = float(F.cross_entropy(logits, target).item())
    accuracy = float((logits.argmax(dim=1) == target).float().mean().item())
    return loss, accuracy


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _restore(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, param in model.named_parameters():
        if name in state:
            param.copy_(state[name])
