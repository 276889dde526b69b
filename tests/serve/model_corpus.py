"""Corrupted LightGBM model files made from a real one, and a runner that serves each of
them in a fresh app (``python -m tests.serve.model_corpus WS PROJECT CASES``): one JSON
line per case, so a crash or a hang of that process names the case it died on."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tuesday import meta
from tuesday.workspace import Workspace


def _sections(text: str) -> tuple[str, list[str], str]:
    """Header, tree blocks (each from ``Tree=`` up to the next) and the rest."""
    first = text.index("\nTree=") + 1
    end = text.index("end of trees")
    blocks = re.split(r"(?=^Tree=)", text[first:end], flags=re.M)
    return text[:first], [b for b in blocks if b], text[end:]


def _join(head: str, blocks: list[str], tail: str, *, fix_sizes: bool) -> str:
    if fix_sizes:  # a bad tool that writes the sizes of what it wrote
        sizes = " ".join(str(len(b.encode())) for b in blocks)
        head = re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", head, flags=re.M)
    return head + "".join(blocks) + tail


def _set(block: str, key: str, fn: Any) -> str:
    """``block`` with the values of ``key`` replaced by ``fn(values)``."""
    def repl(m: re.Match[str]) -> str:
        return f"{key}={' '.join(map(str, fn(m.group(1).split())))}"
    return re.sub(rf"^{key}=(.*)$", repl, block, count=1, flags=re.M)


def _cycle(vals: list[str]) -> list[str]:
    out = list(vals)
    for j in range(len(out) - 1, 0, -1):  # the deepest internal node points back at root
        out[j] = "0"
        break
    return out


def corpus(text: str) -> dict[str, bytes]:
    """Named corrupted versions of a LightGBM model text (a tree with >= 4 leaves)."""
    raw = text.encode()
    out: dict[str, bytes] = {"half": raw[:len(raw) // 2]}
    for k in range(1, 32):
        out[f"cut_{k}"] = raw[:len(raw) * k // 32]
    out["cut_end_of_trees"] = raw[:raw.index(b"end of trees") + 5]
    head, blocks, tail = _sections(text)
    n = int(re.search(r"^num_leaves=(\d+)", blocks[0], re.M).group(1))  # type: ignore[union-attr]
    nfeat = int(re.search(r"^max_feature_idx=(\d+)", head, re.M).group(1)) + 1  # type: ignore[union-attr]
    tree_edits: dict[str, tuple[str, Any]] = {
        "num_leaves_huge": ("num_leaves", lambda v: [10**9]),
        "num_leaves_zero": ("num_leaves", lambda v: [0]),
        "num_leaves_negative": ("num_leaves", lambda v: [-3]),
        "num_leaves_plus_one": ("num_leaves", lambda v: [int(v[0]) + 1]),
        "num_leaves_text": ("num_leaves", lambda v: ["many"]),
        "num_cat_huge": ("num_cat", lambda v: [10**6]),
        "cycle": ("left_child", _cycle),
        "shared_leaf": ("right_child", lambda v: ["-1"] * len(v)),
        "child_out_of_range": ("left_child", lambda v: [n + 100, *v[1:]]),
        "child_huge": ("right_child", lambda v: [2**40, *v[1:]]),
        "leaf_out_of_range": ("left_child", lambda v: [
            -(n + 1) if int(x) < 0 and i == min(j for j, y in enumerate(v) if int(y) < 0)
            else x for i, x in enumerate(v)]),
        "leaf_huge": ("right_child", lambda v: [-(2**31), *v[1:]]),
        "feature_out_of_range": ("split_feature", lambda v: [nfeat + 3, *v[1:]]),
        "feature_negative": ("split_feature", lambda v: [-1, *v[1:]]),
        "threshold_text": ("threshold", lambda v: ["abc", *v[1:]]),
        "threshold_nan": ("threshold", lambda v: ["nan", *v[1:]]),
        "decision_categorical": ("decision_type", lambda v: [1, *v[1:]]),
        "decision_huge": ("decision_type", lambda v: [999, *v[1:]]),
        "leaf_value_nan": ("leaf_value", lambda v: ["nan", *v[1:]]),
        "leaf_value_text": ("leaf_value", lambda v: ["x", *v[1:]]),
    }
    for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child",
                "leaf_value", "leaf_count", "internal_value", "split_gain"):
        tree_edits[f"{key}_short"] = (key, lambda v: v[:-1])
        tree_edits[f"{key}_long"] = (key, lambda v: [*v, v[-1]])
        tree_edits[f"{key}_empty"] = (key, lambda v: [])
    for name, (key, fn) in tree_edits.items():
        for t, fix in ((0, True), (0, False), (len(blocks) - 1, True)):
            bad = list(blocks)
            bad[t] = _set(bad[t], key, fn)
            out[f"{name}_tree{t}_{'sized' if fix else 'unsized'}"] = _join(
                head, bad, tail, fix_sizes=fix).encode()
    header_edits = {
        "max_feature_idx_huge": ("max_feature_idx", lambda v: [10**9]),
        "max_feature_idx_small": ("max_feature_idx", lambda v: [0]),
        "max_feature_idx_negative": ("max_feature_idx", lambda v: [-1]),
        "num_class_zero": ("num_class", lambda v: [0]),
        "num_tree_per_iteration_huge": ("num_tree_per_iteration", lambda v: [10**6]),
        "tree_sizes_plus_one": ("tree_sizes", lambda v: [int(v[0]) + 1, *v[1:]]),
        "tree_sizes_minus_one": ("tree_sizes", lambda v: [int(v[0]) - 1, *v[1:]]),
        "tree_sizes_huge": ("tree_sizes", lambda v: [10**15, *v[1:]]),
        "tree_sizes_fewer": ("tree_sizes", lambda v: v[:-1]),
        "tree_sizes_more": ("tree_sizes", lambda v: [*v, v[-1]]),
        "tree_sizes_text": ("tree_sizes", lambda v: ["x", *v[1:]]),
    }
    for name, (key, fn) in header_edits.items():
        out[name] = _join(_set(head, key, fn), blocks, tail, fix_sizes=False).encode()
    out["trees_swapped"] = _join(head, [blocks[1], blocks[0], *blocks[2:]], tail,
                                 fix_sizes=True).encode()
    out["tree_dropped"] = _join(head, blocks[1:], tail, fix_sizes=True).encode()
    out["no_end_of_trees"] = text.replace("end of trees", "").encode()
    out["not_utf8"] = raw[:200] + b"\xff\xfe" + raw[200:]
    out["nul_byte"] = raw[:300] + b"\0" + raw[300:]
    out["empty"] = b""
    return out


def point_production_at(ws: Workspace, model: str, data: bytes) -> str:
    """Make ``data`` the model file of the production version, as a bad tool would (the
    sha256 matches: the file is stored under its own hash)."""
    digest = ws.put_artifact(data)
    mv, runs = meta.model_versions, meta.runs
    with ws.engine().begin() as conn:
        run_id, = conn.execute(sa.select(mv.c.run_id).where(
            mv.c.model == model, mv.c.stage == "production")).one()
        manifest = conn.execute(sa.select(runs.c.manifest).where(
            runs.c.run_id == run_id)).scalar_one()
        manifest = {**manifest, "artifact": {**manifest["artifact"], "sha256": digest,
                                             "bytes": len(data)}}
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(
            manifest=manifest, artifact=digest))
        conn.execute(mv.update().where(mv.c.run_id == run_id).values(artifact=digest))
    return digest


def main(ws_dir: str, project: str, cases_dir: str) -> None:
    """Serve each case in a fresh app: /health, /ready and a predict; one JSON line each."""
    from starlette.testclient import TestClient

    from tuesday.serve.server import create_app
    from tuesday.workspace import open_workspace

    ws = open_workspace(ws_dir)
    for path in sorted(Path(cases_dir).iterdir()):
        print(json.dumps({"start": path.name}), flush=True)
        point_production_at(ws, "ridership_14d", path.read_bytes())
        with TestClient(create_app(ws.root, project)) as client:
            health = client.get("/health").status_code
            ready = client.get("/ready")
            pred = client.post("/v1/models/ridership_14d/predict",
                               json={"station": "Clark_Lake", "date": "2016-07-05"})
        print(json.dumps({"case": path.name, "health": health, "ready": ready.status_code,
                          "reason": ready.json()["models"]["ridership_14d"],
                          "predict": pred.status_code, "answer": pred.json()}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
