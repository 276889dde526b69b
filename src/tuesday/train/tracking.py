"""Optional: log tuesday runs to MLflow as well (``pip install "tuesday[mlflow]"``).

tuesday's own metadata stays the source of truth; MLflow receives a copy of each run so
teams that already browse experiments there see tuesday's runs next to the others:
parameters, backtest metrics of the model and of every baseline, lineage tags (table
versions and fingerprints, code hash, tuesday run id) and the manifest, metrics and
model file as artifacts.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tuesday.errors import TuesdayError
from tuesday.train import runs
from tuesday.workspace import Workspace


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise TuesdayError("MLflow is not installed, so runs cannot be logged to it.",
                           fix='Install it with `pip install "tuesday[mlflow]"`.') from exc
    return mlflow


def log_run(ws: Workspace, run_id: str, tracking_uri: str,
            experiment: str | None = None) -> str:
    """Copy one tuesday run to MLflow; returns the MLflow run id."""
    mlflow = _mlflow()
    run = runs.get_run(ws, run_id)
    man, met = run["manifest"], run["metrics"]
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment or f"tuesday/{run['model']}")
    params: dict[str, Any] = {f"learner.{k}": v for k, v in man.get("params", {}).items()}
    params.update({"seed": man["seed"], "as_of": man["as_of"], "horizon": man["horizon"],
                   "learner": man.get("learner", "lightgbm"),
                   "features": ",".join(man["features"])[:6000]})
    metrics: dict[str, float] = {}
    for name, value in met["model"].items():
        metrics[f"backtest.model.{name}"] = value
    for base, values in met["baselines"].items():
        for name, value in values.items():
            metrics[f"backtest.{base}.{name}"] = value
    metrics["backtest.lift"] = met["lift"]
    tags = {"tuesday.run_id": run["run_id"], "tuesday.model": run["model"],
            "tuesday.version": str(man.get("version")),
            "tuesday.project_sha256": man["code"]["project_sha256"],
            "tuesday.artifact_sha256": man["artifact"]["sha256"]}
    for table, rec in man["tables"].items():
        tags[f"tuesday.table.{table}"] = f"v{rec['version']} {rec['fingerprint']}"
    finite = {k: float(v) for k, v in metrics.items()
              if isinstance(v, int | float) and v == v and abs(v) != float("inf")}
    with mlflow.start_run(run_name=f"{run['model']} v{man.get('version')}") as mrun, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        mlflow.log_metrics(finite)
        mlflow.set_tags(tags)
        folder = Path(tmp)
        (folder / "manifest.json").write_text(json.dumps(man, indent=2, default=str))
        (folder / "metrics.json").write_text(json.dumps(met, indent=2, default=str))
        suffix = {"lightgbm-text": ".txt", "linear-json": ".json"}.get(
            man["artifact"]["format"], ".skops")
        (folder / f"model{suffix}").write_bytes(ws.get_artifact(man["artifact"]["sha256"]))
        mlflow.log_artifacts(str(folder))
        return str(mrun.info.run_id)
