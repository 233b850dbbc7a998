"""A mapping whose tensors are computed when read, one at a time (vectors larger than memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch


class LazyTensors(Mapping[str, torch.Tensor]):
    """Keys known up front; each value is ``load(key)``, computed on access and not kept."""

    def __init__(self, keys: Sequence[str], load: Callable[[str], torch.Tensor]) -> None:
        self._keys = list(keys)
        self._key_set = set(self._keys)
        self._load = load

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._key_set:
            raise KeyError(key)
        return self._load(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
