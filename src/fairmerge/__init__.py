"""fairmerge: fairness-aware task arithmetic for text classifiers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairmerge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
