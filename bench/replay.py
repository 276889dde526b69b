"""Replay: wall time of a one-year replay of the ridership loop, split by stage.

One year of the daily loop on the real Chicago ridership data (`tuesday.replay`), with
the 0.6 ridership shock in the middle: each day ingest the day's rows (3 sources), run
the tick (monitor the recent windows, decide, retrain, gates, materialize), and serve
the forecast entering the 14-day horizon through the predict path. Reported: total wall
time, seconds per stage, retrains, and what the loop did about the shock.

    python bench/replay.py                      # 2015-01-01 .. 2015-12-31, --folds 4
    python bench/replay.py --folds 26           # the model's declared backtest (slower)
    python bench/replay.py --start 2015-01-01 --end 2015-03-31   # a quick run

Results are printed as JSON and written to bench/replay-result.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from tuesday.loop.replay import replay
from tuesday.project import Policy, load_project

EXAMPLE = Path(__file__).resolve().parents[1] / "src/tuesday/examples/ridership/project.py"
CONFIG = {"model": "ridership_14d", "start": "2015-01-01", "end": "2015-12-31",
          "shock": "scale=0.6 from 2015-06-01", "folds": 4, "schedule": "7d"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", default=CONFIG["start"])
    ap.add_argument("--end", default=CONFIG["end"])
    ap.add_argument("--shock", default=CONFIG["shock"], help="'' for none")
    ap.add_argument("--folds", type=int, default=CONFIG["folds"])
    ap.add_argument("--schedule", default=CONFIG["schedule"])
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--out", default=str(Path(__file__).with_name("replay-result.json")))
    a = ap.parse_args()
    loaded = load_project(EXAMPLE)
    t0 = time.perf_counter()
    tl = replay(loaded, CONFIG["model"], a.start, a.end, workspace=a.workspace,
                policy=Policy(schedule=a.schedule or None),
                shocks=[a.shock] if a.shock else [], folds=a.folds,
                progress=lambda m: print(m, flush=True) if m.endswith("-01") else None)
    wall = time.perf_counter() - t0
    secs = tl["seconds"]
    stages = {k: v for k, v in secs.items() if k != "total"}
    out = {
        "config": {**CONFIG, "start": a.start, "end": a.end, "shock": a.shock,
                   "folds": a.folds, "schedule": a.schedule},
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "wall_seconds": round(wall, 1),
        "days": tl["summary"]["days"],
        "seconds_per_day_without_training": round(
            (wall - stages.get("train", 0.0)) / max(tl["summary"]["days"], 1), 3),
        "retrains": tl["summary"]["retrains"] + 1,  # + version 1 at the start
        "seconds_per_training": round(stages.get("train", 0.0)
                                      / max(tl["summary"]["retrains"] + 1, 1), 2),
        "stages": stages,
        "stage_share": {k: round(v / wall, 3) for k, v in stages.items()},
        "summary": tl["summary"],
        "shocks": tl["shocks"],
        "report_html": tl["report_html"],
    }
    Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
