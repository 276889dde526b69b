"""The registry on every profile: gates, stages, audit, rollback, two promoters at once
(one wins, the other gets a conflict), and a promotion killed at each of its steps (the
tests of tests/release, unchanged)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conformance.conftest import moved
from tests.release.test_registry import (  # noqa: F401
    test_failed_transition_leaves_state_unchanged,
    test_gate_refuses_and_says_by_how_much,
    test_promote_passes_gate_and_audits,
    test_rollback_restores_previous_production,
    test_transition_table_refuses_illegal_moves,
)
from tests.release.test_registry_races import (  # noqa: F401
    pool,
    race_ws,
    test_loser_of_a_race_gets_a_conflict_with_exit_code_5,
    test_promotion_rollback_and_deploy_at_once,
)
from tests.release.test_release import (  # noqa: F401
    release_ws,
    test_promotion_killed_at_any_step_leaves_old_or_new_state,
    test_shadow_is_logged_and_never_returned,
)
from tuesday.workspace import Workspace


@pytest.fixture()
def ws(release_ws: Workspace, tmp_path: Path,  # noqa: F811
       profile: dict[str, str]) -> Workspace:
    """Version 1 in production, version 2 a candidate, online features materialized:
    on the profile."""
    from tests.conftest import AS_OF, RIDERSHIP
    from tuesday.data.materialize import materialize
    from tuesday.project import load_project

    dst = tmp_path / "ws"
    shutil.copytree(release_ws.root, dst)
    out = moved(dst, profile)
    project = load_project(RIDERSHIP).project
    materialize(out, project, project.model("ridership_14d"), AS_OF)
    return out
