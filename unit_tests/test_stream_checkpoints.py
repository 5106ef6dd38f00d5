"""Stream level: state advances only past emitted records, is checkpointed during the sync, and a
sync resumes from any checkpoint without loss (a search stream on MockKustomer; a list stream on the
CDK's HttpMocker, one mocked Kustomer per sync)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airbyte_cdk.models import Type
from airbyte_cdk.test.mock_http import HttpMocker, HttpResponse

from unit_tests.conftest import CONFIG, ids, read_stream
from unit_tests.kustomer_mock import error_response, kustomer_http, kustomer_record, list_page, list_request, object_id, resource

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


USERS_PAGE_1 = list_request("users", deleted="false", pageSize=3)  # the active users (the pending and deactivated: none)
USERS_PAGE_2 = list_request("users", deleted="false", page=2, pageSize=3)


def serve_users(http: HttpMocker, page_1: HttpResponse, page_2: HttpResponse) -> None:
    http.get(list_request("users", pending="true", pageSize=3), list_page([]))
    http.get(list_request("users", deleted="true", pageSize=3), list_page([]))
    http.get(USERS_PAGE_1, page_1)
    http.get(USERS_PAGE_2, page_2)


def test_a_list_stream_that_fails_on_a_later_page_keeps_its_old_state():
    """List endpoints are not sorted by updatedAt: a state taken from the first pages of a sync that then
    failed would skip the older records of the pages never read. The resumed sync must read them."""
    newest_first = [kustomer_record("user", n, datetime(2025, 6, 1, tzinfo=timezone.utc) - timedelta(days=n)) for n in range(1, 7)]
    page_1 = list_page(newest_first[:3], "/v1/users?page=2&pageSize=3", page=1, pageSize=3)
    config = {**CONFIG, "page_size": 3}
    old_state = {"updated_at": "2025-01-01T00:00:00.000000Z"}

    with kustomer_http(page_size=3) as http:  # Kustomer fails page 2 in the first sync ...
        serve_users(http, page_1, error_response(500, "Oops"))
        failed = read_stream("users", config, state=old_state)
        http.assert_number_of_calls(USERS_PAGE_2, 1 + 10)  # the first ask and the error handler's ten retries

    assert failed.errors and ids(failed) == [object_id(n) for n in (1, 2, 3)]
    assert all(m.state.stream.stream_state.__dict__ == old_state for m in failed.state_messages)
    with kustomer_http(page_size=3) as http:  # ... and serves it in the next
        serve_users(http, page_1, list_page(newest_first[3:], page=2, pageSize=3))
        resumed = read_stream("users", config, state=old_state)
    assert sorted(ids(resumed)) == [object_id(n) for n in range(1, 7)]
