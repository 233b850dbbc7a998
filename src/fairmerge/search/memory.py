"""What the learned searches hold in memory, estimated from a model's config before loading it.

During a gradient step on the coefficients the following are resident: the model (its own
weights; the untouched ones are used as they are), θ_base (the merger's copy, which the learned
search reads), every subgroup vector, the merged weights θ(λ) (kept by autograd for the backward
pass), and their gradient (formed during the backward pass, one tensor at a time in the best case;
counted whole). Activations of the batch come on top. The orthogonal variant holds the same: it
maps coefficients back onto the original vectors and never materialises the basis.

``fairmerge run --dry-run`` should print :meth:`MemoryEstimate.describe` of this next to the sweep
estimate of :func:`fairmerge.vectors.memory.estimate_sweep_memory` when ``search`` lists a learned
method.
"""

from __future__ import annotations

from typing import Any

import torch

from fairmerge.errors import ConfigError
from fairmerge.vectors.memory import MemoryEstimate, count_parameters


def estimate_learned_memory(
    config: Any, *, dtype: torch.dtype = torch.float32, n_vectors: int, device: str = "cpu"
) -> MemoryEstimate:
    """Peak memory of a learned-coefficient search over ``n_vectors`` vectors (without activations)."""
    if n_vectors < 1:
        raise ConfigError("a learned search needs at least one vector")
    parameters, _ = count_parameters(config)
    size = parameters * dtype.itemsize
    items = {
        "model": size,
        "base copy": size,
        f"{n_vectors} vectors in memory": n_vectors * size,
        "merged weights θ(λ) (autograd)": size,
        "their gradient (backward)": size,
    }
    return MemoryEstimate(parameters, dtype, device, items)
