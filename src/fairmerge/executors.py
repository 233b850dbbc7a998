"""Where independent jobs (the study's fine-tunes) run: in this process, or as tasks on a Ray cluster.

A job is one call ``fn(**kwargs)``; :meth:`Executor.map` runs a list of them and returns their
results in order. The fine-tunes are safe to run anywhere and more than once because each one
writes through the content-addressed, atomic training cache (:mod:`fairmerge.training.cache`): a
task killed midway leaves only a hidden temporary directory (no entry), a re-run or a second
driver finds the finished entries and trains nothing again, and two tasks racing on one key
publish one entry. Sweeps stay on the driver: their cost is evaluation passes, not training.

Ray is an optional extra (``pip install -e ".[ray]"``). ``get_executor("ray")`` starts a local
cluster, or joins one with ``address`` (``"auto"``, or ``ray://HEAD:10001`` for a remote head); the
workers need fairmerge installed and the cache directory on a filesystem they all share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fairmerge.errors import ConfigError

T = TypeVar("T")

RAY_INSTALL = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Resources:
    """What one job needs. ``num_gpus=None``: one GPU when the cluster (or this machine) has any."""

    num_cpus: float = 1.0
    num_gpus: float | None = None


class Executor(ABC):
    """Runs independent jobs; results come back in the order of ``jobs``."""

    name: str

    @abstractmethod
    def map(
        self,
        fn: Callable[..., T],
        jobs: Sequence[Mapping[str, Any]],
        *,
        resources: Resources | None = None,
    ) -> list[T]:
        """``[fn(**job) for job in jobs]``, possibly in parallel; the first failure is re-raised."""


class LocalExecutor(Executor):
    """One job after another in this process."""

    name = "local"

    def map(
        self,
        fn: Callable[..., T],
        jobs: Sequence[Mapping[str, Any]],
        *,
        resources: Resources | None = None,
    ) -> list[T]:
        return [fn(**job) for job in jobs]


def _call(fn: Callable[..., T], kwargs: Mapping[str, Any]) -> T:
    return fn(**kwargs)


class RayExecutor(Executor):
    """Every job is a Ray task with its resources declared; the driver waits for all of them.

    ``address`` is passed to ``ray.init`` when Ray is not initialised yet (``None`` starts a local
    cluster on this machine). A worker that dies is retried ``max_retries`` times; an exception
    raised by a job is re-raised here as itself (a ``FairmergeError`` stays a one-line error).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(f"the ray executor needs Ray, which is not installed: {RAY_INSTALL}") from None
        self._ray = ray
        self.max_retries = max_retries
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"cannot start or join a Ray cluster at {address or 'local'}: {exc}"
                ) from exc

    def default_gpus(self) -> float:
        """1 when the cluster has a GPU (fine-tunes then use CUDA), else 0."""
        return 1.0 if self._ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def map(
        self,
        fn: Callable[..., T],
        jobs: Sequence[Mapping[str, Any]],
        *,
        resources: Resources | None = None,
    ) -> list[T]:
        ray = self._ray
        wanted = resources or Resources()
        gpus = self.default_gpus() if wanted.num_gpus is None else wanted.num_gpus
        task = ray.remote(num_cpus=wanted.num_cpus, num_gpus=gpus, max_retries=self.max_retries)(_call)
        refs = [task.remote(fn, dict(job)) for job in jobs]
        try:
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as exc:
            # The other jobs are left to finish, not cancelled: in Ray 2.x ray.cancel races with a
            # task's completion and can abort the driver (ray-project/ray#54527). Their cache entries
            # are atomic, so a re-run picks up whatever they finished.
            cause = exc.cause if isinstance(exc.cause, BaseException) else None
            if cause is not None:
                raise cause from None
            raise


def get_executor(name: str = "local", address: str | None = None) -> Executor:
    """``local`` or ``ray`` (``address``: an existing cluster, e.g. ``auto`` or ``ray://head:10001``)."""
    if name == "local":
        if address is not None:
            raise ConfigError("--ray-address applies to --executor ray, not to the local executor")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
