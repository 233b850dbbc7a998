"""The study's report: figures (``plots``) and one self-contained HTML file (``html``)."""

from fairmerge.report.html import write_report

__all__ = ["write_report"]
