"""Which process writes results when launched by ``accelerate launch`` / ``torchrun``.

A plain ``python`` process is alone and writes; under a launcher (``WORLD_SIZE`` > 1) accelerate's
process state decides and the other ranks wait at a barrier. Accelerate's state is only touched in
the distributed case, so single-process runs can still pick CPU or CUDA per call.
"""

from __future__ import annotations

import os
from typing import Any


def is_distributed() -> bool:
    """True when started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    return not is_distributed() or bool(_state().is_main_process)


def wait_for_everyone() -> None:
    if is_distributed():
        _state().wait_for_everyone()


def _state() -> Any:
    """Accelerate's process state, set up for CUDA (NCCL) or, without CUDA, for CPU ranks (gloo)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())
