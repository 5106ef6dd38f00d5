"""The installed CLI against the sandbox: spec, check, discover, and reads that match its ground truth exactly."""

from __future__ import annotations

from collections import Counter

import pytest

from integration_tests.conftest import ALL_STREAMS, config_for, ground_truth, latest_states
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox


def test_spec_lists_every_config_field_in_form_order(connector):
    spec = connector.run("spec").of_type("SPEC")[0]["spec"]["connectionSpecification"]

    order = sorted(spec["properties"], key=lambda name: spec["properties"][name]["order"])
    assert order == ["api_token", "org_name", "region", "start_date", "page_size", "lookback_window", "include_deleted",
                     "requests_per_minute", "rate_limit_share", "num_workers", "api_url"]
    assert spec["required"] == ["api_token"]
    assert spec["properties"]["api_token"]["airbyte_secret"] is True


@pytest.mark.parametrize(
    "token,status,hint",
    [
        ("sandbox-token", "SUCCEEDED", ""),
        ("legacy-token", "SUCCEEDED", ""),  # the legacy form of every role
        ("not-a-key", "FAILED", "Kustomer rejected the API key (Unauthorized). Copy it again from Settings > Security > API Keys"),
        ("expired-token", "FAILED", "has expired"),
        ("norole-token", "FAILED", "cannot search Kustomer: it has none of the roles org.permission.search.create"),
        ("nosearch-token", "FAILED", "cannot search Kustomer"),
        ("eu-token", "FAILED", "belongs to Kustomer's region in the European Union (pod prod2)"),
        ("india-token", "FAILED", "or set Region to india (https://api.prod4.kustomerapp.com)"),
    ],
)
def test_check(connector, sandbox, token, status, hint):
    result = connector.run("check", {**config_for(sandbox), "api_token": token}).of_type("CONNECTION_STATUS")[0]["connectionStatus"]
    assert result["status"] == status
    assert hint in result.get("message", "")


def test_full_read_of_every_stream_equals_the_ground_truth_exactly(connector, sandbox):
    # Page size 10: conversations exceed Kustomer's 100-page cap (> 1,000 in live search) and the
    # 520-conversation burst at one instant spans 52 pages. Objects older than two years come from the archive.
    run = connector.run("read", config_for(sandbox, page_size=10), streams=ALL_STREAMS)

    assert run.returncode == 0 and run.errors() == []
    for stream in ALL_STREAMS:
        ids = run.ids(stream)
        assert len(ids) == len(set(ids)), f"{stream}: duplicates within one sync"
        assert set(ids) == ground_truth(sandbox, stream), stream
    cutoff = sandbox.archive_cutoff()
    live = [i for i in run.ids("conversations") if sandbox.updated_at("conversation", i) >= cutoff]
    assert len(live) > 1000  # more than 100 pages of 10 in live search
    assert len(live) < len(run.ids("conversations"))  # and some older than two years, from the archive
    burst = Counter(r["updated_at"] for r in run.records("conversations")).most_common(1)[0][1]
    assert burst > 500


def test_incremental_read_emits_exactly_the_changes(connector):
    with Sandbox(records=1500, seed=5, **FAST_KUSTOMER_LIMITS) as sandbox:
        first = connector.run("read", config_for(sandbox, lookback_window="PT0S"), streams=["conversations", "notes"])
        state = latest_states(first)
        touched = set(sandbox.touch("conversation", 7)) | set(sandbox.create("conversation", 3))
        touched_notes = set(sandbox.touch("note", 2))

        second = connector.run("read", config_for(sandbox, lookback_window="PT0S"), streams=["conversations", "notes"], state=state)

        boundary = 1  # the record at the saved state's instant is read again
        assert touched <= set(second.ids("conversations")) and len(second.ids("conversations")) <= len(touched) + boundary
        assert touched_notes <= set(second.ids("notes")) and len(second.ids("notes")) <= len(touched_notes) + boundary


def test_read_through_rate_limits_and_server_faults_ends_exact(connector):
    """The org allows far fewer requests than the plan the connector assumes (60 and 10 searches per
    two-second window): Kustomer's x-ratelimit headers teach it the real limits, so it waits for the
    windows instead of running into 429s, and server faults are retried."""
    with Sandbox(records=1500, seed=3, org_rpm=60, search_rpm=10, time_scale=30, fault_rate=0.08, faults=["500", "502", "503", "504", "500-nobody", "reset", "malformed"]) as sandbox:
        run = connector.run("read", config_for(sandbox, page_size=50), streams=["conversations", "customers", "users", "tags"], timeout=600)

        assert run.returncode == 0 and run.errors() == []
        for stream in ("conversations", "customers", "users", "tags"):
            assert set(run.ids(stream)) == ground_truth(sandbox, stream), stream
        assert sum(v for k, v in sandbox.counters.items() if k.startswith("fault:")) > 0
        assert sandbox.counters["status:429"] <= 0.01 * sandbox.counters["requests"], dict(sandbox.counters)
