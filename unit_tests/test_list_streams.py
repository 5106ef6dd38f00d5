"""The list streams: GET /v1/<endpoint>, following Kustomer's relative links.next."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode

from unit_tests.conftest import LIST_STREAMS, ids, last_state, read_stream
from unit_tests.manifest_streams import LIST_ENDPOINTS
from unit_tests.kustomer_mock import object_id, resource

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
list_streams = pytest.mark.parametrize("stream,max_page_size", LIST_STREAMS.items())


def requests_of(kustomer, stream: str):
    """The requests the stream itself sent (stream building also lists the org's enabled Klasses);
    for users, those of the active users (the pending and the deactivated are asked first, apart)."""
    path = "/v1/" + LIST_ENDPOINTS[stream].split("?")[0]
    sent = [r for r in kustomer.mocker.request_history if r.path == path.lower() and "status=enabled" not in r.url]
    return [r for r in sent if "pending=true" not in r.url and "deleted=true" not in r.url]


ACTIVE_ONLY = {"users": "&deleted=false"}  # the filter the users' pages keep


def listed(stream: str, count: int):
    return [resource(stream[:-1], n, T0 + timedelta(hours=n)) for n in range(1, count + 1)]


@list_streams
def test_one_page(kustomer, stream, max_page_size):
    kustomer.serve_list(LIST_ENDPOINTS[stream], listed(stream, 2))

    output = read_stream(stream, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(1), object_id(2)]
    assert requests_of(kustomer, stream)[0].qs["pagesize"] == [str(max_page_size)]


@list_streams
def test_several_pages_follow_the_relative_next_link(kustomer, stream, max_page_size):
    kustomer.serve_list(LIST_ENDPOINTS[stream], listed(stream, max_page_size * 2 + 1))

    output = read_stream(stream, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in range(1, max_page_size * 2 + 2)]
    urls = [r.url for r in requests_of(kustomer, stream)]
    endpoint = LIST_ENDPOINTS[stream]
    assert urls[1] == f"https://api.kustomerapp.com/v1/{endpoint}{'&' if '?' in endpoint else '?'}page=2&pageSize={max_page_size}{ACTIVE_ONLY.get(stream, '')}"
    assert len(urls) == 3


@list_streams
def test_empty(kustomer, stream, max_page_size):
    kustomer.serve_list(LIST_ENDPOINTS[stream], [])

    assert ids(read_stream(stream, sync_mode=SyncMode.full_refresh)) == []


@list_streams
def test_incremental_emits_only_records_updated_since_the_state(kustomer, stream, max_page_size):
    kustomer.serve_list(LIST_ENDPOINTS[stream], listed(stream, 5))

    first = read_stream(stream)
    second = read_stream(stream, state=last_state(first))

    assert ids(first) == [object_id(n) for n in range(1, 6)]
    assert last_state(first) == {"updated_at": "2025-06-01T05:00:00.000000Z"}
    if stream == "users":
        assert {record.record.data["status"] for record in first.records} == {"active"}
    assert ids(second) == [object_id(5)]  # the record at the state instant is the boundary overlap


def test_a_smaller_configured_page_size_applies_to_lists_too(kustomer):
    kustomer.serve_list("tags", listed("tags", 3))

    read_stream("tags", {"api_token": "t", "page_size": 2}, sync_mode=SyncMode.full_refresh)

    assert requests_of(kustomer, "tags")[0].qs["pagesize"] == ["2"]


def test_users_are_read_one_status_at_a_time_each_user_once_with_its_status(requests_mock):
    def users(*numbers):
        return {"data": [resource("user", n, T0) for n in numbers], "links": {"next": None}}

    requests_mock.get("https://api.kustomerapp.com/v1/users?pending=true", json=users(1))
    requests_mock.get("https://api.kustomerapp.com/v1/users?deleted=true", json=users(2))
    requests_mock.get("https://api.kustomerapp.com/v1/users?deleted=false", json=users(1, 3))  # lists the pending one too

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    assert [(m.record.data["id"], m.record.data["status"]) for m in output.records] == [
        (object_id(1), "pending"), (object_id(2), "deactivated"), (object_id(3), "active")]
    sent = [r.qs for r in requests_mock.request_history if r.path == "/v1/users"]
    assert [{k: v for k, v in q.items() if k != "pagesize"} for q in sent] == [{"pending": ["true"]}, {"deleted": ["true"]}, {"deleted": ["false"]}]
