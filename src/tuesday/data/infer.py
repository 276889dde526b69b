"""A first project from data files: contracts inferred from the values, as TFDV and
pandera infer schemas, and entities and a first model guessed and marked for review.

For each file (CSV or Parquet, read as ``tables.read_file`` reads it): each column's type
is the narrowest the contract's own parser reads every value as (int, float, date,
timestamp, bool, else str), so the inferred contract accepts the file it came from;
nullable where a value is missing; ``min=0`` where no value is negative; ``allowed`` for
text with few distinct values; ``unique`` for a column (or entity and time) that holds
no value twice; the time column is the first date or timestamp column. The entity is
the text column most files share (or, with one file, the text column naming a modest
number of things); the first model forecasts a non-negative number of a dated file of
that entity a day ahead, from lags, a rolling mean and the calendar. Every guess is
marked ``# REVIEW`` in the file written.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.parsing import parse_column
from tuesday.data.contracts.raw import raw_columns
from tuesday.data.tables import read_file
from tuesday.errors import TuesdayError
from tuesday.project import Column

#: a text column with at most this many distinct values gets ``allowed``
ALLOWED_AT_MOST = 12
_ORDER = ("int", "float", "date", "timestamp", "bool", "str")
_TARGET_HINT = re.compile(r"units|qty|quantity|sales|sold|demand|rides|count|amount|value",
                          re.I)


@dataclass(frozen=True)
class InferredColumn:
    name: str
    dtype: str
    nullable: bool
    min: float | None
    allowed: tuple[str, ...] | None
    distinct: int


@dataclass(frozen=True)
class InferredSource:
    name: str
    path: Path
    rows: int
    columns: tuple[InferredColumn, ...]
    time: str | None
    unique: tuple[str, ...]

    def column(self, name: str) -> InferredColumn:
        return next(c for c in self.columns if c.name == name)


def infer_source(path: str | Path, name: str | None = None) -> InferredSource:
    """The contract of one file, inferred from its values."""
    p = Path(path)
    batch = read_file(p)
    n, raw = raw_columns(batch.frame)
    cols = []
    typed: dict[str, pa.Array] = {}
    for col_name, rc in raw.items():
        dtype, arr, missing = "str", None, np.zeros(n, bool)
        for candidate in _ORDER:
            got, bad, miss = parse_column(rc, Column(col_name, candidate))
            if not bad.any() and (candidate != "bool" or not miss.all()):
                dtype, arr, missing = candidate, got, miss
                break
        assert arr is not None
        typed[col_name] = arr
        distinct = len(pc.unique(arr.drop_null()))
        minimum = None
        if dtype in ("int", "float") and arr.null_count < n:
            low = pc.min(arr).as_py()
            minimum = 0.0 if low is not None and low >= 0 else None
        allowed = None
        if dtype == "str" and 0 < distinct <= ALLOWED_AT_MOST and distinct * 5 <= n:
            allowed = tuple(sorted(str(v) for v in pc.unique(arr.drop_null()).to_pylist()))
        cols.append(InferredColumn(col_name, dtype, bool(missing.any()), minimum, allowed,
                                   distinct))
    times = [c.name for c in cols if c.dtype in ("date", "timestamp")]
    time = next((t for t in times if re.search(r"date|time|ts|day", t, re.I)),
                times[0] if times else None)
    unique = _unique(cols, typed, n, time)
    return InferredSource(name or _plain(p.stem), p, n, tuple(cols), time, unique)


def _plain(stem: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")
    return out if out and out[0].isalpha() else f"source_{out}"


def _unique(cols: list[InferredColumn], typed: dict[str, pa.Array], n: int,
            time: str | None) -> tuple[str, ...]:
    """A column, or a text column and the time, that no two rows share."""
    if not n:
        return ()
    for c in cols:
        if c.dtype in ("str", "int") and not c.nullable and c.distinct == n:
            return (c.name,)
    if time is not None:
        t = typed[time]
        for c in cols:
            if c.dtype == "str" and not c.nullable and c.name != time:
                pairs = pa.table({"k": typed[c.name], "t": t}).group_by(["k", "t"]) \
                    .aggregate([]).num_rows
                if pairs == n:
                    return (c.name, time)
    return ()


def guess_entity(sources: list[InferredSource]) -> str | None:
    """The text column most files share; with one file, the text column naming the
    most things while still repeating (fewer distinct values than a tenth of the rows)."""
    shared = Counter(c.name for s in sources for c in s.columns if c.dtype == "str"
                     and c.name != s.time)
    common = [n for n, k in shared.most_common() if k > 1]
    if common:
        return common[0]
    best = None
    for s in sources:
        for c in s.columns:
            if c.dtype == "str" and 1 < c.distinct * 10 <= s.rows and \
                    (best is None or c.distinct > best.distinct):
                best = c
    return best.name if best is not None else None


def project_text(paths: list[str | Path], name: str = "project") -> str:
    """The text of a project module declaring one source per file and a first model."""
    if not paths:
        raise TuesdayError("tuesday init needs at least one data file.",
                           fix="Pass the CSV or Parquet files: tuesday init data/*.csv")
    sources = [infer_source(p) for p in paths]
    names = [s.name for s in sources]
    for dup in sorted({x for x in names if names.count(x) > 1}):
        raise TuesdayError(f"Two files would both be source {dup!r}.",
                           fix="Rename one of the files; the source is named after it.")
    entity = guess_entity(sources)
    lines = [f'"""Project {name!r}, written by `tuesday init` from '
             f'{", ".join(str(Path(p).name) for p in paths)}.', "",
             "Every contract was inferred from the values of its file, so each file passes "
             "it;", "the lines marked REVIEW are guesses: check them before trusting the "
             'model.', '"""', "", "from tuesday.project import (",
             "    Backtest, Baseline, Column, Contract, Entity, Model, Project, Source,",
             "    calendar, lag, window,", ")", ""]
    if entity:
        lines += [f"{_var(entity)} = Entity({entity!r})  # REVIEW: what a prediction is "
                  "about", ""]
    for s in sources:
        lines += _source_lines(s, entity)
    model = _model_lines(sources, entity)
    lines += model
    srcs = ", ".join(_var(s.name) for s in sources)
    models = "(first_model,)" if model else "()"
    lines += [f"project = Project({name!r}, sources=({srcs},), models={models})", ""]
    return "\n".join(lines)


#: names the written module imports: a source named so gets ``_source`` after it
_TAKEN = {"Backtest", "Baseline", "Column", "Contract", "Entity", "Model", "Project",
          "Source", "calendar", "lag", "window", "project", "first_model"}


def _var(name: str) -> str:
    v = re.sub(r"\W", "_", name)
    v = v if v.isidentifier() and not v.startswith("_") else f"v_{v}"
    return f"{v}_source" if v in _TAKEN else v


def _source_lines(s: InferredSource, entity: str | None) -> list[str]:
    out = [f"{_var(s.name)} = Source({s.name!r}, Contract((  # {s.rows} rows in "
           f"{s.path.name}"]
    for c in s.columns:
        parts = [repr(c.name), repr(c.dtype)]
        if not c.nullable:
            parts.append("nullable=False")
        if c.min is not None:
            parts.append("min=0")
        if c.allowed is not None and c.name != entity:
            parts.append(f"allowed={c.allowed!r}")
        note = "  # REVIEW: only the values seen" if c.allowed is not None and \
            c.name != entity else ""
        out.append(f"    Column({', '.join(parts)}),{note}")
    tail = f"){', unique=' + repr(s.unique) if s.unique else ''})"
    kw = []
    if s.time:
        kw.append(f"time={s.time!r}")
    if entity and any(c.name == entity for c in s.columns):
        kw.append(f"entity={_var(entity)}")
    out.append(tail + ("," if kw else "") + (" " + ", ".join(kw) if kw else "") + ")"
               + ("  # REVIEW: no two rows shared this key in the file" if s.unique else ""))
    out.append("")
    return out


def _model_lines(sources: list[InferredSource], entity: str | None) -> list[str]:
    """A first daily model: a non-negative number of a dated file of the entity."""
    if entity is None:
        return []
    found = []
    for s in sources:
        if s.time is None or s.column(s.time).dtype != "date" or \
                entity not in [c.name for c in s.columns] or s.unique != (entity, s.time):
            continue
        for c in s.columns:
            if c.dtype in ("int", "float") and c.min == 0:
                found.append((bool(_TARGET_HINT.search(c.name)), s.rows, s.name, c.name))
    if found:
        _, _, src, target = max(found, key=lambda f: (f[0], f[1]))
        return [
            "first_model = Model(  # REVIEW: a first guess to start from",
            f"    name={f'{target}_1d'!r}, entity={_var(entity)}, label_source={src!r}, "
            f"target={target!r},",
            '    horizon="1d",',
            f'    features=(lag({src!r}, {target!r}, "1d"), lag({src!r}, {target!r}, "7d"),',
            f'              window({src!r}, {target!r}, "28d", lag="1d"), '
            'calendar("day_of_week")),',
            '    baselines=(Baseline("seasonal_naive", "seasonal_naive", season=7),),',
            '    evaluation=Backtest(folds=3, step="14d"),',
            ")", ""]
    return []
