"""Model identity shared by the study and the report: family, training-set strategy, group, decision.

The study builds labels as values and the report reads them back from ``metrics.csv``'s ``model``
column, where a label is written as ``family[strategy]:group@calibrated`` (each part but the family
optional): ``fft``, ``merge[balanced]``, ``inject:worst``, ``merge_pergroup@calibrated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

Decision = Literal["argmax", "calibrated"]
CALIBRATED_SUFFIX = "@calibrated"

_PATTERN = re.compile(r"^(?P<family>[^\[:@]+)(?:\[(?P<strategy>[^\]]+)\])?(?::(?P<group>.+?))?$")


@dataclass(frozen=True)
class ModelLabel:
    """One evaluated model.

    ``family``: ``base``, ``fft``, ``lora``, ``merge``, ``merge_pergroup``, ``inject``,
    ``threshold_optimizer``. ``strategy``: the subgroup training-set strategy when it is not the
    study's main one. ``group``: the injected vector (``inject`` only). ``decision``: argmax, or
    a decision threshold re-chosen on validation.
    """

    family: str
    strategy: str | None = None
    group: str | None = None
    decision: Decision = "argmax"

    def __str__(self) -> str:
        text = self.variant + (f":{self.group}" if self.group is not None else "")
        return text + (CALIBRATED_SUFFIX if self.calibrated else "")

    @classmethod
    def parse(cls, text: str) -> ModelLabel:
        """Read a label back from its string form (``inject:Native American@calibrated``)."""
        calibrated = text.endswith(CALIBRATED_SUFFIX)
        core = text[: -len(CALIBRATED_SUFFIX)] if calibrated else text
        match = _PATTERN.match(core)
        if match is None:
            return cls(family=core, decision="calibrated" if calibrated else "argmax")
        return cls(
            family=match["family"],
            strategy=match["strategy"],
            group=match["group"],
            decision="calibrated" if calibrated else "argmax",
        )

    @property
    def label(self) -> str:
        return str(self)

    @property
    def variant(self) -> str:
        """The family with its strategy: ``merge[balanced]``."""
        return self.family + (f"[{self.strategy}]" if self.strategy else "")

    @property
    def calibrated(self) -> bool:
        return self.decision == "calibrated"

    @property
    def target(self) -> str | None:
        """The injected group (``inject`` labels), else None."""
        return self.group

    def with_decision(self, decision: Decision) -> ModelLabel:
        return replace(self, decision=decision)
