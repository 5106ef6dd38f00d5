"""Records updated and created while a full sync runs: after the next incremental sync, the latest
version of every record has been emitted (keyset pagination never lets a moved record skip another, and
an instant read page by page is read again when one of its members moves). More seeds: `make soak`."""

from __future__ import annotations

import os

import pytest

from integration_tests.conftest import SEARCH_CONTEXTS, config_for, ground_truth, latest_states
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

STREAMS = ["conversations", "messages", "customers"]


SEEDS = range(int(os.environ.get("SOAK_SEEDS", "2")))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_latest_version_of_every_record_arrives_by_the_next_incremental_sync(connector, seed):
    with Sandbox(records=3000, seed=9 + seed, latency_ms=3, mutate_per_second=60, **FAST_KUSTOMER_LIMITS) as sandbox:
        config = config_for(sandbox, page_size=50)
        first = connector.run("read", config, streams=STREAMS)
        sandbox.mutate_per_second = 0  # the org goes quiet
        changed_during_first = sandbox.counters["mutations:touch"] + sandbox.counters["mutations:create"]
        second = connector.run("read", config, streams=STREAMS, state=latest_states(first))

        assert first.errors() == [] and second.errors() == []
        assert changed_during_first > 20
        for stream in STREAMS:
            newest = {}
            for record in first.records(stream) + second.records(stream):
                newest[record["id"]] = max(newest.get(record["id"], ""), record["updated_at"])
            assert set(newest) == ground_truth(sandbox, stream), stream
            stale = [i for i, at in newest.items() if at != sandbox.updated_at(SEARCH_CONTEXTS[stream], i)]
            assert stale == [], f"{stream}: {len(stale)} records never emitted in their latest version"
