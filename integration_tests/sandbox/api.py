"""Kustomer API v1 request handling, independent of the HTTP transport: auth, routing, envelopes.

Kustomer behaviours reproduced:

* Auth is ``Authorization: Bearer <key>`` with exactly one space. A bad, missing or malformed key is
  401 ``Unauthorized``; an expired key is 401 ``Expired token``; a key without the role an endpoint
  needs is also 401 (``Missing role``): Kustomer never answers 403 for roles.
* Errors are JSON:API ``{"errors": [{"status", "code", "title", ...}]}`` by default, or the newer
  ``{"errors": [{"code", "message", "meta"}]}`` form (``error_format="simple"``).
* Lists (``GET /v1/users`` ...) page with ``page`` (1-based) and ``pageSize`` (default 100, at most
  100, 500 for users and teams; larger values are clamped) and answer
  ``{meta: {page, pageSize}, data, links: {self, first, prev, next}}`` whose links are relative
  paths that keep the other query parameters; ``/v1/customers`` adds ``meta.total``,
  ``meta.totalPages`` and ``links.last``. Past the end: ``data: []`` and ``next: null``.
* Search (``POST /v1/customers/search`` and ``/archive/search``): ``pageSize`` up to 500, at most 100
  pages per query; page 100 still links ``next`` to page 101, ``totalPages``/``last`` count every
  match, and asking for page 101 is a 400 ``page_limit_exceeded``.
* 404 for unknown paths and ids, 405 for a wrong verb, 400 for malformed JSON or parameters.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode

from .ratelimit import RateLimits
from .render import Renderer
from .search import Compiler, SearchError, parse_time_us, run
from .store import TYPE_OF_ENDPOINT, Store

#: Roles a key may hold, as far as the sandbox distinguishes them.
READ, SEARCH = "read", "search"
#: Default keys: token -> roles, or "expired".
DEFAULT_TOKENS: Dict[str, Any] = {
    "sandbox-token": {READ, SEARCH},
    "expired-token": "expired",
    "norole-token": set(),
    "nosearch-token": {READ},
}
LIST_MAX_PAGE_SIZE = {"users": 500, "teams": 500}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
SEARCH_MAX_PAGE_SIZE = 500
MAX_BODY_BYTES = 100 * 1024

_AUTH = re.compile(r"(?i:bearer) ([^\s]+)")
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 429: "Rate Limit Exceeded", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Reply:
    status: int
    body: Any = None  # a JSON value, raw bytes, or None for an empty body
    headers: Dict[str, str] = field(default_factory=dict)
    close: bool = False


class ApiError(Exception):
    def __init__(self, status: int, code: str, title: str, source: Optional[Dict[str, str]] = None, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(title)
        self.status, self.code, self.title, self.source = status, code, title, source
        self.headers = headers or {}


def error_body(status: int, code: str, title: str, error_format: str = "jsonapi", source: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """An ``errors`` body in Kustomer's JSON:API form or its newer ``{code, message, meta}`` form."""
    if error_format == "simple":
        return {"errors": [{"code": code, "message": title, "meta": {"status": status, **({"source": source} if source else {})}}]}
    entry: Dict[str, Any] = {"status": str(status), "code": code, "title": title}
    if source:
        entry["source"] = source
    return {"errors": [entry]}


@dataclass
class Options:
    tokens: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    error_format: str = "jsonapi"
    reset_format: str = "epoch"
    retry_after: bool = False
    max_search_pages: int = 100
    oversize: str = "clamp"  # or "error": pageSize above the maximum is a 400


class KustomerApi:
    """Answers one request: ``handle(method, path, params, headers, body) -> Reply``."""

    def __init__(self, store: Store, renderer: Renderer, limits: RateLimits, options: Options, now_ms: Callable[[], int]) -> None:
        self.store, self.renderer, self.limits, self.options, self.now_ms = store, renderer, limits, options, now_ms
        lists = "|".join(("users", "teams", "tags", "shortcuts", "klasses", "customers", "conversations", "messages", "notes", "companies"))
        singles = "|".join(("users", "teams", "tags", "shortcuts", "customers", "conversations", "messages", "notes", "companies"))
        self.routes: List[Tuple[re.Pattern, Tuple[str, ...], str, Callable[..., Reply]]] = [
            (re.compile(r"/v1/customers/search"), ("POST",), SEARCH, lambda m, p, b: self.search(p, b, archive=False)),
            (re.compile(r"/v1/customers/archive/search"), ("POST",), SEARCH, lambda m, p, b: self.search(p, b, archive=True)),
            (re.compile(r"/v1/users/current"), ("GET",), READ, self.current_user),
            (re.compile(rf"/v1/({lists})"), ("GET",), READ, self.list_all),
            (re.compile(r"/v1/klasses/([^/]+)"), ("GET",), READ, self.klass_objects),
            (re.compile(r"/v1/klasses/([^/]+)/([^/]+)"), ("GET",), READ, self.kobject),
            (re.compile(r"/v1/(customers|companies)/([^/]+)/klasses/([^/]+)"), ("GET",), READ, self.owner_kobjects),
            (re.compile(r"/v1/customers/([^/]+)/(conversations|messages|notes)"), ("GET",), READ, self.customer_children),
            (re.compile(r"/v1/companies/([^/]+)/customers"), ("GET",), READ, self.company_customers),
            (re.compile(r"/v1/conversations/([^/]+)/(messages|notes|attachments)"), ("GET",), READ, self.conversation_children),
            (re.compile(rf"/v1/({singles})/([^/]+)"), ("GET",), READ, self.single),
        ]

    # --- entry point ------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: Sequence[Tuple[str, str]], headers: Mapping[str, str], body: bytes) -> Reply:
        route = self._route(path)
        try:
            roles = self._authenticate(headers)
            is_search = route is not None and route[2] == SEARCH
            if route is not None and route[2] not in roles:
                raise ApiError(401, "unauthorized", "Missing role")
            if route is None and not roles:
                raise ApiError(401, "unauthorized", "Missing role")
        except ApiError as exc:
            return self._error(exc)
        verdict = self.limits.admit(is_search)
        limit_headers = verdict.headers(self.options.reset_format) if verdict else {}
        if verdict is not None and not verdict.allowed:
            extra = {"Retry-After": verdict.retry_after()} if self.options.retry_after else {}
            return self._error(ApiError(429, "rate_limit_exceeded", "Rate Limit Exceeded", headers={**limit_headers, **extra}))
        try:
            if route is None:
                raise ApiError(404, "not_found", f"Cannot {method} {path}")
            pattern, methods, _role, handler = route
            if method not in methods:
                raise ApiError(405, "method_not_allowed", f"Method {method} not allowed on {path}", headers={"Allow": ", ".join(methods)})
            with self.store.lock:
                reply = handler(pattern.fullmatch(path), params, body)
        except ApiError as exc:
            reply = self._error(exc)
        reply.headers.update(limit_headers)
        return reply

    def _route(self, path: str):
        for route in self.routes:
            if route[0].fullmatch(path):
                return route
        return None

    def _authenticate(self, headers: Mapping[str, str]) -> set:
        header = headers.get("Authorization")
        match = _AUTH.fullmatch(header or "")
        spec = self.options.tokens.get(match.group(1)) if match else None
        if spec is None:
            raise ApiError(401, "unauthorized", "Unauthorized")
        if spec == "expired":
            raise ApiError(401, "unauthorized", "Expired token")
        return set(spec)

    def _error(self, exc: ApiError) -> Reply:
        body = error_body(exc.status, exc.code, exc.title, self.options.error_format, exc.source)
        return Reply(exc.status, body, dict(exc.headers))

    # --- paging helpers ---------------------------------------------------------------------
    def _paging(self, params: Sequence[Tuple[str, str]], max_size: int) -> Tuple[int, int]:
        values = dict(params)
        try:
            page = int(values.get("page", 1))
        except ValueError:
            raise ApiError(400, "invalid_parameter", "page must be a positive integer", {"parameter": "page"}) from None
        try:
            size = int(values.get("pageSize", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise ApiError(400, "invalid_parameter", "pageSize must be a positive integer", {"parameter": "pageSize"}) from None
        if page < 1:
            raise ApiError(400, "invalid_parameter", "page must be a positive integer", {"parameter": "page"})
        if size < 1:
            raise ApiError(400, "invalid_parameter", "pageSize must be a positive integer", {"parameter": "pageSize"})
        if size > max_size:
            if self.options.oversize == "error":
                raise ApiError(400, "invalid_parameter", f"pageSize must be at most {max_size}", {"parameter": "pageSize"})
            size = max_size
        return page, size

    @staticmethod
    def _link(path: str, page: int, size: int, params: Sequence[Tuple[str, str]]) -> str:
        rest = [(k, v) for k, v in params if k not in ("page", "pageSize")]
        return f"{path}?page={page}&pageSize={size}" + ("&" + urlencode(rest) if rest else "")

    def _list_reply(self, path: str, params: Sequence[Tuple[str, str]], max_size: int, kind: str, indices: Sequence[int],
                    with_total: bool = False, include_attachments: bool = False) -> Reply:
        """One page of ``indices`` (already in list order) in Kustomer's list envelope."""
        page, size = self._paging(params, max_size)
        chosen = indices[(page - 1) * size: page * size]
        data = [self.renderer.resource(kind, i) for i in chosen]
        total = len(indices)
        meta: Dict[str, Any] = {"page": page, "pageSize": size}
        links = {
            "self": self._link(path, page, size, params),
            "first": self._link(path, 1, size, params),
            "prev": self._link(path, page - 1, size, params) if page > 1 else None,
            "next": self._link(path, page + 1, size, params) if page * size < total else None,
        }
        if with_total:
            pages = math.ceil(total / size)
            meta.update(total=total, totalPages=pages)
            links["last"] = self._link(path, max(pages, 1), size, params)
        body: Dict[str, Any] = {"meta": meta, "data": data, "links": links}
        if include_attachments:
            body["included"] = [self.renderer.attachment(i, k) for i in chosen for k in range(self.renderer.attachment_count(i))]
        return Reply(200, body)

    def _index(self, kind: str, object_id: str) -> int:
        i = self.store.colls[kind].index_of(object_id)
        if i is None:
            raise ApiError(404, "not_found", f"{kind} {object_id} not found")
        return i

    @staticmethod
    def _wants_attachments(params: Sequence[Tuple[str, str]]) -> bool:
        return any(k == "include" and "attachments" in v.split(",") for k, v in params)

    @staticmethod
    def _ordered(params: Sequence[Tuple[str, str]], indices: Sequence[int], sortable: bool) -> Sequence[int]:
        """List order: by id; conversations and messages accept ``sort=desc``."""
        direction = dict(params).get("sort")
        if sortable and direction not in (None, "asc", "desc"):
            raise ApiError(400, "invalid_parameter", "sort must be asc or desc", {"parameter": "sort"})
        return indices[::-1] if sortable and direction == "desc" else indices

    # --- endpoints --------------------------------------------------------------------------
    def current_user(self, match, params, body) -> Reply:
        return Reply(200, {"data": self.renderer.resource("user", 0)})

    def list_all(self, match, params, body) -> Reply:
        endpoint = match.group(1)
        kind = TYPE_OF_ENDPOINT[endpoint]
        values = dict(params)
        indices: Sequence[int] = range(len(self.store.colls[kind]))
        if kind == "user" and ("userType" in values or "email" in values):
            docs = {i: self.renderer.resource("user", i)["attributes"] for i in indices}
            indices = [i for i in indices
                       if values.get("userType", docs[i]["userType"]) == docs[i]["userType"]
                       and values.get("email", docs[i]["email"]).lower() == docs[i]["email"].lower()]
        if kind == "klass":
            status = values.get("status", "enabled")
            if status not in ("enabled", "disabled", "existing_only"):
                raise ApiError(400, "invalid_parameter", "status must be enabled, disabled or existing_only", {"parameter": "status"})
            if status == "disabled":
                indices = []
        indices = self._ordered(params, indices, kind in ("conversation", "message"))
        return self._list_reply(f"/v1/{endpoint}", params, LIST_MAX_PAGE_SIZE.get(endpoint, MAX_PAGE_SIZE), kind, indices,
                                with_total=kind == "customer", include_attachments=kind == "message" and self._wants_attachments(params))

    def single(self, match, params, body) -> Reply:
        kind = TYPE_OF_ENDPOINT[match.group(1)]
        return Reply(200, {"data": self.renderer.resource(kind, self._index(kind, match.group(2)))})

    def _klass_index(self, name: str) -> int:
        if name not in self.store.klass_names:
            raise ApiError(404, "not_found", f"klass {name} not found")
        return self.store.klass_names.index(name)

    def klass_objects(self, match, params, body) -> Reply:
        name = match.group(1)
        klass = self._klass_index(name)
        indices = list(self.store.indices("kobject", klass))
        from_date = dict(params).get("fromDate")
        if from_date:
            try:
                since_ms = -(-parse_time_us(from_date) // 1000)
            except SearchError as exc:
                raise ApiError(400, "invalid_parameter", exc.title, {"parameter": "fromDate"}) from None
            updated = self.store.colls["kobject"].updated
            indices = [i for i in indices if updated[i] >= since_ms]
        return self._list_reply(f"/v1/klasses/{name}", params, MAX_PAGE_SIZE, "kobject", indices)

    def kobject(self, match, params, body) -> Reply:
        klass = self._klass_index(match.group(1))
        i = self._index("kobject", match.group(2))
        if self.store.colls["kobject"].rel["klass"][i] != klass:
            raise ApiError(404, "not_found", f"kobject {match.group(2)} not found")
        return Reply(200, {"data": self.renderer.resource("kobject", i)})

    def owner_kobjects(self, match, params, body) -> Reply:
        owner_endpoint, owner_id, name = match.groups()
        owner_kind = TYPE_OF_ENDPOINT[owner_endpoint]
        owner = self._index(owner_kind, owner_id)
        klass = self._klass_index(name)
        kobjects = self.store.colls["kobject"]
        klass_col, customer_col = kobjects.rel["klass"], kobjects.rel["customer"]
        if owner_kind == "customer":
            owners = {owner}
        else:
            company_col = self.store.colls["customer"].rel["company"]
            owners = {c for c in range(len(company_col)) if company_col[c] == owner}
        indices = [i for i in range(len(kobjects)) if klass_col[i] == klass and customer_col[i] in owners]
        return self._list_reply(f"/v1/{owner_endpoint}/{owner_id}/klasses/{name}", params, MAX_PAGE_SIZE, "kobject", indices)

    def _conversations_of(self, customer: int) -> List[int]:
        column = self.store.colls["conversation"].rel["customer"]
        return [j for j in range(len(column)) if column[j] == customer]

    def _children_of_conversations(self, kind: str, conversations: set) -> List[int]:
        column = self.store.colls[kind].rel["conversation"]
        return [j for j in range(len(column)) if column[j] in conversations]

    def customer_children(self, match, params, body) -> Reply:
        customer_id, child = match.groups()
        customer = self._index("customer", customer_id)
        conversations = self._conversations_of(customer)
        kind = TYPE_OF_ENDPOINT[child]
        indices = conversations if kind == "conversation" else self._children_of_conversations(kind, set(conversations))
        indices = self._ordered(params, indices, kind in ("conversation", "message"))
        return self._list_reply(f"/v1/customers/{customer_id}/{child}", params, MAX_PAGE_SIZE, kind, indices,
                                include_attachments=kind == "message" and self._wants_attachments(params))

    def company_customers(self, match, params, body) -> Reply:
        company = self._index("company", match.group(1))
        column = self.store.colls["customer"].rel["company"]
        indices = [c for c in range(len(column)) if column[c] == company]
        return self._list_reply(f"/v1/companies/{match.group(1)}/customers", params, MAX_PAGE_SIZE, "customer", indices)

    def conversation_children(self, match, params, body) -> Reply:
        conversation_id, child = match.groups()
        conversation = self._index("conversation", conversation_id)
        if child == "attachments":
            # This sub-list has neither meta nor links in Kustomer's API.
            messages = self._children_of_conversations("message", {conversation})
            return Reply(200, {"data": [self.renderer.attachment(i, k) for i in messages for k in range(self.renderer.attachment_count(i))]})
        kind = TYPE_OF_ENDPOINT[child]
        indices = self._ordered(params, self._children_of_conversations(kind, {conversation}), kind == "message")
        return self._list_reply(f"/v1/conversations/{conversation_id}/{child}", params, MAX_PAGE_SIZE, kind, indices,
                                include_attachments=kind == "message" and self._wants_attachments(params))

    def search(self, params, body: bytes, archive: bool) -> Reply:
        page, size = self._paging(params, SEARCH_MAX_PAGE_SIZE)
        cap = self.options.max_search_pages
        if page > cap:
            raise ApiError(400, "page_limit_exceeded", f"Page exceeds the maximum of {cap}")
        try:
            payload = json.loads(body.decode("utf-8") if body else "")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "Request body is not valid JSON") from None
        try:
            query = Compiler(self.store, self.renderer, payload, archive, self.now_ms()).compile()
            total, chosen = run(query, page, size)
        except SearchError as exc:
            raise ApiError(400, "bad_request", exc.title, {"pointer": exc.pointer} if exc.pointer else None) from None
        kind = query.coll.kind
        if dict(params).get("idsOnly") == "true":
            data = [{"type": kind, "id": query.coll.id_of(i)} for i in chosen]
        else:
            data = [self.renderer.resource(kind, i) for i in chosen]
        pages = math.ceil(total / size)
        path = "/v1/customers/archive/search" if archive else "/v1/customers/search"

        def link(n: int) -> str:
            return f"{path}?page={n}&pageSize={size}"

        return Reply(200, {
            "meta": {"pageSize": size, "page": page, "total": total, "totalPages": pages, "aggregations": {}, "timed_out": False},
            "data": data,
            "links": {
                "self": link(page),
                "first": link(1),
                "prev": link(page - 1) if page > 1 else None,
                "next": link(page + 1) if page < pages else None,
                "last": link(max(pages, 1)),
            },
        })


def reason(status: int) -> str:
    return _REASONS.get(status, "Error")
