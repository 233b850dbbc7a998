"""The search section of the config: defaults, checks that fail in one line, and --fast."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fairmerge.search import SearchConfig


def test_defaults_run_every_method_on_race_gaps() -> None:
    config = SearchConfig()
    assert config.methods == ["grid", "tpe", "nsga2", "learned", "orthogonal"]
    assert config.objectives == ["accuracy", "race_dpd", "race_eod"] and config.attributes == ["race"]
    fast = config.fast()
    assert fast.budget < config.budget and fast.methods == config.methods
    assert fast.budget >= 2 * len(fast.mus)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"methods": ["grid", "grid"]}, "lists a method twice"),
        ({"methods": ["bayes"]}, "Input should be"),
        ({"objectives": ["race_dpd", "accuracy"]}, "must start with 'accuracy'"),
        ({"objectives": ["accuracy", "race_gap"]}, "is not 'accuracy'"),
        ({"reference_point": [0.5, 0.5]}, "2 values for 3 objectives"),
        ({"reference_point": [0.5, 0.5, 1.5]}, r"lie in \[0, 1\)"),
        ({"low": 1.0, "high": 0.5}, "must be below"),
        ({"budget": 5, "mus": [0, 1, 2]}, "too small"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_sections_are_rejected(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SearchConfig(**change)  # type: ignore[arg-type]
