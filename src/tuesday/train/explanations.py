"""Explanations in plain words: what was predicted, what the simple way would have said,
and the few reasons that moved it most, in the target's own units.

Each feature describes itself: a default phrase generated from its definition (a 14-day
lag of rides reads "rides 14 days earlier (16,020)", a holiday flag "it is a public
holiday", a one-hour event count "5 transactions in the last hour"), or the project's own
``describe=`` (a template with ``{value}``, or a function of the value).

Contributions live in the learner's raw-score space (:mod:`tuesday.train.contributions`).
Under an identity link a reason's shift is its contribution, in the target's units. Under
a log link (Poisson, Tweedie) or a logit link (a classifier) contributions add up in
log or log-odds space, not in units; there a reason's shift is the change in the
prediction if that feature's contribution alone were taken away, the others kept. The
sentence says which.

Example:
    >>> from tuesday.project import lag
    >>> phrase(lag("ridership", "rides", "14d"), 16020.0)
    'rides 14 days earlier (16,020)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tuesday.project import Feature, Model
from tuesday.train.contributions import Contributions, inverse_link

#: a reason whose shift is below this share of the largest one is not in the sentence
NEGLIGIBLE = 0.05
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


@dataclass(frozen=True)
class Reason:
    """One feature's part in a prediction.

    Attributes:
        feature: The feature's name.
        value: Its value in this row (None when missing; a category's name).
        contribution: Its contribution in raw-score space.
        shift: What it moved the prediction by, in the target's units.
        text: The feature described with its value.
    """

    feature: str
    value: float | str | None
    contribution: float
    shift: float
    text: str


@dataclass(frozen=True)
class Explanation:
    """Why one prediction is what it is.

    Attributes:
        prediction: The model's prediction.
        expected: The prediction with no feature information (the model's expected value).
        baseline: The simple baseline's name and forecast, when known.
        reasons: Every feature's part, largest shift first.
        sentence: The plain-language explanation.
        link: ``identity``, ``log`` or ``logit``: how contributions map to the target.
    """

    prediction: float
    expected: float
    baseline: tuple[str, float] | None
    reasons: tuple[Reason, ...]
    sentence: str
    link: str

    def to_dict(self) -> dict[str, Any]:
        return {"prediction": self.prediction, "expected": self.expected,
                "baseline": (None if self.baseline is None else
                             {"name": self.baseline[0], "prediction": self.baseline[1]}),
                "link": self.link, "sentence": self.sentence,
                "contributions": [{"feature": r.feature, "value": r.value,
                                   "contribution": r.contribution, "shift": r.shift,
                                   "text": r.text} for r in self.reasons]}


# -------------------------------------------------------------------------- phrases


def number(v: float | None) -> str:
    """A value as a reader would write it: thousands separated, a few decimals at most."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "missing"
    if float(v).is_integer() or abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.1f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


def _span(d: str) -> str:
    n, unit = int(d[:-1]), {"d": "day", "h": "hour"}[d[-1]]
    return f"{n} {unit}{'s' if n != 1 else ''}"


def _ago(lag: str) -> str:
    return "" if int(lag[:-1]) == 0 else f" ending {_span(lag)} earlier"


def _seconds(v: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if v >= size:
            n = v / size
            return f"{number(round(n, 1))} {unit}{'s' if n != 1 else ''}"
    return f"{number(v)} seconds"


def _window(f: Feature, v: float | None) -> str:
    col = f.column or f.source or f.name
    last = "in the last" if int(f.lag[:-1]) == 0 else "over the"
    span = f"{last} {_span(f.window)}{_ago(f.lag)}"
    if f.agg == "count":
        return f"{number(v)} {f.source} {span}"
    if f.agg == "time_since_last":
        what = f"the last {f.source}" if f.column is None else f"the last {col}"
        return "none " + span.replace("over the", "in the") if v is None or (
            isinstance(v, float) and math.isnan(v)) else f"{_seconds(v)} since {what}"
    word = {"mean": "average", "sum": "total", "min": "lowest", "max": "highest",
            "last": "latest"}[f.agg]
    return f"{word} {col} {span} ({number(v)})"


def _calendar(f: Feature, v: float | None) -> str:
    if v is None or math.isnan(v):
        return f"{f.part} missing"
    if f.part == "day_of_week" and 0 <= v < 7:
        return f"it is a {DAYS[int(v)]}"
    if f.part == "month" and 1 <= v <= 12:
        return f"it is {MONTHS[int(v) - 1]}"
    return f"{(f.part or f.name).replace('_', ' ')} {number(v)}"


def _holiday(f: Feature, v: float | None) -> str:
    if v is None or math.isnan(v):
        return "holiday calendar missing"
    if f.part == "is_holiday":
        return "it is a public holiday" if v >= 0.5 else "it is not a public holiday"
    days = f"{number(v)} day{'' if v == 1 else 's'}"
    if f.part == "days_to_next":
        return f"{days} to the next public holiday"
    return f"{days} since the last public holiday"


def phrase(f: Feature, value: float | str | None) -> str:
    """The feature described with its value, as a reader would say it.

    Example:
        >>> from tuesday.project import holiday, window
        >>> phrase(holiday("US"), 1.0)
        'it is a public holiday'
        >>> phrase(window("transactions", "amount", "1h", lag="0d", agg="count"), 5.0)
        '5 transactions in the last 1 hour'
    """
    if isinstance(value, str):  # a category's name
        if f.describe is not None:
            return str(f.describe(value)) if callable(f.describe) else \
                f.describe.format(value=value)
        return f"{(f.column or f.name).replace('_', ' ')} is {value!r}"
    v = None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else float(value)
    if f.describe is not None:
        if callable(f.describe):
            return str(f.describe(v))
        return f.describe.format(value=number(v) if v is not None else "missing")
    if f.kind == "lag":
        return f"{f.column} {_span(f.lag)} earlier ({number(v)})"
    if f.kind == "window":
        return _window(f, v)
    if f.kind == "calendar":
        return _calendar(f, v)
    if f.kind == "holiday":
        return _holiday(f, v)
    col = (f.column or f.name).replace("_", " ")
    if f.kind == "lookup":
        return f"latest known {col} ({number(v)})"
    if f.kind == "scheduled":
        return f"{number(v)} {col} scheduled"
    return f"{col} {number(v)}"


# --------------------------------------------------------------------- explanation


def explain(model: Model, contrib: Contributions, row: int, *,
            baseline: tuple[str, float] | None = None, when: datetime | None = None,
            entity: str | None = None, top: int = 2) -> Explanation:
    """Explain row ``row`` of ``contrib`` (whose features are ``model``'s) in words.

    ``baseline`` is the simple baseline's (name, forecast) for the same row, if known;
    ``when`` the target time and ``entity`` the key, both only for the sentence.
    """
    feats = {f.name: f for f in model.features}
    values = contrib.values[row]
    pred = float(inverse_link(contrib.link, contrib.raw[row]))
    expected = float(inverse_link(contrib.link, contrib.expected[row]))
    shifts = values if contrib.link == "identity" else pred - contrib.without(row)
    reasons = []
    for j, name in enumerate(contrib.features):
        v = contrib.shown(row, j)
        f = feats.get(name) or Feature(name, "request")
        reasons.append(Reason(name, v, float(values[j]), float(shifts[j]), phrase(f, v)))
    reasons.sort(key=lambda r: -abs(r.shift))
    sentence = _sentence(model, pred, baseline, reasons, contrib.link, when, entity, top)
    return Explanation(pred, expected, baseline, tuple(reasons), sentence, contrib.link)


def _what(model: Model, p: float) -> str:
    if model.task == "binary":
        return f"Probability of {model.target} = {model.positive!r}: {p:.0%}"
    return f"Forecast {number(p)} {model.target}"


def _sentence(model: Model, pred: float, baseline: tuple[str, float] | None,
              reasons: list[Reason], link: str, when: datetime | None,
              entity: str | None, top: int) -> str:
    head = _what(model, pred)
    if entity is not None:
        head += f" for {entity}"
    if when is not None:
        head += f" on {when:%a %d %b %Y}"
    unit = "" if model.task == "binary" else f" {model.target}"
    if baseline is not None and not math.isnan(baseline[1]):
        diff = pred - baseline[1]
        if model.task == "binary":
            head += f", {abs(diff):.0%} {'above' if diff >= 0 else 'below'} " \
                    f"the {baseline[0]} baseline ({baseline[1]:.0%})"
        else:
            head += f", {number(abs(diff))} {'above' if diff >= 0 else 'below'} the " \
                    f"{baseline[0]} forecast ({number(baseline[1])})"
    parts = [head + "."]

    def fmt(r: Reason) -> str:
        amount = f"{abs(r.shift):.0%}" if model.task == "binary" else number(abs(r.shift))
        return f"{r.text} ({'+' if r.shift >= 0 else '-'}{amount}{unit if unit else ''})"

    # reasons far smaller than the largest are left out of the sentence (not the data)
    floor = NEGLIGIBLE * max((abs(r.shift) for r in reasons), default=0.0)
    up = [r for r in reasons if r.shift > 0 and abs(r.shift) >= floor][:top]
    down = [r for r in reasons if r.shift < 0 and abs(r.shift) >= floor][:top]
    if up:
        parts.append("Raised mostly by: " + "; ".join(map(fmt, up)) + ".")
    if down:
        parts.append("Held back by: " + "; ".join(map(fmt, down)) + ".")
    if link != "identity" and (up or down):
        parts.append("(Each amount is what the prediction would lose without that reason "
                     "alone.)")
    return " ".join(parts)


def explanation_dict(model: Model, contrib: Contributions, row: int, *,
                     baseline: tuple[str, float] | None, final: float | None = None,
                     entity: str | None = None, when: datetime | None = None
                     ) -> dict[str, Any]:
    """One row's explanation as the server answers it (``explanation`` of a row):

    * ``sentence``: what was predicted, the baseline's forecast, the reasons that raised
      and held back the prediction most, in the target's units;
    * ``prediction``: the model's prediction (``final``, when business rules changed the
      answer; the sentence then says so);
    * ``expected`` and ``expected_raw``: the prediction with no feature information, in
      the target's units and in raw-score space (``link`` says how one becomes the other);
    * ``baseline``: the simple baseline's name and forecast for the same row, or None;
    * ``contributions``: feature -> ``shift`` (in the target's units: the contribution
      itself under an identity link, else the change if that contribution alone were taken
      away), ``raw`` (raw-score space: ``expected_raw`` plus every ``raw`` is the raw
      score), the feature's ``value`` and its ``text``; the largest shift first.
    """
    e = explain(model, contrib, row, baseline=baseline, entity=entity,
                when=None if when is None or pd.isna(when) else pd.Timestamp(when))
    sentence = e.sentence
    out: dict[str, Any] = {"sentence": sentence, "prediction": e.prediction,
                           "expected": e.expected,
                           "expected_raw": float(contrib.expected[row]), "link": e.link,
                           "baseline": (None if baseline is None else
                                        {"name": baseline[0], "prediction": baseline[1]})}
    if final is not None and final == final and not np.isclose(final, e.prediction,
                                                                rtol=1e-12, atol=1e-12):
        out["final"] = float(final)
        out["sentence"] = (sentence + f" Business rules then changed the answer to "
                           f"{number(float(final))}.")
    out["contributions"] = {r.feature: {"shift": r.shift, "raw": r.contribution,
                                        "value": r.value, "text": r.text}
                            for r in e.reasons}
    return out


def sequential_steps(explanation: dict[str, Any], top: int = 8
                     ) -> tuple[float, list[tuple[str, float]], float]:
    """A waterfall of an explanation in the target's units: (start, steps, end). The
    reasons are added one by one, largest first, in raw-score space; each step is the
    change of the prediction it makes. Under an identity link a step is the reason's
    contribution; under a log or logit link the steps still add up exactly from the
    expected value to the prediction. Reasons past ``top`` are one step."""
    link = str(explanation["link"])

    def link_inverse(r: float) -> float:
        return float(inverse_link(link, r))

    raw = float(explanation["expected_raw"])
    start = link_inverse(raw)
    items = list(explanation["contributions"].values())
    steps: list[tuple[str, float]] = []
    cur = start
    for k, c in enumerate(items):
        if k == top and len(items) > top + 1:
            rest = sum(float(r["raw"]) for r in items[top:])
            nxt = link_inverse(raw + rest)
            steps.append((f"{len(items) - top} other features", nxt - cur))
            cur = nxt
            break
        raw += float(c["raw"])
        nxt = link_inverse(raw)
        steps.append((str(c["text"]), nxt - cur))
        cur = nxt
    return start, steps, cur


def explain_rows(model: Model, contrib: Contributions, rows: Sequence[int] | None = None,
                 **kw: Any) -> list[Explanation]:
    """Explain every row of ``contrib`` (or the given ones)."""
    idx = range(len(contrib.raw)) if rows is None else rows
    return [explain(model, contrib, i, **kw) for i in idx]
