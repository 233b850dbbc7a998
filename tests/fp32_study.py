"""The session's ``run --fast`` and ``run utkface --fast`` score in fp32, not the default ``auto``.

The HateXplain run's metrics are compared with a stored fp32 reference
(``tests/data/fast_reference.csv.gz``), and both runs' exported models are checked to decide like the
study on every test post when a serving stack loads them (in fp32). Neither may depend on which bf16
kernels a CPU has (``auto`` picks bf16 where the CPU has bf16 units and θ_base passes the check).
Every test run that reuses a session run's score cache passes the same override: the score-cache key
holds the config, so another precision would score everything again. The search test
(tests/test_study_search.py) keeps the default, so ``auto`` runs end to end.
"""

FP32 = ("evaluation.precision=fp32",)
"""``overrides`` of :func:`fairmerge.study.run.run_study`."""
FP32_ARGS = ["--set", FP32[0]]
"""The same on the command line."""
