"""Kustomer API v1 request handling, independent of the HTTP transport: auth, routing, envelopes.

Kustomer behaviours reproduced:

* Auth is ``Authorization: Bearer <key>`` with exactly one space. A bad, missing or malformed key is
  401 ``Unauthorized``; an expired key is 401 ``Expired token``; a key of another pod (region) is
  refused on every endpoint with ``Auth token associated with pod prod2 but request is being handled
  by prod1`` (401 by default, ``wrong_pod_status``).
* Roles as Kustomer names them (see ``roles``): each endpoint needs any one of the roles the contract
  lists for it, permission-set or legacy form. A key without one gets ``Missing required role``:
  403 ``forbidden`` by default (newer docs), or 401 (the older reference; ``missing_role_status``).
* ``GET /v1/auth/tokens/current`` answers the key itself (``auth_token``: name, last four characters,
  sorted roles, ...) to any valid key, whatever its roles.
* The published contract is held to (see ``conformance``): after authentication, a request the
  contract does not allow is a 400 ``bad_request`` naming each problem (or only recorded); then the
  roles, then the rate limits.
* Errors are JSON:API ``{"errors": [{"status", "code", "title", ...}]}`` by default, or the newer
  ``{"errors": [{"code", "message", "meta"}]}`` form (``error_format="simple"``).
* Lists (``GET /v1/users`` ...) page with ``page`` (1-based) and ``pageSize`` (default 100, at most
  100, 500 for users and teams; larger values are clamped) and answer
  ``{meta: {page, pageSize}, data, links: {self, first, prev, next}}`` whose links are relative
  paths that keep the other query parameters; ``/v1/customers`` adds ``meta.total``,
  ``meta.totalPages`` and ``links.last``. Past the end: ``data: []`` and ``next: null``.
* ``GET /v1/users`` by status: ``deleted=true`` the deactivated users, ``pending=true`` those whose
  invitation is pending, ``deleted=false``/``pending=false`` the active ones (plus the pending ones
  with ``users_active_includes_pending``); ``userType`` and ``email`` narrow the default set; two of
  these filters in one request are a 400 (``These filters cannot be combined``). Without a filter:
  ``users_default`` (``active``, ``all`` or ``active_and_pending``).
* Search (``POST /v1/customers/search`` and ``/archive/search``): ``pageSize`` up to 500, at most 100
  pages per query; page 100 still links ``next`` to page 101, ``totalPages``/``last`` count every
  match, and asking for page 101 is a 400 ``page_limit_exceeded``.
* 404 for unknown paths and ids, 405 for a wrong verb, 400 for malformed JSON or parameters.
* Soft-deleted customers, conversations, companies, notes and kobjects are left out of every list
  and of search (unless the search body says ``"includeDeleted": true``); by id they are still served,
  with ``deleted: true``.
* Org lists (brands, schedules, cards, routing queues and settings, satisfaction, snoozes, spam
  senders, notifications, SLAs) page like the other lists, in id (= creation) order. ``/v1/slas``
  adds ``included`` sla_version resources with ``versions=all``. ``/v1/outboundAccounts`` is one
  unpaginated page whose links hold only ``self``. ``/v1/metadata/{resource}`` is a single object.
* ``/v1/audit-logs`` pages with a cursor, newest first: ``count`` (default 100, 1..1000, else 400),
  ``before=<id>``/``after=<id>`` (exclusive) and the inclusive ``filter[start]``/``filter[end]``.
* ``/v1/conversations/{id}/events|forwards|times``: per-conversation lists in creation order
  (``sort=desc`` reverses events), pageSize at most 100 (1000 for times); 404 for an unknown id.
* ``/v1/conversations/{id}/attachments``: the attachments of the conversation's messages (message
  order), pageSize at most 100, ``links.next``; each with ``name``, ``contentType``,
  ``contentLength``, ``redacted``, its ``message`` and a signed ``links.related`` URL. Kustomer's own
  example has no ``id``: with ``attachment_ids=False`` the id is only in ``links.self``.
* ``/v1/customers/{id}/drafts|merges``: per-customer lists in creation order of the customer's unsent
  drafts (``draft``) and of the customers merged into it (``customer_merge``: ``source`` merged into
  ``target``); most customers have none. pageSize at most 100; 404 for an unknown id. Like the
  conversation sub-lists they still answer for a soft-deleted parent.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from bisect import bisect_left, bisect_right
from urllib.parse import urlencode

from . import conformance
from .conformance import ContractCheck
from .data import AUDIT_OBJECT_TYPES, USER_STATUSES
from .ratelimit import RateLimits
from .render_org import OrgRenderer
from .roles import DEFAULT_TOKENS, Token, parse_token, roles_needed
from .search import Compiler, SearchError, parse_time_us, run
from .store import DELETABLE, TYPE_OF_ENDPOINT, Store

LIST_MAX_PAGE_SIZE = {"users": 500, "teams": 500}
#: Org lists answered from their own collection, in id order.
ORG_LISTS = ("brands", "schedules", "cards", "routing/queues", "satisfaction", "snoozes", "spam/senders", "notifications")
#: Largest pageSize of each per-conversation sub-list.
CONVERSATION_SUBLISTS = {"events": 100, "forwards": 100, "times": 1000}
#: Largest pageSize of each per-customer sub-list.
CUSTOMER_SUBLISTS = {"drafts": 100, "merges": 100}
AUDIT_DEFAULT_COUNT = 100
AUDIT_MAX_COUNT = 1000
_HEX24 = re.compile(r"[0-9a-fA-F]{24}")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
SEARCH_MAX_PAGE_SIZE = 500
MAX_BODY_BYTES = 100 * 1024

#: ``GET /v1/users`` filters, no two of which may be combined.
USER_FILTERS = ("deleted", "pending", "userType", "email")
USERS_DEFAULTS = ("active", "all", "active_and_pending")
#: The error code Kustomer sends with each status the sandbox may be told to use for auth refusals.
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
#: A request body that is not JSON (``None`` is no body at all).
_NOT_JSON = object()

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
    """An error answer; ``more`` adds further ``(title, source)`` entries to its ``errors`` list."""

    def __init__(self, status: int, code: str, title: str, source: Optional[Dict[str, str]] = None, headers: Optional[Dict[str, str]] = None,
                 more: Sequence[Tuple[str, Optional[Dict[str, str]]]] = ()) -> None:
        super().__init__(title)
        self.status, self.code, self.title, self.source = status, code, title, source
        self.headers = headers or {}
        self.more = list(more)


def error_body(status: int, code: str, title: str, error_format: str = "jsonapi", source: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """An ``errors`` body in Kustomer's JSON:API form or its newer ``{code, message, meta}`` form."""
    if error_format == "simple":
        return {"errors": [{"code": code, "message": title, "meta": {"status": status, **({"source": source} if source else {})}}]}
    entry: Dict[str, Any] = {"status": str(status), "code": code, "title": title}
    if source:
        entry["source"] = source
    return {"errors": [entry]}


def auth_status(name: str, status: Any) -> int:
    """A status the sandbox may answer an auth refusal with (one of ``_STATUS_CODES``)."""
    if status not in _STATUS_CODES:
        raise ValueError(f"{name} must be one of {', '.join(map(str, _STATUS_CODES))}, not {status!r}")
    return int(status)


@dataclass
class Options:
    tokens: Mapping[str, Token] = field(default_factory=lambda: {k: parse_token(v) for k, v in DEFAULT_TOKENS.items()})
    error_format: str = "jsonapi"
    reset_format: str = "epoch"
    retry_after: bool = False
    max_search_pages: int = 100
    oversize: str = "clamp"  # or "error": pageSize above the maximum is a 400
    missing_role_status: int = 403  # or 401, as Kustomer's older reference says
    pod: str = "prod1"
    wrong_pod_status: int = 401
    users_default: str = "active"  # or "all", "active_and_pending"
    users_active_includes_pending: bool = False
    attachment_ids: bool = True
    archive_notes: str = "refuse"  # or "ignore", "serve" (see conformance)
    undocumented_sort: str = "honor"  # or "ignore", "refuse"
    undocumented_filter: str = "honor"  # or "ignore", "refuse"


class KustomerApi:
    """Answers one request: ``handle(method, path, params, headers, body) -> Reply``."""

    def __init__(self, store: Store, renderer: OrgRenderer, limits: RateLimits, options: Options, now_ms: Callable[[], int],
                 contract: Optional[ContractCheck] = None) -> None:
        self.store, self.renderer, self.limits, self.options, self.now_ms = store, renderer, limits, options, now_ms
        self.contract = contract or ContractCheck()
        lists = "|".join(("users", "teams", "tags", "shortcuts", "klasses", "customers", "conversations", "messages", "notes", "companies"))
        singles = "|".join(("users", "teams", "tags", "shortcuts", "customers", "conversations", "messages", "notes", "companies"))
        # (pattern, methods, is a search, handler): the first pattern that matches the whole path wins.
        self.routes: List[Tuple[re.Pattern, Tuple[str, ...], bool, Callable[..., Reply]]] = [
            (re.compile(r"/v1/customers/search"), ("POST",), True, lambda m, p, b: self.search(p, b, archive=False)),
            (re.compile(r"/v1/customers/archive/search"), ("POST",), True, lambda m, p, b: self.search(p, b, archive=True)),
            (re.compile(r"/v1/auth/tokens/current"), ("GET",), False, self.current_token),
            (re.compile(r"/v1/users/current"), ("GET",), False, self.current_user),
            (re.compile(rf"/v1/({lists})"), ("GET",), False, self.list_all),
            (re.compile("/v1/(" + "|".join(re.escape(e) for e in ORG_LISTS) + ")"), ("GET",), False, self.org_list),
            (re.compile(r"/v1/routing/settings"), ("GET",), False, self.routing_settings),
            (re.compile(r"/v1/outboundAccounts"), ("GET",), False, self.outbound_accounts),
            (re.compile(r"/v1/slas"), ("GET",), False, self.slas),
            (re.compile(r"/v1/audit-logs"), ("GET",), False, self.audit_logs),
            (re.compile(r"/v1/metadata/([^/]+)"), ("GET",), False, self.metadata),
            (re.compile(r"/v1/klasses/([^/]+)"), ("GET",), False, self.klass_objects),
            (re.compile(r"/v1/klasses/([^/]+)/([^/]+)"), ("GET",), False, self.kobject),
            (re.compile(r"/v1/(customers|companies)/([^/]+)/klasses/([^/]+)"), ("GET",), False, self.owner_kobjects),
            (re.compile(r"/v1/customers/([^/]+)/(conversations|messages|notes)"), ("GET",), False, self.customer_children),
            (re.compile(r"/v1/customers/([^/]+)/(drafts|merges)"), ("GET",), False, self.customer_sublist),
            (re.compile(r"/v1/companies/([^/]+)/customers"), ("GET",), False, self.company_customers),
            (re.compile(r"/v1/conversations/([^/]+)/(messages|notes)"), ("GET",), False, self.conversation_children),
            (re.compile(r"/v1/conversations/([^/]+)/attachments"), ("GET",), False, self.conversation_attachments),
            (re.compile(r"/v1/conversations/([^/]+)/(events|forwards|times)"), ("GET",), False, self.conversation_sublist),
            (re.compile(rf"/v1/({singles})/([^/]+)"), ("GET",), False, self.single),
        ]

    # --- entry point ------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: Sequence[Tuple[str, str]], headers: Mapping[str, str], body: bytes) -> Reply:
        """Authentication, then the contract, then the roles, then the rate limits, then the answer."""
        route = self._route(path)
        template = self.template(path)
        payload: Any = None
        try:
            key, token = self._authenticate(headers)
            if body:
                try:
                    payload = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    payload = _NOT_JSON
            served = route is not None and method in route[1]
            problems = self.contract.check(method, path, template, params, None if payload is _NOT_JSON else payload)
            if problems and served and self.contract.mode == "enforce":
                self._refuse(problems, path == "/v1/customers/archive/search", payload)
            self._authorize(token, route, template)
        except ApiError as exc:
            return self._error(exc)
        verdict = self.limits.admit(route is not None and route[2])
        limit_headers = verdict.headers(self.options.reset_format) if verdict else {}
        if verdict is not None and not verdict.allowed:
            extra = {"Retry-After": verdict.retry_after()} if self.options.retry_after else {}
            return self._error(ApiError(429, "rate_limit_exceeded", "Rate Limit Exceeded", headers={**limit_headers, **extra}))
        try:
            if route is None:
                raise ApiError(404, "not_found", f"Cannot {method} {path}")
            pattern, methods, _is_search, handler = route
            if method not in methods:
                raise ApiError(405, "method_not_allowed", f"Method {method} not allowed on {path}", headers={"Allow": ", ".join(methods)})
            with self.store.lock:
                if handler == self.current_token:
                    reply = self.current_token(key, token)
                else:
                    reply = handler(pattern.fullmatch(path), params, payload)
        except ApiError as exc:
            reply = self._error(exc)
        reply.headers.update(limit_headers)
        return reply

    def _refuse(self, problems: Sequence[str], archive: bool, payload: Any) -> None:
        """The contract's 400, one error per problem the silent behaviours do not answer themselves."""
        body = None if payload is _NOT_JSON else payload
        left = [p for p in problems if not conformance.covered(p, archive, body)]
        if left:
            entries = [(p, conformance.sources(p, body)) for p in left]
            raise ApiError(400, "bad_request", entries[0][0], entries[0][1], more=entries[1:])

    @staticmethod
    def template(path: str) -> str:
        """``path`` with ids (24 hex digits) as ``{id}`` and Klass names as ``{name}``: how requests are counted."""
        parts = path.split("/")
        for n, part in enumerate(parts):
            if _HEX24.fullmatch(part):
                parts[n] = "{id}"
            elif n >= 3 and parts[n - 1] == "klasses" and part:
                parts[n] = "{name}"
        return "/".join(parts)

    def _route(self, path: str):
        for route in self.routes:
            if route[0].fullmatch(path):
                return route
        return None

    def serves(self, method: str, path: str) -> bool:
        """Whether a route of this API answers ``method path`` (``{id}`` in ``path`` stands for an object id)."""
        route = self._route(path.replace("{id}", "0" * 24))
        return route is not None and method in route[1]

    def _authenticate(self, headers: Mapping[str, str]) -> Tuple[str, Token]:
        """``(key, Token)`` of a valid key of this pod; else the 401 (or ``wrong_pod_status``) Kustomer sends."""
        header = headers.get("Authorization")
        match = _AUTH.fullmatch(header or "")
        token = self.options.tokens.get(match.group(1)) if match else None
        if token is None:
            raise ApiError(401, "unauthorized", "Unauthorized")
        if token.expired:
            raise ApiError(401, "unauthorized", "Expired token")
        if token.pod is not None and token.pod != self.options.pod:
            status = self.options.wrong_pod_status
            raise ApiError(status, _STATUS_CODES[status],
                           f"Auth token associated with pod {token.pod} but request is being handled by {self.options.pod}")
        return match.group(1), token

    def _authorize(self, token: Token, route: Any, template: str) -> None:
        """A key needs one of the roles of the endpoint (any role at all for an unknown path)."""
        needed = roles_needed(route[1][0], template) if route is not None else None
        if needed == ():
            return
        if (token.roles.isdisjoint(needed) if needed is not None else not token.roles):
            status = self.options.missing_role_status
            raise ApiError(status, _STATUS_CODES[status], "Missing required role")

    def _error(self, exc: ApiError) -> Reply:
        fmt = self.options.error_format
        body = error_body(exc.status, exc.code, exc.title, fmt, exc.source)
        for title, source in exc.more:
            body["errors"] += error_body(exc.status, exc.code, title, fmt, source)["errors"]
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
        render = (lambda i: self.renderer.message(i, attachments=True)) if include_attachments else (lambda i: self.renderer.resource(kind, i))
        body, chosen = self._page(path, params, max_size, indices, render, with_total)
        if include_attachments:
            body["included"] = [self.renderer.attachment(i, k) for i in chosen for k in range(self.renderer.attachment_count(i))]
        return Reply(200, body)

    def _page(self, path: str, params: Sequence[Tuple[str, str]], max_size: int, items: Sequence[Any],
              render: Callable[[Any], Dict[str, Any]], with_total: bool = False) -> Tuple[Dict[str, Any], Sequence[Any]]:
        """``(list envelope, chosen items)`` of one page of ``items`` (already in list order), rendered by ``render``."""
        page, size = self._paging(params, max_size)
        chosen = items[(page - 1) * size: page * size]
        data = [render(i) for i in chosen]
        total = len(items)
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
        return {"meta": meta, "data": data, "links": links}, chosen

    def _alive(self, kind: str, indices: Sequence[int]) -> Sequence[int]:
        """``indices`` without soft-deleted objects (lists never show them)."""
        coll = self.store.colls[kind]
        return coll.alive(indices) if kind in DELETABLE and coll.deleted else indices

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
        if kind == "user":
            indices = self._users(params)
        if kind == "klass":
            status = values.get("status", "enabled")
            if status not in ("enabled", "disabled", "existing_only"):
                raise ApiError(400, "invalid_parameter", "status must be enabled, disabled or existing_only", {"parameter": "status"})
            if status != "existing_only":
                names, off = self.store.klass_names, self.store.disabled_klasses
                indices = [i for i in indices if (names[i % len(names)] in off) == (status == "disabled")]
        indices = self._alive(kind, indices)
        indices = self._ordered(params, indices, kind in ("conversation", "message"))
        return self._list_reply(f"/v1/{endpoint}", params, LIST_MAX_PAGE_SIZE.get(endpoint, MAX_PAGE_SIZE), kind, indices,
                                with_total=kind == "customer", include_attachments=kind == "message" and self._wants_attachments(params))

    def _users(self, params: Sequence[Tuple[str, str]]) -> List[int]:
        """The users ``GET /v1/users`` lists for its filters (at most one of ``USER_FILTERS``), by index."""
        given = [name for name in USER_FILTERS if any(k == name for k, _ in params)]
        if len(given) > 1:
            raise ApiError(400, "bad_request", "These filters cannot be combined", {"parameter": given[1]})
        values = dict(params)
        default = {"active": ("active",), "all": USER_STATUSES,
                   "active_and_pending": ("active", "pending")}[self.options.users_default]
        wanted = default
        for name in ("deleted", "pending"):
            if name in values:
                flag = values[name].lower()
                if flag not in ("true", "false"):
                    raise ApiError(400, "invalid_parameter", f"{name} must be true or false", {"parameter": name})
                if flag == "true":
                    wanted = ("deactivated",) if name == "deleted" else ("pending",)
                else:
                    wanted = ("active", "pending") if self.options.users_active_includes_pending else ("active",)
        status = self.store.colls["user"].rel.get("status")
        codes = {USER_STATUSES.index(w) for w in wanted}
        indices = [i for i in range(len(self.store.colls["user"])) if (status[i] if status is not None and status[i] >= 0 else 0) in codes]
        if "userType" in values or "email" in values:
            docs = {i: self.renderer.resource("user", i)["attributes"] for i in indices}
            indices = [i for i in indices
                       if values.get("userType", docs[i]["userType"]) == docs[i]["userType"]
                       and values.get("email", docs[i]["email"]).lower() == docs[i]["email"].lower()]
        return indices

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
        indices = self._alive("kobject", indices)
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
        indices = self._alive("kobject", [i for i in range(len(kobjects)) if klass_col[i] == klass and customer_col[i] in owners])
        return self._list_reply(f"/v1/{owner_endpoint}/{owner_id}/klasses/{name}", params, MAX_PAGE_SIZE, "kobject", indices)

    def _conversations_of(self, customer: int) -> List[int]:
        column = self.store.colls["conversation"].rel["customer"]
        return [j for j in range(len(column)) if column[j] == customer]

    def _children_of_conversations(self, kind: str, conversations: set) -> List[int]:
        """Messages or notes (``kind``) of the given conversations, by index (creation order)."""
        index = self.store.child_index(kind)
        if len(conversations) == 1:
            return index.of(next(iter(conversations)))
        return sorted(j for c in conversations for j in index.of(c))

    def customer_children(self, match, params, body) -> Reply:
        customer_id, child = match.groups()
        customer = self._index("customer", customer_id)
        conversations = self._conversations_of(customer)
        kind = TYPE_OF_ENDPOINT[child]
        indices = conversations if kind == "conversation" else self._children_of_conversations(kind, set(conversations))
        indices = self._alive(kind, indices)
        indices = self._ordered(params, indices, kind in ("conversation", "message"))
        return self._list_reply(f"/v1/customers/{customer_id}/{child}", params, MAX_PAGE_SIZE, kind, indices,
                                include_attachments=kind == "message" and self._wants_attachments(params))

    def company_customers(self, match, params, body) -> Reply:
        company = self._index("company", match.group(1))
        column = self.store.colls["customer"].rel["company"]
        indices = self._alive("customer", [c for c in range(len(column)) if column[c] == company])
        return self._list_reply(f"/v1/companies/{match.group(1)}/customers", params, MAX_PAGE_SIZE, "customer", indices)

    def conversation_children(self, match, params, body) -> Reply:
        conversation_id, child = match.groups()
        conversation = self._index("conversation", conversation_id)
        kind = TYPE_OF_ENDPOINT[child]
        indices = self._ordered(params, self._alive(kind, self._children_of_conversations(kind, {conversation})), kind == "message")
        return self._list_reply(f"/v1/conversations/{conversation_id}/{child}", params, MAX_PAGE_SIZE, kind, indices,
                                include_attachments=kind == "message" and self._wants_attachments(params))

    def conversation_attachments(self, match, params, body) -> Reply:
        """The attachments of a conversation's messages, in message order (a paginated list)."""
        conversation_id = match.group(1)
        conversation = self._index("conversation", conversation_id)
        renderer = self.renderer
        items = [(i, k) for i in self._children_of_conversations("message", {conversation}) for k in range(renderer.attachment_count(i))]
        with_id = self.options.attachment_ids
        body, _ = self._page(f"/v1/conversations/{conversation_id}/attachments", params, MAX_PAGE_SIZE, items,
                             lambda item: renderer.attachment_item(item[0], item[1], with_id))
        return Reply(200, body)

    # --- the key itself ---------------------------------------------------------------------
    def current_token(self, key: str, token: Token) -> Reply:
        """``GET /v1/auth/tokens/current``: the key that asks, whatever its roles."""
        return Reply(200, {"data": self.renderer.auth_token(key, token, self.now_ms())})

    # --- org lists ----------------------------------------------------------------------------
    def org_list(self, match, params, body) -> Reply:
        endpoint = match.group(1)
        kind = TYPE_OF_ENDPOINT[endpoint]
        return self._list_reply(f"/v1/{endpoint}", params, MAX_PAGE_SIZE, kind, range(len(self.store.colls[kind])))

    def routing_settings(self, match, params, body) -> Reply:
        """One routing setting per team, with the team's id."""
        return self._list_reply("/v1/routing/settings", params, MAX_PAGE_SIZE, "routing_setting", range(len(self.store.colls["team"])))

    def outbound_accounts(self, match, params, body) -> Reply:
        self_link = "/v1/outboundAccounts" + ("?" + urlencode(list(params)) if params else "")
        return Reply(200, {"meta": {}, "data": self.renderer.outbound_accounts(), "links": {"self": self_link}})

    def slas(self, match, params, body) -> Reply:
        versions = dict(params).get("versions")
        if versions not in (None, "active", "all"):
            raise ApiError(400, "invalid_parameter", "versions must be active or all", {"parameter": "versions"})
        body, chosen = self._page("/v1/slas", params, MAX_PAGE_SIZE, range(len(self.store.colls["sla"])),
                                  lambda i: self.renderer.resource("sla", i))
        if versions == "all":
            body["included"] = [self.renderer.resource("sla_version", v) for s in chosen for v in self.renderer.sla_versions_of(s)]
        return Reply(200, body)

    def metadata(self, match, params, body) -> Reply:
        resource = match.group(1)
        data = self.renderer.metadata(resource)
        if data is None:
            raise ApiError(404, "not_found", f"metadata {resource} not found")
        return Reply(200, {"data": data})

    # --- audit log -------------------------------------------------------------------------
    def _audit_cursor(self, values: Mapping[str, str], name: str) -> Optional[int]:
        if name not in values:
            return None
        i = self.store.colls["audit_log"].index_of(values[name])
        if i is None:
            raise ApiError(400, "invalid_parameter", f"{name} must be the id of an audit log", {"parameter": name})
        return i

    def _audit_instant(self, values: Mapping[str, str], name: str) -> Optional[int]:
        if name not in values:
            return None
        try:
            return parse_time_us(values[name])
        except SearchError:
            raise ApiError(400, "invalid_parameter", f"{name} must be an ISO-8601 date-time", {"parameter": name}) from None

    def audit_logs(self, match, params, body) -> Reply:
        """Newest first, one page of ``count`` entries between the cursors, within the filters.

        ``filter[start] <= createdAt <= filter[end]`` (inclusive, compared at microseconds);
        ``after < entry < before`` by id (entries sharing a millisecond are ordered by id). With
        ``after`` alone the page is the ``count`` oldest entries newer than it; otherwise the
        ``count`` newest. ``filter[objectType]``/``filter[objectId]`` narrow further.
        """
        values = dict(params)
        try:
            count = int(values.get("count", AUDIT_DEFAULT_COUNT))
        except ValueError:
            raise ApiError(400, "invalid_parameter", "count must be a positive integer", {"parameter": "count"}) from None
        if not 1 <= count <= AUDIT_MAX_COUNT:
            raise ApiError(400, "invalid_parameter", f"count must be between 1 and {AUDIT_MAX_COUNT}", {"parameter": "count"})
        start_us, end_us = self._audit_instant(values, "filter[start]"), self._audit_instant(values, "filter[end]")
        before, after = self._audit_cursor(values, "before"), self._audit_cursor(values, "after")
        coll = self.store.colls["audit_log"]
        created = coll.created
        lo = 0 if start_us is None else bisect_left(created, -(-start_us // 1000))
        hi = len(created) if end_us is None else bisect_right(created, end_us // 1000)
        window: Sequence[int] = range(lo, max(lo, hi))
        object_type, object_id = values.get("filter[objectType]"), values.get("filter[objectId]")
        if object_id is not None and object_type is None:
            raise ApiError(400, "invalid_parameter", "filter[objectId] requires filter[objectType]", {"parameter": "filter[objectId]"})
        if object_type is not None:
            t = AUDIT_OBJECT_TYPES.index(object_type) if object_type in AUDIT_OBJECT_TYPES else -1
            target = self.store.colls[object_type].index_of(object_id) if t >= 0 and object_id is not None else None
            types, objects = coll.rel["object_type"], coll.rel["object"]
            window = [i for i in window if types[i] == t and (object_id is None or objects[i] == target)]
        total = len(window)
        # Positions in ``window`` (ascending index) of the entries between the cursors.
        a = 0 if after is None else bisect_right(window, after)
        b = len(window) if before is None else bisect_left(window, before)
        b = max(a, b)
        if after is not None and before is None:
            first, last = a, min(b, a + count)
        else:
            first, last = max(a, b - count), b
        chosen = list(window[first:last])[::-1]
        filters = [(k, v) for k, v in params if k.startswith("filter[")]

        def link(**cursor: Any) -> str:
            return "/v1/audit-logs?" + urlencode([("count", count), *cursor.items(), *filters])

        carried_after = {"after": values["after"]} if after is not None and before is not None else {}
        links = {
            "self": "/v1/audit-logs" + ("?" + urlencode(list(params)) if params else ""),
            "first": link(),
            "prev": link(after=coll.id_of(chosen[0])) if chosen and last < len(window) else None,
            "next": link(before=coll.id_of(chosen[-1]), **carried_after) if chosen and first > a else None,
        }
        data = [self.renderer.resource("audit_log", i) for i in chosen]
        return Reply(200, {"meta": {"count": count, "cursorCount": len(data), "total": total}, "data": data, "links": links})

    # --- conversation sub-lists -------------------------------------------------------------
    def conversation_sublist(self, match, params, body) -> Reply:
        conversation_id, child = match.groups()
        c = self._index("conversation", conversation_id)
        items = self.renderer.conversation_items(child, c)
        values = dict(params)
        if child == "events":
            items = self._ordered(params, items, True)
            if values.get("name"):
                wanted = set(values["name"].split(","))
                items = [(oid, make) for oid, make in items if make()["attributes"]["name"] in wanted]
            if values.get("changed"):
                fields = set(values["changed"].split(","))
                items = [(oid, make) for oid, make in items if fields & set(make()["attributes"]["changes"].get("attributes", {}))]
        body, _ = self._page(f"/v1/conversations/{conversation_id}/{child}", params, CONVERSATION_SUBLISTS[child],
                             items, lambda item: item[1]())
        return Reply(200, body)

    # --- customer sub-lists -----------------------------------------------------------------
    def customer_sublist(self, match, params, body) -> Reply:
        """A customer's drafts or merges, oldest first (rendered, not stored: see ``OrgRenderer.customer_items``)."""
        customer_id, child = match.groups()
        c = self._index("customer", customer_id)
        items = self.renderer.customer_items(child, c)
        body, _ = self._page(f"/v1/customers/{customer_id}/{child}", params, CUSTOMER_SUBLISTS[child],
                             items, lambda item: item[1]())
        return Reply(200, body)

    def search(self, params, payload: Any, archive: bool) -> Reply:
        page, size = self._paging(params, SEARCH_MAX_PAGE_SIZE)
        cap = self.options.max_search_pages
        if page > cap:
            raise ApiError(400, "page_limit_exceeded", f"Page exceeds the maximum of {cap}")
        if payload is None or payload is _NOT_JSON:
            raise ApiError(400, "bad_request", "Request body is not valid JSON")
        options = self.options
        try:
            if isinstance(payload, dict):
                payload = conformance.apply_switches(payload, archive, options.archive_notes, options.undocumented_sort,
                                                     options.undocumented_filter)
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
