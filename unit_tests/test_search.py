"""source_kustomer/search.py: the search window, keyset pagination and the page check, each on its own."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

import pytest
import requests
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.search import SearchKeysetPagination, SearchPageCheck, SearchPagesCheck, SearchWindow

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
WINDOW = SearchWindow(NOW)


def a_slice(start: datetime, end: datetime, **extra: Any) -> StreamSlice:
    return StreamSlice(partition={}, cursor_slice={"start_time": start.strftime(FORMAT), "end_time": end.strftime(FORMAT)}, extra_fields=extra)


def bounds(phase: StreamSlice) -> tuple:
    return phase["start_time"], phase["end_time"], phase.extra_fields["archive"]


# --- SearchWindow ----------------------------------------------------------------------------------


def test_a_slice_inside_the_last_two_years_is_read_from_live_search_only():
    recent = a_slice(NOW - timedelta(days=30), NOW)

    assert [bounds(p) for p in WINDOW.phases(recent, with_archive=True)] == [(recent["start_time"], recent["end_time"], False)]


def test_an_older_slice_is_read_from_the_archive_then_from_live_search_with_two_days_asked_of_both():
    old = a_slice(NOW - timedelta(days=2000), NOW)

    archive, live = WINDOW.phases(old, with_archive=True)

    assert bounds(archive) == (old["start_time"], (NOW - timedelta(days=728)).strftime(FORMAT), True)
    assert bounds(live) == ((NOW - timedelta(days=732)).strftime(FORMAT), old["end_time"], False)


def test_a_slice_entirely_older_than_two_years_never_asks_live_search():
    ancient = a_slice(NOW - timedelta(days=2000), NOW - timedelta(days=1500))

    assert [p.extra_fields["archive"] for p in WINDOW.phases(ancient, with_archive=True)] == [True]


def test_a_context_without_the_archive_is_read_from_live_search_only():
    old = a_slice(NOW - timedelta(days=2000), NOW)

    (live,) = WINDOW.phases(old, with_archive=False)

    assert bounds(live) == ((NOW - timedelta(days=732)).strftime(FORMAT), old["end_time"], False)


def test_no_checkpoint_passes_the_start_of_live_search_while_the_archive_is_read():
    archive, live = WINDOW.phases(a_slice(NOW - timedelta(days=2000), NOW), with_archive=True)
    in_the_margin = NOW - timedelta(days=729)

    assert WINDOW.checkpoint_in(archive, in_the_margin) == NOW - timedelta(days=732)
    assert WINDOW.checkpoint_in(archive, NOW - timedelta(days=900)) == NOW - timedelta(days=900)
    assert WINDOW.checkpoint_in(live, in_the_margin) == in_the_margin


def test_the_window_is_the_sync_s_own_now():
    assert SearchWindow.of({"sync_started_at": "2026-06-01T12:00:00.000000Z"}) == WINDOW


# --- SearchKeysetPagination ------------------------------------------------------------------------


def page(updated: List[Any], has_next: bool, total: Optional[int] = None) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    body: Dict[str, Any] = {"data": [{"id": f"id{i}", "attributes": {"updatedAt": u}} for i, u in enumerate(updated)],
                            "links": {"next": "/v1/customers/search?page=2" if has_next else None}}
    if total is not None:
        body["meta"] = {"total": total}
    response._content = json.dumps(body).encode()
    response.request = requests.Request("POST", "https://api.kustomerapp.com/v1/customers/search?page=1").prepare()
    return response


PAGINATION = SearchKeysetPagination(config={}, parameters={}, page_size=3)
RECENT = a_slice(datetime.now(timezone.utc) - timedelta(days=10), datetime.now(timezone.utc))
A, B, C = "2025-05-01T09:00:00.000Z", "2025-05-01T09:30:00.000Z", "2025-05-01T09:45:00.000Z"
T = "2025-05-01T10:00:00.000Z"


def next_token(response: requests.Response, token: Optional[Dict[str, Any]] = None, stream_slice: StreamSlice = RECENT):
    return PAGINATION.next_page_token(response, 3, None, token, stream_slice=stream_slice)


def test_next_query_starts_at_the_last_updated_at_on_page_one():
    assert next_token(page([A, B, C], True)) == {"updated_at": C, "page": 1}


def test_a_resource_without_a_date_neither_stops_nor_misleads_the_search():
    assert next_token(page([A, B, None], True)) == {"updated_at": B, "page": 1}  # the last dated one
    assert next_token(page([None, B, B], True))["until"] == B  # one instant once the undated one is left aside
    assert next_token(page([None, "yesterday", 7], True), {"updated_at": A, "page": 1}) == {"updated_at": A, "page": 2}


def test_the_last_page_of_a_query_ends_it():
    assert next_token(page([A, B], False)) is None


def test_a_page_inside_one_instant_reads_that_instant_on_its_own_then_goes_on_a_millisecond_later():
    entering = next_token(page([T, T, T], True), {"updated_at": "s", "page": 1})
    second = next_token(page([T, T, T], True, total=7), entering)
    third = next_token(page([T, T, T], True, total=7), second)
    done = next_token(page([T], False, total=7), {**third, "page": 3})

    assert entering == {"updated_at": T, "until": T, "page": 1, "total": None, "pass": 0}
    assert second == {**entering, "page": 2, "total": 7}
    assert third == {**entering, "page": 3, "total": 7}
    assert done == {"updated_at": "2025-05-01T10:00:00.001Z", "page": 1}


def test_an_instant_that_lost_a_member_while_read_is_read_again_from_page_one():
    reading = {"updated_at": T, "until": T, "page": 3, "total": 7, "pass": 0}

    assert next_token(page([T, T, T], True, total=6), reading) == {**reading, "page": 1, "total": 6, "pass": 1}


def test_an_instant_that_ends_the_slice_ends_it():
    ending = a_slice(datetime(2025, 5, 1), datetime(2025, 5, 1, 10))  # the slice ends at the instant itself

    assert next_token(page([T], False, total=1), {"updated_at": T, "until": T, "page": 1}, ending) is None


def test_a_burst_past_one_hundred_pages_raises_instead_of_looping():
    with pytest.raises(AirbyteTracedException, match=f"share updatedAt {T}"):
        next_token(page([T, T, T], True, total=500), {"updated_at": T, "until": T, "page": 100, "total": 500})


# --- SearchPageCheck -------------------------------------------------------------------------------


def rec(i: str, updated: Any) -> Dict[str, Any]:
    return {"type": "conversation", "id": i, "attributes": {"updatedAt": updated}}


def check(**parameters: Any) -> SearchPageCheck:
    return SearchPageCheck(config={}, parameters={"name": "conversations", "query_context": "conversation", **parameters})


SPRING = a_slice(datetime(2025, 3, 1), datetime(2025, 6, 30))


def test_boundary_repeats_are_dropped_per_slice():
    repeat_filter = check()
    one, two = a_slice(datetime(2025, 1, 1), datetime(2025, 12, 31)), a_slice(datetime(2025, 2, 1), datetime(2025, 12, 31))

    first = list(repeat_filter.filter_records([rec("a", A), rec("b", B), rec("c", B)], {}, one))
    other_slice = list(repeat_filter.filter_records([rec("b", B)], {}, two))
    second = list(repeat_filter.filter_records([rec("b", B), rec("c", B), rec("d", B), rec("e", C)], {}, one))
    undated = list(repeat_filter.filter_records([rec("x", None), rec("y", 7), rec("e", C), rec("x", None), rec("y", 7)], {}, one))

    assert [r["id"] for r in first] == ["a", "b", "c"]
    assert [r["id"] for r in other_slice] == ["b"]
    assert [r["id"] for r in second] == ["d", "e"]
    assert [r["id"] for r in undated] == ["x", "y"]  # remembered for the slice, not by instant


def test_a_page_with_an_object_outside_the_range_asked_stops_the_stream_naming_it():
    with pytest.raises(AirbyteTracedException) as refused:
        list(check().filter_records([rec("a", A), rec("late", "2025-08-01T00:00:00.000Z")], {}, SPRING))

    message = refused.value.message
    assert "conversation late updated at 2025-08-01T00:00:00.000Z, outside that range" in message
    assert "conversations cannot be read exactly" in message and "resumes from the last state without loss" in message


def test_a_page_out_of_ascending_order_stops_the_stream_naming_both_objects():
    with pytest.raises(AirbyteTracedException, match="conversation b updated at .* after conversation a .* not in ascending order"):
        list(check().filter_records([rec("a", C), rec("b", A)], {}, SPRING))


def test_the_range_of_a_later_page_is_the_one_its_query_asked():
    token = {"next_page_token": {"updated_at": B, "page": 1}}

    with pytest.raises(AirbyteTracedException, match="conversation a updated at 2025-05-01T09:00:00.000Z, outside that range"):
        list(check().filter_records([rec("a", A)], {}, SPRING, token))
    assert [r["id"] for r in check().filter_records([rec("b", B), rec("c", C)], {}, SPRING, token)] == ["b", "c"]


def test_an_instant_read_on_its_own_holds_only_that_instant():
    token = {"next_page_token": {"updated_at": T, "until": T, "page": 2}}

    with pytest.raises(AirbyteTracedException, match="outside that range"):
        list(check().filter_records([rec("a", T), rec("b", "2025-05-01T10:00:00.001Z")], {}, SPRING, token))


def test_undated_objects_are_not_judged():
    assert [r["id"] for r in check().filter_records([rec("a", A), rec("x", None), rec("y", "yesterday"), rec("b", B)], {}, SPRING)] == ["a", "x", "y", "b"]


def test_the_archive_is_named_when_it_answers_out_of_order():
    archive = a_slice(datetime(2020, 1, 1), datetime(2024, 1, 1), archive=True)

    with pytest.raises(AirbyteTracedException, match="archive/search"):
        list(check().filter_records([rec("a", "2023-01-02T00:00:00.000Z"), rec("b", "2023-01-01T00:00:00.000Z")], {}, archive))


def test_pages_as_records_are_checked_and_lose_their_repeats():
    pages = SearchPagesCheck(config={}, parameters={"name": "search_pages", "query_context": "customer"})
    first = list(pages.filter_records([{"data": [rec("a", A), rec("b", B)], "links": {}}], {}, SPRING))
    second = list(pages.filter_records([{"data": [rec("b", B), rec("c", C)], "links": {}}], {}, SPRING))

    assert [r["id"] for r in first[0]["data"]] == ["a", "b"] and [r["id"] for r in second[0]["data"]] == ["c"]
    with pytest.raises(AirbyteTracedException, match="not in ascending order"):
        list(pages.filter_records([{"data": [rec("d", C), rec("e", A)]}], {}, SPRING))
