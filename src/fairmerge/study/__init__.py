"""The paper's whole study from one config: baselines, subgroup vectors, sweeps, selection, report.

Entry point: :func:`fairmerge.study.run.run_study`.
"""
