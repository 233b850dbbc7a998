"""Exceptions that the CLI turns into a one-line reason and a non-zero exit code."""


class FairmergeError(Exception):
    """Base class: bad input or an unusable environment, explained in the message."""


class DataError(FairmergeError):
    """A data file is missing, malformed, or a group / column is unusable."""


class DataDirectoryError(DataError):
    """No data directory was given, or the one given does not exist."""


class ModelError(FairmergeError):
    """A model cannot be loaded or does not fit the requested operation."""


class VectorError(FairmergeError):
    """Task vectors or checkpoints are incompatible (keys, shapes, dtypes, non-finite values)."""


class ConfigError(FairmergeError):
    """A configuration value is invalid."""


class OutputError(FairmergeError):
    """An output path cannot be written, or writing it would replace files fairmerge did not write."""
