"""source_kustomer/search.py on its own: the search window (SearchWindow), the retriever that splits a
slice between the archive and live search and checkpoints it (KustomerSearchRetriever), keyset
pagination (SearchKeysetPagination), the page check (SearchPageExtractor) and the boundary repeats
(BoundaryRepeatFilter, BoundaryRepeatPageFilter). Whole search streams are test_stream_searches.py's."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import pytest
import requests
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.search import (
    BoundaryRepeatFilter,
    BoundaryRepeatPageFilter,
    KustomerSearchRetriever,
    SearchKeysetPagination,
    SearchPageExtractor,
    SearchWindow,
)

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


# --- KustomerSearchRetriever -----------------------------------------------------------------------


class Phases:
    """The inner retriever: answers each phase slice (archive or live) with its records, and notes the slices asked."""

    def __init__(self, archive: List[Dict[str, Any]], live: List[Dict[str, Any]]) -> None:
        self.answers, self.asked = {True: archive, False: live}, []

    def read_records(self, records_schema: Any, stream_slice: Optional[StreamSlice] = None):
        self.asked.append(stream_slice)
        yield from self.answers[bool(stream_slice.extra_fields.get("archive")) if stream_slice is not None else False]


class Cursor:
    """The stream's concurrent cursor: notes each checkpoint (the observed value and the closed slice)."""

    cursor_field = SimpleNamespace(cursor_field_key="updated_at")

    def __init__(self) -> None:
        self.observed: List[Any] = []
        self.closed: List[Any] = []

    def observe(self, record: Any) -> None:
        self.observed.append(record.data["updated_at"])

    def close_partition(self, partition: Any) -> None:
        self.closed.append(partition.to_slice())


def at(moment: datetime) -> Dict[str, Any]:
    return {"id": moment.isoformat(), "updated_at": moment.strftime(FORMAT)}


def search_retriever(inner: Phases, context: str = "conversation", every: int = 500) -> KustomerSearchRetriever:
    return KustomerSearchRetriever(retriever=inner, cursor=Cursor(), config={"sync_started_at": NOW.strftime(FORMAT)},
                                   parameters={"name": "conversations", "query_context": context}, checkpoint_every=every)


def test_an_old_slice_is_read_from_the_archive_then_from_live_search_and_closed_at_its_newest_record():
    old, recent = NOW - timedelta(days=1000), NOW - timedelta(days=3)
    inner = Phases(archive=[at(old)], live=[at(recent)])
    retriever = search_retriever(inner)
    whole = a_slice(NOW - timedelta(days=2000), NOW)

    assert [r["id"] for r in retriever.read_records({}, whole)] == [old.isoformat(), recent.isoformat()]
    assert [s.extra_fields["archive"] for s in inner.asked] == [True, False]
    assert retriever.cursor.observed == [recent.strftime(FORMAT)]
    assert retriever.cursor.closed == [{**whole.cursor_slice, "end_time": recent.strftime(FORMAT)}]


def test_a_checkpoint_every_so_many_records_lags_two_records_behind_what_was_yielded():
    moments = [NOW - timedelta(days=10, hours=-n) for n in range(1, 7)]
    retriever = search_retriever(Phases(archive=[], live=[at(m) for m in moments]), every=2)

    list(retriever.read_records({}, a_slice(NOW - timedelta(days=30), NOW)))

    # handled once two more records came: the 1st after the 3rd, the 3rd after the 5th; then the whole slice
    assert retriever.cursor.observed == [moments[0].strftime(FORMAT), moments[2].strftime(FORMAT), moments[5].strftime(FORMAT)]
    assert [c["end_time"] for c in retriever.cursor.closed] == retriever.cursor.observed


def test_no_checkpoint_taken_while_the_archive_is_read_passes_the_start_of_live_search():
    in_the_margin = [NOW - timedelta(days=729, hours=-n) for n in range(4)]  # archive records past where live search begins
    retriever = search_retriever(Phases(archive=[at(m) for m in in_the_margin], live=[]), every=1)

    list(retriever.read_records({}, a_slice(NOW - timedelta(days=2000), NOW)))

    capped = (NOW - timedelta(days=732)).strftime(FORMAT)
    assert retriever.cursor.observed[:-1] == [capped, capped]
    assert retriever.cursor.observed[-1] == in_the_margin[-1].strftime(FORMAT)  # the whole slice read: its newest


def test_records_without_a_usable_cursor_value_are_yielded_and_move_no_checkpoint():
    retriever = search_retriever(Phases(archive=[], live=[{"id": "x", "updated_at": None}, {"id": "y", "updated_at": "yesterday"}]), every=1)

    assert [r["id"] for r in retriever.read_records({}, a_slice(NOW - timedelta(days=30), NOW))] == ["x", "y"]
    assert retriever.cursor.observed == retriever.cursor.closed == []


def test_a_slice_without_a_time_range_is_read_as_it_is():
    inner = Phases(archive=[], live=[{"id": "a"}])
    retriever = search_retriever(inner)
    plain = StreamSlice(partition={"p": 1}, cursor_slice={})

    assert [r["id"] for r in retriever.read_records({}, plain)] == ["a"]
    assert inner.asked == [plain] and retriever.cursor.closed == []


def test_a_context_the_archive_does_not_document_says_which_range_it_cannot_read(caplog):
    inner = Phases(archive=[{"id": "never"}], live=[])
    retriever = search_retriever(inner, context="note")

    with caplog.at_level(logging.WARNING, logger="airbyte"):
        list(retriever.read_records({}, a_slice(NOW - timedelta(days=2000), NOW)))

    assert [s.extra_fields["archive"] for s in inner.asked] == [False]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"conversations: objects last updated between {(NOW - timedelta(days=2000)).strftime(FORMAT)} and "
                              f"{(NOW - timedelta(days=730)).strftime(FORMAT)} are not read")


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


# --- SearchPageExtractor and BoundaryRepeatFilter ---------------------------------------------------


def rec(i: str, updated: Any) -> Dict[str, Any]:
    return {"type": "conversation", "id": i, "attributes": {"updatedAt": updated}}


def answered(records: List[Dict[str, Any]], gte: str = "2025-03-01T00:00:00.000000Z", lte: str = "2025-06-30T00:00:00.000000Z",
             path: str = "/v1/customers/search") -> requests.Response:
    """A search page as Kustomer answers it, with the request (its range) it answers."""
    body = {"queryContext": "conversation", "and": [{"conversation_updated_at": {"gte": gte}}, {"conversation_updated_at": {"lte": lte}}]}
    response = requests.Response()
    response.status_code, response._content = 200, json.dumps({"data": records}).encode()
    response.request = requests.Request("POST", f"https://api.kustomerapp.com{path}?page=1", json=body).prepare()
    response.url = response.request.url
    return response


def page_of(records: List[Dict[str, Any]], **request: str) -> List[Dict[str, Any]]:
    extractor = SearchPageExtractor(field_path=["data"], config={}, parameters={"name": "conversations", "query_context": "conversation"})
    return list(extractor.extract_records(answered(records, **request)))


def test_a_page_inside_the_range_asked_and_in_order_is_taken_whole():
    assert [r["id"] for r in page_of([rec("a", A), rec("b", B), rec("c", B), rec("d", C)])] == ["a", "b", "c", "d"]


def test_a_page_with_an_object_outside_the_range_asked_stops_the_stream_naming_it():
    with pytest.raises(AirbyteTracedException) as refused:
        page_of([rec("a", A), rec("late", "2025-08-01T00:00:00.000Z")])

    message = refused.value.message
    assert "conversation late updated at 2025-08-01T00:00:00.000Z, outside that range" in message
    assert "between 2025-03-01T00:00:00.000000Z and 2025-06-30T00:00:00.000000Z" in message
    assert "conversations cannot be read exactly" in message and "resumes from the last state without loss" in message


def test_a_page_out_of_ascending_order_stops_the_stream_naming_both_objects():
    with pytest.raises(AirbyteTracedException, match="conversation b updated at .* after conversation a .* not in ascending order"):
        page_of([rec("a", C), rec("b", A)])


def test_the_range_is_the_one_the_request_asked_a_later_query_or_an_instant_alike():
    with pytest.raises(AirbyteTracedException, match="conversation a updated at 2025-05-01T09:00:00.000Z, outside that range"):
        page_of([rec("a", A), rec("b", B)], gte=B)
    with pytest.raises(AirbyteTracedException, match="outside that range"):
        page_of([rec("a", T), rec("b", "2025-05-01T10:00:00.001Z")], gte=T, lte=T)


def test_undated_objects_are_not_judged():
    assert [r["id"] for r in page_of([rec("a", A), rec("x", None), rec("y", "yesterday"), rec("b", B)])] == ["a", "x", "y", "b"]


def test_the_archive_is_named_when_it_answers_out_of_order():
    with pytest.raises(AirbyteTracedException, match="archive/search"):
        page_of([rec("a", "2023-01-02T00:00:00.000Z"), rec("b", "2023-01-01T00:00:00.000Z")], gte="2020-01-01T00:00:00.000Z",
                lte="2024-01-01T00:00:00.000Z", path="/v1/customers/archive/search")


def test_a_whole_page_as_the_record_is_checked_on_its_data():
    pages = SearchPageExtractor(field_path=[], config={}, parameters={"name": "search_pages", "query_context": "customer"})

    assert [p["data"][0]["id"] for p in pages.extract_records(answered([rec("a", A), rec("b", B)]))] == ["a"]
    with pytest.raises(AirbyteTracedException, match="not in ascending order"):
        list(pages.extract_records(answered([rec("d", C), rec("e", A)])))


def test_boundary_repeats_are_dropped_per_slice():
    repeat_filter = BoundaryRepeatFilter(config={}, parameters={})
    one, two = a_slice(datetime(2025, 1, 1), datetime(2025, 12, 31)), a_slice(datetime(2025, 2, 1), datetime(2025, 12, 31))

    first = list(repeat_filter.filter_records([rec("a", A), rec("b", B), rec("c", B)], {}, one))
    other_slice = list(repeat_filter.filter_records([rec("b", B)], {}, two))
    second = list(repeat_filter.filter_records([rec("b", B), rec("c", B), rec("d", B), rec("e", C)], {}, one))
    undated = list(repeat_filter.filter_records([rec("x", None), rec("y", 7), rec("e", C), rec("x", None), rec("y", 7)], {}, one))

    assert [r["id"] for r in first] == ["a", "b", "c"]
    assert [r["id"] for r in other_slice] == ["b"]
    assert [r["id"] for r in second] == ["d", "e"]
    assert [r["id"] for r in undated] == ["x", "y"]  # remembered for the slice, not by instant


def test_a_condition_filters_after_the_repeats_are_dropped():
    with_notes = BoundaryRepeatFilter(config={}, parameters={}, condition="{{ record['attributes'].get('noteCount') != 0 }}")
    records = [{**rec("a", A), "attributes": {"updatedAt": A, "noteCount": 0}}, {**rec("b", B), "attributes": {"updatedAt": B, "noteCount": 2}}]

    assert [r["id"] for r in with_notes.filter_records(records, {}, SPRING)] == ["b"]


def test_pages_as_records_lose_their_repeats():
    pages = BoundaryRepeatPageFilter(config={}, parameters={})
    first = list(pages.filter_records([{"data": [rec("a", A), rec("b", B)], "links": {}}], {}, SPRING))
    second = list(pages.filter_records([{"data": [rec("b", B), rec("c", C)], "links": {}}], {}, SPRING))

    assert [r["id"] for r in first[0]["data"]] == ["a", "b"] and [r["id"] for r in second[0]["data"]] == ["c"]


def test_a_query_asked_again_unchanged_stops_instead_of_looping():
    with pytest.raises(AirbyteTracedException, match="ask the same query again"):
        next_token(page([A, B, C], True), {"updated_at": C, "page": 1})


SPRING = a_slice(datetime(2025, 3, 1), datetime(2025, 6, 30))
