"""Nested streams: rows of the arrays inside a parent resource, read from the parent's own pages.

- ``ParentPageTransformation`` turns a parent page into the record the substream router hands on.
- ``ParentPageRequester`` answers a nested stream's "request" with that page, without the network.
- ``PageItemsExtractor`` makes one row per array item, keyed by parent and position.
"""

from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice

from source_kustomer.records import snake_case_keys, updated_at_of, value_at
from source_kustomer.shared_pages import RequesterFacade



class PageBody:
    """A parent page's ``data`` and ``included``, as one value the CDK's dpath lookups do not walk."""

    __slots__ = ("data", "included")

    def __init__(self, data: List[Any], included: List[Any]) -> None:
        self.data, self.included = data, included


@dataclass
class ParentPageTransformation(RecordTransformation):
    """Turns a parent page into the record the nested stream's substream router reads: ``page_key``,
    ``updated_at`` (set before, declaratively) and ``page``, a ``PageBody``.

    The router copies a child's ``extra_fields`` out of each parent record with ``dpath.get``, which
    walks every leaf of the record: 200 ms per 500-conversation page and nested stream when the page
    itself is the record. Tucked into a ``PageBody``, the page is handed over without a walk. Each
    resource keeps only what ``PageItemsExtractor`` reads (type, id, updatedAt and the arrays at ``items_at``):
    pages wait in the CDK's queue as the child's partitions, and a whole one weighs about 15 MB.
    """

    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._paths = _item_paths(parameters)

    def transform(self, record: MutableMapping[str, Any], **_: Any) -> None:
        data, included = record.pop("data", None) or [], record.pop("included", None) or []
        page = PageBody([self._pruned(item) for item in data], [self._pruned(item) for item in included])
        for key in [key for key in record if key not in ("page_key", "updated_at")]:
            del record[key]
        record["page"] = page

    def _pruned(self, resource: Any) -> Any:
        if not isinstance(resource, dict) or not self._paths:
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
