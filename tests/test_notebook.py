"""The notebook face: a real notebook, executed by a real Jupyter kernel (offline), walks
ingest -> train -> report -> plan -> promote -> monitor; every step renders as HTML and
converts to a DataFrame."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import tuesday.examples
from tuesday.project import load_project

CHURN = Path(tuesday.examples.__file__).parent / "churn" / "project.py"

CELLS = [
    "import tuesday.notebook as tn\n"
    "t = tn.open({project!r}, workspace={workspace!r})\n"
    "t",
    "for name, path in {files!r}.items():\n"
    "    ingested = t.ingest(name, path, as_of='2024-01-01')\n"
    "ingested",
    "run = t.train('churn', as_of='2024-01-02')\nrun",
    "assert list(run.to_frame().index) == ['model', 'prior']\n"
    "t.report('churn')",
    "plan = t.plan('churn', run['version'])\nassert plan['gates_passed']\nplan",
    "t.promote('churn', run['version'], as_of='2024-01-02')",
    "mon = t.monitor('churn', as_of='2024-01-03')\n"
    "print(mon['status'], type(mon.to_frame()).__name__)\nmon",
    "try:\n    t.train('nope')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)",
]


def test_a_notebook_runs_the_loop_and_every_step_renders(tmp_path: Path) -> None:
    files = {k: str(v) for k, v in
             load_project(CHURN).module.example_files(tmp_path / "data").items()}
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.format(project=str(CHURN),
                                                   workspace=str(tmp_path / "ws"),
                                                   files=files)) for c in CELLS]
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outs = [c.outputs for c in nb.cells]
    html = [next((o["data"]["text/html"] for o in out if "text/html" in o.get("data", {})),
                 "") for out in outs]
    assert "Notebook(project=" in outs[0][0]["data"]["text/plain"]
    assert "Ingested" in html[1] and "<table" in html[1]
    assert "churn version 1: backtest" in html[2]
    assert "prior" in html[3] and "<svg" in html[3]  # the evaluation report's charts
    assert "would pass its gates" in html[4]
    assert "is in production" in html[5]
    assert outs[6][0]["text"].strip() == "no_traffic DataFrame"
    assert "Model churn" in html[6]
    assert outs[7][0]["text"].startswith("NotFound")


def test_the_notebook_module_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "import tuesday.notebook" in readme


@pytest.mark.parametrize("attr", ["ingest", "train", "report", "plan", "promote", "monitor"])
def test_every_step_is_a_method(attr: str) -> None:
    import tuesday.notebook as tn

    assert callable(getattr(tn.Notebook, attr))
