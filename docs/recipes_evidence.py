"""Evidence for docs/recipes.md: head handling x subgroup strategy x lambda convention on HateXplain val.

Run from any directory with HF_HUB_OFFLINE=1 and the shared data at /work/shared/data (edit DATA_DIR).
Stages (fine-tunes cached in CACHE, one JSON line per result appended to OUT):
  python recipes_evidence.py fft random linear_probe   FFT at today's default budget, per head
  python recipes_evidence.py all                       the subgroup sweeps, in the order they were run
  python recipes_evidence.py curves fft lora           validation curves with early stopping (LP base)
Heads: random (θ_base = random head), linear_probe (LP head, all weights fine-tuned),
frozen (LP head kept fixed: trainable='body').
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from fairmerge.data import load_dataset
from fairmerge.data.types import GroupedTextDataset
from fairmerge.inference import collate, encode_texts
from fairmerge.models import load_classifier, load_tokenizer
from fairmerge.training import (
    TrainConfig,
    TrainingCache,
    make_base_checkpoint,
    stratified_subsample,
    train_fft,
    train_lora,
    train_subgroups,
)

torch.set_num_threads(1)
CACHE = TrainingCache("/tmp/e_exp/cache")
OUT = Path("/tmp/e_exp/results.jsonl")
DATA_DIR = "/work/shared/data"
ATTRS = ["race", "gender"]
STRATS = ["targeted", "targeted+background", "balanced"]
SUB = dict(learning_rate=5e-5, epochs=2, batch_size=32, max_length=64, max_train_samples=400)
SUM_LAMBDAS = [0.2, 0.4, 0.6, 1.0]
MEAN_LAMBDAS = [0.2, 0.6, 1.0]  # mean convention: sum coefficient lambda / G

DATA = load_dataset("hatexplain", DATA_DIR, label_scheme="hate")


def log(record: dict) -> None:
    record["time"] = time.strftime("%H:%M:%S")
    with OUT.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def base_for(head: str) -> Path:
    if head in ("random", "frozen_random"):
        return make_base_checkpoint(None, seed=0, cache=CACHE)
    return make_base_checkpoint(None, seed=0, cache=CACHE, head="linear_probe", dataset=DATA)


def sub_config(head: str) -> TrainConfig:
    trainable = "body" if head.startswith("frozen") else "all"
    return TrainConfig(**SUB, trainable=trainable)


def train(heads: list[str]) -> None:
    for head in heads:
        base = base_for(head)
        for strategy in STRATS:
            start = time.time()
            dirs = train_subgroups(
                DATA,
                ATTRS,
                base_dir=base,
                config=sub_config(head),
                strategy=strategy,
                min_train_size=50,
                cache=CACHE,
                progress=False,
            )
            log(
                {
                    "stage": "train",
                    "head": head,
                    "strategy": strategy,
                    "groups": len(dirs),
                    "seconds": round(time.time() - start, 1),
                }
            )


VAL_IDX = stratified_subsample(DATA["val"].labels, 600, seed=0)
VAL = DATA["val"].subset(VAL_IDX)


def state(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@torch.no_grad()
def features(model, enc) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (the head's input) and logits, in the split's order."""
    model.eval()
    order = np.argsort(enc.lengths)
    pooled, logits = [], []
    for start in range(0, len(order), 128):
        idx = order[start : start + 128]
        out = model.bert(**collate(enc, idx))
        h = out.pooler_output
        pooled.append(h)
        logits.append(model.classifier(h))
    inv = np.argsort(order)
    return torch.cat(pooled).numpy()[inv], torch.cat(logits).numpy()[inv]


def summary(logits: np.ndarray, labels: np.ndarray) -> dict:
    pred = logits.argmax(1)
    m = logits[:, 1] - logits[:, 0]
    loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()))
    return {
        "acc": round(float((pred == labels).mean()), 4),
        "sel": round(float(pred.mean()), 4),
        "loss": round(loss, 4),
        "margin_mean": round(float(m.mean()), 3),
        "margin_std": round(float(m.std()), 3),
    }


def head_margin(sd: dict[str, torch.Tensor], h: np.ndarray) -> np.ndarray:
    w = (sd["classifier.weight"][1] - sd["classifier.weight"][0]).numpy()
    b = float(sd["classifier.bias"][1] - sd["classifier.bias"][0])
    return h @ w + b


def sweep(heads: list[str], strategies: list[str] = STRATS, singles: bool = False) -> None:
    tok = load_tokenizer(None)
    enc = encode_texts(tok, VAL.texts, max_length=64)
    labels = VAL.labels
    for head in heads:
        base = base_for(head)
        base_sd = state(base)
        model = load_classifier(str(base))
        keys = [k for k, v in base_sd.items() if v.is_floating_point()]
        h0, z0 = features(model, enc)
        log({"stage": "sweep", "head": head, "strategy": None, "lam": 0.0, **summary(z0, labels)})
        w0 = (base_sd["classifier.weight"][1] - base_sd["classifier.weight"][0]).numpy()
        for strategy in strategies:
            dirs = train_subgroups(
                DATA,
                ATTRS,
                base_dir=base,
                config=sub_config(head),
                strategy=strategy,
                min_train_size=50,
                cache=CACHE,
                progress=False,
            )
            for (a, g), p in dirs.items():
                m = json.loads((p / "meta.json").read_text())
                log(
                    {
                        "stage": "subgroup",
                        "head": head,
                        "strategy": strategy,
                        "group": f"{a}/{g}",
                        "n_train": m["n_train"],
                        "best_epoch": m["best_epoch"],
                        "val": m["val"],
                        "history": m["history"],
                        "train_seconds": m["train_seconds"],
                    }
                )
            taus = {f"{a}/{g}": {k: state(p)[k] - base_sd[k] for k in keys} for (a, g), p in dirs.items()}
            G = len(taus)
            names = list(taus)
            flat = {
                n: torch.cat([t[k].flatten() for k in keys if not k.startswith("classifier.")])
                for n, t in taus.items()
            }
            heads_d = {
                n: float(torch.cat([t[k].flatten() for k in keys if k.startswith("classifier.")]).norm())
                for n, t in taus.items()
            }
            total = {k: sum(t[k] for t in taus.values()) for k in keys}
            sum_flat = torch.cat([total[k].flatten() for k in keys if not k.startswith("classifier.")])
            cos = [
                float(F.cosine_similarity(flat[a], flat[b], dim=0))
                for i, a in enumerate(names)
                for b in names[i + 1 :]
            ]
            log(
                {
                    "stage": "vectors",
                    "head": head,
                    "strategy": strategy,
                    "G": G,
                    "body_norms": {n: round(float(v.norm()), 3) for n, v in flat.items()},
                    "head_norms": {n: round(v, 3) for n, v in heads_d.items()},
                    "sum_body_norm": round(float(sum_flat.norm()), 3),
                    "sqrtG_mean_norm": round(
                        float(np.sqrt(G) * np.mean([float(v.norm()) for v in flat.values()])), 3
                    ),
                    "cos_mean": round(float(np.mean(cos)), 3),
                    "cos_min": round(float(np.min(cos)), 3),
                    "cos_max": round(float(np.max(cos)), 3),
                }
            )
            # single vectors at lambda 1: how each moves the margin on its own
            if singles:
                for n, t in taus.items():
                    model.load_state_dict({k: base_sd[k] + t[k] for k in keys}, strict=False)
                    h, z = features(model, enc)
                    log(
                        {
                            "stage": "single",
                            "head": head,
                            "strategy": strategy,
                            "group": n,
                            **summary(z, labels),
                            "body_only_margin_mean": round(float(head_margin(base_sd, h).mean()), 3),
                            "head_only_margin_mean": round(
                                float(head_margin(model.state_dict(), h0).mean()), 3
                            ),
                        }
                    )
            coefs = sorted({*SUM_LAMBDAS, *[round(mean / G, 4) for mean in MEAN_LAMBDAS]})
            done = {
                (r["head"], r["strategy"], r.get("coef"))
                for r in map(json.loads, OUT.read_text().splitlines())
                if r["stage"] == "sweep"
            }
            for c in coefs:
                if (head, strategy, c) in done:
                    continue
                merged = {k: base_sd[k] + c * total[k] for k in keys}
                model.load_state_dict(merged, strict=False)
                h, z = features(model, enc)
                shift = (h - h0).mean(0)
                proj = float(shift @ w0 / np.linalg.norm(w0))
                log(
                    {
                        "stage": "sweep",
                        "head": head,
                        "strategy": strategy,
                        "coef": c,
                        "sum_lambda": c,
                        "mean_lambda": round(c * G, 4),
                        **summary(z, labels),
                        "body_only_margin_mean": round(float(head_margin(base_sd, h).mean()), 3),
                        "head_only_margin_mean": round(float(head_margin(merged, h0).mean()), 3),
                        "feature_shift_norm": round(float(np.linalg.norm(shift)), 3),
                        "feature_shift_along_w0": round(proj, 3),
                        "feature_spread_along_w0": round(float((h0 @ w0 / np.linalg.norm(w0)).std()), 3),
                        "saturated_frac": round(float((np.abs(h) > 0.99).mean()), 3),
                    }
                )
            model.load_state_dict({k: base_sd[k] for k in keys}, strict=False)


def fft_ref(heads: list[str]) -> None:
    for head in heads:
        base = base_for(head)
        cfg = TrainConfig(learning_rate=5e-5, epochs=1, batch_size=32, max_length=64, max_train_samples=4000)
        path = train_fft(DATA, base_dir=base, config=cfg, cache=CACHE, progress=False)
        model = load_classifier(str(path))
        _, z = features(model, encode_texts(load_tokenizer(None), VAL.texts, max_length=64))
        meta = json.loads((path / "meta.json").read_text())
        log(
            {
                "stage": "fft",
                "head": head,
                **summary(z, VAL.labels),
                "history": meta["history"],
                "train_seconds": meta["train_seconds"],
            }
        )


def curves(which: list[str]) -> None:
    """Validation curves with early stopping from the LP base, on a stratified 800-post val sample."""
    val = DATA["val"].subset(stratified_subsample(DATA["val"].labels, 800, seed=1))
    data = GroupedTextDataset(
        DATA.name, {"train": DATA["train"], "val": val}, DATA.label_scheme, provenance=DATA.provenance
    )
    base = base_for("linear_probe")
    for name in which:
        t = time.time()
        if name == "fft":
            cfg = TrainConfig(
                learning_rate=5e-5, epochs=2, max_train_samples=6000, eval_every_steps=47, patience=2
            )
            path = train_fft(data, base_dir=base, config=cfg, cache=CACHE, progress=False)
        else:
            cfg = TrainConfig(
                learning_rate=5e-4, epochs=3, max_train_samples=4000, eval_every_steps=42, patience=2
            )
            path = train_lora(data, base_dir=base, config=cfg, cache=CACHE, progress=False)
        m = json.loads((path / "meta.json").read_text())
        log(
            {
                "stage": "curve",
                "model": name,
                "history": m["history"],
                "best_epoch": m["best_epoch"],
                "stop_reason": m["stop_reason"],
                "n_train": m["n_train"],
                "train_seconds": m["train_seconds"],
                "wall": round(time.time() - t, 1),
            }
        )


def everything(_args: list[str]) -> None:
    sweep(["frozen"], ["targeted+background"])
    sweep(["linear_probe"], ["targeted+background"])
    sweep(["random"], ["targeted"])
    sweep(["frozen"], ["targeted"])
    sweep(["linear_probe"], ["targeted"])
    sweep(["frozen"], ["balanced"])
    sweep(["random"], ["balanced"])


if __name__ == "__main__":
    stage, args = sys.argv[1], sys.argv[2:]
    {"train": train, "sweep": sweep, "fft": fft_ref, "curves": curves, "all": everything}[stage](args)
