"""Reading and writing Hugging Face checkpoint directories one tensor at a time.

Reading goes through ``safetensors.safe_open`` (single or sharded ``model.safetensors``) or
``torch.load(weights_only=True, mmap=True)`` (``pytorch_model.bin``, single or sharded), so a
tensor is read only when it is asked for. Writing streams tensors into safetensors files whose
header is planned up front, so peak memory is one tensor, not one shard.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError, safe_open

from fairmerge.atomic import atomic_file
from fairmerge.errors import VectorError

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3
"""Output shard size; the writer streams tensors, so this bounds file size, not memory."""

_ST_TO_TORCH: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_TORCH_TO_ST = {v: k for k, v in _ST_TO_TORCH.items()}

# Files of a checkpoint directory that hold weights or training state: never copied to an output.
_NOT_COPIED = re.compile(
    r"(.*\.safetensors|.*\.bin|.*\.index\.json|.*\.pt|.*\.pth|.*\.ckpt|.*\.h5|.*\.msgpack"
    r"|trainer_state\.json|adapter_config\.json)$"
)


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of a tensor, known without reading its values."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        n = 1
        for size in self.shape:
            n *= size
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorSpec:
        return cls(tuple(tensor.shape), tensor.dtype)

    def describe(self) -> str:
        return f"shape {list(self.shape)} dtype {str(self.dtype).removeprefix('torch.')}"


def is_float_dtype(dtype: torch.dtype) -> bool:
    """Whether tensors of this dtype are weights that vectors hold (integer and bool buffers are not)."""
    return dtype.is_floating_point


def torch_dtype_from_safetensors(name: str, *, where: str) -> torch.dtype:
    try:
        return _ST_TO_TORCH[name]
    except KeyError:
        raise VectorError(f"{where}: unsupported safetensors dtype {name!r}") from None


class SafetensorsFile:
    """A safetensors file: shapes and dtypes from its header, tensors read one at a time.

    ``safe_open`` returns tensors backed by its memory map, and every page read stays in the
    process's resident memory for as long as the file is open. A handle is therefore opened per
    read: the mapping lives exactly as long as the tensor, so memory stays bounded by the tensors
    in hand rather than growing to the whole checkpoint (opening costs ~0.2 ms).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.specs: dict[str, TensorSpec] = {}
        with self._open() as handle:
            self.metadata: dict[str, str] = dict(handle.metadata() or {})
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                sl = handle.get_slice(key)
                dtype = torch_dtype_from_safetensors(sl.get_dtype(), where=f"{path} tensor {key!r}")
                self.specs[key] = TensorSpec(tuple(sl.get_shape()), dtype)

    @contextlib.contextmanager
    def _open(self, key: str | None = None) -> Iterator[Any]:
        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as handle:
                yield handle
        except (SafetensorError, OSError, ValueError) as exc:
            what = f"tensor {key!r} from " if key else ""
            raise VectorError(f"cannot read {what}safetensors file {self.path}: {exc}") from exc

    def get(self, key: str) -> torch.Tensor:
        with self._open(key) as handle:
            return handle.get_tensor(key)

    def head(self, key: str, n: int) -> torch.Tensor:
        """:func:`fingerprint_values` of a tensor, reading only its first row."""
        spec = self.specs[key]
        with self._open(key) as handle:
            if len(spec.shape) == 0:
                return handle.get_tensor(key).reshape(-1).clone()
            sl = handle.get_slice(key)
            return sl[:1].reshape(-1)[:n] if len(spec.shape) > 1 else sl[:n]


class _TorchBinFile:
    """One ``pytorch_model*.bin`` loaded with ``weights_only=True`` and memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if zipfile.is_zipfile(path):  # torch >= 1.6 format: memory-mapped, read on access
                loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            else:  # legacy pickle format cannot be memory-mapped
                loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for corrupt pickles / zips
            raise VectorError(f"cannot read checkpoint file {path}: {exc}") from exc
        if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
            raise VectorError(f"{path} does not hold a state dict of tensors")
        self.tensors: dict[str, torch.Tensor] = dict(loaded)
        self.specs = {k: TensorSpec.of(v) for k, v in self.tensors.items()}
        self.metadata: dict[str, str] = {}

    def get(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def head(self, key: str, n: int) -> torch.Tensor:
        return fingerprint_values(self.tensors[key], n)


class CheckpointReader:
    """Lazy per-tensor access to a Hugging Face checkpoint directory or a single weights file.

    Accepts a directory with ``model.safetensors``, a sharded ``model.safetensors.index.json``,
    ``pytorch_model.bin`` or its sharded index, or the path of one ``.safetensors`` / ``.bin`` file.
    Shapes and dtypes come from file headers, so keys can be checked before any value is read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        files = self._weight_files(self.path)
        self._files: dict[Path, SafetensorsFile | _TorchBinFile] = {}
        self._key_file: dict[str, Path] = {}
        self.specs: dict[str, TensorSpec] = {}
        for file in files:
            opened = self._open(file)
            for key, spec in opened.specs.items():
                if key in self._key_file:
                    raise VectorError(f"tensor {key!r} appears in two shards of {self.path}")
                self._key_file[key] = file
                self.specs[key] = spec
        self._aliases = self._bin_aliases()

    @staticmethod
    def _weight_files(path: Path) -> list[Path]:
        if path.is_file():
            if path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
                return [path]
            raise VectorError(f"{path} is not a .safetensors or .bin weights file")
        if not path.is_dir():
            raise VectorError(f"checkpoint {path} does not exist")
        for index_name in (SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_INDEX_NAME):
            index = path / index_name
            if index.exists():
                try:
                    weight_map = json.loads(index.read_text())["weight_map"]
                    names = list(dict.fromkeys(weight_map.values()))
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    raise VectorError(f"malformed shard index {index}: {exc}") from exc
                missing = [n for n in names if not (path / n).is_file()]
                if missing:
                    raise VectorError(f"shard {missing[0]!r} named in {index} is missing")
                return [path / n for n in names]
        for name in (SAFE_WEIGHTS_NAME, WEIGHTS_NAME):
            if (path / name).is_file():
                return [path / name]
        raise VectorError(
            f"no weights in {path}: expected {SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, "
            f"{WEIGHTS_NAME} or {WEIGHTS_INDEX_NAME}"
        )

    def _open(self, file: Path) -> SafetensorsFile | _TorchBinFile:
        if file not in self._files:
            self._files[file] = (
                SafetensorsFile(file) if file.suffix == ".safetensors" else _TorchBinFile(file)
            )
        return self._files[file]

    def _bin_aliases(self) -> set[str]:
        """Keys of ``.bin`` tensors that share storage with an earlier key (tied weights, stored once)."""
        seen: set[tuple[Any, ...]] = set()
        aliases: set[str] = set()
        for key in self.specs:
            opened = self._files[self._key_file[key]]
            if isinstance(opened, _TorchBinFile):
                tensor = opened.tensors[key]
                ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
                if ident in seen:
                    aliases.add(key)
                seen.add(ident)
        return aliases

    @property
    def aliases(self) -> set[str]:
        """Keys that are tied to (share storage with) an earlier key; vectors hold them once."""
        return set(self._aliases)

    @property
    def is_sharded(self) -> bool:
        return len(set(self._key_file.values())) > 1

    @property
    def directory(self) -> Path:
        """The checkpoint directory (for a single weights file: its folder)."""
        return self.path if self.path.is_dir() else self.path.parent

    def get(self, key: str) -> torch.Tensor:
        """Read one tensor (a fresh CPU tensor for safetensors; a memory-mapped view for ``.bin``)."""
        if key not in self._key_file:
            raise VectorError(f"tensor {key!r} is not in checkpoint {self.path}")
        return self._files[self._key_file[key]].get(key)

    def config(self) -> dict[str, Any] | None:
        """The directory's ``config.json`` as a dict, or ``None`` when there is none."""
        config = self.directory / "config.json"
        if not config.is_file():
            return None
        try:
            data = json.loads(config.read_text())
        except json.JSONDecodeError as exc:
            raise VectorError(f"malformed {config}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def fingerprint(self) -> str:
        """Cheap identity of the weights: keys, shapes, dtypes and the first values of each tensor."""
        digest = hashlib.sha256()
        for key in sorted(self.specs):
            head = self._files[self._key_file[key]].head(key, _FINGERPRINT_VALUES)
            _update_fingerprint(digest, key, self.specs[key], head)
        return digest.hexdigest()[:16]


_FINGERPRINT_VALUES = 64


def fingerprint_values(tensor: torch.Tensor, n: int) -> torch.Tensor:
    """Up to ``n`` values of a tensor's first row (what a fingerprint hashes), read cheaply from files."""
    if tensor.dim() == 0:
        return tensor.reshape(-1)
    return (tensor[:1] if tensor.dim() > 1 else tensor).reshape(-1)[:n]


def _update_fingerprint(digest: Any, key: str, spec: TensorSpec, head: torch.Tensor) -> None:
    digest.update(f"{key}|{spec.describe()}|".encode())
    digest.update(head.contiguous().view(torch.uint8).numpy().tobytes())


def state_dict_fingerprint(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Same identity as :meth:`CheckpointReader.fingerprint`, for an in-memory state dict."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach()
        head = fingerprint_values(tensor, _FINGERPRINT_VALUES).cpu()
        _update_fingerprint(digest, key, TensorSpec.of(tensor), head)
    return digest.hexdigest()[:16]


# --- writing ---------------------------------------------------------------------------------


def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """Raw little-endian bytes of a CPU tensor without copying a contiguous one."""
    flat = tensor.detach().contiguous().reshape(-1)
    if not flat.numel():
        return memoryview(b"")
    return memoryview(flat.view(torch.uint8).numpy().data)


class SafetensorsStreamWriter:
    """Write a safetensors file tensor by tensor, in a planned order.

    ``safetensors.torch.save_file`` needs every tensor of the file in memory at once; for
    out-of-core merges we know all shapes and dtypes up front, so we write the header first and
    then each tensor's bytes as soon as it is computed (the format is an 8-byte header length,
    a JSON header with byte offsets, then the raw little-endian data).
    """

    def __init__(
        self, handle: BinaryIO, specs: Mapping[str, TensorSpec], metadata: Mapping[str, str] | None = None
    ) -> None:
        self._handle = handle
        self._order = list(specs)
        self._specs = dict(specs)
        header: dict[str, Any] = {}
        if metadata:
            header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
        offset = 0
        for key, spec in specs.items():
            if spec.dtype not in _TORCH_TO_ST:
                raise VectorError(f"tensor {key!r}: dtype {spec.dtype} cannot be stored in safetensors")
            header[key] = {
                "dtype": _TORCH_TO_ST[spec.dtype],
                "shape": list(spec.shape),
                "data_offsets": [offset, offset + spec.nbytes],
            }
            offset += spec.nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        self._next = 0

    def write(self, key: str, tensor: torch.Tensor) -> None:
        """Append the next tensor; keys must come in the planned order with the planned spec."""
        if self._next >= len(self._order) or self._order[self._next] != key:
            expected = self._order[self._next] if self._next < len(self._order) else "no more tensors"
            raise RuntimeError(f"safetensors writer expected {expected!r}, got {key!r}")
        spec = self._specs[key]
        if TensorSpec.of(tensor) != spec:
            raise RuntimeError(
                f"tensor {key!r} has {TensorSpec.of(tensor).describe()}, planned {spec.describe()}"
            )
        self._handle.write(_tensor_bytes(tensor.cpu()))
        self._next += 1

    def close(self) -> None:
        if self._next != len(self._order):
            raise RuntimeError(f"safetensors file closed after {self._next} of {len(self._order)} tensors")


def write_safetensors_file(
    path: str | os.PathLike[str],
    specs: Mapping[str, TensorSpec],
    tensors: Iterable[tuple[str, torch.Tensor]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Atomically write a safetensors file from a stream of ``(key, tensor)`` in ``specs`` order."""
    with atomic_file(path) as tmp, tmp.open("wb") as handle:  # umask permissions, not mkstemp's 0600
        _write_stream(handle, specs, tensors, metadata)


def _write_stream(
    handle: BinaryIO,
    specs: Mapping[str, TensorSpec],
    tensors: Iterable[tuple[str, torch.Tensor]],
    metadata: Mapping[str, str] | None,
) -> None:
    writer = SafetensorsStreamWriter(handle, specs, metadata)
    for key, tensor in tensors:
        writer.write(key, tensor)
        del tensor  # free it before the next one is computed: one output tensor at a time
    writer.close()


def plan_shards(specs: Mapping[str, TensorSpec], max_shard_bytes: int) -> list[list[str]]:
    """Split keys, in order, into shards of at most ``max_shard_bytes`` (a larger tensor gets its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for key, spec in specs.items():
        if shards[-1] and size + spec.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += spec.nbytes
    return shards


def shard_file_names(n: int) -> list[str]:
    """Hugging Face's names: ``model.safetensors`` or ``model-0000i-of-0000n.safetensors``."""
    if n == 1:
        return [SAFE_WEIGHTS_NAME]
    return [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]


def copy_non_weight_files(source_dir: Path, target_dir: Path) -> None:
    """Copy config, tokenizer and other top-level files of a checkpoint dir, never its weights."""
    for item in sorted(source_dir.iterdir()):
        if item.is_file() and not item.name.startswith(".") and not _NOT_COPIED.fullmatch(item.name):
            shutil.copy2(item, target_dir / item.name)


def write_checkpoint_tensors(
    out_dir: Path,
    specs: Mapping[str, TensorSpec],
    tensors: Iterator[tuple[str, torch.Tensor]],
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> None:
    """Write weights into an existing (temporary) directory as HF safetensors, sharded when large.

    ``tensors`` must yield keys in ``specs`` order; at most one tensor is held at a time.
    """
    shards = plan_shards(specs, max_shard_bytes)
    names = shard_file_names(len(shards))
    weight_map: dict[str, str] = {}
    for name, keys in zip(names, shards, strict=True):
        with open(out_dir / name, "wb") as handle:
            shard_specs = {k: specs[k] for k in keys}
            _write_stream(handle, shard_specs, _take(tensors, len(keys)), {"format": "pt"})
        weight_map.update(dict.fromkeys(keys, name))
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(s.nbytes for s in specs.values())}, "weight_map": weight_map}
        (out_dir / SAFE_WEIGHTS_INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")


def _take(iterator: Iterator[tuple[str, torch.Tensor]], n: int) -> Iterator[tuple[str, torch.Tensor]]:
    for _ in range(n):
        yield next(iterator)
