"""Builders and two stand-ins for the Kustomer behaviours the unit tests drive.

``MockKustomer`` answers ``POST /v1/customers/search`` and ``/archive/search`` from an in-memory list,
as Kustomer does: filter on ``<ctx>_updated_at`` (gte/lte), stable ascending sort by updatedAt then id,
at most 100 pages per query (page 100 still links to page 101, which is refused), and objects
updated more than two years ago only in the archive. List endpoints page by ``page``/``pageSize``
with relative ``links.next``; the users a test serves are all active (``deleted=false``), none pending
or deactivated. Every request is recorded, so tests can count and inspect them.

``kustomer_http`` is the other stand-in: the CDK's own ``HttpMocker``, for tests that name each request
exactly (its path, its whole query, its headers) and each answer, built with the CDK's response
builders (``list_page``, ``kustomer_record``). A request it was not told of fails the read. It cannot
match a POST body loosely, so the search streams, whose every query differs, keep ``MockKustomer``.
HttpMocker is built on requests-mock: inside it, the routes of an outer requests-mock mocker (the
``requests_mock`` fixture, ``MockKustomer``) are never consulted.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, urlsplit

import requests_mock
from airbyte_cdk.test.mock_http import HttpMocker, HttpRequest, HttpResponse
from airbyte_cdk.test.mock_http.response_builder import (
    FieldPath,
    FieldUpdatePaginationStrategy,
    HttpResponseBuilder,
    NestedPath,
    RecordBuilder,
    create_response_builder,
)

from source_kustomer.contract import updated_at_attribute

BASE_URL = "https://api.kustomerapp.com"
SEARCH_PAGE_CAP = 100
ARCHIVE_AGE = timedelta(days=730)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def object_id(n: int) -> str:
    return f"{n:024x}"


def resource(
    kind: str,
    n: int,
    updated_at: datetime,
    attributes: Optional[Dict[str, Any]] = None,
    relationships: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """One JSON:API resource as Kustomer serves it."""
    return {
        "type": kind,
        "id": object_id(n),
        "attributes": {"createdAt": iso(updated_at), "updatedAt": iso(updated_at), **(attributes or {})},
        "relationships": {"org": {"data": {"type": "org", "id": object_id(0)}}, **(relationships or {})},
        "links": {"self": f"/v1/{kind}s/{object_id(n)}"},
    }


def page_and_size(request: Any) -> tuple[int, int]:
    query = {key.lower(): values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}
    return int(query.get("page", 1)), int(query.get("pagesize", 100))


def kustomer_error(status: int, title: str) -> Dict[str, Any]:
    return {"errors": [{"status": str(status), "code": title.lower().replace(" ", "_"), "title": title}]}


def serve_plain_org(mocker: requests_mock.Mocker, base_url: str = BASE_URL) -> None:
    """An org with no enabled Klass (no kobject_<klass> streams) and no custom attributes (Kustomer
    answers 404 for the metadata of such a resource). A test may serve other answers on top."""
    mocker.get(f"{base_url}/v1/klasses?status=enabled", json={"data": [], "links": {"next": None}})
    mocker.get(re.compile(f"{re.escape(base_url)}/v1/metadata/"), status_code=404, json=kustomer_error(404, "Not Found"))


@dataclass
class MockKustomer:
    mocker: requests_mock.Mocker
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    base_url: str = BASE_URL
    objects: Dict[str, List[Dict[str, Any]]] = field(default_factory=dict)
    #: Called with the number of the search request about to be answered (1-based): lets a test
    #: change the org while a sync reads it.
    before_search: Optional[Callable[[int], None]] = None

    def __post_init__(self) -> None:
        self.mocker.post(f"{self.base_url}/v1/customers/search", json=self._search)
        self.mocker.post(f"{self.base_url}/v1/customers/archive/search", json=self._search)
        serve_plain_org(self.mocker, self.base_url)

    # --- data -------------------------------------------------------------------------------
    def add(self, context: str, resources: List[Dict[str, Any]]) -> None:
        self.objects.setdefault(context, []).extend(resources)

    def touch(self, context: str, object_ids: List[str], updated_at: datetime) -> None:
        """Kustomer stamps an update with a new updatedAt: the objects move in an ascending sort."""
        for resource in self.objects[context]:
            if resource["id"] in object_ids:
                resource["attributes"] = {**resource["attributes"], "updatedAt": iso(updated_at)}

    def serve_list(self, endpoint: str, resources: List[Dict[str, Any]]) -> None:
        self.mocker.get(f"{self.base_url}/v1/{endpoint}", json=lambda request, context: self._list(endpoint, resources, request))

    # --- what the connector asked --------------------------------------------------------------
    def search_requests(self) -> List[Any]:
        return [r for r in self.mocker.request_history if r.method == "POST"]

    # --- endpoints --------------------------------------------------------------------------
    def _search(self, request: Any, context: Any) -> Dict[str, Any]:
        if self.before_search:
            self.before_search(len(self.search_requests()))
        body = request.json()
        page, size = page_and_size(request)
        if page > SEARCH_PAGE_CAP:
            context.status_code = 400
            return kustomer_error(400, "Page exceeds the maximum of 100")
        ctx = body["queryContext"]
        archive = "/archive/" in request.path
        horizon = self.now - ARCHIVE_AGE
        bounds = {op: parse(value) for criterion in body.get("and", []) for op, value in criterion[updated_at_attribute(ctx)].items()}
        matches = sorted(
            (
                r
                for r in self.objects.get(ctx, [])
                if (parse(r["attributes"]["updatedAt"]) < horizon) == archive
                and ("gte" not in bounds or parse(r["attributes"]["updatedAt"]) >= bounds["gte"])
                and ("lte" not in bounds or parse(r["attributes"]["updatedAt"]) <= bounds["lte"])
            ),
            key=lambda r: (parse(r["attributes"]["updatedAt"]), r["id"]),
        )
        total_pages = max(1, -(-len(matches) // size))
        path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
        return {
            "meta": {"pageSize": size, "page": page, "total": len(matches), "totalPages": total_pages, "aggregations": {}, "timed_out": False},
            "data": matches[(page - 1) * size : page * size],
            "links": {
                "self": f"{path}?page={page}&pageSize={size}",
                "first": f"{path}?page=1&pageSize={size}",
                "prev": f"{path}?page={page - 1}&pageSize={size}" if page > 1 else None,
                "next": f"{path}?page={page + 1}&pageSize={size}" if page < total_pages else None,
                "last": f"{path}?page={total_pages}&pageSize={size}",
            },
        }

    def _list(self, endpoint: str, resources: List[Dict[str, Any]], request: Any) -> Dict[str, Any]:
        page, size = page_and_size(request)
        if endpoint == "users" and (request.qs.get("pending") == ["true"] or request.qs.get("deleted") == ["true"]):
            resources = []  # the users served are active: none pending, none deactivated
        more = page * size < len(resources)
        link = f"/v1/{endpoint}{'&' if '?' in endpoint else '?'}page=%d&pageSize={size}"
        return {
            "meta": {"pageSize": size, "page": page},
            "data": resources[(page - 1) * size : page * size],
            "links": {
                "self": link % page,
                "first": link % 1,
                "prev": link % (page - 1) if page > 1 else None,
                "next": link % (page + 1) if more else None,
            },
        }


# --- the CDK's HttpMocker -------------------------------------------------------------------------


def kustomer_record(kind: str, n: int, updated_at: datetime, **parts: Any) -> RecordBuilder:
    """``resource(kind, n, updated_at)`` as the CDK's ``RecordBuilder``: ``with_id``, ``with_cursor``
    (its updatedAt) and ``with_field`` change it before a page is built."""
    return RecordBuilder(resource(kind, n, updated_at, **parts), FieldPath("id"), NestedPath(["attributes", "updatedAt"]))


def list_response(next_link: Optional[str] = None, **meta: Any) -> HttpResponseBuilder:
    """A page of ``GET /v1/<endpoint>`` as the CDK's ``HttpResponseBuilder``: ``with_record`` adds a
    resource, ``with_pagination`` says more pages follow (``links.next``, relative, as Kustomer writes
    it: ``next_link``). ``meta`` is the page's ``meta`` (Kustomer's ``page`` and ``pageSize``)."""
    template: Dict[str, Any] = {"meta": dict(meta), "data": [], "links": {"next": None}}
    return create_response_builder(template, FieldPath("data"), FieldUpdatePaginationStrategy(NestedPath(["links", "next"]), next_link))


def list_page(records: List[RecordBuilder], next_link: Optional[str] = None, **meta: Any) -> HttpResponse:
    """One list page holding ``records``, followed by ``next_link`` if given."""
    builder = list_response(next_link, **meta)
    for record in records:
        builder.with_record(record)
    return (builder.with_pagination() if next_link else builder).build()


def error_response(status: int, title: str, headers: Optional[Dict[str, str]] = None) -> HttpResponse:
    """Kustomer's error answer, ``{errors: [{status, code, title}]}``."""
    return HttpResponse(json.dumps(kustomer_error(status, title)), status, headers or {})


def list_request(endpoint: str, base_url: str = BASE_URL, **params: Any) -> HttpRequest:
    """``GET /v1/<endpoint>`` with exactly the query ``params`` (and those already in ``endpoint``:
    ``klasses?status=existing_only``); matched by path and the whole query, in any order."""
    path, _, query = endpoint.partition("?")
    given = {key: values[0] for key, values in parse_qs(query).items()}
    return HttpRequest(f"{base_url}/v1/{path}", query_params={**given, **{key: str(value) for key, value in params.items()}})


def serve_plain_org_http(mocker: HttpMocker, base_url: str = BASE_URL, page_size: int = 500) -> None:
    """``serve_plain_org`` for HttpMocker: no enabled Klass (asked with the sync's ``page_size``, at
    most 100). It cannot serve the 404 of every metadata resource at once: tests on it read streams
    without custom attributes."""
    mocker.get(list_request("klasses", base_url, status="enabled", pageSize=min(page_size, 100)), list_page([]))


@contextmanager
def kustomer_http(base_url: str = BASE_URL, page_size: int = 500) -> Iterator[HttpMocker]:
    """The CDK's HttpMocker serving a plain org to a sync of ``page_size``; a test adds each request
    it expects and its answers."""
    with HttpMocker() as mocker:
        serve_plain_org_http(mocker, base_url, page_size)
        yield mocker
