"""Upgrades keep their place: the state source-kustomer 0.1.0 wrote (integration_tests/upgrade, made
by make_state.py from a full read of the same sandboxed org) resumes under this version without
reading history again. Only the streams whose source changed in 0.2.0 (the changelog names them)
are read whole once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from integration_tests.conftest import config_for
from integration_tests.sandbox import Sandbox
from source_kustomer.records import parse_instant

UPGRADE = Path(__file__).parent / "upgrade"
STATE_FILE = UPGRADE / "state_written_by_0.1.0.json"
#: The org 0.1.0 read (its clock fixed, so the same records each run) and the start date it used.
ORG = dict(records=3000, seed=11, now="2026-11-24T00:00:00Z", archive_notes="serve")
START_DATE = "2021-01-01T00:00:00Z"
#: 0.2.0 reads message attachments from GET /v1/conversations/{id}/attachments (0.1.0 read them
#: from messages' search pages): a new parent, so the old state does not apply.
READ_WHOLE_AGAIN = {"message_attachments"}
LOOKBACK = timedelta(minutes=5)


def cursor_of(stream_state):
    """(field, value) a resumed stream's records may not be older than: a stream's own cursor, or for a
    stream of parents the cursor of the parent whose changes it follows."""
    parents = stream_state.get("parent_state") or {}
    if parents:
        (parent_state,) = parents.values()
        own = stream_state.get("state") or {}
        field = next(iter(own), None)
        return (field, parent_state.get("updated_at")) if field and parent_state.get("updated_at") else None
    values = {k: v for k, v in stream_state.items() if k in ("updated_at", "created_at")}
    return next(iter(values.items()), None)


def test_state_written_by_0_1_0_resumes_without_reading_history(connector):
    state = json.loads(STATE_FILE.read_text())
    streams = [message["stream"]["stream_descriptor"]["name"] for message in state]
    with Sandbox(**ORG) as sandbox:
        run = connector.run("read", config_for(sandbox, start_date=START_DATE, requests_per_minute=2000, rate_limit_share=100), streams=streams, state=state, timeout=600, fast_clock=True)

    assert run.returncode == 0 and not run.errors()
    resumed = 0
    for message in state:
        name = message["stream"]["stream_descriptor"]["name"]
        cursor = cursor_of(message["stream"]["stream_state"])
        if cursor is None or name in READ_WHOLE_AGAIN:
            continue
        field, value = cursor
        since = parse_instant(value) - LOOKBACK
        older = [r for r in run.records(name) if r.get(field) and parse_instant(r[field]) < since]
        assert not older, f"{name}: {len(older)} records older than its 0.1.0 state ({field} {value}) read again"
        resumed += 1
    assert resumed >= 40  # every search, nested, per-parent and incremental list stream of 0.1.0
    for name in READ_WHOLE_AGAIN:
        assert run.records(name), name
