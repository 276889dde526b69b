"""``tuesday plan``, ``promote``, ``rollback``, ``deploy`` and ``models``: moving model
versions through their stages and routing their traffic."""

from __future__ import annotations

import sys
from typing import Any

import click

from tuesday.cli.app import (
    NUMBER,
    Ctx,
    actor_opt,
    as_of_opt,
    emit,
    json_opt,
    parse_time,
    pass_ctx,
    run,
)


@click.command()
@click.argument("model")
@click.argument("version", type=NUMBER)
@click.option("--override-reason", help="Promote despite failed gates, recording why.")
@actor_opt
@as_of_opt
@json_opt
@pass_ctx
def promote(c: Ctx, model: str, version: int, override_reason: str | None, actor: str,
            as_of: str | None, as_json: bool) -> None:
    """Move MODEL VERSION to production if it passes its gates."""
    from tuesday.release import registry
    from tuesday.train.training import check_artifact

    def go() -> None:
        m = c.loaded.project.model(model)
        check_artifact(c.workspace, registry.get_version(c.workspace, m.name, version)[
            "manifest"])  # a broken model file is never promoted
        from tuesday.serve.timing import served_latency

        res = registry.promote(c.workspace, c.loaded.project.model(model), version,
                               as_of=parse_time(as_of), actor=actor,
                               override_reason=override_reason,
                               timer=served_latency(c.workspace, c.loaded))
        emit(res, as_json, lambda d: f"{model} version {version} is in production"
             + ("" if d["changed"] else " (already)") + ".\n"
             + "\n".join(f"  gate {g['gate']}: {'pass' if g['passed'] else 'FAIL'} - "
                         f"{g['message']}" for g in d["gates"]))

    run(go)


@click.command()
@click.argument("model")
@click.option("--reason", default="rollback", show_default=True)
@actor_opt
@as_of_opt
@json_opt
@pass_ctx
def rollback(c: Ctx, model: str, reason: str, actor: str, as_of: str | None,
             as_json: bool) -> None:
    """Restore the previous production version of MODEL."""
    from tuesday.release import registry

    def go() -> None:
        c.loaded.project.model(model)
        res = registry.rollback(c.workspace, model, as_of=parse_time(as_of), actor=actor,
                                reason=reason)
        emit(res, as_json, lambda d: f"{model}: version {d['version']} is back in "
             f"production (replaces {d['replaced']}).")

    run(go)


@click.command()
@click.argument("model")
@click.argument("version", type=NUMBER)
@json_opt
@pass_ctx
def plan(c: Ctx, model: str, version: int, as_json: bool) -> None:
    """Show what promoting MODEL VERSION would change, without changing anything:
    gates, overall and per-slice metrics against production, the deployment it ends.
    Exits 4 when a gate fails."""
    from tuesday.release import registry

    def go() -> None:
        from tuesday.serve.timing import served_latency

        res = registry.plan(c.workspace, c.loaded.project.model(model), version,
                            timer=served_latency(c.workspace, c.loaded))
        emit(res, as_json, _plan_text)
        if not res["gates_passed"]:
            sys.exit(4)

    run(go)


def _plan_text(d: dict[str, Any]) -> str:
    o = d["overall"]
    prod = d["production_version"]
    if d["stage"] == "production":
        return (f"{d['model']} version {d['version']} is already in production: promoting it "
                "would change nothing.")
    lines = [f"{d['model']} version {d['version']} ({d['stage']}) -> production"
             + (f", replacing version {prod}" if prod else "")
             + ("" if d["transition_allowed"] else "  [NOT ALLOWED from this stage]"),
             f"  {d['metric']}: {o['version']:.4f}"
             + (f" vs production {o['production']:.4f}" if o["production"] is not None else "")
             + f" vs best baseline {o['best_baseline']} {o['baseline']:.4f}"]
    vp = d.get("versus_production")
    if vp:
        lines.append(f"  {'WARNING: ' if vp.get('worse') else ''}{vp['text']}"
                     + (" (no declared gate compares with production)"
                        if vp.get("worse") and d["gates_passed"] else ""))
    lines += [f"  gate {g['gate']}: {'pass' if g['passed'] else 'FAIL'} - {g['message']}"
              for g in d["gates"]]
    for r in d["slices"]:
        change = "" if r["worse_by"] is None else f" ({r['worse_by']:+.1%} worse)" \
            if r["worse_by"] > 0 else f" ({-r['worse_by']:.1%} better)"
        lines.append(f"  slice {r['slice']}={r['value']}: {r['version']:.4f}"
                     + (f" vs {r['production']:.4f}{change}" if r["production"] is not None
                        else ""))
    if d["deployment_after"]:
        lines.append(f"  ends the {d['deployment']['mode']} deployment of version "
                     f"{d['deployment']['version']}")
    lines.append("  gates: " + ("all pass" if d["gates_passed"] else "FAIL (promote would "
                                "be refused without --override-reason)"))
    return "\n".join(lines)


@click.command()
@click.argument("model")
@click.argument("mode", type=click.Choice(["single", "shadow", "canary", "ab"]))
@click.argument("version", type=NUMBER, required=False)
@click.option("--percent", type=float, help="Share of traffic for the challenger "
              "(canary default 10, ab default 50).")
@click.option("--reason", default="", help="Why; kept in the deployment history.")
@actor_opt
@as_of_opt
@json_opt
@pass_ctx
def deploy(c: Ctx, model: str, mode: str, version: int | None, percent: float | None,
           reason: str, actor: str, as_of: str | None, as_json: bool) -> None:
    """Route MODEL's traffic: single (production only), shadow VERSION (logged, never
    returned), canary VERSION --percent P, or ab VERSION --percent P (sticky per entity)."""
    from tuesday.release import registry

    def go() -> None:
        c.loaded.project.model(model)
        res = registry.deploy(c.workspace, model, mode, version, percent=percent,
                              as_of=parse_time(as_of), actor=actor, reason=reason)
        emit(res, as_json, lambda d: f"{model}: {d['mode']}"
             + (f" with version {d['version']} ({d['percent']:g} %)" if d["version"] else "")
             + f"; production version {d['production_version']}.")

    run(go)


@click.command()
@click.argument("model", required=False)
@click.option("--audit", is_flag=True, help="Show the stage transitions instead.")
@json_opt
@pass_ctx
def models(c: Ctx, model: str | None, audit: bool, as_json: bool) -> None:
    """List model versions and their stages (or the audit trail)."""
    from tuesday.release import registry

    def go() -> None:
        if model:
            c.loaded.project.model(model)
        rows = registry.audit(c.workspace, model) if audit else \
            registry.versions(c.workspace, model)
        emit(rows, as_json, lambda d: "\n".join(
            "  ".join(f"{k}={v}" for k, v in r.items()) for r in d)
            or ("no transitions yet" if audit else
                f"no versions registered in {c.workspace.root} yet; `tuesday train MODEL` "
                "registers one"))

    run(go)


COMMANDS = (promote, rollback, plan, deploy, models)
