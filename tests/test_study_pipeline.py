"""The declared pipeline: one ordered list of stages, typed candidates and their score keys."""

from __future__ import annotations

import importlib
import pkgutil

from fairmerge.labels import ModelLabel
from fairmerge.study import stages
from fairmerge.study.points import Candidate
from fairmerge.study.stages import STAGES


def test_every_stage_module_declares_one_listed_stage() -> None:
    """A stage is one module with a ``STAGE``, listed once; names (timings) and plans are unique."""
    helpers = {"base", "results", "workspace"}
    modules = [m.name for m in pkgutil.iter_modules(stages.__path__) if m.name not in helpers]
    declared = [importlib.import_module(f"fairmerge.study.stages.{name}").STAGE for name in modules]
    assert sorted(s.name for s in declared) == sorted(s.name for s in STAGES)
    assert len({s.name for s in STAGES}) == len(STAGES)
    assert len({s.plan for s in STAGES}) == len(STAGES)
    assert STAGES[0].name == "train" and STAGES[-1].name == "target quality"


def test_candidate_keys_are_the_score_cache_keys_of_before() -> None:
    """The keys did not change when candidates became values, so cached scores stay valid."""
    merge = ModelLabel("merge")
    assert Candidate(ModelLabel("fft"), None, None, start="fft").key == "fft"
    assert Candidate(merge, 0.0, (0.0, 0.0), start="base").key == "base"  # λ = 0 is θ_base
    assert Candidate(merge, 0.5, (0.5, 0.5), start="base").key == "merge|lam=0.5000"
    assert Candidate(ModelLabel("inject", group="race/X"), 0.0, (0.0,), start="fft").key == "fft"
    inject = Candidate(ModelLabel("inject", group="race/X"), 0.25, (0.25,), start="fft")
    assert inject.key == "inject:race/X|lam=0.2500"
    pergroup = Candidate(ModelLabel("merge_pergroup"), None, (0.0, 1.25), start="base")
    assert pergroup.key == "merge_pergroup|0.0000,1.2500"  # per-group: never the start state
