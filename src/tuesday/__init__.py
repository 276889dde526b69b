"""tuesday: take a tabular model from a notebook to a production service that checks its
data, serves fast, watches itself, retrains itself and explains itself."""

import os

# LightGBM's OpenMP threads (GNU libgomp) spin for up to 300,000 rounds while they wait:
# when two fits share two cores (a retrain beside the server, parallel runs, other jobs)
# each takes 15x its time alone. Never spinning (OMP_WAIT_POLICY=PASSIVE) makes a fit on
# an idle machine 4-5x slower. A short spin keeps both: measured on a 2-core machine, a
# 20,000-row fit alone 0.6-0.7 s (as with the default), two at once 2.9 s each (10 s
# with the default). Set before LightGBM is loaded; a user's own settings win.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "500"


def __getattr__(name: str) -> str:
    """``tuesday.__version__``, read from the installed metadata when first asked for
    (importlib.metadata costs a tenth of a second at start-up)."""
    if name != "__version__":
        raise AttributeError(f"module 'tuesday' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tuesday")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


__all__ = ["__version__"]
