"""Search streams: how a slice of customers, conversations, messages, notes, companies or custom
objects is read from ``POST /v1/customers/search`` and ``/v1/customers/archive/search``.

- ``KustomerSearchRetriever`` splits a slice between the archive and live search and checkpoints
  every page through the stream's own cursor.
- ``SearchKeysetPagination`` pages a query by ``updatedAt`` (Kustomer's 100-page cap, bursts).
- ``SearchPageExtractor`` refuses a page that is outside the range asked for or out of order;
  ``BoundaryRepeatFilter`` drops the records a keyset query repeats from the page before.
"""

import json
import logging
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone
from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Mapping, MutableMapping, Optional, Set, Tuple, Union
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders import Decoder, JsonDecoder
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice, StreamState
from airbyte_cdk.utils.datetime_helpers import ab_datetime_now, ab_datetime_parse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.contract import ARCHIVE, SEARCHES
from source_kustomer.pages import RecordsAtExtractor
from source_kustomer.records import instant_or_none, parse_instant, updated_at_of

logger = logging.getLogger("airbyte")

#: The cursor's slice fields (DatetimeBasedCursor's defaults) and their format.
START, END = "start_time", "end_time"
INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: Records yielded after one before it counts as handled (see KustomerSearchRetriever).
HANDLED_AFTER = 2

#: /search serves objects updated in the last 730 days, /archive/search the older ones. The two days
#: each side of that line are asked of both, so a clock that is off by less than that loses nothing.
SEARCH_WINDOW = timedelta(days=730)
MARGIN = timedelta(days=2)


def _instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(INSTANT)


def _later(one: Optional[datetime], other: Optional[datetime]) -> Optional[datetime]:
    return other if one is None or (other is not None and other > one) else one


@dataclass(frozen=True)
class SearchWindow:
    """Where Kustomer serves a slice: the archive for what is older than the two-year window, live
    search for the rest, as of the sync's own start (``sync_started_at``, the same for every stream,
    so streams sharing a query ask it identically)."""

    now: datetime

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "SearchWindow":
        started = config.get("sync_started_at")
        return cls(ab_datetime_parse(started) if started else ab_datetime_now())

    @property
    def start(self) -> datetime:
        """Where live search begins, as Kustomer counts it."""
        return self.now - SEARCH_WINDOW

    def phases(self, stream_slice: StreamSlice, with_archive: bool) -> List[StreamSlice]:
        """The archive part of the slice (if any) and then its live part, each a slice of its own."""
        start, end = ab_datetime_parse(stream_slice[START]), ab_datetime_parse(stream_slice[END])
        phases = []
        if with_archive and start < self.start + MARGIN:
            phases.append(self._phase(stream_slice, start, min(end, self.start + MARGIN), archive=True))
        live_start = max(start, self.start - MARGIN)
        if live_start <= end:
            phases.append(self._phase(stream_slice, live_start, end, archive=False))
        return phases

    @staticmethod
    def _phase(stream_slice: StreamSlice, start: datetime, end: datetime, archive: bool) -> StreamSlice:
        return StreamSlice(
            partition=stream_slice.partition,
            cursor_slice={**stream_slice.cursor_slice, START: _instant(start), END: _instant(end)},
            extra_fields={**stream_slice.extra_fields, "archive": archive},
        )

    def checkpoint_in(self, phase: StreamSlice, moment: datetime) -> datetime:
        """The checkpoint a phase may take at ``moment``: while the archive is read, live search has not
        been, so no checkpoint passes the margin where live search begins."""
        if phase.extra_fields.get("archive"):
            return min(moment, self.start - MARGIN)
        return moment


class _Checkpoint(Partition):
    """The part of a slice read so far, closed on the stream's cursor as if it were a partition."""

    def __init__(self, stream_name: str, stream_slice: StreamSlice) -> None:
        self._stream_name, self._slice = stream_name, stream_slice

    def read(self) -> Iterable[Record]:
        return []

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return self._slice

    def stream_name(self) -> str:
        return self._stream_name

    def __hash__(self) -> int:
        return hash((self._stream_name, str(self._slice)))


@dataclass
class KustomerSearchRetriever(Retriever):
    """Reads one slice of a search stream as Kustomer serves it, with a checkpoint every page.

    Kustomer: ``/v1/customers/search`` sees only objects updated in the last two years; older ones
    are only in ``/v1/customers/archive/search``, which documents no ``note`` context. A slice that
    begins before the window is read from the archive first (up to two days into the window), then
    from live search (from two days before it), each as its own phase slice (``archive`` in its
    extra fields picks the endpoint). A context the archive does not document (notes) cannot be read
    before the window; the stream says exactly which range it skips and why.

    CDK limit: the concurrent cursor checkpoints a stream only when one of its slices closes, so a
    sync killed in the middle of a slice would read it again from its start. Records arrive in
    ascending ``updatedAt``, so once a record is handled nothing older is left to handle: every
    ``checkpoint_every`` records the part handled so far is closed on the stream's own cursor, and
    the cursor emits its usual state. A killed sync re-reads at most that many records. "Handled"
    lags ``HANDLED_AFTER`` records behind "yielded": a parent stream's records are read one ahead by
    the CDK's substream router and its slices one ahead again by the per-partition cursor, and a
    parent's state must never pass a page whose children were not yet made (the per-partition cursor
    saves the parent's state as it stands when the child stream ends, also when it fails). Nor does a
    checkpoint pass the margin where live search begins while the archive is read, since live search
    comes after it.
    """

    retriever: Retriever
    cursor: Cursor
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    name: str = ""
    checkpoint_every: Union[int, str] = 500

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._every = max(1, int(InterpolatedString.create(str(self.checkpoint_every), parameters=parameters).eval(self.config)))
        self._name = self.name or parameters.get("name", "")
        self._context = str(parameters.get("query_context", ""))
        self._with_archive = bool(SEARCHES[ARCHIVE].contexts.match(self._context))

    def read_records(self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None) -> Iterable[StreamData]:
        if stream_slice is None or START not in stream_slice:
            yield from self.retriever.read_records(records_schema, stream_slice)
            return
        window = SearchWindow.of(self.config)
        if not self._with_archive:
            self._say_what_search_cannot_reach(stream_slice, window)
        field = self.cursor.cursor_field.cursor_field_key if hasattr(self.cursor, "cursor_field") else "updated_at"
        newest: Optional[datetime] = None  # of every record read
        # The cursor values (capped as a checkpoint may take them) of the records yielded lately; a
        # record is handled once HANDLED_AFTER more have been yielded after it.
        pending: Deque[Optional[datetime]] = deque()
        handled: Optional[datetime] = None
        since = 0
        for phase in window.phases(stream_slice, self._with_archive):
            for record in self.retriever.read_records(records_schema, phase):
                yield record
                moment = instant_or_none(record.get(field) if isinstance(record, Mapping) else None)
                newest = _later(newest, moment)
                pending.append(window.checkpoint_in(phase, moment) if moment else None)
                if len(pending) > HANDLED_AFTER:
                    handled = _later(handled, pending.popleft())
                since += 1
                if since >= self._every and handled is not None:
                    self._checkpoint(stream_slice, field, handled)
                    since = 0
        if newest is not None:  # the whole slice is read
            self._checkpoint(stream_slice, field, newest)

    def _checkpoint(self, stream_slice: StreamSlice, field: str, moment: datetime) -> None:
        value = _instant(moment)
        read = StreamSlice(partition=stream_slice.partition, cursor_slice={**stream_slice.cursor_slice, END: value})
        self.cursor.observe(Record(data={field: value}, stream_name=self._name, associated_slice=read))
        self.cursor.close_partition(_Checkpoint(self._name, read))

    def _say_what_search_cannot_reach(self, stream_slice: StreamSlice, window: SearchWindow) -> None:
        start = ab_datetime_parse(stream_slice[START])
        if start < window.start:
            logger.warning(
                f"{self._name}: objects last updated between {_instant(start)} and {_instant(window.start)} are not read. "
                "Kustomer's search serves only the last two years, and its archive search documents no such "
                f"context ({self._context}), so the connector does not ask it. Every later update is read. "
                "The conversation_notes stream reads every note of every conversation, these included."
            )


@dataclass
class SearchKeysetPagination(PaginationStrategy):
    """Pages through a Kustomer search by ``updatedAt`` instead of by page number.

    Kustomer's search stops at page 100, and page numbers shift whenever a record is updated during
    the sync (it jumps to the end of an ascending sort), so the record that slides across a page
    boundary would be skipped for good. Each request therefore asks again from the last ``updatedAt``
    seen (``gte``), at page 1, and ``BoundaryRepeatFilter`` drops the records of that instant already
    emitted (Kustomer's own recipe for reading past the cap).

    A page that never leaves one instant (a bulk action touching more records than a page holds)
    cannot move on by ``updatedAt``: that instant is then read on its own (``gte`` and ``lte`` both the
    instant) page by page, up to the 100 pages Kustomer serves for one query, and the search goes on
    from one millisecond later. While it is read, a member updated by someone else leaves the instant
    and every member after it moves up a place, so one would slip past unread: Kustomer's
    ``meta.total`` for the instant then drops, and the instant is read again from page 1 (the filter
    drops the repeats). The total only falls, so the re-reads end.

    Token: ``updated_at`` (the query's ``gte``) and ``page``; while an instant is read on its own also
    ``until`` (its ``lte``), ``total`` (the instant's size on the page before) and ``pass`` (how many
    times it was read again, which keeps a re-read from being answered from ``SharedPagesRequester``).
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 500
    max_pages: int = 100
    decoder: Decoder = field(default_factory=lambda: JsonDecoder(parameters={}))

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._page_size = int(InterpolatedString.create(str(self.page_size), parameters=parameters).eval(self.config))

    @property
    def initial_token(self) -> Optional[Any]:
        return None

    def get_page_size(self) -> Optional[int]:
        return self._page_size

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any] = None,
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Mapping[str, Any]]:
        token: Mapping[str, Any] = last_page_token_value or {}
        following = self._next(response, token, stream_slice)
        if following is not None and following == token:  # never ask the same question twice over
            raise AirbyteTracedException(
                message=f"Kustomer's search answered in a way that would make the connector ask the same query again ({token}). "
                "Please report this to the connector maintainers.",
                failure_type=FailureType.system_error,
            )
        return following

    def _next(self, response: requests.Response, token: Mapping[str, Any], stream_slice: Optional[StreamSlice]) -> Optional[Mapping[str, Any]]:
        body = next(iter(self.decoder.decode(response)), None) or {}
        data: List[Mapping[str, Any]] = body.get("data") or []
        more = bool(data) and bool((body.get("links") or {}).get("next"))
        if token.get("until"):
            return self._within_instant(token, more, (body.get("meta") or {}).get("total"), stream_slice)
        if not more:
            return None
        # The first and last resources that have an updatedAt (all have, unless Kustomer sent junk).
        first = next(filter(None, map(updated_at_of, data)), None)
        last = next(filter(None, map(updated_at_of, reversed(data))), None)
        if last is None:  # no updatedAt to go on from: the same query, next page
            return self._page(token.get("updated_at"), int(token.get("page") or 1) + 1)
        if first == last:  # the page never left one instant: read that instant on its own
            return {**self._page(last, 1), "until": last, "total": None, "pass": 0}
        return {"updated_at": last, "page": 1}

    def _within_instant(
        self, token: Mapping[str, Any], more: bool, total: Any, stream_slice: Optional[StreamSlice]
    ) -> Optional[Mapping[str, Any]]:
        instant = token["until"]
        if isinstance(total, int) and isinstance(token.get("total"), int) and total < token["total"]:
            # A member left the instant while it was read: the pages after it shifted. Read it again.
            return {**token, "page": 1, "total": total, "pass": int(token.get("pass") or 0) + 1}
        if more:
            return {**token, **self._page(instant, int(token["page"]) + 1), "total": total}
        following = _one_millisecond_after(instant)
        end = (stream_slice or {}).get(END)
        if following is None or (end and ab_datetime_parse(following) > ab_datetime_parse(end)):
            return None
        return {"updated_at": following, "page": 1}

    def _page(self, updated_at: Optional[str], page: int) -> Dict[str, Any]:
        if page > self.max_pages:
            raise AirbyteTracedException(
                message=(
                    f"More than {self.max_pages * self.get_page_size()} Kustomer objects share updatedAt "
                    f"{updated_at}; Kustomer's search serves at most {self.max_pages} pages for one query, so "
                    "they cannot all be read. Please report this to the connector maintainers."
                ),
                failure_type=FailureType.system_error,
            )
        return {"updated_at": updated_at, "page": page}


def _one_millisecond_after(instant: str) -> Optional[str]:
    """The next instant Kustomer can stamp (its times have millisecond precision), in its format."""
    try:
        moment = ab_datetime_parse(instant) + timedelta(milliseconds=1)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class SearchPageExtractor(RecordsAtExtractor):
    """The records of a search page, taken only if Kustomer answered the query it was asked.

    Kustomer documents sorting only customers by ``updatedAt`` on ``/search``, and no
    ``company_updated_at`` filter there; the connector relies on both, as every peer does in
    production (see ``contract.py``). A page holding an object updated outside the range the request
    asked for (its ``gte`` and ``lte``, read from the request itself), or objects out of ascending
    order, means Kustomer ignored a filter or the sort: read on, the sync could skip objects for good
    or never end. The stream stops with what Kustomer answered instead, before any record of the page
    is emitted; its last state never passes an emitted record, so the next sync resumes without loss.
    With ``field_path`` empty the record is the whole page (the parents of nested streams), whose
    ``data`` is checked.
    """

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        records = list(super().extract_records(response))
        pages = [record.get("data") or [] for record in records] if not self._path else [records]
        low, high = _bounds(response)
        for page in pages:
            self._check(page, low, high, response)
        yield from records

    def _check(self, page: List[Any], low: Optional[str], high: Optional[str], response: requests.Response) -> None:
        low_at = parse_instant(low) if low else None
        high_at = parse_instant(high) if high else None
        before: Optional[Tuple[datetime, str]] = None
        for resource in page:
            updated_at = updated_at_of(resource)
            if updated_at is None:
                continue
            moment = parse_instant(updated_at)
            if (low_at and moment < low_at) or (high_at and moment > high_at):
                self._refuse(response, low, high, f"{_identity(resource)} updated at {updated_at}, outside that range")
            if before is not None and moment < before[0]:
                self._refuse(response, low, high,
                             f"{_identity(resource)} updated at {updated_at} after {before[1]} updated at {_instant(before[0])}: "
                             "not in ascending order")
            before = (moment, _identity(resource))

    def _refuse(self, response: requests.Response, low: Optional[str], high: Optional[str], what: str) -> None:
        stream = self._stream_parameters.get("name", "")
        context = self._stream_parameters.get("query_context", "")
        path = urlsplit(response.url or "").path
        raise AirbyteTracedException(
            message=(
                f"{stream}: Kustomer answered a search ({path}) for {context} objects updated between {low} and {high}, "
                f"sorted by updatedAt ascending, with {what}. It did not apply the filter or the sort the connector relies on, "
                f"so {stream} cannot be read exactly and stops here; the other streams go on, and the next sync resumes from "
                "the last state without loss. Please report this answer to the connector maintainers."
            ),
            internal_message=f"Search page out of range or order for {stream}: {what}",
            failure_type=FailureType.system_error,
        )


def _bounds(response: requests.Response) -> Tuple[Optional[str], Optional[str]]:
    """The ``gte`` and ``lte`` of the search a response answers, read from its request."""
    body = response.request.body if response.request is not None else None
    try:
        query = json.loads(body) if body else {}
    except ValueError:
        return None, None
    found: Dict[str, Optional[str]] = {"gte": None, "lte": None}
    for criterion in query.get("and") or [] if isinstance(query, dict) else []:
        for condition in (criterion.values() if isinstance(criterion, dict) else []):
            for operator in ("gte", "lte"):
                if isinstance(condition, dict) and isinstance(condition.get(operator), str):
                    found[operator] = condition[operator]
    return found["gte"], found["lte"]


@dataclass
class BoundaryRepeatFilter(RecordFilter):
    """Drops the records a keyset search page repeats from the page before.

    ``SearchKeysetPagination`` restarts each query at the last ``updatedAt`` it saw (``gte``), so the
    records at exactly that instant come back once more. Within a slice, records arrive in ascending
    ``updatedAt`` (``SearchPageExtractor`` sees to it); the filter remembers the ids met at the latest instant
    and drops their repeats. A resource without a usable ``updatedAt`` (never seen from Kustomer, but
    possible) has no instant to be remembered by: its id is remembered for the whole slice instead.
    One slice is read by one thread at a time, so the memory is kept per slice. A ``condition`` then
    filters as the CDK's ``RecordFilter`` does.
    """

    condition: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._latest: Dict[Any, Tuple[Optional[str], Set[str]]] = {}
        self._undated: Dict[Any, Set[str]] = {}

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: StreamState,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        kept = self._first_sightings(records, stream_slice)
        yield from super().filter_records(kept, stream_state, stream_slice, next_page_token) if self.condition else kept

    def _first_sightings(self, records: Iterable[Mapping[str, Any]], stream_slice: Optional[StreamSlice]) -> Iterable[Mapping[str, Any]]:
        key = _slice_key(stream_slice)
        instant, ids = self._latest.get(key, (None, set()))
        for record in records:
            updated_at, record_id = updated_at_of(record), record.get("id")
            if updated_at is None:
                undated = self._undated.setdefault(key, set())
                if record_id in undated:
                    continue
                undated.add(record_id)
                yield record
                continue
            if instant is None or updated_at > instant:
                instant, ids = updated_at, set()
            elif updated_at == instant and record_id in ids:
                continue
            ids.add(record_id)
            self._latest[key] = (instant, ids)
            yield record


@dataclass
class BoundaryRepeatPageFilter(BoundaryRepeatFilter):
    """``BoundaryRepeatFilter`` for streams whose records are whole search pages (the parents of nested
    streams, see ``nested.PageItemsExtractor``): the page keeps its envelope; its ``data`` loses the resources the page
    before already held."""

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: StreamState,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        for page in records:  # a copy: the parsed page itself stays whole for the paginator
            yield {**page, "data": list(self._first_sightings(page.get("data") or [], stream_slice))}


def _identity(resource: Mapping[str, Any]) -> str:
    return f"{str(resource.get('type'))[:40]} {str(resource.get('id'))[:40]}"


def _slice_key(stream_slice: Optional[StreamSlice]) -> Any:
    if stream_slice is None:
        return None
    return tuple(sorted((str(k), str(v)) for k, v in {**stream_slice.partition, **stream_slice.cursor_slice}.items()))
