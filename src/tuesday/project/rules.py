"""Business rules a model declares, run after the model on each request's rows.

A model's ``rules`` run in order on the rows of one request (one slate of candidates
when ranking) and their raw predictions (see :mod:`tuesday.serve.rules`):

* ``floor(v)`` and ``cap(v)``: bounds (no negative demand, a credit limit);
* ``round_to(pack, mode="up")``: order quantities in whole packs;
* ``keep(when)`` / ``drop(when)``: filters on the request row (out of stock, already
  bought); a dropped row is answered with ``prediction: null`` and the rule's name;
* ``boost(when, by=1.2)`` or ``boost(when, add=0.1)``: favour some rows (new items);
* ``rule(fn)``: any plain function ``fn(row, prediction) -> float | None`` (None drops);
* ``epsilon_greedy(epsilon)`` and ``thompson(strength)``: exploration over the request's
  rows; the response is ordered by rank and each row carries the ``propensity`` (the
  probability that the policy puts it first) so feedback loops can be measured later.

Two more shape a ranking model's slate (``task="ranking"``, the rank endpoint):

* ``max_per(column, n)``: at most ``n`` items with the same value of ``column`` (a
  category) in one slate;
* ``pin(when, position)``: the best item for which ``when(row)`` is true goes to
  ``position`` (1 is the top), whatever its score (a promoted item).

On a slate, exploration draws an ordering of the candidates (epsilon-greedy: the model's
order, or with probability ``epsilon`` a uniformly random one; Thompson: by a draw per
item) and the slate rules then apply to it, so exploration never breaks a business rule;
each shown item carries its probability of being at its position under that policy.

Example:
    >>> round_to(6).kind, floor(0).value
    ('round_to', 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("floor", "cap", "round_to", "keep", "drop", "boost", "function",
         "epsilon_greedy", "thompson", "max_per", "pin")
EXPLORATION = ("epsilon_greedy", "thompson")
#: rules that shape a ranking model's slate (ignored by the predict endpoint)
SLATE_KINDS = ("max_per", "pin")


@dataclass(frozen=True)
class Rule:
    """One step after the model. Build with the functions of this module."""

    kind: str
    name: str
    value: float = 0.0
    mode: str = "up"
    when: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False)
    fn: Callable[[dict[str, Any], float], float | None] | None = field(default=None,
                                                                       compare=False)
    add: bool = False
    #: ``max_per``: the column whose value may repeat at most ``value`` times in a slate
    column: str | None = None


def floor(value: float, *, name: str | None = None) -> Rule:
    return Rule("floor", name or f"floor_{value:g}", value=float(value))


def cap(value: float, *, name: str | None = None) -> Rule:
    return Rule("cap", name or f"cap_{value:g}", value=float(value))


def round_to(pack: float, mode: str = "up", *, name: str | None = None) -> Rule:
    """Round to a multiple of ``pack``: ``up`` (never short), ``nearest`` or ``down``."""
    return Rule("round_to", name or f"round_to_{pack:g}", value=float(pack), mode=mode)


def keep(when: Callable[[dict[str, Any]], bool], *, name: str = "keep") -> Rule:
    """Answer only rows for which ``when(row)`` is true; the others get no prediction."""
    return Rule("keep", name, when=when)


def drop(when: Callable[[dict[str, Any]], bool], *, name: str = "drop") -> Rule:
    """Answer no prediction for rows where ``when(row)`` is true."""
    return Rule("drop", name, when=when)


def boost(when: Callable[[dict[str, Any]], bool], *, by: float | None = None,
          add: float | None = None, name: str = "boost") -> Rule:
    """Multiply the prediction by ``by`` (or add ``add``) where ``when(row)`` is true."""
    if (by is None) == (add is None):
        return Rule("boost", name, value=math.nan, when=when)  # reported by check()
    return Rule("boost", name, value=float(add if add is not None else by),  # type: ignore[arg-type]
                when=when, add=add is not None)


def rule(fn: Callable[[dict[str, Any], float], float | None], *,
         name: str | None = None) -> Rule:
    """A plain function ``fn(row, prediction) -> new prediction or None (drop)``."""
    return Rule("function", name or str(getattr(fn, "__name__", "rule")), fn=fn)


def epsilon_greedy(epsilon: float, *, name: str = "epsilon_greedy") -> Rule:
    """With probability ``epsilon`` put a uniformly random row first, else the best."""
    return Rule("epsilon_greedy", name, value=float(epsilon))


def thompson(strength: float = 20.0, *, name: str = "thompson") -> Rule:
    """Rank by a draw from Beta(1 + p*strength, 1 + (1-p)*strength) per row.

    ``p`` is the model's probability (clipped to [0, 1]); ``strength`` is how many
    observations that probability is worth: the larger, the less exploration.
    """
    return Rule("thompson", name, value=float(strength))


def max_per(column: str, n: int, *, name: str | None = None) -> Rule:
    """At most ``n`` items sharing a value of ``column`` in one slate (diversity).

    Example:
        >>> max_per("category", 2).name
        'max_2_per_category'
    """
    return Rule("max_per", name or f"max_{n}_per_{column}", value=float(n), column=column)


def pin(when: Callable[[dict[str, Any]], bool], position: int = 1, *,
        name: str = "pin") -> Rule:
    """Put the best-scored item for which ``when(row)`` is true at ``position`` (1-based)."""
    return Rule("pin", name, value=float(position), when=when)


def check(rules: Any, where: str) -> list[str]:
    """Problems in a model's declared rules, as sentences."""
    if not isinstance(rules, tuple | list):
        return [f"{where}: rules must be a tuple of rules (floor(0), round_to(6), ...); got "
                f"{type(rules).__name__}."]
    out = []
    for i, r in enumerate(rules):
        if not isinstance(r, Rule):
            out.append(f"{where}: rule {i} must be built with tuesday.project's rules (floor, "
                       f"cap, round_to, keep, drop, boost, rule, epsilon_greedy, thompson, "
                       f"max_per, pin); got "
                       f"{type(r).__name__} {r!r}.")
            continue
        if r.kind not in KINDS:
            out.append(f"{where}: rule {r.name!r} has unknown kind {r.kind!r}.")
        if r.kind == "round_to" and (not r.value > 0 or r.mode not in ("up", "nearest",
                                                                        "down")):
            out.append(f"{where}: round_to needs a positive pack size and mode up, nearest "
                       f"or down; got pack {r.value:g}, mode {r.mode!r}.")
        if r.kind in ("keep", "drop", "boost") and not callable(r.when):
            out.append(f"{where}: rule {r.name!r} needs when=, a function of the request "
                       f"row returning True or False.")
        if r.kind == "boost" and math.isnan(r.value):
            out.append(f"{where}: boost {r.name!r} needs exactly one of by= (a factor) or "
                       "add= (an amount).")
        if r.kind == "function" and not callable(r.fn):
            out.append(f"{where}: rule {r.name!r} needs a function (row, prediction) -> "
                       "float or None.")
        if r.kind == "epsilon_greedy" and not 0 <= r.value <= 1:
            out.append(f"{where}: epsilon_greedy epsilon must be within [0, 1]; got "
                       f"{r.value:g}.")
        if r.kind == "thompson" and not r.value > 0:
            out.append(f"{where}: thompson strength must be positive; got {r.value:g}.")
        if r.kind == "max_per" and (not isinstance(r.column, str) or not r.column
                                    or r.value < 1 or r.value != int(r.value)):
            out.append(f"{where}: max_per needs a column name and a whole number n >= 1; "
                       f"got column {r.column!r}, n {r.value:g}.")
        if r.kind == "pin" and (not callable(r.when) or r.value < 1
                                or r.value != int(r.value)):
            out.append(f"{where}: pin {r.name!r} needs when= (a function of the row) and a "
                       f"position >= 1; got position {r.value:g}.")
    names = [r.name for r in rules if isinstance(r, Rule)]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"{where}: two rules are named {dup!r}; give each its own name= (the "
                   "log records what each rule did by its name).")
    if sum(isinstance(r, Rule) and r.kind in EXPLORATION for r in rules) > 1:
        out.append(f"{where}: declare at most one exploration rule (epsilon_greedy or "
                   "thompson).")
    return out


