"""State advances only past emitted records, is checkpointed during the sync, and resumes without loss."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airbyte_cdk.models import Type

from unit_tests.conftest import CONFIG, read_stream
from unit_tests.kustomer_mock import resource

CONFIG_2015 = {**CONFIG, "start_date": "2020-01-01T00:00:00Z", "page_size": 7}


def org(kustomer):
    start = datetime(2020, 2, 1, tzinfo=timezone.utc)
    kustomer.add("conversation", [resource("conversation", n, start + timedelta(days=9 * n)) for n in range(1, 200)])
    return {r["id"] for r in kustomer.objects["conversation"]}


def test_state_is_checkpointed_during_the_sync_and_never_passes_unemitted_records(kustomer):
    every_id = org(kustomer)

    output = read_stream("conversations", CONFIG_2015)

    emitted, checkpoints = set(), []
    for message in output.records_and_state_messages:
        if message.type == Type.RECORD:
            emitted.add(message.record.data["id"])
        else:
            checkpoints.append((message.state.stream.stream_state.updated_at, set(emitted)))
    assert emitted == every_id
    assert len(checkpoints) >= 5
    by_id = {r["id"]: r["attributes"]["updatedAt"] for r in kustomer.objects["conversation"]}
    for state, seen_so_far in checkpoints:
        older = {i for i, updated in by_id.items() if updated.replace("Z", "") < state.replace("Z", "")[:23]}
        assert older <= seen_so_far, f"state {state} passed records not yet emitted"


def test_a_sync_killed_after_any_checkpoint_resumes_without_loss(kustomer):
    every_id = org(kustomer)
    output = read_stream("conversations", CONFIG_2015)

    emitted = set()
    for message in output.records_and_state_messages:
        if message.type == Type.RECORD:
            emitted.add(message.record.data["id"])
            continue
        state = message.state.stream.stream_state.__dict__
        resumed = read_stream("conversations", CONFIG_2015, state=dict(state))
        assert emitted | {m.record.data["id"] for m in resumed.records} == every_id
