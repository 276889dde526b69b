"""Runs: list, compare two, and reproduce one.

A run records everything needed to train again: the logical ``as_of``, the table
versions and fingerprints it read, the seed, parameters, code and package versions.
``reproduce`` trains again from those inputs without touching the registry and reports
every difference; the same inputs give a byte-identical model file.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from tuesday import meta
from tuesday.data import tables
from tuesday.errors import NotFound
from tuesday.project import LoadedProject
from tuesday.train import training
from tuesday.workspace import Workspace


def get_run(ws: Workspace, run_id: str) -> dict[str, Any]:
    """A run by id or unique id prefix (as shown by ``tuesday models``)."""
    runs = meta.runs
    with ws.engine().connect() as conn:
        rows = conn.execute(sa.select(runs).where(runs.c.run_id.startswith(run_id))
                            ).mappings().all()
    if len(rows) != 1:
        raise NotFound(
            f"Run {run_id!r} " + ("matches no run." if not rows else
                                  f"matches {len(rows)} runs; give more characters."),
            fix="List runs with `tuesday runs list`.")
    return dict(rows[0])


def list_runs(ws: Workspace, model: str | None = None) -> list[dict[str, Any]]:
    runs, mv = meta.runs, meta.model_versions
    q = (sa.select(runs.c.run_id, runs.c.model, runs.c.as_of, runs.c.artifact,
                   mv.c.version, mv.c.stage, runs.c.metrics)
         .join(mv, mv.c.run_id == runs.c.run_id, isouter=True).order_by(runs.c.as_of))
    if model:
        q = q.where(runs.c.model == model)
    with ws.engine().connect() as conn:
        out = []
        for r in conn.execute(q).mappings():
            m = r["metrics"]
            p = m.get("primary")
            out.append({"run_id": r["run_id"], "model": r["model"], "as_of": r["as_of"],
                        "version": r["version"], "stage": r["stage"], "primary": p,
                        "value": m.get("model", {}).get(p), "lift": m.get("lift"),
                        "artifact": r["artifact"]})
        return out


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def compare(ws: Workspace, a: str, b: str) -> dict[str, Any]:
    """Every difference between two runs: parameters, data versions, code, packages,
    metrics overall, per baseline and per slice."""
    ra, rb = get_run(ws, a), get_run(ws, b)
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    keep = ("as_of", "seed", "params", "tables", "code", "packages", "platform", "features",
            "learner", "artifact")
    _flat("", {k: ra["manifest"].get(k) for k in keep}, fa)
    _flat("", {k: rb["manifest"].get(k) for k in keep}, fb)
    for src, dst in ((ra, fa), (rb, fb)):
        m = src["metrics"]
        _flat("metrics", {"model": m.get("model"), "baselines": m.get("baselines"),
                          "lift": m.get("lift"), "train_rows": m.get("train_rows")}, dst)
        for s in m.get("slices", []):
            _flat(f"slices.{s['slice']}={s['value']}", {"model": s.get("model"),
                                                         "rows": s.get("rows")}, dst)
    changed = []
    for key in sorted(set(fa) | set(fb)):
        if fa.get(key) != fb.get(key):
            changed.append({"field": key, "a": fa.get(key), "b": fb.get(key),
                            "delta": _delta(fa.get(key), fb.get(key))})
    return {"a": ra["run_id"], "b": rb["run_id"], "model_a": ra["model"],
            "model_b": rb["model"], "same_artifact": ra["artifact"] == rb["artifact"],
            "differences": changed}


def _delta(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and \
            not isinstance(a, bool) and not isinstance(b, bool):
        return float(b) - float(a)
    return None


def reproduce(ws: Workspace, loaded: LoadedProject, run_id: str) -> dict[str, Any]:
    """Train again from a run's recorded inputs and report any difference."""
    run = get_run(ws, run_id)
    man = run["manifest"]
    as_of = pd.Timestamp(man["as_of"]).to_pydatetime()
    model = loaded.project.model(run["model"])
    problems: list[str] = []
    versions = tables.versions_as_of(ws, list(man["tables"]), as_of)
    for name, rec in man["tables"].items():
        if versions.get(name) != rec["version"]:
            problems.append(f"table {name!r}: the run read version {rec['version']}, the "
                            f"workspace now gives {versions.get(name)} as of {as_of}")
    res = training.train(ws, loaded, model.name, as_of, register=False,
                         folds=man.get("folds") if man.get("folds_override") else None)
    new = res.manifest
    for name, rec in man["tables"].items():
        got = new["tables"].get(name, {}).get("fingerprint")
        if got != rec["fingerprint"]:
            problems.append(f"table {name!r}: fingerprint {str(got)[:12]} differs from the "
                            f"run's {rec['fingerprint'][:12]}")
    for field in ("project_sha256", "tuesday"):
        if new["code"].get(field) != man["code"].get(field):
            problems.append(f"code {field}: {man['code'].get(field)} -> "
                            f"{new['code'].get(field)}")
    for pkg, v in man["packages"].items():
        if new["packages"].get(pkg) != v:
            problems.append(f"package {pkg}: {v} -> {new['packages'].get(pkg)}")
    same = new["artifact"]["sha256"] == man["artifact"]["sha256"]
    if not same:
        problems.append(f"model file: sha256 {man['artifact']['sha256'][:12]} -> "
                        f"{new['artifact']['sha256'][:12]}")
    old_m, new_m = run["metrics"], res.metrics
    metric_diffs = {k: (old_m["model"][k], new_m["model"][k]) for k in old_m["model"]
                    if old_m["model"][k] != new_m["model"].get(k)}
    return {"run_id": run["run_id"], "model": run["model"], "as_of": man["as_of"],
            "identical": same and not problems and not metric_diffs,
            "same_artifact": same, "differences": problems,
            "metric_differences": metric_diffs, "artifact": new["artifact"]["sha256"]}
