"""``plan`` says plainly when a version is worse than production, even when no gate fails."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.release.test_registry import T, _register_copy
from tuesday.cli import main
from tuesday.release import registry


def test_plan_says_a_version_is_worse_than_production_when_every_gate_passes(
        ws_copy, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    registry.promote(ws_copy, model, 1, as_of=T)
    v1 = registry.get_version(ws_copy, "ridership_14d", 1)["metrics"]
    metric = v1["primary"]
    prod = v1["model"][metric]
    worse = _register_copy(ws_copy, **{metric: prod * 1.01})  # lower is better
    res = registry.plan(ws_copy, model, worse)
    assert res["gates_passed"], res["gates"]  # the default gate only looks at baselines
    vp = res["versus_production"]
    assert vp["metric"] == metric and vp["better"] is False and vp["worse"] is True
    assert abs(vp["by"] - 0.01) < 1e-9
    assert vp["text"] == (f"version {worse} is 1.0% worse than production version 1 on "
                          f"{metric} ({prod * 1.01:.4g} vs {prod:.4g})")
    out = CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                    str(ws_copy.root), "plan", "ridership_14d", str(worse)])
    assert out.exit_code == 0, out.output
    assert f"version {worse} is 1.0% worse than production version 1 on {metric}" in out.output
    js = CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                   str(ws_copy.root), "plan", "ridership_14d", str(worse),
                                   "--json"])
    assert json.loads(js.output)["versus_production"]["better"] is False


def test_plan_without_production_has_no_comparison(ws_copy, ridership) -> None:
    res = registry.plan(ws_copy, ridership.project.model("ridership_14d"), 1)
    assert res["versus_production"] is None


def test_plan_of_an_equal_version_says_as_good_as(ws_copy, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    registry.promote(ws_copy, model, 1, as_of=T)
    same = _register_copy(ws_copy)
    vp = registry.plan(ws_copy, model, same)["versus_production"]
    assert vp["worse"] is False and "is as good as production version 1" in vp["text"]


def test_plan_of_the_production_version_says_nothing_would_change(ws_copy, ridership) -> None:
    registry.promote(ws_copy, ridership.project.model("ridership_14d"), 1, as_of=T)
    out = CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                    str(ws_copy.root), "plan", "ridership_14d", "1"])
    assert out.exit_code == 0, out.output
    assert "version 1 is already in production: promoting it would change nothing" in \
        " ".join(out.output.split())
    assert "replacing version 1" not in out.output
