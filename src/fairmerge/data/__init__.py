"""Datasets: text, binary label and per-attribute group membership, with explicit splits.

``load_dataset(name, data_dir=None, **options)`` loads one of ``available_datasets()``;
``read_table_split`` reads any CSV / Parquet file through a column mapping.
"""

from fairmerge.data.registry import available_datasets, load_dataset
from fairmerge.data.table import read_table_split
from fairmerge.data.types import SPLITS, GroupedTextDataset, TextSplit

__all__ = [
    "SPLITS",
    "GroupedTextDataset",
    "TextSplit",
    "available_datasets",
    "load_dataset",
    "read_table_split",
]
