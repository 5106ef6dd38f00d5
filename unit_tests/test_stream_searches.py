"""Stream level: the search streams read through the manifest from MockKustomer's stateful search
(POST /v1/customers/search and its archive), keyset-paginated on updatedAt, exact: every page, burst,
page cap, archive split and incremental state. The search components on their own are test_search.py's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode

from unit_tests.conftest import CONFIG, SEARCH_STREAMS, ids, last_state, read_stream
from source_kustomer.contract import updated_at_attribute
from unit_tests.kustomer_mock import object_id, resource

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
search_streams = pytest.mark.parametrize("stream,context", SEARCH_STREAMS.items())


def spaced(context: str, count: int, start: datetime = T0, step: timedelta = timedelta(minutes=1), first: int = 1):
    return [resource(context, first + i, start + step * i) for i in range(count)]


@search_streams
def test_one_page_emits_every_record_and_state_at_the_newest(kustomer, stream, context):
    kustomer.add(context, spaced(context, 3))

    output = read_stream(stream)

    assert ids(output) == [object_id(1), object_id(2), object_id(3)]
    assert last_state(output) == {"updated_at": "2025-03-01T00:02:00.000000Z"}
    body = kustomer.search_requests()[0].json()
    assert body["queryContext"] == context
    assert body["sort"] == [{updated_at_attribute(context): "asc"}]
    assert set(body["and"][0]) == {updated_at_attribute(context)}


@search_streams
def test_several_pages_restart_from_the_last_updated_at_and_emit_each_record_once(kustomer, stream, context):
    kustomer.add(context, spaced(context, 10))

    output = read_stream(stream, {**CONFIG, "page_size": 3})

    assert ids(output) == [object_id(n) for n in range(1, 11)]
    lower_bounds = [r.json()["and"][0][updated_at_attribute(context)]["gte"] for r in kustomer.search_requests()]
    assert "2025-03-01T00:02:00.000Z" in lower_bounds  # the third record's updatedAt opens the next query
    assert all("page=1&" in r.url for r in kustomer.search_requests())


@search_streams
def test_empty_org_emits_nothing_and_still_checkpoints(kustomer, stream, context):
    output = read_stream(stream)

    assert ids(output) == []
    assert last_state(output) == {"updated_at": "2025-01-01T00:00:00.000000Z"}


@search_streams
def test_incremental_sync_asks_only_from_the_state_minus_lookback(kustomer, stream, context):
    kustomer.add(context, spaced(context, 5, step=timedelta(hours=1)))

    output = read_stream(stream, {**CONFIG, "lookback_window": "PT5M"}, state={"updated_at": "2025-03-01T02:00:00.000Z"})

    assert ids(output) == [object_id(3), object_id(4), object_id(5)]  # 02:00 is the boundary overlap
    assert min(r.json()["and"][0][updated_at_attribute(context)]["gte"] for r in kustomer.search_requests()) == "2025-03-01T01:55:00.000000Z"
    assert last_state(output) == {"updated_at": "2025-03-01T04:00:00.000000Z"}


def test_full_refresh_reads_from_the_start_date(kustomer):
    kustomer.add("customer", spaced("customer", 4))

    output = read_stream("customers", sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in range(1, 5)]


@search_streams
def test_more_than_one_hundred_pages_never_hit_the_page_cap_and_lose_nothing(kustomer, stream, context):
    # 1,050 records at page size 10 is 105 pages: page numbers would hit Kustomer's cap of 100.
    kustomer.add(context, spaced(context, 1050, step=timedelta(seconds=1)))

    output = read_stream(stream, {**CONFIG, "page_size": 10})

    assert sorted(ids(output)) == sorted(object_id(n) for n in range(1, 1051))
    assert len(ids(output)) == 1050
    pages = [int(r.qs["page"][0]) for r in kustomer.search_requests()]
    assert max(pages) == 1
    # one repeated record per page, so the request count stays within 12% of the minimum here (10/page)
    assert len(kustomer.search_requests()) <= 1050 / 9 + 3


@search_streams
def test_burst_larger_than_a_page_terminates_and_emits_each_once(kustomer, stream, context):
    burst_at = T0 + timedelta(hours=1)
    before = spaced(context, 5)
    burst = [resource(context, 100 + i, burst_at) for i in range(23)]  # 23 records, page size 5
    after = spaced(context, 4, start=burst_at + timedelta(minutes=1), first=200)
    kustomer.add(context, before + burst + after)

    output = read_stream(stream, {**CONFIG, "page_size": 5})

    assert sorted(ids(output)) == sorted(r["id"] for r in before + burst + after)
    assert len(ids(output)) == 32
    assert len(kustomer.search_requests()) < 20


@pytest.mark.parametrize("moved_to", ["after the sync's end", "just after the burst"])
def test_a_burst_member_updated_while_the_burst_is_read_shifts_no_other_member_past_the_reader(kustomer, moved_to):
    """Reading an instant page by page, a member updated meanwhile leaves it and the members after it
    move up a place: the one that crosses the page boundary must still be read."""
    burst_at = T0 + timedelta(hours=1)
    burst = [resource("conversation", 100 + i, burst_at) for i in range(23)]  # page size 5: pages of the instant
    kustomer.add("conversation", spaced("conversation", 3) + burst + spaced("conversation", 2, start=burst_at + timedelta(hours=1), first=200))
    new_time = kustomer.now + timedelta(days=1) if moved_to == "after the sync's end" else burst_at + timedelta(minutes=30)
    touched: list = []

    def update_an_early_member(number: int) -> None:
        request = kustomer.search_requests()[-1]
        bounds = request.json()["and"]
        one_instant = bounds[0]["conversation_updated_at"]["gte"] == bounds[1]["conversation_updated_at"]["lte"]
        if one_instant and "page=2&" in request.url and not touched:  # the instant's page 1 was read
            kustomer.touch("conversation", [object_id(101)], new_time)
            touched.append(number)

    kustomer.before_search = update_an_early_member
    output = read_stream("conversations", {**CONFIG, "page_size": 5})

    unmoved = {r["id"] for r in burst} - {object_id(101)}
    assert unmoved <= set(ids(output))
    assert len(ids(output)) == len(set(ids(output))) + (moved_to == "just after the burst")  # the moved one may come twice
    bodies = [r.json() for r in kustomer.search_requests()]
    exact = [b for b in bodies if b["and"][1]["conversation_updated_at"]["lte"] == b["and"][0]["conversation_updated_at"]["gte"]]
    assert touched and len(exact) > 5  # the instant was read on its own, and again after the update


def test_the_search_goes_on_one_millisecond_after_a_burst(kustomer):
    burst_at = T0 + timedelta(hours=1)
    kustomer.add("note", [resource("note", i, burst_at) for i in range(1, 8)] + [resource("note", 9, burst_at + timedelta(milliseconds=1))])

    output = read_stream("notes", {**CONFIG, "page_size": 3})

    assert sorted(ids(output)) == [object_id(n) for n in (1, 2, 3, 4, 5, 6, 7, 9)]
    lower_bounds = [r.json()["and"][0]["note_updated_at"]["gte"] for r in kustomer.search_requests()]
    assert "2025-03-01T01:00:00.001Z" in lower_bounds  # the query after the instant


def test_burst_beyond_what_search_can_serve_fails_loudly_instead_of_looping(kustomer):
    # Kustomer serves 100 pages per query; 101 records at one instant with 1 per page cannot be read.
    burst_at = T0 + timedelta(hours=1)
    kustomer.add("note", [resource("note", i, burst_at) for i in range(1, 102)])

    output = read_stream("notes", {**CONFIG, "page_size": 1})

    assert len(ids(output)) == 100
    assert any("share updatedAt" in (e.trace.error.message or "") for e in output.errors)
    assert len(kustomer.search_requests()) <= 103


ARCHIVED = {stream: context for stream, context in SEARCH_STREAMS.items() if stream != "notes"}


@pytest.mark.parametrize("stream,context", ARCHIVED.items())
def test_objects_older_than_two_years_come_from_the_archive_search_then_live_search(kustomer, stream, context):
    now = kustomer.now
    old = [resource(context, 1, now - timedelta(days=1500)), resource(context, 2, now - timedelta(days=800))]
    recent = [resource(context, 3, now - timedelta(days=10)), resource(context, 4, now - timedelta(hours=1))]
    kustomer.add(context, old + recent)

    output = read_stream(stream, {**CONFIG, "start_date": "2015-01-01T00:00:00Z"})

    assert ids(output) == [object_id(n) for n in range(1, 5)]
    searches = [(r.path, r.json()["and"]) for r in kustomer.search_requests()]
    assert [path for path, _ in searches] == ["/v1/customers/archive/search", "/v1/customers/search"]  # one each
    archive_until = searches[0][1][1][updated_at_attribute(context)]["lte"]
    live_from = searches[1][1][0][updated_at_attribute(context)]["gte"]
    assert archive_until.startswith((now - timedelta(days=728)).strftime("%Y-%m-%dT%H"))
    assert live_from.startswith((now - timedelta(days=732)).strftime("%Y-%m-%dT%H"))


def test_notes_never_ask_the_archive_and_say_which_range_they_cannot_read(kustomer):
    now = kustomer.now
    kustomer.add("note", [resource("note", 1, now - timedelta(days=1500)), resource("note", 2, now - timedelta(days=10))])

    output = read_stream("notes", {**CONFIG, "start_date": "2019-01-01T00:00:00Z"})

    assert ids(output) == [object_id(2)]
    assert {r.path for r in kustomer.search_requests()} == {"/v1/customers/search"}
    warning = next(m.log.message for m in output.logs if "are not read" in m.log.message)
    assert warning.startswith("notes: objects last updated between 2019-01-01T00:00:00.000000Z and "
                              + (now - timedelta(days=730)).strftime("%Y-%m-%dT%H"))
    assert "conversation_notes" in warning


def test_search_streams_ask_for_the_documented_updated_at_attribute_of_their_context(kustomer):
    output = read_stream("kobjects")

    assert output.errors == []
    body = kustomer.search_requests()[0].json()
    assert body["sort"] == [{"kobject_updated_at": "asc"}] and set(body["and"][0]) == {"kobject_updated_at"}


@search_streams
def test_a_search_starts_where_the_data_starts_whatever_the_start_date(kustomer, stream, context):
    # Years of empty history before the first object: no request is spent on them.
    kustomer.add(context, spaced(context, 10, start=kustomer.now - timedelta(days=20)))

    output = read_stream(stream, {**CONFIG, "start_date": (kustomer.now - timedelta(days=600)).strftime("%Y-%m-%dT%H:%M:%SZ"), "page_size": 3})

    assert len(ids(output)) == 10
    assert len(kustomer.search_requests()) <= -(-10 // 3) + 1


def test_incremental_sync_with_recent_state_never_asks_the_archive(kustomer):
    kustomer.add("message", [resource("message", 1, kustomer.now - timedelta(hours=2))])

    state = {"updated_at": (kustomer.now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    output = read_stream("messages", state=state)

    assert ids(output) == [object_id(1)]
    assert {r.path for r in kustomer.search_requests()} == {"/v1/customers/search"}
