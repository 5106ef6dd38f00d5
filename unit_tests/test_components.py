"""Each component in source_kustomer/components.py, on its own."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

import pytest
import requests
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components import (
    ApiTokenGiven,
    BoundaryRepeatFilter,
    FlattenJsonApiResource,
    KustomerHostOnly,
    RateLimitResetBackoff,
    SearchKeysetPagination,
    UtcDateTime,
    snake_case,
)


@pytest.mark.parametrize(
    "camel,snake",
    [
        ("createdAt", "created_at"),
        ("lastMessageUnrespondedToSinceLastDone", "last_message_unresponded_to_since_last_done"),
        ("totalSpentNum", "total_spent_num"),
        ("os00Str", "os00_str"),
        ("smoochIds", "smooch_ids"),
        ("shopify-orders", "shopify-orders"),
        ("id", "id"),
        ("sla", "sla"),
    ],
)
def test_snake_case_matches_stitch(camel, snake):
    assert snake_case(camel) == snake


def test_flatten_keeps_id_type_links_and_relationship_data():
    record = {
        "type": "kobject",
        "id": "k1",
        "attributes": {"title": "Order", "custom": {"skusTxt": "a,b"}},
        "relationships": {"klass": {"link": "/v1/klasses/orders", "data": {"type": "klass", "id": "x"}}, "org": {"links": {}}},
        "links": {"self": "/v1/klasses/orders/k1"},
    }

    FlattenJsonApiResource().transform(record)

    assert record == {
        "type": "kobject",
        "id": "k1",
        "title": "Order",
        "custom": {"skus_txt": "a,b"},
        "custom_skus_txt": "a,b",
        "klass": {"type": "klass", "id": "x"},
        "links": {"self": "/v1/klasses/orders/k1"},
    }


# --- SearchKeysetPagination ---------------------------------------------------------------------


def page(updated: List[str], has_next: bool, archive: bool = False, total: Optional[int] = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    data = [{"id": f"id{i}", "attributes": {"updatedAt": u}} for i, u in enumerate(updated)]
    body = {"data": data, "links": {"next": "/v1/customers/search?page=2" if has_next else None}}
    if total is not None:
        body["meta"] = {"total": total}
    response._content = __import__("json").dumps(body).encode()
    path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
    response.request = requests.Request("POST", f"https://api.kustomerapp.com{path}?page=1").prepare()
    return response


def a_slice(start: datetime, end: datetime) -> StreamSlice:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return StreamSlice(partition={}, cursor_slice={"start_time": start.strftime(fmt), "end_time": end.strftime(fmt)})


PAGINATION = SearchKeysetPagination(config={}, parameters={}, page_size=3)
RECENT = a_slice(datetime.now(timezone.utc) - timedelta(days=10), datetime.now(timezone.utc))


def next_token(response: requests.Response, token: Optional[Dict[str, Any]] = None, stream_slice: StreamSlice = RECENT):
    return PAGINATION.next_page_token(response, 3, None, token, stream_slice=stream_slice)


A, B, C = "2025-05-01T09:00:00.000Z", "2025-05-01T09:30:00.000Z", "2025-05-01T09:45:00.000Z"


def test_next_query_starts_at_the_last_updated_at_on_page_one():
    assert next_token(page([A, B, C], True)) == {"archive": False, "updated_at": C, "page": 1}


def test_a_resource_without_a_date_neither_stops_nor_misleads_the_search():
    assert next_token(page([A, B, None], True)) == {"archive": False, "updated_at": B, "page": 1}  # the last dated one
    assert next_token(page([None, B, B], True))["until"] == B  # one instant once the undated one is left aside
    assert next_token(page([None, "yesterday", 7], True), {"archive": False, "updated_at": A, "page": 1}) == {
        "archive": False, "updated_at": A, "page": 2}  # nothing to go on from: the same query's next page


def test_last_page_ends_the_slice():
    assert next_token(page([A, B], False)) is None


T = "2025-05-01T10:00:00.000Z"


def test_a_page_inside_one_instant_reads_that_instant_on_its_own_then_goes_on_a_millisecond_later():
    entering = next_token(page([T, T, T], True), {"archive": False, "updated_at": "s", "page": 1})
    second = next_token(page([T, T, T], True, total=7), entering)
    third = next_token(page([T, T, T], True, total=7), second)
    done = next_token(page([T], False, total=7), {**third, "page": 3})

    assert entering == {"archive": False, "updated_at": T, "until": T, "page": 1, "total": None, "pass": 0}
    assert second == {**entering, "page": 2, "total": 7}
    assert third == {**entering, "page": 3, "total": 7}
    assert done == {"archive": False, "updated_at": "2025-05-01T10:00:00.001Z", "page": 1}


def test_an_instant_that_lost_a_member_while_read_is_read_again_from_page_one():
    reading = {"archive": False, "updated_at": T, "until": T, "page": 3, "total": 7, "pass": 0}

    again = next_token(page([T, T, T], True, total=6), reading)

    assert again == {**reading, "page": 1, "total": 6, "pass": 1}


def test_an_instant_that_ends_the_slice_ends_it():
    ending = a_slice(datetime(2025, 5, 1), datetime(2025, 5, 1, 10))  # the slice ends at the instant itself

    assert next_token(page([T], False, total=1), {"archive": False, "updated_at": T, "until": T, "page": 1}, ending) is None


def test_a_burst_past_one_hundred_pages_raises_instead_of_looping():
    with pytest.raises(AirbyteTracedException, match=f"share updatedAt {T}"):
        next_token(page([T, T, T], True, total=500), {"archive": False, "updated_at": T, "until": T, "page": 100, "total": 500})


def test_the_archive_hands_over_to_live_search_when_the_slice_reaches_the_last_two_years():
    now = datetime.now(timezone.utc)
    straddling = a_slice(now - timedelta(days=900), now - timedelta(days=500))
    old = a_slice(now - timedelta(days=1500), now - timedelta(days=1000))

    assert next_token(page([A], False, archive=True), stream_slice=straddling) == {"archive": False, "updated_at": None, "page": 1}
    assert next_token(page([A], False, archive=True), stream_slice=old) is None
    assert next_token(page([A, B, C], True, archive=True), stream_slice=old)["archive"] is True


# --- BoundaryRepeatFilter -------------------------------------------------------------------------


def test_boundary_repeats_are_dropped_per_slice():
    repeat_filter = BoundaryRepeatFilter(config={}, parameters={})
    rec = lambda i, u: {"id": i, "attributes": {"updatedAt": u}}
    one, two = a_slice(datetime(2024, 1, 1), datetime(2024, 12, 31)), a_slice(datetime(2025, 1, 1), datetime(2025, 12, 31))

    first = list(repeat_filter.filter_records([rec("a", A), rec("b", B), rec("c", B)], {}, one))
    other_slice = list(repeat_filter.filter_records([rec("b", B)], {}, two))
    second = list(repeat_filter.filter_records([rec("b", B), rec("c", B), rec("d", B), rec("e", C)], {}, one))
    undated = list(repeat_filter.filter_records([rec("x", None), rec("y", 7), rec("e", C), rec("x", None), rec("y", 7)], {}, one))

    assert [r["id"] for r in first] == ["a", "b", "c"]
    assert [r["id"] for r in other_slice] == ["b"]
    assert [r["id"] for r in second] == ["d", "e"]
    assert [r["id"] for r in undated] == ["x", "y"]  # remembered for the slice, not by instant


# --- RateLimitResetBackoff ------------------------------------------------------------------------


def response(status: int, headers: Dict[str, str]) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers)
    return r


EPOCH = "epoch"  # x-ratelimit-reset given as UTC epoch seconds, offset from now


@pytest.mark.parametrize(
    "reset,reset_form,retry_after,low,high",
    [
        (20, EPOCH, None, 18, 21),
        (12, "seconds", None, 12, 12),  # seconds from now, the other form seen in the wild
        (50, EPOCH, "3", 3, 3),
        (-5, EPOCH, None, 1, 1),
        (99999, EPOCH, None, 900, 900),
    ],
)
def test_429_waits_for_the_window(reset, reset_form, retry_after, low, high):
    headers = {"x-ratelimit-reset": str(int(time.time()) + reset if reset_form == EPOCH else reset)}
    if retry_after:
        headers["Retry-After"] = retry_after
    wait = RateLimitResetBackoff(parameters={}).backoff_time(response(429, headers), 1)
    assert low - 0.01 <= wait <= high


@pytest.mark.parametrize("status,headers", [(429, {}), (429, {"x-ratelimit-reset": "soon"}), (500, {"x-ratelimit-reset": "12"})])
def test_other_cases_leave_the_wait_to_the_cdk(status, headers):
    assert RateLimitResetBackoff(parameters={}).backoff_time(response(status, headers), 1) is None
    assert RateLimitResetBackoff(parameters={}).backoff_time(requests.ConnectionError(), 1) is None


# --- config validations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.kustomerapp.com", "https://api.prod2.kustomerapp.com/", "https://acme.api.kustomerapp.com", "http://127.0.0.1:8080", "http://localhost:1"],
)
def test_kustomer_and_loopback_hosts_pass(url):
    KustomerHostOnly().validate(url)


@pytest.mark.parametrize("url", ["https://api.kustomerapp.com@evil.example", "http://api.kustomerapp.com", "https://evil.example", "", None])
def test_other_hosts_are_refused(url):
    with pytest.raises(AirbyteTracedException, match="not a Kustomer API host"):
        KustomerHostOnly().validate(url)


def test_start_date_must_be_a_real_utc_instant():
    UtcDateTime().validate("2024-02-29T00:00:00Z")
    with pytest.raises(AirbyteTracedException, match="YYYY-MM-DDTHH:MM:SSZ"):
        UtcDateTime().validate("2023-02-29T00:00:00Z")


def test_blank_token_is_refused():
    with pytest.raises(AirbyteTracedException, match="api_token"):
        ApiTokenGiven().validate("  \n")
