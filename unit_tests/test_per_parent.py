"""source_kustomer/per_parent.py: PerParentRetriever on its own, a fake inner retriever answering each parent.
The streams it reads through the manifest are driven against the sandbox in integration_tests/test_every_stream.py."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional

from airbyte_cdk.sources.declarative.requesters.paginators import NoPagination
from airbyte_cdk.sources.declarative.requesters.paginators.default_paginator import PaginatorTestReadDecorator
from airbyte_cdk.sources.types import Record, StreamSlice

from source_kustomer.nested import PageBody
from source_kustomer.per_parent import TEST_READ_PARENTS, PerParentRetriever

AT = "2025-01-01T00:00:00.000Z"
NOTES = "{{ (parent.get('attributes') or {}).get('noteCount') != 0 }}"


def conversation(n: int, **attributes: Any) -> Dict[str, Any]:
    return {"type": "conversation", "id": f"v{n}", "attributes": {"updatedAt": f"2025-01-0{n}T00:00:00.000Z", **attributes}}


class Lists:
    """An inner retriever: each parent's list, as Records (the CDK's) or plain mappings."""

    def __init__(self, answers: Mapping[str, List[Any]], paginator: Any = None) -> None:
        self.answers, self.slices, self.paginator = answers, [], paginator

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[Any]:
        self.slices.append(stream_slice)
        for item in self.answers.get(stream_slice["parent_id"], []):
            yield Record(data=dict(item), stream_name="inner", associated_slice=stream_slice) if item.get("as_record") else dict(item)


def retriever(lists: Lists, condition: str = "") -> PerParentRetriever:
    return PerParentRetriever(retriever=lists, config={}, parameters={"query_context": "conversation", "name": "conversation_events"},
                              parent_condition=condition)


def page_slice(data: List[Any], place: Optional[threading.Semaphore] = None) -> StreamSlice:
    return StreamSlice(partition={"page": "k1", "parent_slice": {}}, cursor_slice={"start_time": "s", "end_time": "e"},
                       extra_fields={"page": PageBody(data, [], place)})


def test_each_parent_of_the_page_is_read_in_turn_as_its_own_slice():
    lists = Lists({"v1": [{"id": "e1"}, {"id": "e2"}], "v2": [{"id": "e3"}]})
    given = page_slice([conversation(1), conversation(2), conversation(3)])

    records = list(retriever(lists).read_records({}, given))

    assert [s.partition for s in lists.slices] == [{"parent_id": "v1"}, {"parent_id": "v2"}, {"parent_id": "v3"}]
    assert all(s.cursor_slice == given.cursor_slice for s in lists.slices)
    assert [r.data["id"] for r in records] == ["e1", "e2", "e3"]


def test_each_record_names_its_parent_and_the_parent_s_update_as_its_cursor_and_keeps_the_page_s_slice():
    lists = Lists({"v1": [{"id": "e1"}], "v2": [{"id": "e2", "as_record": True}]})
    given = page_slice([conversation(1), conversation(2)])

    records = list(retriever(lists).read_records({}, given))

    assert [(r.data["conversation_id"], r.data["conversation_updated_at"]) for r in records] == [
        ("v1", "2025-01-01T00:00:00.000Z"), ("v2", "2025-01-02T00:00:00.000Z")]
    assert all(r.associated_slice is given and r.stream_name == "conversation_events" for r in records)


def test_the_condition_skips_parents_that_cannot_have_items_and_only_those():
    lists = Lists({})
    page = [conversation(1, noteCount=0), conversation(2, noteCount=3), conversation(3)]  # no count: asked

    list(retriever(lists, NOTES).read_records({}, page_slice(page)))

    assert [s["parent_id"] for s in lists.slices] == ["v2", "v3"]


def test_resources_of_another_type_or_without_an_id_are_not_parents():
    lists = Lists({})
    page = [{"type": "customer", "id": "c1"}, {"type": "conversation", "id": None}, "not a resource", conversation(4)]

    list(retriever(lists).read_records({}, page_slice(page)))

    assert [s["parent_id"] for s in lists.slices] == ["v4"]


def test_a_slice_without_a_page_reads_nothing():
    lists = Lists({"v1": [{"id": "e1"}]})

    for stream_slice in (None, StreamSlice(partition={}, cursor_slice={}), StreamSlice(partition={}, cursor_slice={}, extra_fields={"page": {"data": []}})):
        assert list(retriever(lists).read_records({}, stream_slice)) == []
    assert lists.slices == []


def test_reading_a_page_gives_its_place_back():
    places = threading.BoundedSemaphore(1)
    places.acquire()

    list(retriever(Lists({})).read_records({}, page_slice([conversation(1)], places)))

    assert places.acquire(blocking=False)


def test_a_test_read_asks_a_page_s_parents_until_one_has_items_and_at_most_a_few():
    test_read = PaginatorTestReadDecorator(NoPagination(parameters={}), 1)  # how the CDK builds a test read's retrievers
    page = [conversation(n % 9 + 1) for n in range(100)]
    page[3] = {**page[3], "id": "v-with-events"}

    lists = Lists({"v-with-events": [{"id": "e1"}]}, paginator=test_read)
    assert [r.data["id"] for r in retriever(lists).read_records({}, page_slice(page))] == ["e1"]
    assert len(lists.slices) == 4

    empty = Lists({}, paginator=test_read)
    assert list(retriever(empty).read_records({}, page_slice(page))) == []
    assert len(empty.slices) == TEST_READ_PARENTS
