"""tuesday: take a tabular model from a notebook to a production service that checks its
data, serves fast, watches itself, retrains itself and explains itself."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tuesday")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
