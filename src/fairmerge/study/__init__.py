"""The paper's whole study from one config: baselines, subgroup vectors, sweeps, selection, report."""

from fairmerge.study.config import StudyConfig, builtin_config_names, load_config
from fairmerge.study.run import run_study

__all__ = ["StudyConfig", "builtin_config_names", "load_config", "run_study"]
