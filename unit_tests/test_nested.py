"""source_kustomer/nested.py: rows of the arrays inside a parent resource, read from the parent's own pages.
ParentPageTransformation, ParentPageRequester and PageItemsExtractor on their own, then a nested stream
read through the manifest (MockKustomer), which sends no request of its own."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

import dpath
import requests_mock
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.nested import PAGES_IN_FLIGHT, PageBody, PageItemsExtractor, ParentPageRequester, ParentPageTransformation
from unit_tests.conftest import read_stream
from unit_tests.kustomer_mock import object_id, resource


def customer(n: int, updated_at: str, **attributes: Any) -> Dict[str, Any]:
    return {"type": "customer", "id": f"c{n}", "attributes": {"updatedAt": updated_at, **attributes}}


def page_slice(data: List[Dict[str, Any]], included: Optional[List[Dict[str, Any]]] = None) -> StreamSlice:
    return StreamSlice(partition={"page": "p1"}, cursor_slice={}, extra_fields={"page": PageBody(data, included or [])})


def rows(extractor: PageItemsExtractor, data, included=None) -> List[Dict[str, Any]]:
    response = ParentPageRequester(parameters={}).send_request(stream_slice=page_slice(data, included))
    return list(extractor.extract_records(response))


# --- ParentPageRequester ---------------------------------------------------------------------------


def test_parent_page_requester_answers_from_the_slice_without_a_request():
    with requests_mock.Mocker() as mocker:  # any real request would fail: nothing is mocked
        response = ParentPageRequester(parameters={}).send_request(stream_slice=page_slice([customer(1, "t")]))
        assert mocker.call_count == 0
    assert response.status_code == 200 and response.json() == {"data": [customer(1, "t")], "included": []}


def test_a_slice_without_a_page_answers_an_empty_page():
    requester = ParentPageRequester(parameters={})

    for stream_slice in (None, StreamSlice(partition={}, cursor_slice={}), StreamSlice(partition={}, cursor_slice={}, extra_fields={"page": {"data": [1]}})):
        assert requester.send_request(stream_slice=stream_slice).json() == {"data": [], "included": []}


# --- ParentPageTransformation ----------------------------------------------------------------------


def test_parent_page_transformation_hands_the_page_over_in_one_value_dpath_does_not_walk():
    at = "2025-01-01T00:00:00.000Z"
    record = {"data": [customer(1, at, name="Ann")], "included": [customer(2, at)], "links": {"self": "/x"}, "meta": {}, "page_key": "k", "updated_at": at}
    ParentPageTransformation(parameters={}).transform(record)

    assert set(record) == {"page_key", "updated_at", "page"}
    assert (record["page"].data, record["page"].included) == ([customer(1, at)], [customer(2, at)])  # type, id and updatedAt
    assert dpath.get(record, ["page"]) is record["page"]  # found at the top, and nothing inside it is visited


def test_each_resource_keeps_only_what_the_nested_stream_reads():
    at = "2025-01-01T00:00:00.000Z"
    record = {"data": [customer(1, at, emails=[{"email": "a@x"}], name="Ann", phones=[{"phone": "1"}]), "not a resource"],
              "included": [{"type": "org", "id": "o1", "attributes": {"updatedAt": 7, "emails": []}}], "page_key": "k", "updated_at": at}
    ParentPageTransformation(parameters={"items_at": ["attributes", "emails"]}).transform(record)

    assert record["page"].data == [{"type": "customer", "id": "c1", "attributes": {"updatedAt": at, "emails": [{"email": "a@x"}]}}, "not a resource"]
    assert record["page"].included == [{"type": "org", "id": "o1", "attributes": {"updatedAt": None, "emails": []}}]


def test_a_per_parent_list_keeps_the_parent_attribute_its_condition_reads():
    at = "2025-01-01T00:00:00.000Z"
    record = {"data": [{"type": "conversation", "id": "v1", "attributes": {"updatedAt": at, "noteCount": 2, "name": "x"}}], "page_key": "k", "updated_at": at}
    ParentPageTransformation(parameters={"parent_keeps": [["attributes", "noteCount"]]}).transform(record)

    assert record["page"].data == [{"type": "conversation", "id": "v1", "attributes": {"updatedAt": at, "noteCount": 2}}]


def test_a_nested_stream_holds_at_most_four_unread_pages_and_reading_one_frees_its_place(monkeypatch):
    monkeypatch.setattr("source_kustomer.nested.PLACE_TIMEOUT_SECONDS", 0.2)
    transformation = ParentPageTransformation(parameters={})
    requester = ParentPageRequester(parameters={})

    def parent_page(n: int) -> Dict[str, Any]:
        record = {"data": [customer(n, "2025-01-01T00:00:00.000Z")], "page_key": f"k{n}", "updated_at": "t"}
        transformation.transform(record)
        return record

    held = [parent_page(n) for n in range(PAGES_IN_FLIGHT)]
    started = time.monotonic()
    late = parent_page(99)  # no place: waits for one, then goes on without
    assert time.monotonic() - started >= 0.2 and late["page"].data[0]["id"] == "c99"

    requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}, extra_fields={"page": held[0]["page"]}))
    requester.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}, extra_fields={"page": held[0]["page"]}))  # read twice: one place
    started = time.monotonic()
    parent_page(100)  # the place the first page gave back
    assert time.monotonic() - started < 0.15
    started = time.monotonic()
    parent_page(101)
    assert time.monotonic() - started >= 0.2


def test_an_empty_page_is_handed_over_empty():
    record = {"data": None, "page_key": "k", "updated_at": "t"}
    ParentPageTransformation(parameters={"items_at": ["attributes", "emails"]}).transform(record)

    assert (record["page"].data, record["page"].included) == ([], [])


# --- PageItemsExtractor ----------------------------------------------------------------------------


def test_page_items_one_row_per_array_item_with_parent_id_cursor_and_position():
    extractor = PageItemsExtractor(parameters={"query_context": "customer", "items_at": ["attributes", "sharedEmails"]})
    data = [
        customer(1, "2025-01-01T00:00:00.000Z", sharedEmails=[{"email": "a@x", "verifiedAt": None}, {"email": "b@x"}]),
        customer(2, "2025-01-02T00:00:00.000Z", sharedEmails=[]),
        customer(3, "2025-01-03T00:00:00.000Z"),  # no such array at all
        {"type": "company", "id": "o1", "attributes": {"sharedEmails": [{"email": "c@x"}]}},  # not a parent
    ]

    assert rows(extractor, data) == [
        {"email": "a@x", "verified_at": None, "customer_id": "c1", "customer_updated_at": "2025-01-01T00:00:00.000Z", "position": 0},
        {"email": "b@x", "customer_id": "c1", "customer_updated_at": "2025-01-01T00:00:00.000Z", "position": 1},
    ]


def test_page_items_plain_values_parents_in_included_and_several_arrays():
    members = PageItemsExtractor(parameters={"parent": "team", "items_at": ["attributes", "members"]})
    assert rows(members, [{"type": "team", "id": "t1", "attributes": {"members": ["u1", "u2"]}}]) == [
        {"id": "u1", "team_id": "t1", "team_updated_at": None, "position": 0},
        {"id": "u2", "team_id": "t1", "team_updated_at": None, "position": 1},
    ]

    criteria = PageItemsExtractor(parameters={"parent": "sla_version", "items_at": [["attributes", "criteria", "and"], ["attributes", "criteria", "or"]]})
    version = {"type": "sla_version", "id": "v1", "attributes": {"criteria": {"and": [{"a": 1}], "or": [{"b": 2}, {"c": 3}]}}}
    assert [(r["group"], r["position"], r["sla_version_id"]) for r in rows(criteria, [{"type": "sla", "id": "s1"}], [version])] == [
        ("and", 0, "v1"), ("or", 0, "v1"), ("or", 1, "v1"),
    ]


def test_a_single_value_where_an_array_is_expected_is_one_row_and_junk_parents_are_skipped():
    extractor = PageItemsExtractor(parameters={"query_context": "customer", "items_at": ["attributes", "locations"]})

    assert rows(extractor, [customer(1, "t", locations={"city": "Oslo"}), "junk", None]) == [
        {"city": "Oslo", "customer_id": "c1", "customer_updated_at": None, "position": 0}]  # "t" is not a date-time


# --- through the manifest: a nested stream -------------------------------------------------------


def test_a_nested_stream_reads_its_parents_search_pages_and_sends_no_request_of_its_own(kustomer):
    at = datetime(2025, 3, 1, tzinfo=timezone.utc)
    kustomer.add("customer", [
        resource("customer", 1, at, {"emails": [{"email": "a@x", "type": "home"}, {"email": "b@x"}]}),
        resource("customer", 2, at + timedelta(minutes=1), {"emails": []}),
        resource("customer", 3, at + timedelta(minutes=2), {"emails": [{"email": "c@x"}]}),
    ])

    output = read_stream("customer_emails", sync_mode=SyncMode.full_refresh)

    assert output.errors == []
    assert [(r.record.data["customer_id"], r.record.data["position"], r.record.data["email"]) for r in output.records] == [
        (object_id(1), 0, "a@x"), (object_id(1), 1, "b@x"), (object_id(3), 0, "c@x")]
    assert {r.record.data["customer_updated_at"] for r in output.records} == {"2025-03-01T00:00:00.000Z", "2025-03-01T00:02:00.000Z"}
    sent = {(r.method, r.path) for r in kustomer.mocker.request_history} - {("GET", "/v1/klasses")}
    assert sent == {("POST", "/v1/customers/search")}  # the parent's search only
