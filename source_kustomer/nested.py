"""Nested streams: rows of the arrays inside a parent resource, read from the parent's own pages.

- ``ParentPageTransformation`` turns a parent page into the record the substream router hands on.
- ``ParentPageRequester`` answers a nested stream's "request" with that page, without the network.
- ``PageItemsExtractor`` makes one row per array item, keyed by parent and position.
"""

import logging
import threading
from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice

from source_kustomer.records import snake_case_keys, updated_at_of, value_at
from source_kustomer.shared_pages import RequesterFacade

logger = logging.getLogger("airbyte")

#: Pages of a nested stream read from its parent but not yet by the nested stream itself. The CDK has
#: no bound of its own below 10,000 partitions in flight (``ThreadPoolManager``), and while records
#: wait for the main thread, a parent search goes on reading pages: on a 1,000,000-record org every
#: nested stream's pages piled up in memory (RSS 327 MB after 45 s, 728 MB after 5 minutes). The CDK
#: reads two parent pages ahead of the slice it hands on (``SubstreamPartitionRouter`` and
#: ``ConcurrentPerPartitionCursor`` each hold one back to know the last): three places keep a nested
#: stream moving, the fourth lets a worker read one page while the next is parsed.
PAGES_IN_FLIGHT = 4
#: The longest a parent page waits for a place; then it goes on without one (and says so once): a
#: look-ahead deeper than counted above costs memory, never a stopped sync.
PLACE_TIMEOUT_SECONDS = 120.0


class PageBody:
    """A parent page's ``data`` and ``included``, as one value the CDK's dpath lookups do not walk,
    holding one of its nested stream's ``PAGES_IN_FLIGHT`` places until that stream reads it."""

    __slots__ = ("data", "included", "_place")

    def __init__(self, data: List[Any], included: List[Any], place: Optional[threading.Semaphore] = None) -> None:
        self.data, self.included, self._place = data, included, place

    def release(self) -> None:
        """Gives the page's place back (the first call; later ones do nothing)."""
        place, self._place = self._place, None
        if place is not None:
            place.release()


@dataclass
class ParentPageTransformation(RecordTransformation):
    """Turns a parent page into the record the nested stream's substream router reads: ``page_key``,
    ``updated_at`` (set before, declaratively) and ``page``, a ``PageBody``.

    The router copies a child's ``extra_fields`` out of each parent record with ``dpath.get``, which
    walks every leaf of the record: 200 ms per 500-conversation page and nested stream when the page
    itself is the record. Tucked into a ``PageBody``, the page is handed over without a walk. Each
    resource keeps only what its readers read (type, id, updatedAt, the arrays at ``items_at``, ``parent_keeps``):
    pages wait in the CDK's queue as the child's partitions, and a whole one weighs about 15 MB.
    At most ``PAGES_IN_FLIGHT`` pages wait: the parent's read pauses here until the nested stream has
    read one (back-pressure the CDK does not give).
    """

    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # A per-parent list's condition reads a parent attribute of its own (``parent_keeps``).
        self._paths = _item_paths(parameters) + [list(path) for path in parameters.get("parent_keeps") or []]
        self._places = threading.BoundedSemaphore(PAGES_IN_FLIGHT)
        self._said_timeout = False

    def transform(self, record: MutableMapping[str, Any], **_: Any) -> None:
        data, included = record.pop("data", None) or [], record.pop("included", None) or []
        place: Optional[threading.Semaphore] = self._places
        if not self._places.acquire(timeout=PLACE_TIMEOUT_SECONDS):
            place = None
            if not self._said_timeout:
                self._said_timeout = True
                logger.warning("A nested stream has not read its parent's last %d pages in %.0f s: reading on, holding more pages in memory",
                               PAGES_IN_FLIGHT, PLACE_TIMEOUT_SECONDS)
        page = PageBody([self._pruned(item) for item in data], [self._pruned(item) for item in included], place)
        for key in [key for key in record if key not in ("page_key", "updated_at")]:
            del record[key]
        record["page"] = page

    def _pruned(self, resource: Any) -> Any:
        if not isinstance(resource, dict):
            return resource
        pruned: Dict[str, Any] = {"type": resource.get("type"), "id": resource.get("id"), "attributes": {"updatedAt": updated_at_of(resource)}}
        for path in self._paths:
            value = value_at(resource, path)
            if value is not None:
                target = pruned
                for key in path[:-1]:
                    target = target.setdefault(key, {})
                target[path[-1]] = value
        return pruned


class _ParsedPage(requests.Response):
    """A page already parsed by the parent stream, handed to the child's record selector as is."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self.status_code, self._body = 200, body

    def json(self, **kwargs: Any) -> Any:
        return self._body


@dataclass
class ParentPageRequester(RequesterFacade):
    """Answers a nested stream's "request" with its parent's page, carried in the stream slice.

    A customer's emails, phones, ..., a message's attachments and a note's mentions are arrays inside
    the parent resource: Kustomer has no endpoint of their own to call. The nested stream's partition
    router reads the parent's pages (one slice per page, its ``data`` and ``included`` lists in the
    slice's extra field ``page``, see ``ParentPageTransformation``); this requester turns the slice back into the "response" the record
    selector parses. It never touches the network. (The CDK's ``lazy_read_pointer`` does the same
    on a first sync only, and per parent record; from the second sync on it sends real requests.)
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def send_request(self, stream_slice: Optional[StreamSlice] = None, **_: Any) -> Optional[requests.Response]:
        page = ((stream_slice.extra_fields if stream_slice is not None else None) or {}).get("page")
        if not isinstance(page, PageBody):
            return _ParsedPage({"data": [], "included": []})
        page.release()
        return _ParsedPage({"data": page.data, "included": page.included})


@dataclass
class PageItemsExtractor(RecordExtractor):
    """One row per item of an array inside each ``<parent>`` resource of a page, keyed by position.

    Kustomer keeps contact points (``attributes.emails``, ``sharedPhones``, ...), mentions, shortcuts
    and attachment references (``relationships.attachments.data``) inside the parent resource, with
    no id or timestamp of their own. Each row gets ``<parent>_id``, ``<parent>_updated_at`` (the
    row's cursor: it is emitted again whenever its parent changes) and ``position``. Parents are the
    page's resources of type ``parent``, in ``data`` or ``included`` (SLA versions come as
    ``included`` of ``GET /v1/slas?versions=all``). A plain value (a team member's user id) becomes
    ``{"id": value}``. With several ``items_at`` paths (an SLA version's ``and`` and ``or`` criteria)
    each row also names its array in ``group``.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._parent: str = parameters.get("parent") or parameters["query_context"]
        self._paths = _item_paths(parameters)

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        page = response.json()
        for parent in (page.get("data") or []) + (page.get("included") or []):
            if not isinstance(parent, dict) or parent.get("type") != self._parent:
                continue
            for path in self._paths:
                items = value_at(parent, path)
                for position, item in enumerate(items if isinstance(items, list) else [] if items is None else [items]):
                    row = snake_case_keys(item) if isinstance(item, dict) else {"id": item}
                    row[f"{self._parent}_id"] = parent.get("id")
                    row[f"{self._parent}_updated_at"] = updated_at_of(parent)
                    row["position"] = position
                    if len(self._paths) > 1:
                        row["group"] = path[-1]
                    yield row


def _item_paths(parameters: Mapping[str, Any]) -> List[List[str]]:
    """A nested stream's ``items_at``: one path (``[attributes, emails]``) or several."""
    paths = parameters.get("items_at") or []
    return [paths] if paths and isinstance(paths[0], str) else list(paths)
