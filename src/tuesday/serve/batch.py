"""Batch scoring of files of any size: ``tuesday predict MODEL --input F --output F``.

Rows are read in chunks (Parquet row batches, CSV blocks), answered by the same predict
path as the server (online features, deployment routing, business rules, prediction
log), and written chunk by chunk, so memory stays flat whatever the file size. A row that
cannot be answered (bad key, unknown entity, date outside the online store) gets an
``error`` and no prediction; it never stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject
from tuesday.serve.predictor import Predictor, wall_clock
from tuesday.workspace import Workspace

CHUNK_ROWS = 5_000
FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class BatchResult:
    rows: int
    predicted: int
    errors: int
    output: str
    logged: int
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "predicted": self.predicted, "errors": self.errors,
                "output": self.output, "logged": self.logged, "first_error": self.first_error}


def _check_columns(path: Path, model_name: str, rows: list[dict[str, Any]],
                   needed: list[str]) -> None:
    """Fail before scoring when a column every row needs is not in the file."""
    present = set(rows[0]) if rows else set()
    absent = [c for c in needed if c not in present]
    if rows and absent:
        raise TuesdayError(
            f"Input file {str(path)!r} has no column {', '.join(map(repr, absent))}, which "
            f"model {model_name!r} needs on every row; its columns are "
            f"{', '.join(map(repr, sorted(present)))}.",
            fix=f"Add the column(s) {', '.join(absent)} to the file (dates as ISO 8601, "
                f"e.g. 2016-08-09).")


def file_format(path: Path, what: str) -> str:
    ext = path.suffix.lower().lstrip(".")
    fmt = {"pq": "parquet", "parquet": "parquet", "csv": "csv"}.get(ext)
    if fmt is None:
        raise TuesdayError(f"The {what} file {str(path)!r} has extension {path.suffix!r}; "
                           "expected .parquet or .csv.",
                           fix=f"Give a {what} file ending in .parquet or .csv.")
    return fmt


def read_chunks(path: Path, key: str, chunk_rows: int = CHUNK_ROWS
                ) -> Iterator[list[dict[str, Any]]]:
    """Rows of a Parquet or CSV file as lists of dicts, ``chunk_rows`` at a time."""
    if not path.is_file():
        raise TuesdayError(f"Input file {str(path)!r} does not exist.",
                           fix="Check the path given to --input.")
    if file_format(path, "input") == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except pa.ArrowException as exc:
            raise TuesdayError(f"Input file {str(path)!r} is not readable Parquet: {exc}.",
                               fix="Write the file with a Parquet writer, or use CSV.") from exc
        for b in pf.iter_batches(batch_size=chunk_rows):
            yield b.to_pylist()
        return
    opts = pacsv.ConvertOptions(column_types={key: pa.string()}, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(path, convert_options=opts,
                                read_options=pacsv.ReadOptions(block_size=1 << 20))
        for b in reader:
            rows = b.to_pylist()
            for i in range(0, len(rows), chunk_rows):
                yield rows[i:i + chunk_rows]
    except pa.ArrowInvalid as exc:
        raise TuesdayError(f"Input file {str(path)!r} could not be read as CSV: {exc}.",
                           fix="Give a CSV file with a header row and the same number of "
                               "fields on every line.") from exc


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


class _Writer:
    """Writes answer rows to Parquet or CSV with one fixed schema."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.fmt = file_format(path, "output")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(path.name + ".partial")
        self._pq: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(
            [{f.name: _plain(r.get(f.name)) for f in self.schema} for r in rows],
            schema=self.schema)
        if self.fmt == "parquet":
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.tmp, self.schema)
            self._pq.write_table(table)
        else:
            if self._csv is None:
                self._csv = pacsv.CSVWriter(self.tmp, self.schema)
            self._csv.write_table(table)

    def close(self, ok: bool) -> None:
        for w in (self._pq, self._csv):
            if w is not None:
                w.close()
        if ok:
            if self._pq is None and self._csv is None:
                self.write([])
                self.close(True)
                return
            self.tmp.replace(self.path)  # the output appears whole or not at all
        else:
            self.tmp.unlink(missing_ok=True)


def explained_columns(features: list[str]) -> list[tuple[str, pa.DataType]]:
    """The columns an explained batch adds: ``explanation`` (the sentence),
    ``expected`` (the prediction with no feature information), ``baseline`` (the
    baseline's forecast the sentence compares with) and ``contribution_FEATURE`` (what
    the feature moved the prediction by, in the target's units)."""
    return [("explanation", pa.string()), ("expected", pa.float64()),
            ("baseline", pa.float64()),
            *((f"contribution_{f}", pa.float64()) for f in features)]


def _flatten_explanation(answer: dict[str, Any]) -> None:
    e = answer.pop("explanation", None)
    if e is None:
        return
    answer["explanation"] = e["sentence"]
    answer["expected"] = e["expected"]
    answer["baseline"] = (e.get("baseline") or {}).get("prediction")
    for f, c in e["contributions"].items():
        answer[f"contribution_{f}"] = c["shift"]


def predict_file(ws: Workspace, loaded: LoadedProject, model_name: str, source: Path,
                 output: Path, *, clock: Callable[[], datetime] | None = None,
                 chunk_rows: int = CHUNK_ROWS, explain: bool = False) -> BatchResult:
    """Score every row of ``source`` and write ``output``; log every prediction.

    With ``explain``, each row also gets its explanation as columns (see
    :func:`explained_columns`): the sentence, the expected value and one
    ``contribution_FEATURE`` column per feature, in the target's units."""
    model = loaded.project.model(model_name)
    key = model.entity.key
    tcol = loaded.project.source(model.label_source).time
    predictor = Predictor(ws, loaded, clock=clock or wall_clock)
    predictor.route(model_name)  # no production version: fail before reading anything
    cols: list[tuple[str, pa.DataType]] = [(key, pa.string())]
    if tcol:
        cols.append((tcol, pa.string()))
    cols += [("prediction", pa.float64()), ("model_version", pa.int64()),
             ("variant", pa.string()), ("dropped_by", pa.string()), ("error", pa.string())]
    features: list[str] = []
    if explain:
        route = predictor.route(model_name)
        for lm in (route.production, route.challenger):
            features += [f for f in (lm.names if lm else ()) if f not in features]
        cols += explained_columns(features)
    writer = _Writer(output, pa.schema(cols))
    total = predicted = errors = 0
    first_error: str | None = None
    needed = [key] + ([tcol] if tcol and predictor.spec(model_name).has_horizon else [])
    ok = False
    try:
        for rows in read_chunks(source, key, chunk_rows):
            if total == 0:
                _check_columns(source, model_name, rows, needed)
            for r in rows:
                if tcol and r.get(tcol) is not None and not isinstance(r[tcol], str):
                    r[tcol] = _plain(r[tcol])
            body = predictor.predict(model_name, rows, partial=True, slate=False,
                                     explain=explain)
            out = body["predictions"]
            for a in out:
                if explain:
                    _flatten_explanation(a)
                a.setdefault("model_version", body["model_version"] if a.get("error") is None
                             else None)
                a.setdefault("variant", "primary" if a.get("error") is None else None)
                if a.get(key) is not None:
                    a[key] = str(a[key])
            writer.write(out)
            predictor.log.flush()
            total += len(rows)
            errors += sum(a.get("error") is not None for a in out)
            if first_error is None:
                first_error = next((a["error"] for a in out if a.get("error")), None)
            predicted += sum(a.get("prediction") is not None for a in out)
        ok = True
    finally:
        writer.close(ok)
        if not ok:
            predictor.log.flush()
        predictor.close()
    return BatchResult(total, predicted, errors, str(output), predictor.log.written,
                       first_error)
