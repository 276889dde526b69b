"""The dashboard's chart primitives: a waterfall's bars chain from the start to the end,
bars start at zero and skip missing values, a grid has one cell per row and column,
legends do not overlap, and every label is escaped."""

from __future__ import annotations

import re

from tuesday.charts import Series, bars, grid, line_chart, sparkline, waterfall


def _rects(svg: str) -> list[tuple[float, float]]:
    """(x, width) of the bars that carry a tooltip (the data, not frames or keys)."""
    return [(float(x), float(w)) for x, w in
            re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="[\d.]+" '
                       r'fill="[^"]+"><title>', svg)]


def test_waterfall_bars_chain_from_start_to_end() -> None:
    steps = [("rain", -2.0), ("a <game>", 3.5), ("holiday", 1.0)]
    svg = waterfall(("expected", 10.0), steps, ("forecast", 12.5), title="Why 12.5")
    rects = _rects(svg)
    assert len(rects) == 3
    scale = rects[1][1] / 3.5  # pixels per unit
    assert abs(rects[0][1] / 2.0 - scale) < 0.1 and abs(rects[2][1] / 1.0 - scale) < 0.1
    # the lowering bar ends where the next one starts; each raising bar starts at its left
    assert abs(rects[0][0] - rects[1][0]) < 0.2
    assert abs(rects[1][0] + rects[1][1] - rects[2][0]) < 0.2
    assert "a &lt;game&gt;" in svg and "<game>" not in svg
    assert "&minus;2" in svg and "+3.5" in svg


def test_bars_start_at_zero_and_skip_missing_values() -> None:
    svg = bars(["Mon", "Tue"], [Series("model", [0.5, -0.25], "#111"),
                                Series("baseline", [1.0, None], "#222")], title="bias")
    mon_model, mon_baseline, tue_model = _rects(svg)  # no bar for the missing value
    zero = mon_model[0]  # a positive bar starts at zero
    assert mon_baseline[0] == zero and abs(mon_baseline[1] / mon_model[1] - 2.0) < 0.01
    assert abs(tue_model[0] + tue_model[1] - zero) < 0.2  # a negative one ends there


def test_grid_has_a_cell_per_row_and_column() -> None:
    svg = grid(["temp", "rides"], ["W1", "W2", "W3"], [["#a"] * 3, ["#b"] * 3],
               [[f"r{r}c{c} <x>" for c in range(3)] for r in range(2)], title="Drift")
    assert svg.count("<title>r") == 6 and "r1c2 &lt;x&gt;" in svg


def test_legends_of_long_names_do_not_overlap() -> None:
    names = ["model", "seasonal_mean_4w (baseline)", "seasonal_naive (baseline)"]
    svg = line_chart([0, 1], [Series(n, [1.0, 2.0], "#000") for n in names],
                     x_ticks=[(0, "a")], title="t")
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="22">', svg)]
    assert len(xs) == 3
    for (a, name), b in zip(zip(xs, names, strict=False), xs[1:], strict=False):
        assert b - a >= 6.5 * len(name), (a, b, name)


def test_sparkline_needs_two_points() -> None:
    assert sparkline([Series("m", [1.0], "#000")], title="t") == ""
    assert sparkline([Series("m", [1.0, None, 2.0], "#000")], title="t").count(
        "<polyline") == 2
