"""Checking a project: every problem in its declarations, as sentences, at once.

Past the usual size: the checks of a slate (ranking), of censored targets and of the
deadline and staleness options arrived together from separate lines of work; they are to
move to ``checks_models.py`` beside this module once those lines settle, so that the
split follows what changes together rather than cutting through code still in flux.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tuesday.errors import TuesdayError
from tuesday.project import rules
from tuesday.project.features import (
    CALENDAR_PARTS,
    FEATURE_DTYPES,
    FEATURE_KINDS,
    HOLIDAY_PARTS,
    WINDOW_AGGS,
    Feature,
)
from tuesday.project.models import (
    BASELINE_KINDS,
    BINARY_METRICS,
    CENSORED_ACTIONS,
    DERIVED_SLICES,
    GATE_KINDS,
    LEARNERS,
    OPE_ESTIMATORS,
    RANKING_BASELINES,
    RANKING_METRICS,
    REGRESSION_METRICS,
    SERIES_BASELINES,
    TASKS,
    Backtest,
    Baseline,
    Censored,
    CrossValidation,
    Gate,
    Learner,
    Metric,
    Model,
    Project,
    Slate,
)
from tuesday.project.policy import check_policy
from tuesday.project.row_checks import (
    ROW_CHECKS,
    Condition,
    Gaps,
    References,
    Repair,
    Spike,
    check_name,
)
from tuesday.project.sources import (
    DTYPES,
    Column,
    Contract,
    Derive,
    Entity,
    Freshness,
    MinHistory,
    Source,
    Taxonomy,
    Volume,
)
from tuesday.project.times import parse_time, timedelta_of
from tuesday.project.watching import check_watch

#: what a model may do with a row whose online features are missing
MISSING_FEATURES = ("refuse", "flag")


def check_project(project: Project) -> list[str]:
    """Every problem in the declarations, as sentences (empty if none)."""
    out: list[str] = []
    out.extend(_tuple_of(f"Project {project.name!r}: sources", project.sources, Source))
    out.extend(_tuple_of(f"Project {project.name!r}: models", project.models, Model))
    if out:
        return out
    names = [s.name for s in project.sources]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"Source {dup!r} is declared more than once.")
    models = [m.name for m in project.models]
    for dup in sorted({n for n in models if models.count(n) > 1}):
        out.append(f"Model {dup!r} is declared more than once.")
    out.extend(_name_problems("Source", [s.name for s in project.sources]))
    out.extend(_name_problems("Model", models))
    for s in project.sources:
        out.extend(_check_source(s))
    out.extend(_check_derived(project))
    for m in project.models:
        out.extend(_check_model(project, m))
    return out


#: a source or model name: it names a table folder and files, so a plain identifier
PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _name_problems(kind: str, names: list[Any]) -> list[str]:
    """Names that are not plain identifiers (they become folder and file names)."""
    return [f"{kind} name {n!r} must be a plain identifier: letters, digits, '_' and '-', "
            f"starting with a letter; rename it (for example {_plain_example(n)!r})."
            for n in names if not isinstance(n, str) or not PLAIN_NAME.fullmatch(n)]


def _plain_example(name: Any) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)).strip("_-")
    cleaned = re.sub(r"^[^A-Za-z]+", "", cleaned)
    return cleaned or "my_name"


def _tuple_of(what: str, value: Any, kind: type | tuple[type, ...]) -> list[str]:
    """Problems if ``value`` is not a tuple/list of ``kind``."""
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    if not isinstance(value, tuple | list):
        return [f"{what} must be a tuple of {names}; got {type(value).__name__} {value!r}."]
    return [f"{what} must hold only {names}; item {i} is {type(v).__name__} {v!r}."
            for i, v in enumerate(value) if not isinstance(v, kind)]


def _model_type_problems(m: Model) -> list[str]:
    """The parts of a model that are not the declaration classes or types they must be."""
    where = f"Model {m.name!r}"
    out = []
    if not isinstance(m.entity, Entity):
        out.append(f"{where}: entity must be an Entity; got {type(m.entity).__name__} "
                   f"{m.entity!r}.")
    out.extend(_tuple_of(f"{where}: features", m.features, Feature))
    out.extend(_tuple_of(f"{where}: baselines", m.baselines, Baseline))
    out.extend(_tuple_of(f"{where}: gates", m.gates, Gate))
    out.extend(_tuple_of(f"{where}: metrics", m.metrics, (str, Metric)))
    out.extend(_tuple_of(f"{where}: slices", m.slices, str))
    if not isinstance(m.learner, Learner):
        out.append(f"{where}: learner must be a Learner; got {type(m.learner).__name__}.")
    if not isinstance(m.evaluation, Backtest | CrossValidation):
        out.append(f"{where}: evaluation must be Backtest(...) or CrossValidation(...); got "
                   f"{type(m.evaluation).__name__} {m.evaluation!r}.")
    elif not isinstance(m.evaluation.folds, int) or isinstance(m.evaluation.folds, bool):
        out.append(f"{where}: evaluation folds must be a whole number; got "
                   f"{m.evaluation.folds!r}.")
    if not isinstance(m.where, Mapping):
        out.append(f"{where}: where must be a dict like {{'station': ('Clark_Lake',)}}; got "
                   f"{m.where!r}.")
    else:
        for col, values in m.where.items():
            if not isinstance(values, tuple | list):
                out.append(f"{where}: where[{col!r}] must be a tuple of values; got "
                           f"{values!r}.")
    if not isinstance(m.seed, int) or isinstance(m.seed, bool):
        out.append(f"{where}: seed must be a whole number; got {m.seed!r}.")
    out.extend(rules.check(m.rules, where))
    if m.policy is not None:
        out.extend(check_policy(m.policy, where))
    if m.watch is not None:
        out.extend(check_watch(m.watch, where, m.feature_names))
    return out


def _check_source(s: Source) -> list[str]:
    out = _source_type_problems(s)
    if out:
        return out
    out.extend(_check_columns(s))
    out.extend(_check_key_columns(s))
    out.extend(_check_file_columns(s))
    out.extend(_check_batch_checks(s))
    out.extend(_check_row_checks(s))
    for t in _taxonomies(s):
        out.extend(_check_taxonomy(s, t))
    return out


def _check_row_checks(s: Source) -> list[str]:
    """The contract's checks across rows: known kinds and actions, declared columns,
    a time column where one is needed, unique names."""
    checks = s.contract.checks
    out = _tuple_of(f"Source {s.name!r}: contract checks", checks, ROW_CHECKS)
    if out:
        return out
    cols = s.contract.names
    names = [check_name(c) for c in checks]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"Source {s.name!r} has several checks named {dup!r}; give each "
                   "name=... of its own.")
    for f in s.contract.flag_columns:
        if f in cols:
            out.append(f"Source {s.name!r}: the flag column {f!r} of a check is also a "
                       "declared column; rename the check or the column.")
    for c in checks:
        where = f"The {c.kind} check {check_name(c)!r} of source {s.name!r}"
        if c.action not in c.actions:
            out.append(f"{where} has action {c.action!r}; expected one of "
                       f"{', '.join(map(repr, c.actions))}.")
        used = [*getattr(c, "group", ()), *getattr(c, "series", ())] + [
            v for v in (getattr(c, a, None) for a in ("sequence", "value", "reference",
                                                      "column", "to", "time"))
            if isinstance(v, str)]
        for name in used:
            if name not in cols:
                out.append(f"{where} reads column {name!r}, which is not in the contract "
                           f"(columns: {', '.join(cols)}).")
        if isinstance(c, Spike | Gaps) and not (c.time or s.time):
            out.append(f"{where} looks at a series over time and needs Source(time=...) "
                       "or time=....")
        if isinstance(c, Gaps):
            try:
                timedelta_of(c.every, what=f"every of {where}")
            except TuesdayError as e:
                out.append(e.message)
        if isinstance(c, References) and c.missing not in ("quarantine", "flag"):
            out.append(f"{where} has missing={c.missing!r}; expected 'quarantine' or "
                       "'flag'.")
        if isinstance(c, Repair) and (not isinstance(c.mapping, Mapping) or
                                      not (c.mapping or c.fold)):
            out.append(f"{where} needs mapping={{spelling: canonical}} or fold=True.")
        if isinstance(c, Condition) and (not isinstance(c.where, str) or not c.where.strip()):
            out.append(f"{where} needs where=, a SQL condition such as 'qty < 0'.")
        if isinstance(c, Condition) and not PLAIN_NAME.fullmatch(str(c.name)):
            out.append(f"{where}: its name becomes the column flag_{c.name}; use letters, "
                       "digits and '_'.")
    return out


def _check_derived(project: Project) -> list[str]:
    """Derived sources: declared inputs, one way to compute, a valid lookback, no
    cycle, and ``available_at`` when an input has one."""
    srcs = {s.name: s for s in project.sources}
    out = []
    for s in project.sources:
        d = s.derive
        if d is None:
            continue
        where = f"Derived source {s.name!r}"
        if not isinstance(d, Derive):
            out.append(f"{where}: derive must be Derive(...); got {type(d).__name__}.")
            continue
        if not isinstance(d.inputs, tuple | list) or not d.inputs:
            out.append(f"{where} needs inputs=(...), the sources it reads; got {d.inputs!r}.")
            continue
        for i in d.inputs:
            if i == s.name:
                out.append(f"{where} reads itself; a source cannot be its own input.")
            elif i not in srcs:
                out.append(f"{where} reads {i!r}, which is not declared (sources: "
                           f"{', '.join(srcs)}).")
        if d.sql is None and d.fn is None:
            out.append(f"{where} needs sql= or fn=: a DuckDB query over its inputs or a "
                       "Python function of them.")
        if d.sql is not None and d.fn is not None:
            out.append(f"{where} has both sql= and fn=; keep one.")
        if d.fn is not None and not callable(d.fn):
            out.append(f"{where}: fn must be a function; got {d.fn!r}.")
        if d.frames not in ("pandas", "arrow"):
            out.append(f"{where}: frames must be 'pandas' or 'arrow'; got {d.frames!r}.")
        try:
            if timedelta_of(d.lookback, what=f"lookback of {where}") % timedelta(days=1):
                out.append(f"{where}: lookback must be whole days like '6d'; got "
                           f"{d.lookback!r}.")
        except TuesdayError as e:
            out.append(e.message)
        col = s.contract.column(s.time) if s.time else None
        if col is not None and col.dtype not in ("date", "timestamp"):
            out.append(f"{where}: its time column {s.time!r} must be a date or timestamp; "
                       f"got {col.dtype!r}.")
        timed = [i for i in d.inputs if i in srcs and srcs[i].available_at]
        if timed and not s.available_at:
            out.append(f"{where} reads {', '.join(map(repr, timed))}, whose rows become "
                       "known at their available_at time; declare available_at= (a "
                       "timestamp column of its contract) so its rows are not known "
                       "earlier than the rows they come from.")
        if s.available_at and (c := s.contract.column(s.available_at)) is not None and \
                c.dtype != "timestamp":
            out.append(f"{where}: its available_at column {s.available_at!r} must be a "
                       f"timestamp; got {c.dtype!r}.")
    out.extend(_derived_cycles(project))
    return out


def _derived_cycles(project: Project) -> list[str]:
    inputs = {s.name: tuple(s.derive.inputs) for s in project.sources
              if isinstance(s.derive, Derive) and isinstance(s.derive.inputs, tuple | list)}
    out: list[str] = []
    for start in inputs:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        seen: set[str] = set()
        while stack:
            name, path = stack.pop()
            for i in inputs.get(name, ()):
                if i == start and len(path) > 1:
                    out.append("Derived sources read each other in a circle: "
                               + " -> ".join((*path, i)) + "; break the circle.")
                    stack = []
                    break
                if i not in seen and i != name:
                    seen.add(i)
                    stack.append((i, (*path, i)))
    return sorted(set(out))


def _taxonomies(s: Source) -> Any:
    """The source's taxonomies as declared, one given alone in a tuple; checked by
    :func:`_source_type_problems`, so anything else may come back."""
    return (s.taxonomy,) if isinstance(s.taxonomy, Taxonomy) else s.taxonomy


def _source_type_problems(s: Source) -> list[str]:
    """The parts of a source that are not the declaration classes they must be."""
    if not isinstance(s.contract, Contract):
        return [f"Source {s.name!r}: contract must be a Contract; got "
                f"{type(s.contract).__name__}."]
    c = s.contract
    out = _tuple_of(f"Source {s.name!r}: contract columns", c.columns, Column)
    out.extend(_tuple_of(f"Source {s.name!r}: taxonomy", _taxonomies(s), Taxonomy))
    for what, value, kind in (("freshness", c.freshness, Freshness),
                              ("volume", c.volume, Volume),
                              ("min_history", c.min_history, MinHistory)):
        if value is not None and not isinstance(value, kind):
            out.append(f"Source {s.name!r}: contract {what} must be {kind.__name__}(...) or "
                       f"None; got {type(value).__name__} {value!r}.")
    if not isinstance(c.rename, Mapping):
        out.append(f"Source {s.name!r}: contract rename must be a dict like "
                   f"{{'name_in_file': 'declared_name'}}; got {c.rename!r}.")
    return out


def _check_columns(s: Source) -> list[str]:
    """Each declared column: unique name, known dtype, a valid format, allowed values."""
    out = []
    cols = s.contract.names
    for dup in sorted({n for n in cols if cols.count(n) > 1}):
        out.append(f"Column {dup!r} is declared more than once in source {s.name!r}.")
    for col in s.contract.columns:
        where = f"Column {col.name!r} of source {s.name!r}"
        if col.dtype not in DTYPES:
            out.append(f"{where} has dtype {col.dtype!r}; expected one of {', '.join(DTYPES)}.")
        if col.name.startswith("_quarantine_"):
            out.append(f"{where}: names starting with '_quarantine_' are reserved for "
                       "exported quarantine files; rename the column.")
        if col.format is not None:
            if col.dtype != "str":
                out.append(f"{where} has a format, which only applies to str columns; got "
                           f"dtype {col.dtype!r}. Remove the format or make the column str.")
            try:
                re.compile(str(col.format))
            except re.error as e:
                out.append(f"{where} has format {col.format!r}, which is not a valid "
                           f"regular expression: {e}.")
        if col.allowed is not None and not isinstance(col.allowed, tuple | list):
            out.append(f"{where}: allowed must be a tuple of values; got {col.allowed!r}.")
    return out


def _check_key_columns(s: Source) -> list[str]:
    """The time, available-at, entity key and unique columns are declared columns."""
    out = []
    cols = s.contract.names
    for what, name in (("time", s.time), ("available_at", s.available_at),
                       ("entity key", s.entity.key if s.entity else None)):
        if name and name not in cols:
            out.append(f"The {what} column {name!r} of source {s.name!r} is not in its "
                       f"contract (columns: {', '.join(cols)}).")
    for name in s.contract.unique:
        if name not in cols:
            out.append(f"Unique column {name!r} of source {s.name!r} is not in its contract.")
    return out


def _check_file_columns(s: Source) -> list[str]:
    """How a file's columns meet the contract: extra columns, renames, missing columns."""
    c, out = s.contract, []
    cols = c.names
    policies = ("reject", "warn", "drop", "map")
    if c.extra_columns not in policies:
        out.append(f"extra_columns of source {s.name!r} must be one of "
                   f"{', '.join(map(repr, policies))}; got {c.extra_columns!r}.")
    if c.extra_columns == "map" and not c.rename:
        out.append(f"Source {s.name!r} has extra_columns='map' but no rename mapping; add "
                   "rename={'name_in_file': 'declared_name'}.")
    if c.rename and c.extra_columns != "map":
        out.append(f"Source {s.name!r} declares rename={dict(c.rename)!r}, which is only "
                   f"used with extra_columns='map'; got extra_columns={c.extra_columns!r}.")
    for old, new in c.rename.items():
        if new not in cols:
            out.append(f"rename of source {s.name!r} maps {old!r} to {new!r}, which is not a "
                       f"declared column (columns: {', '.join(cols)}).")
        if old in cols:
            out.append(f"rename of source {s.name!r} maps {old!r}, which is itself a declared "
                       "column; only names that are not declared can be renamed.")
    targets = list(c.rename.values())
    for dup in sorted({t for t in targets if targets.count(t) > 1}):
        out.append(f"rename of source {s.name!r} maps several names to {dup!r}.")
    if c.missing_columns not in ("fill", "reject"):
        out.append(f"missing_columns of source {s.name!r} must be 'fill' or 'reject'; got "
                   f"{c.missing_columns!r}.")
    return out


def _check_batch_checks(s: Source) -> list[str]:
    c, out = s.contract, []
    for what, check in (("freshness", c.freshness), ("volume", c.volume)):
        if check is not None and check.on_fail not in ("warn", "reject"):
            out.append(f"The {what} check of source {s.name!r} has on_fail="
                       f"{check.on_fail!r}; expected 'warn' or 'reject'.")
    if c.freshness is not None:
        try:
            timedelta_of(c.freshness.within, what=f"freshness 'within' of source {s.name!r}")
        except TuesdayError as e:
            out.append(str(e))
        name = c.freshness.column or s.time
        col = c.column(name) if name else None
        if col is None:
            out.append(f"The freshness check of source {s.name!r} needs a time column: "
                       f"declare Source(time=...) or Freshness(column=...); got {name!r}.")
        elif col.dtype not in ("date", "timestamp"):
            out.append(f"The freshness column {name!r} of source {s.name!r} must be a date or "
                       f"timestamp column; got dtype {col.dtype!r}.")
    if c.volume is not None:
        v = c.volume
        if not (isinstance(v.min_ratio, int | float) and isinstance(v.max_ratio, int | float)
                and 0 <= v.min_ratio <= 1 <= v.max_ratio):
            out.append(f"The volume check of source {s.name!r} needs 0 <= min_ratio <= 1 <= "
                       f"max_ratio; got min_ratio={v.min_ratio!r}, max_ratio={v.max_ratio!r}.")
        if not isinstance(v.history, int) or isinstance(v.history, bool) or v.history < 1:
            out.append(f"The volume check of source {s.name!r} needs history >= 1 ingests; "
                       f"got {v.history!r}.")
    if c.min_history is not None:
        h = c.min_history
        entity = h.entity or (s.entity.key if s.entity else None)
        if entity is None or entity not in c.names:
            out.append(f"The min_history check of source {s.name!r} needs an entity column "
                       f"of the contract: MinHistory(entity=...) or Source(entity=...); got "
                       f"{entity!r}.")
        if s.time is None:
            out.append(f"The min_history check of source {s.name!r} counts event times and "
                       "needs Source(time=...).")
        for what, n in (("periods", h.periods), ("examples", h.examples)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                out.append(f"The min_history check of source {s.name!r} needs {what} >= 1; "
                           f"got {n!r}.")
    return out


def _check_taxonomy(s: Source, t: Taxonomy) -> list[str]:
    where = f"Taxonomy on column {t.column!r} of source {s.name!r}"
    col = s.contract.column(t.column)
    if col is None:
        return [f"{where}: the column is not in the contract (columns: "
                f"{', '.join(s.contract.names)})."]
    if col.dtype not in ("str", "int"):
        return [f"{where}: codes must be a str or int column; got dtype {col.dtype!r}."]
    if not isinstance(t.mapping, Mapping) or not t.mapping:
        return [f"{where}: mapping must be a non-empty dict {{old_code: new_code}}; got "
                f"{t.mapping!r}."]
    out = []
    kind: type | tuple[type, ...] = str if col.dtype == "str" else int
    wrong = [v for v in (*t.mapping, *t.mapping.values())
             if not isinstance(v, kind) or isinstance(v, bool)]
    if wrong:
        out.append(f"{where}: codes must be {col.dtype} like the column; got "
                   f"{', '.join(map(repr, wrong[:5]))}.")
    both = sorted(str(k) for k in set(t.mapping) & set(t.mapping.values()))
    if both:
        out.append(f"{where}: {', '.join(both)} are both old and new codes; map every old "
                   "code straight to its final code, or declare one Taxonomy per regrouping.")
    if t.effective is not None:
        try:
            parse_time(t.effective, what=f"{where}: effective")
        except TuesdayError as e:
            out.append(e.message)
        if s.time is None:
            out.append(f"{where}: an effective date needs Source(time=...) to date the rows.")
    return out


def _check_model(project: Project, m: Model) -> list[str]:
    out: list[str] = _model_type_problems(m)
    if out:
        return out
    where = f"Model {m.name!r}"
    srcs = {s.name: s for s in project.sources}
    try:
        horizon = timedelta_of(m.horizon, what=f"horizon of model {m.name!r}")
    except TuesdayError as e:
        out.append(str(e))
        horizon = timedelta(0)
    label = srcs.get(m.label_source)
    out.extend(_check_task_and_learner(where, m))
    if m.missing_features not in MISSING_FEATURES:
        out.append(f"{where}: missing_features must be one of {', '.join(MISSING_FEATURES)}; "
                   f"got {m.missing_features!r}.")
    if m.max_staleness is not None:
        try:
            age = timedelta_of(m.max_staleness, what=f"max_staleness of model {m.name!r}")
            if age <= timedelta(0):
                out.append(f"{where}: max_staleness must be a positive duration such as "
                           f"'2d'; got {m.max_staleness!r}.")
        except TuesdayError as e:
            out.append(str(e))
    d = m.deadline_ms
    if d is not None and (isinstance(d, bool) or not isinstance(d, int | float)
                          or not math.isfinite(d) or d <= 0):
        out.append(f"{where}: deadline_ms must be a positive number of milliseconds "
                   f"(e.g. 50) or None; got {d!r}.")
    out.extend(_check_label_source(where, m, label, horizon))
    out.extend(_check_baselines(where, m, srcs))
    out.extend(_check_metrics(where, m))
    out.extend(_check_features(where, m, srcs, horizon))
    out.extend(_check_slices(where, m, label))
    out.extend(_check_gates(where, m))
    out.extend(_check_window_and_evaluation(where, m))
    out.extend(_check_censored(where, m, srcs))
    out.extend(_check_slate(where, m, label, srcs))
    return out


def _check_censored(where: str, m: Model, srcs: Mapping[str, Source]) -> list[str]:
    c = m.censored
    if c is None:
        return []
    if not isinstance(c, Censored):
        return [f"{where}: censored must be Censored(...); got {type(c).__name__}."]
    out = []
    name = c.source or m.label_source
    src = srcs.get(name)
    if c.action not in CENSORED_ACTIONS:
        out.append(f"{where}: censored action must be one of "
                   f"{', '.join(map(repr, CENSORED_ACTIONS))}; got {c.action!r}.")
    if src is None:
        return [*out, f"{where}: censored reads source {name!r}, which is not declared."]
    cols = (*src.contract.names, *src.contract.flag_columns)
    if c.column not in cols:
        out.append(f"{where}: censored reads column {c.column!r}, which is not in source "
                   f"{name!r} (columns: {', '.join(cols)}).")
    col = src.contract.column(c.column)
    if col is not None and col.dtype not in ("float", "int", "bool"):
        out.append(f"{where}: censored column {c.column!r} must be a number or a bool; got "
                   f"{col.dtype!r}.")
    if name != m.label_source:
        if src.entity is None or src.entity.key != m.entity.key:
            out.append(f"{where}: censored source {name!r} must carry the entity key "
                       f"{m.entity.key!r}.")
        if src.time is None:
            out.append(f"{where}: censored source {name!r} needs a time column to match "
                       "each label row's time.")
    return out


#: a ranking metric name: the metric and its cut-off (``ndcg_at_10``)
_RANKING_METRIC = re.compile(r"(ndcg|map|recall|hit_rate|coverage|gini)_at_([1-9]\d*)")


def _check_slate(where: str, m: Model, label: Source | None,
                 srcs: Mapping[str, Source]) -> list[str]:
    """A ranking model's slate: its request group, catalog and feedback sources; slate
    rules and ranking baselines only on a ranking model."""
    out = []
    slate_rules = [r.name for r in m.rules if isinstance(r, rules.Rule)
                   and r.kind in rules.SLATE_KINDS]
    if m.task != "ranking":
        if m.slate is not None:
            out.append(f"{where}: slate= is for task='ranking' models; got task {m.task!r}.")
        if slate_rules:
            out.append(f"{where}: rules {', '.join(map(repr, slate_rules))} shape a slate and "
                       "need task='ranking'.")
        return out
    if not isinstance(m.slate, Slate):
        return [f"{where}: a ranking model needs slate=Slate(...) (size, group, candidates, "
                f"feedback); got {m.slate!r}."]
    sl = m.slate
    if not isinstance(sl.size, int) or isinstance(sl.size, bool) or sl.size < 1:
        out.append(f"{where}: slate size must be a whole number >= 1; got {sl.size!r}.")
    label_cols = label.contract.names if label else ()
    if sl.group is not None and sl.group not in label_cols:
        out.append(f"{where}: slate group {sl.group!r} is not a column of label source "
                   f"{m.label_source!r} (columns: {', '.join(label_cols)}).")
    if sl.group is None:
        needs = [str(met) for met in m.metrics if isinstance(met, str)
                 and _RANKING_METRIC.fullmatch(met)]
        if needs:
            out.append(f"{where}: metrics {', '.join(needs)} rank the candidates of a "
                       "request and need Slate(group=COLUMN) naming the request of each "
                       "label row.")
        if str(m.learner.params.get("objective", "")).startswith(("lambdarank", "rank_xendcg")):
            out.append(f"{where}: the {m.learner.params['objective']} objective needs "
                       "Slate(group=COLUMN) naming the request of each label row.")
    out.extend(_check_slate_sources(where, m, sl, srcs))
    return out


def _check_slate_sources(where: str, m: Model, sl: Slate,
                         srcs: Mapping[str, Source]) -> list[str]:
    out = []
    if sl.candidates is not None:
        cand = srcs.get(sl.candidates)
        if cand is None:
            out.append(f"{where}: slate candidates source {sl.candidates!r} is not declared.")
        elif cand.entity is None or cand.entity.key != m.entity.key:
            out.append(f"{where}: slate candidates source {sl.candidates!r} must be keyed by "
                       f"the model's entity key {m.entity.key!r}.")
    if sl.feedback is not None:
        fb = srcs.get(sl.feedback)
        if fb is None:
            out.append(f"{where}: slate feedback source {sl.feedback!r} is not declared.")
        else:
            missing = [c for c in ("request_id", m.entity.key, "position", sl.reward)
                       if c not in fb.contract.names]
            if missing:
                out.append(f"{where}: slate feedback source {sl.feedback!r} needs the "
                           f"columns request_id, {m.entity.key}, position and {sl.reward}; "
                           f"missing {', '.join(missing)}.")
    return out


def _check_task_and_learner(where: str, m: Model) -> list[str]:
    out = []
    if m.task not in TASKS:
        out.append(f"{where}: task must be one of {', '.join(TASKS)}; got {m.task!r}.")
    if m.learner.kind not in LEARNERS:
        out.append(f"{where}: learner must be one of {', '.join(LEARNERS)}; "
                   f"got {m.learner.kind!r}.")
    if m.learner.kind == "sklearn" and not hasattr(m.learner.estimator, "fit"):
        out.append(f"{where}: Learner('sklearn') needs estimator=, a scikit-learn estimator; "
                   f"got {m.learner.estimator!r}.")
    return out


def _check_label_source(where: str, m: Model, label: Source | None,
                        horizon: timedelta) -> list[str]:
    """The label source is declared and carries the target, the entity key, the `where`
    columns, and a time column when the model forecasts or is backtested."""
    if label is None:
        return [f"{where}: label source {m.label_source!r} is not declared."]
    out = []
    if m.target not in label.contract.names:
        out.append(f"{where}: target {m.target!r} is not a column of source "
                   f"{m.label_source!r} (columns: {', '.join(label.contract.names)}).")
    if label.entity is None or label.entity.key != m.entity.key:
        out.append(f"{where}: label source {m.label_source!r} must carry the entity key "
                   f"{m.entity.key!r}.")
    for col in m.where:
        if col not in label.contract.names:
            out.append(f"{where}: `where` column {col!r} is not in source "
                       f"{m.label_source!r}.")
    if horizon > timedelta(0) and label.time is None:
        out.append(f"{where}: a horizon needs a label source with a time column.")
    if isinstance(m.evaluation, Backtest) and label.time is None:
        out.append(f"{where}: a Backtest needs a label source with a time column; "
                   "use CrossValidation for timeless data.")
    return out


def _check_popular(where: str, m: Model, b: Baseline, srcs: Mapping[str, Source]
                   ) -> list[str]:
    """A popular baseline reads a window of a source keyed by the model's entity."""
    out = []
    if isinstance(b.window, bool) or not isinstance(b.window, int) or b.window < 1:
        out.append(f"{where}: popular baseline {b.name!r} needs window= days >= 1; got "
                   f"{b.window!r}.")
    if b.agg not in ("sum", "count"):
        out.append(f"{where}: popular baseline {b.name!r} agg must be 'sum' or 'count'; got "
                   f"{b.agg!r}.")
    try:
        timedelta_of(b.lag, what=f"lag of baseline {b.name!r}")
    except TuesdayError as e:
        out.append(f"{where}: {e.message}")
    name = b.source or m.label_source
    src = srcs.get(name)
    if src is None:
        return [*out, f"{where}: popular baseline {b.name!r} reads source {name!r}, which "
                      "is not declared."]
    col = b.column or m.target
    if col not in src.contract.names:
        out.append(f"{where}: popular baseline {b.name!r} reads column {col!r}, which is not "
                   f"in source {name!r}.")
    if src.time is None or src.entity is None or src.entity.key != m.entity.key:
        out.append(f"{where}: popular baseline {b.name!r} needs source {name!r} to have a "
                   f"time column and the model's entity key {m.entity.key!r}.")
    return out


def _check_baselines(where: str, m: Model, srcs: Mapping[str, Source]) -> list[str]:
    out = []
    if not m.baselines:
        out.append(f"{where} declares no baseline; every model needs at least one "
                   "(e.g. Baseline('seasonal_naive', 'seasonal_naive')).")
    for b in m.baselines:
        if b.kind not in BASELINE_KINDS:
            out.append(f"{where}: baseline {b.name!r} has kind {b.kind!r}; expected one of "
                       f"{', '.join(BASELINE_KINDS)}.")
        if b.kind == "rule" and b.fn is None:
            out.append(f"{where}: rule baseline {b.name!r} needs fn=.")
        if b.kind in SERIES_BASELINES and m.task != "regression":
            out.append(f"{where}: baseline {b.name!r} ({b.kind}) needs a regression task.")
        if b.kind in RANKING_BASELINES and m.task != "ranking":
            out.append(f"{where}: baseline {b.name!r} ({b.kind}) ranks items and needs "
                       "task='ranking'.")
        if b.kind == "popular":
            out.extend(_check_popular(where, m, b, srcs))
    return out


def _check_metrics(where: str, m: Model) -> list[str]:
    out = []
    allowed_metrics = {"regression": REGRESSION_METRICS, "ranking": RANKING_METRICS}.get(
        m.task, BINARY_METRICS)
    for met in m.metrics:
        if isinstance(met, Metric):
            if not callable(met.fn):
                out.append(f"{where}: metric {met.name!r} needs fn=, a function "
                           "(actual, predicted) -> float.")
            continue
        if m.task == "binary" and re.fullmatch(r"precision_at_\d+", str(met)):
            continue
        if m.task == "ranking" and _RANKING_METRIC.fullmatch(str(met)):
            continue
        if met not in allowed_metrics:
            out.append(f"{where}: metric {met!r} is not known for task {m.task!r}; "
                       f"expected one of {', '.join(allowed_metrics)}.")
    if not m.metrics:
        out.append(f"{where} declares no metric.")
    return out


def _check_features(where: str, m: Model, srcs: Mapping[str, Source],
                    horizon: timedelta) -> list[str]:
    out = []
    names = [f.name for f in m.features]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"{where}: feature name {dup!r} is used twice.")
    for f in m.features:
        out.extend(_check_feature(where, f, srcs, horizon, m))
    return out


def _check_slices(where: str, m: Model, label: Source | None) -> list[str]:
    features = m.feature_names
    label_cols = label.contract.names if label else ()
    return [f"{where}: slice {s!r} is neither a feature nor a column of "
            f"{m.label_source!r}." for s in m.slices
            if s not in features and s not in label_cols and s not in DERIVED_SLICES]


def _check_gates(where: str, m: Model) -> list[str]:
    out = []
    for g in m.gates:
        if g.kind not in GATE_KINDS:
            out.append(f"{where}: gate kind {g.kind!r} is unknown; expected one of "
                       f"{', '.join(GATE_KINDS)}.")
        if g.kind == "ope":
            out.extend(_check_ope_gate(where, m, g))
        if g.kind == "beats_production" and m.task == "ranking":
            out.append(f"{where}: the beats_production gate compares served predictions "
                       "row by row; a ranking model compares policies with Gate('ope').")
        for attr in ("min_lift", "tolerance", "max_ms", "max_mb"):
            v = getattr(g, attr)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or v < 0 or (attr in ("max_ms", "max_mb") and v == 0):
                out.append(f"{where}: gate {g.kind!r} {attr} must be a "
                           f"{'positive' if attr.startswith('max') else 'non-negative'} "
                           f"number; got {v!r}.")
    return out


def _check_ope_gate(where: str, m: Model, g: Gate) -> list[str]:
    out = []
    if m.task != "ranking":
        out.append(f"{where}: the ope gate estimates a ranking policy's click rate and needs "
                   f"task='ranking'; got task {m.task!r}.")
    elif m.slate is not None and m.slate.feedback is None:
        out.append(f"{where}: the ope gate reads the clicks posted back; declare "
                   "Slate(feedback=SOURCE).")
    if g.estimator not in OPE_ESTIMATORS:
        out.append(f"{where}: gate 'ope' estimator must be one of {', '.join(OPE_ESTIMATORS)}; "
                   f"got {g.estimator!r}.")
    if isinstance(g.confidence, bool) or not isinstance(g.confidence, int | float) \
            or not 0 < g.confidence < 1:
        out.append(f"{where}: gate 'ope' confidence must be within (0, 1), e.g. 0.95; got "
                   f"{g.confidence!r}.")
    if isinstance(g.min_rows, bool) or not isinstance(g.min_rows, int) or g.min_rows < 1:
        out.append(f"{where}: gate 'ope' min_rows must be a whole number >= 1; got "
                   f"{g.min_rows!r}.")
    return out


def _check_window_and_evaluation(where: str, m: Model) -> list[str]:
    """The training window, the backtest step and the number of folds."""
    out = []
    if m.window is not None:
        try:
            if timedelta_of(m.window, what=f"window of model {m.name!r}") <= timedelta(0):
                raise TuesdayError(f"The 'window' of model {m.name!r} must be positive.")
        except TuesdayError as e:
            out.append(str(e))
    if isinstance(m.evaluation, Backtest):
        try:
            timedelta_of(m.evaluation.step, what=f"backtest step of model {m.name!r}")
        except TuesdayError as e:
            out.append(str(e))
    if m.evaluation.folds < 2 and isinstance(m.evaluation, CrossValidation):
        out.append(f"{where}: CrossValidation needs at least 2 folds.")
    if m.evaluation.folds < 1:
        out.append(f"{where}: evaluation needs at least 1 fold.")
    return out


def _check_feature(where: str, f: Feature, srcs: Mapping[str, Source],
                   horizon: timedelta, m: Model) -> list[str]:
    out: list[str] = []
    label = f"{where}: feature {f.name!r}"
    if f.kind not in FEATURE_KINDS:
        return [f"{label} has kind {f.kind!r}; expected one of {', '.join(FEATURE_KINDS)}."]
    if f.kind in ("lag", "window", "lookup", "scheduled"):
        src = srcs.get(f.source or "")
        if src is None:
            return [f"{label} reads source {f.source!r}, which is not declared."]
        out.extend(_check_source_feature(label, f, src, horizon, m))
    if f.kind == "calendar" and f.part not in CALENDAR_PARTS:
        out.append(f"{label} has part {f.part!r}; expected one of {', '.join(CALENDAR_PARTS)}.")
    if f.kind == "holiday":
        out.extend(_check_holiday_feature(label, f))
        if f.region is not None:
            out.extend(_check_region(label, f, srcs, m))
    if f.dtype not in FEATURE_DTYPES and f.kind != "request":
        out.append(f"{label} has dtype {f.dtype!r}; expected one of "
                   f"{', '.join(FEATURE_DTYPES)}.")
    if f.dtype == "category" and m.learner.kind != "lightgbm":
        out.append(f"{label} is a category, which only the lightgbm learner takes as "
                   f"such; model {m.name!r} uses {m.learner.kind!r}.")
    if f.default is not None and (not isinstance(f.default, int | float)
                                  or math.isnan(float(f.default))):
        out.append(f"{label} has default {f.default!r}; expected a number.")
    return out


def _check_source_feature(label: str, f: Feature, src: Source, horizon: timedelta,
                          m: Model) -> list[str]:
    """A feature read from a source (lag, window, lookup, scheduled): a numeric column of
    it, the model's entity key, a time column, and no value not yet known at forecast
    time."""
    out = []
    if f.column is None and f.kind == "window" and f.agg == "time_since_last":
        pass  # the time of any row of the source
    elif f.column not in src.contract.names:
        out.append(f"{label} reads column {f.column!r}, which is not in source "
                   f"{src.name!r} (columns: {', '.join(src.contract.names)}).")
    if src.entity is not None and src.entity.key != m.entity.key:
        out.append(f"{label} reads source {src.name!r} keyed by {src.entity.key!r}, "
                   f"but the model's entity key is {m.entity.key!r}.")
    col = src.contract.column(f.column or "")
    if col is not None and f.dtype == "category" and f.kind not in ("lookup", "scheduled"):
        out.append(f"{label} is a category; only lookup and scheduled features can be "
                   "(a lag or window of text has no meaning).")
    elif col is not None and col.dtype not in ("float", "int", "bool") and \
            f.dtype != "category":
        out.append(f"{label} reads column {f.column!r} of type {col.dtype}; features "
                   "must be numbers (float, int or bool), or categories: declare "
                   f"dtype='category' to take {f.column!r} as one.")
    if f.kind in ("lag", "window", "scheduled") and src.time is None:
        out.append(f"{label} ({f.kind}) needs a source with a time column.")
    if f.kind in ("lag", "window"):
        out.extend(_check_lag(label, f, horizon, m))
    if f.kind == "window" and f.agg not in WINDOW_AGGS:
        out.append(f"{label} has agg {f.agg!r}; expected one of {', '.join(WINDOW_AGGS)}.")
    return out


def _check_lag(label: str, f: Feature, horizon: timedelta, m: Model) -> list[str]:
    """A lag or window feature: valid durations, and a lag of at least the horizon."""
    out = []
    try:
        gap = timedelta_of(f.lag, what=f"lag of feature {f.name!r}")
        if f.kind == "window" and timedelta_of(
                f.window, what=f"window of feature {f.name!r}") <= timedelta(0):
            out.append(f"{label} has an empty window {f.window!r}.")
    except TuesdayError as e:
        out.append(f"{label}: {e.message}")
        gap = horizon
    if gap < horizon:
        out.append(
            f"{label} uses the value {f.lag} before the target, but the model "
            f"forecasts {m.horizon} ahead, so that value is not known when the "
            f"forecast is made. Use a lag of at least {m.horizon}."
        )
    return out


def _check_region(label: str, f: Feature, srcs: Mapping[str, Source], m: Model) -> list[str]:
    if not (isinstance(f.region, tuple | list) and len(f.region) == 2):
        return [f"{label}: region must be (source, column), e.g. ('stores', 'state'); got "
                f"{f.region!r}."]
    src = srcs.get(f.region[0])
    if src is None:
        return [f"{label} reads regions from source {f.region[0]!r}, which is not declared."]
    out = []
    if f.region[1] not in src.contract.names:
        out.append(f"{label} reads regions from column {f.region[1]!r}, which is not in "
                   f"source {src.name!r} (columns: {', '.join(src.contract.names)}).")
    if src.entity is None or src.entity.key != m.entity.key:
        out.append(f"{label}: region source {src.name!r} must carry the entity key "
                   f"{m.entity.key!r}.")
    return out


def _check_holiday_feature(label: str, f: Feature) -> list[str]:
    # holidays is loaded here, lazily: importing it takes about 0.2 s, and this module
    # is imported by every command (``tuesday --help`` too)
    import holidays

    out = []
    if f.part not in HOLIDAY_PARTS:
        out.append(f"{label} has part {f.part!r}; expected one of "
                   f"{', '.join(HOLIDAY_PARTS)}.")
    country, _, subdiv = str(f.country).partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported:
        out.append(f"{label} has country {f.country!r}, which the holidays package "
                   "does not know; use an ISO code such as 'US'.")
    elif subdiv and subdiv not in supported[country]:
        out.append(f"{label} has subdivision {subdiv!r} of {country!r}, which the holidays "
                   f"package does not know; it knows {', '.join(supported[country][:12])}"
                   + ("..." if len(supported[country]) > 12 else "") + ".")
    return out
