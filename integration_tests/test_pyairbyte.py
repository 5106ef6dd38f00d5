"""PyAirbyte, as a notebook user runs it: get_source on the local connector, read into DuckDB."""

from __future__ import annotations

import os

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # no registry look-up, no telemetry
os.environ.setdefault("DO_NOT_TRACK", "1")

from integration_tests.conftest import CLI, config_for, expected_keys  # noqa: E402


def test_read_into_duckdb_row_counts_equal_the_ground_truth(sandbox, tmp_path):
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    source = ab.get_source("source-kustomer", config=config_for(sandbox), local_executable=CLI)
    source.check()
    assert len(source.get_available_streams()) > 50
    # One stream of each kind: search, nested, per-conversation, per-Klass, list, audit log.
    streams = ["customers", "conversations", "customer_emails", "conversation_events", "kobject_shopify_orders", "users", "audit_logs"]
    source.select_streams(streams)
    cache = DuckDBCache(db_path=str(tmp_path / "kustomer_test.duckdb"), schema_name="kustomer")

    result = source.read(cache=cache)

    assert sorted(result.streams) == sorted(streams)
    for stream in streams:
        assert len(result[stream].to_pandas()) == len(expected_keys(sandbox, stream)), stream
    assert set(result["customers"].to_pandas()["id"]) == {key[0] for key in expected_keys(sandbox, "customers")}
    conversations = result["conversations"].to_pandas()
    assert {"sla_data", "custom", "customer", "updated_at"} <= set(conversations.columns)
