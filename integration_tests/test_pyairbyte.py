"""PyAirbyte, as a notebook user runs it: get_source on the local connector, read into DuckDB."""

from __future__ import annotations

import os

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # no registry look-up, no telemetry
os.environ.setdefault("DO_NOT_TRACK", "1")

from integration_tests.conftest import ALL_STREAMS, CLI, config_for, ground_truth  # noqa: E402


def test_read_into_duckdb_row_counts_equal_the_ground_truth(sandbox, tmp_path):
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    source = ab.get_source("source-kustomer", config=config_for(sandbox), local_executable=CLI)
    source.check()
    source.select_all_streams()
    cache = DuckDBCache(db_path=str(tmp_path / "kustomer_test.duckdb"), schema_name="kustomer")

    result = source.read(cache=cache)

    assert sorted(result.streams) == sorted(ALL_STREAMS)
    for stream in ALL_STREAMS:
        frame = result[stream].to_pandas()
        assert len(frame) == len(ground_truth(sandbox, stream)), stream
        assert set(frame["id"]) == ground_truth(sandbox, stream), stream
    conversations = result["conversations"].to_pandas()
    assert {"sla_data", "custom", "customer", "updated_at"} <= set(conversations.columns)
