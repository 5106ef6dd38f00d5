"""Lists under each conversation or customer, read one parent page at a time."""

from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.requesters.paginators.default_paginator import PaginatorTestReadDecorator
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice

from source_kustomer.nested import PageBody
from source_kustomer.records import updated_at_of

#: In a test read (the Connector Builder's, ``make live-check``) the parents asked on a page: until
#: one has items, at most this many.
TEST_READ_PARENTS = 25


@dataclass
class PerParentRetriever(Retriever):
    """Reads a per-parent list (``GET /v1/conversations/{id}/events``, ...) for each parent of one page
    of the parent's search: the page is the partition, its parents are the inner retriever's slices.

    Kustomer: a conversation's events, forwards, times, attachments and notes and a customer's drafts
    and merges have no endpoint across parents, so a sync makes a request per parent.

    CDK limit: a substream partitioned by parent record gets a partition per parent, and
    ``ConcurrentPerPartitionCursor`` keeps a cursor (about 3 KB) for each of the last 25,000 partitions
    of a stream, also with a global cursor, where none of them is read again: seven lists on a large
    org hold 175,000 of them, some 500 MB, growing for hours. Partitioned by parent page (the parent
    search's pages as records, as the nested streams read them) a stream has 500 times fewer
    partitions. Each parent is read as the slice ``{"parent_id": id}``; its records get the parent's
    id and updatedAt as ``<parent>_id`` and ``<parent>_updated_at`` (the stream's cursor) and keep
    the page's slice.
    ``parent_condition`` (``parent``: the resource) skips parents that cannot have any item (a
    conversation whose ``noteCount`` is 0).

    A test read limits slices and pages, and here a slice is a page of parents, a request each: the
    CDK wraps the paginator of every retriever it builds for a test read in its
    ``PaginatorTestReadDecorator``, and then a page asks its parents only until one has items, at most
    ``TEST_READ_PARENTS`` (a Builder test read would otherwise spend 500 requests).
    """

    retriever: Retriever
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    parent_condition: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._type = parameters["query_context"]
        self._name = parameters.get("name", "")
        self._condition = InterpolatedBoolean(self.parent_condition, parameters=parameters) if self.parent_condition else None
        self._test_read = isinstance(getattr(self.retriever, "paginator", None), PaginatorTestReadDecorator)

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[StreamData]:
        page = (stream_slice.extra_fields if stream_slice is not None else {}).get("page")
        if stream_slice is None or not isinstance(page, PageBody):
            return
        page.release()
        asked = 0
        for parent in page.data:
            if not isinstance(parent, dict) or parent.get("type") != self._type or not parent.get("id"):
                continue
            if self._condition is not None and not self._condition.eval(self.config, parent=parent):
                continue
            one_parent = StreamSlice(partition={"parent_id": parent["id"]}, cursor_slice=stream_slice.cursor_slice)
            parent_fields = {f"{self._type}_id": parent["id"], f"{self._type}_updated_at": updated_at_of(parent)}
            found = False
            for record in self.retriever.read_records(records_schema, one_parent):
                if isinstance(record, Mapping):
                    data = record.data if isinstance(record, Record) else record
                    data.update(parent_fields)
                    found = True
                    yield Record(data=data, stream_name=self._name, associated_slice=stream_slice)
                else:
                    yield record
            asked += 1
            if self._test_read and (found or asked >= TEST_READ_PARENTS):
                return
