"""Executors: the local one runs jobs in order; asking for Ray without Ray names the install line."""

from __future__ import annotations

import sys

import pytest

from fairmerge.errors import ConfigError
from fairmerge.executors import LocalExecutor, get_executor


def power(base: int, exponent: int = 2) -> int:
    return base**exponent


def test_local_executor_returns_results_in_order_and_reraises():
    executor = get_executor("local")
    assert isinstance(executor, LocalExecutor)
    assert executor.map(power, [{"base": 3}, {"base": 2, "exponent": 5}]) == [9, 32]
    with pytest.raises(ZeroDivisionError):
        executor.map(power, [{"base": 0, "exponent": -1}])


def test_unknown_executor_and_missing_ray_are_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match="choose one of local, ray"):
        get_executor("dask")
    with pytest.raises(ConfigError, match="ray-address"):
        get_executor("local", address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[ray\]"'):
        get_executor("ray")
