"""The online store on every profile: events applied through the workspace against the
batch computation, rebuilds, a source that needs materialize first, changed feature
definitions, and the served answer after materialize (the tests of tests/data and
tests/serve, unchanged)."""

from __future__ import annotations

from tests.data.test_online import (  # noqa: F401
    test_a_file_ingested_source_needs_materialize_first,
    test_apply_ingests_validates_and_updates_the_state,
    test_changed_feature_definitions_are_refused_until_rebuilt,
)
from tests.serve.test_serving import (  # noqa: F401
    test_online_features_equal_offline_features_computed_later,
    test_predict_single_and_batch_match_offline,
    test_server_follows_promotion_and_rollback,
)
