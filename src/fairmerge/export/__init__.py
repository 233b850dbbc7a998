"""Ship a selected point of a finished study as a plain Hugging Face checkpoint with its model card,
a mergekit recipe and a record of what was exported (``fairmerge export``)."""

from fairmerge.export.exporter import export_headline, export_model

__all__ = ["export_headline", "export_model"]
