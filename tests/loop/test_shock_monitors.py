"""Monitors that catch real shocks and stay quiet in calm: the pizza place replayed with
prices climbing 10% over two weeks and a three-day storm that cuts sales to a third,
against its calm twin (the same days, no shock)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tuesday.loop.replay import replay
from tuesday.project import LoadedProject, Policy

MODEL = "units_7d"
PRICE = "ramp:prices.price=1.1 from 2015-06-05 until 2015-06-19"
STORM = "scale=0.33 from 2015-06-22 until 2015-06-25"
#: the replay's items: every fourth item, so the run stays short
EVERY = 4


def _frames(frames: dict[str, Any]) -> dict[str, pd.DataFrame]:
    items = sorted(frames["sales"]["item"].unique())[::EVERY]
    return {name: f[f["item"].isin(items)] for name, f in frames.items()}


def _run(pizza: LoadedProject, frames: dict[str, Any], tmp: Any,
         shocks: list[str]) -> dict[str, Any]:
    return replay(pizza, MODEL, "2015-05-25", "2015-06-26", workspace=tmp,
                  policy=Policy(schedule=None, drift_ticks=None), shocks=shocks,
                  frames=_frames(frames), folds=1)


@pytest.fixture(scope="module")
def shocked(pizza: LoadedProject, pizza_frames: dict[str, Any],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(pizza, pizza_frames, tmp_path_factory.mktemp("shocked"), [PRICE, STORM])


@pytest.fixture(scope="module")
def calm(pizza: LoadedProject, pizza_frames: dict[str, Any],
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(pizza, pizza_frames, tmp_path_factory.mktemp("calm"), [])


def _alerts(tl: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["date"], k) for d in tl["days"] for k in d["alerts"]]


@pytest.mark.slow
def test_a_price_rise_is_a_key_drift_alert_within_two_weeks(shocked: dict[str, Any]
                                                             ) -> None:
    price = shocked["shocks"][0]
    assert price["first_alert"] is not None
    assert price["first_alert"]["kinds"] == ["key_drift"]
    assert price["first_alert"]["days_after"] <= 14


@pytest.mark.slow
def test_a_storm_is_flagged_within_a_day(shocked: dict[str, Any]) -> None:
    storm = shocked["shocks"][1]
    fa = storm["first_alert"]
    assert fa is not None and "anomaly" in fa["kinds"] and fa["days_after"] <= 1


@pytest.mark.slow
def test_the_calm_twin_raises_nothing(calm: dict[str, Any]) -> None:
    assert _alerts(calm) == []
    assert all(d["monitor"] in ("ok", "no_traffic") for d in calm["days"])
