"""tuesday: take a tabular model from a notebook to a production service that checks its
data, serves fast, watches itself, retrains itself and explains itself."""

import os
from importlib.metadata import PackageNotFoundError, version

# LightGBM's OpenMP threads spin while they wait by default; on a machine shared by a
# server, the CLI and other jobs that turns a 1 s fit into a minute. Passive waiting
# costs nothing measurable when the machine is idle. Set before LightGBM is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("tuesday")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["__version__"]
