"""Ingest, time travel, quarantine and crash safety of ingests, on every profile (the
tests of tests/data, unchanged)."""

from __future__ import annotations

from tests.data.test_ingest_crash import (  # noqa: F401
    test_concurrent_ingests_of_one_source_take_turns,
    test_killed_at_each_fault_point,
    test_same_file_again_is_recognised_and_not_appended_twice,
)
from tests.data.test_tables import (  # noqa: F401
    test_bad_rows_are_quarantined_and_the_table_holds_exactly_the_good_ones,
    test_export_fix_and_reingest_resolves_the_quarantine,
    test_partly_new_file_accepts_only_new_keys,
    test_quarantine_accumulates_across_ingests,
    test_read_table_time_travels,
    test_read_table_unknown_version_is_not_found,
    test_versions_as_of_picks_by_as_of,
    ws,
)
