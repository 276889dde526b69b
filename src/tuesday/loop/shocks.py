"""Shocks: changes applied to a project's history before it is replayed, to rehearse
what the loop does when the world changes.

``scale=0.6 from 2015-03-01`` multiplies the target by 0.6 from that day;
``stuck:weather.temp=50 from 2015-06-01`` sets a column to a constant (a stuck sensor);
``rename:ridership.station=Clark_Lake>Clark_Lake_Loop from 2015-06-01`` changes an
entity's code (a taxonomy change); ``ramp:prices.price=1.1 from 2015-06-05 until
2015-06-19`` raises a column step by step to 1.1 times its value by the end day and
keeps it there (costs passed on to prices). ``until DAY`` ends a shock (a ramp's climb).

Example:
    >>> Shock.parse("scale=0.6 from 2015-03-01").describe()
    'scale the target by 0.6 from 2015-03-01'
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tuesday.errors import TuesdayError
from tuesday.project import Model, Project, Source, parse_time

SHOCK_KINDS = ("scale", "stuck", "rename", "ramp")
_SHOCK = re.compile(
    r"^\s*(?P<kind>[a-z]+)(?::(?P<source>[\w-]+)\.(?P<column>\w+))?\s*=\s*(?P<value>\S+)"
    r"\s+from\s+(?P<start>\S+)(?:\s+(?:until|to)\s+(?P<end>\S+))?\s*$")


@dataclass(frozen=True)
class Shock:
    """A change applied to the history before it is replayed.

    Attributes:
        kind: ``scale`` (multiply a numeric column), ``stuck`` (set it to a constant),
            ``rename`` (an entity code changes: ``value`` is ``'OLD>NEW'``) or ``ramp``
            (multiply by a factor growing day by day from 1 at ``start`` to ``value`` at
            ``end``, and ``value`` after it).
        value: The factor, the constant, or ``'OLD>NEW'``.
        start: First day affected (by the source's time column).
        end: First day no longer affected (None: to the end).
        source: The source changed (default: the model's label source).
        column: The column changed (default: the target; for ``rename`` the entity key).

    Example:
        >>> Shock.parse("stuck:weather.temp=50 from 2015-06-01 until 2015-07-01").column
        'temp'
    """

    kind: str
    value: float | str
    start: str
    end: str | None = None
    source: str | None = None
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> Shock:
        """Parse ``KIND[:SOURCE.COLUMN]=VALUE from DAY [until DAY]``."""
        m = _SHOCK.match(text)
        if m is None or m["kind"] not in SHOCK_KINDS:
            raise TuesdayError(
                f"A shock must look like 'scale=0.6 from 2015-03-01', "
                f"'stuck:weather.temp=50 from 2015-06-01 until 2015-07-01' or "
                f"'rename:ridership.station=OLD>NEW from 2015-06-01' (kinds: "
                f"{', '.join(SHOCK_KINDS)}). Got {text!r}.",
                fix="Write the shock as KIND[:SOURCE.COLUMN]=VALUE from DAY [until DAY].")
        value: float | str = m["value"]
        if m["kind"] == "ramp" and m["end"] is None:
            raise TuesdayError(f"A ramp shock needs the day its climb ends: 'ramp:SOURCE."
                               f"COLUMN=1.1 from DAY until DAY'. Got {text!r}.",
                               fix="Add 'until DAY'.")
        if m["kind"] in ("scale", "stuck", "ramp"):
            try:
                value = float(m["value"])
            except ValueError:
                raise TuesdayError(f"The value of a {m['kind']} shock must be a number. "
                                   f"Got {m['value']!r} in {text!r}.",
                                   fix="Write e.g. 'scale=0.6 from 2015-03-01'.") from None
        elif ">" not in str(value):
            raise TuesdayError(f"A rename shock's value must be 'OLD>NEW'. Got {value!r}.",
                               fix="Write e.g. 'rename=Clark_Lake>Clark_Lake_2 from "
                                   "2015-06-01'.")
        for what in ("start", "end"):
            if m[what] is not None:
                parse_time(m[what], what=f"the {what} of shock {text!r}")
        return cls(m["kind"], value, m["start"], m["end"], m["source"], m["column"])

    def resolved(self, project: Project, model: Model) -> Shock:
        """The shock with its source and column filled in and checked."""
        src_name = self.source or model.label_source
        src = project.source(src_name)
        col = self.column or (model.entity.key if self.kind == "rename" else model.target)
        if src.contract.column(col) is None:
            raise TuesdayError(f"Shock {self.describe()!r}: source {src_name!r} has no "
                               f"column {col!r}.",
                               fix=f"Columns: {', '.join(src.contract.names)}.")
        if src.time is None:
            raise TuesdayError(f"Shock {self.describe()!r}: source {src_name!r} has no time "
                               "column, so a shock cannot start on a day.",
                               fix="Shock a source with a time column.")
        return dataclasses.replace(self, source=src_name, column=col)

    def describe(self) -> str:
        """The shock in words, as the timeline shows it."""
        what = f"{self.source}.{self.column}" if self.source and self.column else "the target"
        span = f"from {self.start}" + (f" until {self.end}" if self.end else "")
        if self.kind == "scale":
            return f"scale {what} by {self.value:g} {span}"
        if self.kind == "stuck":
            return f"{what} stuck at {self.value:g} {span}"
        if self.kind == "ramp":
            return f"{what} climbing to {self.value:g}x from {self.start} to {self.end}"
        old, new = str(self.value).split(">", 1)
        return f"rename {old!r} to {new!r} in {what} {span}"

    def apply(self, frame: pd.DataFrame, source: Source) -> pd.DataFrame:
        """The frame with the shock applied (a copy)."""
        assert source.time is not None and self.column is not None
        t = pd.to_datetime(frame[source.time])
        hit = t >= pd.Timestamp(self.start)
        if self.kind == "ramp":
            assert self.end is not None
            start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
            share = ((t - start) / (end - start)).clip(0.0, 1.0)
            factor = 1.0 + share * (float(self.value) - 1.0)
            out = frame.copy()
            out.loc[hit, self.column] = out.loc[hit, self.column] * factor[hit]
            return out
        if self.end is not None:
            hit &= t < pd.Timestamp(self.end)
        out = frame.copy()
        if self.kind == "scale":
            out.loc[hit, self.column] = out.loc[hit, self.column] * float(self.value)
        elif self.kind == "stuck":
            out.loc[hit, self.column] = float(self.value)
        else:
            old, new = str(self.value).split(">", 1)
            out.loc[hit & (out[self.column].astype(str) == old), self.column] = new
        return out

    def to_dict(self) -> dict[str, Any]:
        """The shock's fields and its description (``text``), JSON-ready."""
        return {**dataclasses.asdict(self), "text": self.describe()}
