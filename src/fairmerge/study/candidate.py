"""A candidate model as a value: its family, the workspace state it starts from and its coefficients."""

from __future__ import annotations

from dataclasses import dataclass

from fairmerge.labels import ModelLabel


@dataclass(frozen=True)
class Candidate:
    """One candidate model: its family label (argmax decision), its uniform λ (None for per-group
    coefficients or a λ-free model), the coefficient of each vector, the workspace state it starts
    from (θ_base, FFT, a recipe's θ_base, or the baseline itself) and per-group λ_g by vector name.

    The coefficients weigh the vectors the workspace holds for the family
    (:meth:`fairmerge.study.stages.workspace.Workspace.add_vectors`); None means the start state as it is.
    """

    label: ModelLabel
    lam: float | None
    coefficients: tuple[float, ...] | None
    start: str
    lambdas: dict[str, float] | None = None

    @property
    def key(self) -> str:
        """The candidate's score-cache key, built here only: its start state when it edits nothing
        (a baseline, or a uniform λ = 0), else its label with λ or every λ_g."""
        if self.coefficients is None:
            return self.start
        if self.lam is None:
            return f"{self.label}|" + ",".join(f"{x:.4f}" for x in self.coefficients)
        return self.start if self.lam == 0 else f"{self.label}|lam={self.lam:.4f}"

    @property
    def family(self) -> str:
        """The name of the vector set the coefficients weigh (the family's argmax label)."""
        return str(self.label)
