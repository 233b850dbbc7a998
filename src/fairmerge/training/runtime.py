"""Which process writes results when launched by ``accelerate launch`` / ``torchrun``.

A plain ``python`` process is alone and writes; under a launcher (``WORLD_SIZE`` > 1) accelerate's
process state decides and the other ranks wait at a barrier. Accelerate's state is only touched in
the distributed case, so single-process runs can still pick CPU or CUDA per call.
"""

from __future__ import annotations

import os


def is_distributed() -> bool:
    """True when started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    if not is_distributed():
        return True
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def wait_for_everyone() -> None:
    if is_distributed():
        from accelerate import PartialState

        PartialState().wait_for_everyone()
