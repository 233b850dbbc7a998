"""Learned coefficients: gradient descent on λ_{g,b} with a fairness term, and a μ sweep over it.

The merged weights are a function of the coefficients, θ(λ) = θ_base + Σ_{g,b} λ_{g,b} τ_{g,b},
evaluated with :func:`torch.func.functional_call`: the model object keeps its own tensors and no
copy of it is made per step. The loss on a batch of validation posts is cross-entropy plus μ times
the sum of the soft gaps of the configured objectives (:mod:`fairmerge.search.surrogates`).
``orthogonal`` learns coefficients c over an orthonormal basis of each block's vectors instead
(:mod:`fairmerge.search.orthogonal`), mapped back as λ = c·M: the same model family, a different
geometry for the optimiser. Plain coefficients are kept in [low, high] by clamping after each
step; orthogonal ones are not bounded (a bound on c is no bound on λ).

Memory: the base, every vector, one merged copy of the touched weights and their gradient are
resident during a step (:func:`fairmerge.search.memory.estimate_learned_memory`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch.func import functional_call

from fairmerge.errors import ConfigError
from fairmerge.search.config import BlockScheme
from fairmerge.search.orthogonal import orthonormal_basis
from fairmerge.search.problem import (
    CoefficientSpace,
    Evaluations,
    ScoredPoint,
    SearchResult,
    blocks_of_keys,
    front_of,
)
from fairmerge.search.surrogates import GroupTargets, soft_gap

Batch = Callable[[np.ndarray], dict[str, Tensor]]
"""Model inputs (keyword arguments) for the given validation rows, e.g.
``functools.partial(fairmerge.inference.collate, encoded)``."""


class MergedParameters:
    """θ(λ) for the touched parameters of ``model``: ``base[k] + Σ_g λ[g, block(k)] · τ_g[k]``.

    The vectors are held as given (moved to the model's device and dtype only if they are not
    there already); ``base`` is the θ_base mapping the study already holds (not copied; it must not
    be the model's own tensors, which the scorer rewrites at every point).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        base: Mapping[str, Tensor],
        vectors: Mapping[str, Mapping[str, Tensor]],
        space: CoefficientSpace,
        scheme: BlockScheme,
    ) -> None:
        if tuple(vectors) != space.groups:
            raise ConfigError(f"vectors {list(vectors)} do not match the space's groups {list(space.groups)}")
        params = dict(model.named_parameters())
        first = next(iter(vectors.values()))
        keys = [k for k in first if k in params]
        if not keys:
            raise ConfigError("the vectors touch no parameter of the model")
        block = blocks_of_keys(keys, scheme)
        self.space = space
        self.block_index = {k: space.blocks.index(block[k]) for k in keys}
        like = {k: params[k] for k in keys}
        shared = [
            k for k in keys if base[k].untyped_storage().data_ptr() == like[k].untyped_storage().data_ptr()
        ]
        if shared:  # the scorer rewrites the model in place: such a "base" would move with every point
            raise ConfigError(
                f"base tensor {shared[0]!r} is the model's own parameter; pass a copy of θ_base"
            )
        self.base = {k: base[k].to(like[k]) for k in keys}
        self.deltas = {k: [v[k].to(like[k]) for v in vectors.values()] for k in keys}

    def __call__(self, lam: Tensor) -> dict[str, Tensor]:
        """The touched parameters at coefficients ``lam`` (groups × blocks), differentiable in ``lam``."""
        merged = {}
        for key, deltas in self.deltas.items():
            column = lam[:, self.block_index[key]].to(self.base[key].dtype)
            value = self.base[key]
            for g, delta in enumerate(deltas):
                value = value + column[g] * delta
            merged[key] = value
        return merged

    def block_keys(self, b: int) -> list[str]:
        return [k for k, i in self.block_index.items() if i == b]


def logits_of(output: object) -> Tensor:
    return output.logits if hasattr(output, "logits") else output  # type: ignore[return-value]


def batch_loss(
    model: torch.nn.Module,
    merged: MergedParameters,
    lam: Tensor,
    batch: Batch,
    targets: GroupTargets,
    rows: np.ndarray,
    mu: float,
) -> Tensor:
    """Cross-entropy + μ × Σ soft gaps on the validation rows ``rows``, at coefficients ``lam``."""
    device = next(iter(merged.base.values())).device
    inputs = {k: v.to(device) for k, v in batch(rows).items()}
    logits = logits_of(functional_call(model, merged(lam), args=(), kwargs=inputs))
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half-precision models: fp32 loss
    index = torch.from_numpy(rows)
    labels = targets.labels[index].to(logits.device)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    if mu > 0 and targets.gaps:
        p = logits.softmax(dim=-1)[:, 1]
        loss = loss + mu * sum((soft_gap(p, labels, t, index) for t in targets.gaps), p.new_zeros(()))
    return loss


@dataclass
class Parametrisation:
    """λ[:, b] = c_b · T_b for each block b: identity (plain) or an orthonormal basis's map."""

    transforms: list[Tensor]  # per block: rank_b × groups
    bounded: bool

    def coefficients(self, params: Sequence[Tensor]) -> Tensor:
        return torch.stack([c @ t for c, t in zip(params, self.transforms, strict=True)], dim=1)

    def initial(self, lam: np.ndarray) -> list[Tensor]:
        """Parameters that give ``lam`` (groups × blocks), or its least-squares nearest in the span."""
        return [
            torch.linalg.lstsq(t.T, torch.as_tensor(lam[:, b], dtype=t.dtype)[:, None]).solution[:, 0]
            for b, t in enumerate(self.transforms)
        ]


def plain_parametrisation(space: CoefficientSpace) -> Parametrisation:
    eye = torch.eye(len(space.groups), dtype=torch.float64)
    return Parametrisation([eye.clone() for _ in space.blocks], bounded=True)


def orthogonal_parametrisation(merged: MergedParameters) -> Parametrisation:
    """One orthonormal basis per block, over that block's tensors of the vectors."""
    transforms = []
    for b, _ in enumerate(merged.space.blocks):
        keys = merged.block_keys(b)
        vectors = [{k: merged.deltas[k][g] for k in keys} for g in range(len(merged.space.groups))]
        transforms.append(orthonormal_basis(vectors, keys).to_vector_coefficients())
    return Parametrisation(transforms, bounded=False)


@dataclass
class Learner:
    """What a learned search needs besides the scorer: the functional model and the validation data."""

    model: torch.nn.Module
    merged: MergedParameters
    batch: Batch
    targets: GroupTargets
    learning_rate: float = 0.05
    batch_size: int = 64
    history: list[dict[str, float]] = field(default_factory=list)

    def learn(
        self, parametrisation: Parametrisation, start: np.ndarray, *, mu: float, passes: int, seed: int
    ) -> np.ndarray:
        """Adam on the parameters for ``passes`` shuffled passes over the validation posts; the final λ."""
        space = self.merged.space
        params = [p.clone().requires_grad_(True) for p in parametrisation.initial(start)]
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        rng = np.random.default_rng(seed)
        frozen = [p.requires_grad_(False) for p in self.model.parameters() if p.requires_grad]
        was_training = self.model.training
        self.model.eval()  # dropout off: the loss is that of the deployed model
        try:
            for epoch in range(passes):
                order = rng.permutation(len(self.targets))
                for start_row in range(0, len(order), self.batch_size):
                    rows = np.sort(order[start_row : start_row + self.batch_size])
                    optimiser.zero_grad()
                    lam = parametrisation.coefficients(params)
                    loss = batch_loss(self.model, self.merged, lam, self.batch, self.targets, rows, mu)
                    loss.backward()
                    optimiser.step()
                    if parametrisation.bounded:
                        with torch.no_grad():
                            for p in params:
                                p.clamp_(space.low, space.high)
                self.history.append({"mu": mu, "pass": epoch, "loss": float(loss.detach())})
        finally:
            for p in frozen:
                p.requires_grad_(True)
            self.model.train(was_training)
        with torch.no_grad():
            return parametrisation.coefficients(params).numpy()


def learned_search(
    evaluations: Evaluations,
    learner: Learner,
    budget: int,
    mus: Sequence[float],
    *,
    seed: int,
    start_lambda: float,
    orthogonal: bool = False,
) -> SearchResult:
    """One learned run per μ from the uniform ``start_lambda``; each final point scored on val.

    Budget: each run gets ``budget // len(mus) − 1`` passes (one pass = one forward and backward over
    the validation posts, counted as one model evaluation) and one scoring evaluation.
    """
    passes = budget // len(mus) - 1
    if passes < 1:
        raise ConfigError(f"budget {budget} leaves no pass for {len(mus)} μ values (need >= {2 * len(mus)})")
    begin = time.perf_counter()
    space = evaluations.space
    parametrisation = (
        orthogonal_parametrisation(learner.merged) if orthogonal else plain_parametrisation(space)
    )
    start = space.matrix(space.uniform(start_lambda))
    points: list[ScoredPoint] = []
    for mu in mus:
        lam = learner.learn(parametrisation, start, mu=mu, passes=passes, seed=seed)
        points.append(evaluations(lam.reshape(-1).tolist(), info={"mu": float(mu)}))
    used = len({p.coefficients for p in points}) + passes * len(mus)
    return SearchResult(
        "orthogonal" if orthogonal else "learned",
        points,
        front_of(points, evaluations.objectives),
        used,
        time.perf_counter() - begin,
        space,
        evaluations.objectives,
    )
