"""Stream level: the list streams, GET /v1/<endpoint>, read through the manifest page by page by
Kustomer's relative ``links.next``, incremental on the client side. Kustomer is the CDK's HttpMocker:
each test names every request a sync sends (path and whole query) and its answer. The users' one
filter at a time is test_lists.py's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Dict, List

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.mock_http import HttpMocker, HttpRequest
from airbyte_cdk.test.mock_http.response_builder import RecordBuilder

from unit_tests.conftest import LIST_STREAMS, ids, last_state, read_stream
from unit_tests.kustomer_mock import kustomer_record, list_page, list_request, object_id, serve_plain_org_http
from unit_tests.manifest_streams import LIST_ENDPOINTS

T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
list_streams = pytest.mark.parametrize("stream,max_page_size", LIST_STREAMS.items())

#: The filter each page of a stream keeps (users: the active ones, asked apart from the pending and
#: the deactivated, see test_lists.py).
KEPT_FILTER: Dict[str, Dict[str, str]] = {"users": {"deleted": "false"}}


def listed(stream: str, count: int) -> List[RecordBuilder]:
    return [kustomer_record(stream[:-1], n, T0 + timedelta(hours=n)) for n in range(1, count + 1)]


def page_request(stream: str, page_size: int, page: int = 1) -> HttpRequest:
    """The request for a page of the stream: page 1 without ``page``, the next ones as links.next names them."""
    numbered = {"page": page} if page > 1 else {}
    return list_request(LIST_ENDPOINTS[stream], **KEPT_FILTER.get(stream, {}), **numbered, pageSize=page_size)


def next_link(stream: str, page: int, page_size: int) -> str:
    """Kustomer's relative links.next (for users without the filter: the connector keeps it itself)."""
    endpoint = LIST_ENDPOINTS[stream]
    return f"/v1/{endpoint}{'&' if '?' in endpoint else '?'}page={page}&pageSize={page_size}"


def serve(http_mocker: HttpMocker, stream: str, records: List[RecordBuilder], page_size: int) -> List[HttpRequest]:
    """The stream's records, ``page_size`` a page; returns the request of each page."""
    if stream == "users":  # no pending and no deactivated users
        http_mocker.get(list_request("users", pending="true", pageSize=page_size), list_page([]))
        http_mocker.get(list_request("users", deleted="true", pageSize=page_size), list_page([]))
    pages = [records[start : start + page_size] for start in range(0, len(records), page_size)] or [[]]
    requests = []
    for number, page in enumerate(pages, start=1):
        request = page_request(stream, page_size, number)
        more = next_link(stream, number + 1, page_size) if number < len(pages) else None
        http_mocker.get(request, list_page(page, more, page=number, pageSize=page_size))
        requests.append(request)
    return requests


@list_streams
def test_one_page(http_mocker, stream, max_page_size):
    [first] = serve(http_mocker, stream, listed(stream, 2), max_page_size)  # asked with the endpoint's largest page

    output = read_stream(stream, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(1), object_id(2)]
    http_mocker.assert_number_of_calls(first, 1)


@list_streams
def test_several_pages_follow_the_relative_next_link(http_mocker, stream, max_page_size):
    pages = serve(http_mocker, stream, listed(stream, max_page_size * 2 + 1), max_page_size)

    output = read_stream(stream, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in range(1, max_page_size * 2 + 2)]
    assert len(pages) == 3
    for page in pages:  # page 2 and 3 as links.next names them, the kept filter and the page size once each
        http_mocker.assert_number_of_calls(page, 1)


@list_streams
def test_empty(http_mocker, stream, max_page_size):
    [first] = serve(http_mocker, stream, [], max_page_size)

    assert ids(read_stream(stream, sync_mode=SyncMode.full_refresh)) == []
    http_mocker.assert_number_of_calls(first, 1)


@list_streams
def test_incremental_emits_only_records_updated_since_the_state(http_mocker, stream, max_page_size):
    [first_page] = serve(http_mocker, stream, listed(stream, 5), max_page_size)

    first = read_stream(stream)
    second = read_stream(stream, state=last_state(first))

    assert ids(first) == [object_id(n) for n in range(1, 6)]
    assert last_state(first) == {"updated_at": "2025-06-01T05:00:00.000000Z"}
    if stream == "users":
        assert {record.record.data["status"] for record in first.records} == {"active"}
    assert ids(second) == [object_id(5)]  # the record at the state instant is the boundary overlap
    http_mocker.assert_number_of_calls(first_page, 2)  # a list is read whole by every sync


def test_a_smaller_configured_page_size_applies_to_lists_too(http_mocker):
    serve_plain_org_http(http_mocker, page_size=2)
    first, second = serve(http_mocker, "tags", listed("tags", 3), page_size=2)

    output = read_stream("tags", {"api_token": "t", "page_size": 2}, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in (1, 2, 3)]
    http_mocker.assert_number_of_calls(first, 1)
    http_mocker.assert_number_of_calls(second, 1)
