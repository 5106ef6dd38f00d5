"""Custom components for the Kustomer manifest: one small class per Kustomer quirk.

Everything the CDK can do declaratively (HTTP, auth, retries, link pagination, state, concurrency)
stays in ``manifest.yaml``. A class lives here only when Kustomer behaves in a way no declarative
component models; its docstring names that behaviour.

No ``from __future__ import annotations`` here: the Connector Builder runs an uploaded components
file before registering its module, and postponed annotations make ``@dataclass`` look it up.
"""

import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Dict, Generator, Iterable, List, Mapping, MutableMapping, Optional, Union
from urllib.parse import urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders import JsonDecoder
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator, NoAuth
from airbyte_cdk.sources.declarative.extractors.dpath_extractor import DpathExtractor
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import (
    BackoffStrategy,
)
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod, Requester
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.declarative.validators.validation_strategy import ValidationStrategy
from airbyte_cdk.sources.streams.call_rate import APIBudget
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.datetime_helpers import ab_datetime_parse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.access import refusal

# --------------------------------------------------------------------------------------------------
# Records: JSON:API resources -> flat, snake_cased rows named as the Stitch (singer) schema names them
# --------------------------------------------------------------------------------------------------

_FIRST_CAP = re.compile(r"(.)([A-Z][a-z]+)")
_ALL_CAP = re.compile(r"([a-z0-9])([A-Z])")

# The conversation carries ``sla`` both as an attribute (SLA status) and as a relationship (the SLA
# object). Stitch keeps the attribute as ``sla`` and moves the relationship to ``sla_data``; an SLA
# version's ``sla`` is only a relationship and keeps its name.
_RELATIONSHIP_RENAMES = {("conversation", "sla"): "sla_data"}

# The row's own identity: JSON:API forbids a relationship of that name, so one never replaces them.
_ENVELOPE = frozenset({"id", "type", "links"})

_JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list", dict: "an object"}

logger = logging.getLogger("airbyte")


@lru_cache(maxsize=65536)
def snake_case(name: str) -> str:
    """``lastMessageUnrespondedTo`` -> ``last_message_unresponded_to``; hyphenated keys stay as they are."""
    return _ALL_CAP.sub(r"\1_\2", _FIRST_CAP.sub(r"\1_\2", name)).lower()


def snake_case_keys(value: Any) -> Any:
    """Snake-case every dict key, at any depth (custom attributes such as ``totalSpentNum`` included)."""
    if isinstance(value, dict):
        return {snake_case(key): snake_case_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snake_case_keys(item) for item in value]
    return value


@dataclass
class FlattenJsonApiResource(RecordTransformation):
    """Kustomer answers in JSON:API: ``{type, id, attributes{camelCase}, relationships{x: {data}}, links}``.

    The row keeps ``id``, ``type`` and ``links``, lifts every attribute to the top level, and turns each
    relationship that carries ``data`` into a field holding ``{id, type}`` (a list for to-many), all
    keys snake_cased, so a Stitch user finds the columns they already have. The org's own attributes
    (``custom: {tierStr}``) stay in ``custom`` as Stitch has them and are lifted to ``custom_tier_str``.

    Kustomer does not always keep to JSON:API. ``attributes`` or ``relationships`` that are not an
    object (a list, a string) would stop the whole stream (``'list' object has no attribute 'items'``),
    and a relationship whose ``data`` is neither null, an identifier nor a list of identifiers would
    put a string where the schema has a reference. The row keeps all that is well formed, and a
    warning names the resource and what was left out of it. Attribute values are passed on as sent,
    whatever their type; a relationship never replaces the row's own ``id``, ``type`` or ``links``.
    """

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        attributes = _members(record, "attributes")
        relationships = _members(record, "relationships")
        for key, value in snake_case_keys(attributes).items():
            record.setdefault(key, value)
        # Custom attributes also get a column each (custom_tier_str ...), typed by CustomAttributesSchema.
        if isinstance(record.get("custom"), dict):
            for key, value in record["custom"].items():
                record.setdefault(f"custom_{key}", value)
        for name, relationship in relationships.items():
            if isinstance(relationship, dict) and "data" in relationship:
                key = snake_case(name)
                key = _RELATIONSHIP_RENAMES.get((record.get("type"), key), key)
                if key in _ENVELOPE:
                    _left_out(record, f"a relationship named {name[:80]!r}, which would replace its own {key}")
                else:
                    record[key] = _linkage(record, name, relationship["data"])
            elif relationship is not None and not isinstance(relationship, dict):
                _left_out(record, f"relationship {name[:80]!r} as {_kind(relationship)}, not an object")


def _members(record: MutableMapping[str, Any], name: str) -> Mapping[str, Any]:
    """A resource's ``attributes`` or ``relationships`` (taken out of the row): an object, or nothing."""
    members = record.pop(name, None)
    if isinstance(members, dict):
        return members
    if members is not None and members != []:
        _left_out(record, f"{name} as {_kind(members)}, not an object")
    return {}


def _linkage(record: Mapping[str, Any], name: str, data: Any) -> Any:
    """A relationship's ``data`` as JSON:API defines it: null, one identifier or a list of identifiers.

    The identifiers of a list are kept and the items that are not one are dropped; ``data`` that is
    something else (``"x"``, a number) becomes null.
    """
    if data is None or isinstance(data, dict):
        return data
    if isinstance(data, list):
        if all(isinstance(item, dict) for item in data):
            return data
        identifiers = [item for item in data if isinstance(item, dict)]
        _left_out(record, f"relationship {name[:80]!r} listing {len(data) - len(identifiers)} item(s) that are not identifiers")
        return identifiers
    _left_out(record, f"relationship {name[:80]!r} whose data is {_kind(data)}, not an identifier")
    return None


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _left_out(record: Mapping[str, Any], what: str) -> None:
    """One warning per malformed resource part, naming the resource: the row goes on without it."""
    logger.warning(
        f"Kustomer sent {str(record.get('type'))[:80]} {str(record.get('id'))[:80]} with {what}: "
        "that part is left out of its row, the rest of the row is kept."
    )


_NOT_JSON = object()


def parsed_body(response: requests.Response) -> Any:
    """The response's JSON body, parsed once and kept on the response (``_NOT_JSON`` if it is not JSON)."""
    body = response.__dict__.get("_parsed_body")
    if body is None:
        try:
            body = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            body = _parsed_leniently(response.content)
        response.__dict__["_parsed_body"] = body
    return body


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parsed_leniently(content: bytes) -> Any:
    """What orjson refused, parsed by the standard library; ``_NOT_JSON`` if that fails too.

    A Kustomer text cut short in the middle of an emoji (a preview, a truncated body) reaches the page
    as half of a surrogate pair, ``"\\ud83d"``: valid JSON, which orjson refuses, so one character
    would cost the whole page and fail the sync. Such a half, which no UTF-8 output can carry (orjson
    would refuse to write the record too), becomes U+FFFD, the replacement character, as do bytes
    that are not UTF-8. Pages orjson reads, nearly all, never come here.
    """
    try:
        return _without_lone_surrogates(json.loads(content.decode("utf-8", "replace")))
    except (ValueError, RecursionError):
        return _NOT_JSON


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with every half surrogate pair in its strings and keys replaced by U+FFFD (json.loads
    joins the halves that do pair, so any left is alone)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_lone_surrogates(key): _without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    return value


class ParsedOnce(JsonDecoder):
    """Parses each Kustomer page once, however many components read it, and never shrugs off bad JSON.

    A search page is about 2 MB of JSON; the error handler, the record selector and the paginator
    all read it, and parsing it for each cost a quarter of the connector's CPU. The CDK's
    ``JsonDecoder`` also turns a body that is not JSON into ``{}``, an empty page that would end the
    stream early without a word: such a page is retried (``KustomerErrorBodies``), and one that gets
    here anyway fails the sync with a clear error.
    """

    def __init__(self, parameters: Optional[Mapping[str, Any]] = None, **_: Any) -> None:
        super().__init__(parameters or {})

    def decode(self, response: requests.Response) -> Generator[MutableMapping[str, Any], None, None]:
        body = parsed_body(response)
        if body is _NOT_JSON:
            raise AirbyteTracedException(
                message="Kustomer sent a page that is not valid JSON, so its records cannot be read. Run the sync again.",
                internal_message=f"Invalid JSON from {response.request.method if response.request else ''} {response.url}",
                failure_type=FailureType.transient_error,
            )
        yield body


@dataclass
class RecordsAt(DpathExtractor):
    """``DpathExtractor`` that looks a plain key path up directly.

    Kustomer's pages are large (a 500-conversation search page is about 2 MB of JSON), and
    ``dpath.get`` finds even a top-level key by walking every leaf of the page: 100 ms per such page,
    more than parsing it. A path of plain keys is followed key by key instead; wildcards still go
    through dpath. An item of the list that is not an object (a null in ``data``) is skipped with a
    warning instead of stopping the stream.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._path = [InterpolatedString.create(str(key), parameters=parameters) for key in self.field_path]
        self._stream_parameters = parameters

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        path = [key.eval(self.config) for key in self._path]
        if "*" in path or self.record_expander is not None:
            yield from super().extract_records(response)
            return
        for body in self.decoder.decode(response):
            found = _at(body, path) if path else body
            if isinstance(found, list):
                for item in found:
                    if isinstance(item, dict):
                        yield item
                    else:  # JSON:API resources are objects; anything else cannot become a row
                        logger.warning(f"Skipped an item of '{'.'.join(path)}' that is not an object: {str(item)[:80]!r}")
            elif found:
                yield found


# --------------------------------------------------------------------------------------------------
# Search resources: their updatedAt (the search engine itself is in search.py)
# --------------------------------------------------------------------------------------------------


_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


def parse_instant(value: str) -> datetime:
    """A Kustomer timestamp as an aware UTC time.

    Kustomer writes ISO 8601 with milliseconds and ``Z``, which the standard library parses about 20
    times faster than the CDK's general parser (that cost was a third of the CPU of a search sync,
    parsing every record's ``updatedAt`` twice); anything else goes to the CDK's parser, which raises
    ``ValueError`` on what is not a time.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ab_datetime_parse(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def updated_at_of(resource: Any) -> Optional[str]:
    """A resource's updatedAt, also once ``FlattenJsonApiResource`` has flattened it in place.

    Only a date-time text counts: Kustomer always sends one, but a resource with a null, a number or
    other text there must neither stop the search nor send it to query from a value Kustomer refuses.
    """
    if not isinstance(resource, dict):
        return None
    attributes = resource.get("attributes")
    if isinstance(attributes, dict):
        value = attributes.get("updatedAt")
    else:
        value = resource.get("updated_at") if "id" in resource else None
    return value if isinstance(value, str) and _DATE_TIME.match(value) else None


# --------------------------------------------------------------------------------------------------
# Shared pages: nested streams read their parent's search pages without asking Kustomer again
# --------------------------------------------------------------------------------------------------


class PageStore:
    """Search pages already fetched in this sync, on disk (SQLite in a private temp dir), so RAM stays flat.

    A key is the whole request (URL, query, JSON body); a page is stored only when Kustomer answered
    200 or an ignored 404 (no metadata). While one thread fetches a page, others asking for the same
    key wait for it instead of sending the request a second time.
    """

    current: "PageStore"

    def __init__(self) -> None:
        self._directory: Optional[tempfile.TemporaryDirectory[str]] = None
        self._db: Optional[sqlite3.Connection] = None
        self._lock = threading.Lock()
        self._fetching: Dict[str, threading.Lock] = {}

    @classmethod
    def start_sync(cls) -> None:
        """A new source is a new sync: pages of an earlier one in this process are not reused."""
        cls.current = cls()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self._directory = tempfile.TemporaryDirectory(prefix="source-kustomer-pages-")
            self._db = sqlite3.connect(os.path.join(self._directory.name, "pages.sqlite"), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute(
                "CREATE TABLE page (key TEXT PRIMARY KEY, status INTEGER, method TEXT, url TEXT, request BLOB, headers TEXT, body BLOB)"
            )
        return self._db

    def key_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._fetching.setdefault(key, threading.Lock())

    def get(self, key: str) -> Optional[requests.Response]:
        with self._lock:
            row = self._open().execute("SELECT status, method, url, request, headers, body FROM page WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        response = requests.Response()
        status, method, url, request_body, headers, body = row
        response.status_code, response.url, response._content = status, url, body
        response.headers.update(json.loads(headers))
        response.request = requests.Request(method, url, data=request_body).prepare()
        return response

    def put(self, key: str, response: requests.Response) -> None:
        headers = json.dumps({k: v for k, v in response.headers.items() if k.lower() == "content-type"})
        method = response.request.method if response.request else "GET"
        request_body = response.request.body if response.request is not None else None
        with self._lock:
            self._open().execute(
                "INSERT OR REPLACE INTO page VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, response.status_code, method, response.url, request_body, headers, response.content),
            )


PageStore.start_sync()


class _RequesterFacade(Requester):
    """The ``Requester`` methods other than ``send_request``: those of the wrapped ``requester`` if the
    class has one, else empty (a requester that never sends anything has no URL, options or auth)."""

    def _wrapped(self) -> Optional[Requester]:
        return getattr(self, "requester", None)

    def get_authenticator(self) -> DeclarativeAuthenticator:
        wrapped = self._wrapped()
        return wrapped.get_authenticator() if wrapped else NoAuth(parameters={})

    def get_method(self) -> HttpMethod:
        wrapped = self._wrapped()
        return wrapped.get_method() if wrapped else HttpMethod.GET

    def get_url(self, **kwargs: Any) -> str:
        return self._ask("get_url", "", kwargs)

    def get_url_base(self, **kwargs: Any) -> str:
        return self._ask("get_url_base", "", kwargs)

    def get_path(self, **kwargs: Any) -> str:
        return self._ask("get_path", "", kwargs)

    def get_request_params(self, **kwargs: Any) -> MutableMapping[str, Any]:
        return self._ask("get_request_params", {}, kwargs)

    def get_request_headers(self, **kwargs: Any) -> Mapping[str, Any]:
        return self._ask("get_request_headers", {}, kwargs)

    def get_request_body_data(self, **kwargs: Any) -> Union[Mapping[str, Any], str]:
        return self._ask("get_request_body_data", {}, kwargs)

    def get_request_body_json(self, **kwargs: Any) -> Mapping[str, Any]:
        return self._ask("get_request_body_json", {}, kwargs)

    def _ask(self, method: str, empty: Any, kwargs: Mapping[str, Any]) -> Any:
        wrapped = self._wrapped()
        return getattr(wrapped, method)(**kwargs) if wrapped else empty


@dataclass
class SharedPages(_RequesterFacade):
    """Sends each distinct search request to Kustomer once per sync, whichever stream asks.

    A customer's emails, phones, ... live inside the customer resource, so the nested streams read the
    customers' search pages (through the CDK's substream router) as the customers stream does: the
    same POST /v1/customers/search requests, with the same state. Search requests are POST, which
    the CDK's HTTP cache does not keep, and Kustomer allows only 100 of them per minute; this wrapper
    around the stream's ``HttpRequester`` answers a repeated request from the ``PageStore``.
    """

    requester: Requester
    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def send_request(
        self,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
        path: Optional[str] = None,
        request_headers: Optional[Mapping[str, Any]] = None,
        request_params: Optional[Mapping[str, Any]] = None,
        request_body_data: Optional[Union[Mapping[str, Any], str]] = None,
        request_body_json: Optional[Mapping[str, Any]] = None,
        log_formatter: Optional[Callable[[requests.Response], Any]] = None,
    ) -> Optional[requests.Response]:
        options = dict(stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token)
        key = json.dumps(
            [
                _reread_pass(next_page_token),
                self.requester.get_url(**options),
                path,
                {**self.requester.get_request_params(**options), **(request_params or {})},
                {**self.requester.get_request_body_json(**options), **(request_body_json or {})},
            ],
            sort_keys=True,
            default=str,
        )
        pages = PageStore.current
        with pages.key_lock(key):
            response = pages.get(key)
            if response is None:
                response = self.requester.send_request(
                    path=path,
                    request_headers=request_headers,
                    request_params=request_params,
                    request_body_data=request_body_data,
                    request_body_json=request_body_json,
                    log_formatter=log_formatter,
                    **options,
                )
                if response is not None and response.status_code in (200, 404):  # a 404 reaching here was ignored
                    pages.put(key, response)
        return response


def _reread_pass(next_page_token: Optional[Mapping[str, Any]]) -> Any:
    """A re-read of an instant (``SearchKeysetPagination``) asks Kustomer again on purpose."""
    token = (next_page_token or {}).get("next_page_token")
    return token.get("pass") if isinstance(token, dict) else None


# --------------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------------


@dataclass
class KustomerErrorBodies(ErrorHandler):
    """The Kustomer answers that only their bodies (or their path) tell apart, checked without parsing
    every page again.

    - A refused key (401 or 403): an expired key, a wrong one, one of another region or one
      without the endpoint's role, told apart by the body and the endpoint (``access.refusal``): a
      config error that says what to do.
    - A page garbled on the way still has status 200; only its body, not JSON, shows it: retried.
    - A page that holds fewer objects than Kustomer's own ``meta`` promises (a search page short of
      ``min(pageSize, total - offset)``, a list page short of ``pageSize`` though ``links.next``
      follows) lost objects on the way; page numbers would then skip them: retried, and the sync
      fails if it persists, rather than end with a gap.
    - An answer that came from another host after a redirect is refused: the token stayed behind
      (requests drops it when the host changes), and neither is the other host's data used.
    - The statuses in ``read_as_empty`` mean there is nothing to read (404: no custom attributes, a
      parent deleted for good; 403 where the answer only adds to other streams): ignored, a 403 with
      a warning naming the role.

    A declarative ``predicate`` filter would decode every response's body again with the standard
    json module (20 ms per 2 MB search page, for each such filter); this handler looks for the words
    in the raw bytes of 401/403 bodies and parses a 2xx body once for everyone (``parsed_body``).
    Every other answer goes to the declarative ``handler``, whose retries and backoff it keeps.
    """

    handler: ErrorHandler
    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)
    read_as_empty: List[int] = field(default_factory=list)

    @property
    def max_retries(self) -> Optional[int]:
        return self.handler.max_retries

    @property
    def max_time(self) -> Optional[int]:
        return self.handler.max_time

    @property
    def backoff_strategies(self) -> Optional[List[BackoffStrategy]]:
        return getattr(self.handler, "backoff_strategies", None)

    def interpret_response(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response):
            status, body = response_or_exception.status_code, response_or_exception.content or b""
            if status in self.read_as_empty:
                if status == 403:
                    logger.warning(f"{refusal(response_or_exception)} Read as none meanwhile.")
                return ErrorResolution(ResponseAction.IGNORE, None, f"Kustomer answered {status}: nothing to read.")
            if status in (401, 403):
                return ErrorResolution(ResponseAction.FAIL, FailureType.config_error, refusal(response_or_exception))
            moved_to = _other_host(response_or_exception)
            if moved_to:
                return ErrorResolution(
                    ResponseAction.FAIL,
                    FailureType.config_error,
                    f"The API host redirected the request to {moved_to}. The connector sends the API key only to "
                    "Kustomer and does not follow it there; check the region, org name or API URL in the settings.",
                )
            if 200 <= status < 300:
                page = parsed_body(response_or_exception) if body and not body.isspace() else _NOT_JSON
                if not isinstance(page, dict):
                    return ErrorResolution(
                        ResponseAction.RETRY, FailureType.transient_error, "Kustomer answered with a body that is not JSON; retrying."
                    )
                missing = _missing_from_page(page)
                if missing:
                    return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error, missing)
        return self.handler.interpret_response(response_or_exception)


def _other_host(response: requests.Response) -> Optional[str]:
    """The host a redirect ended on, if it is not the one first asked."""
    if not response.history:
        return None
    first, last = urlsplit(response.history[0].url), urlsplit(response.url)
    return last.netloc if (first.hostname, first.port) != (last.hostname, last.port) else None


def _missing_from_page(page: Mapping[str, Any]) -> Optional[str]:
    """Why a page holds fewer objects than its ``meta`` and ``links`` say it must, if it does."""
    data, meta = page.get("data"), page.get("meta")
    if not isinstance(data, list) or not isinstance(meta, dict):
        return None
    size, number, total = meta.get("pageSize"), meta.get("page"), meta.get("total")
    if not isinstance(size, int) or size <= 0:
        return None
    if isinstance(total, int) and isinstance(number, int) and number >= 1:
        expected = max(0, min(size, total - (number - 1) * size))
    elif (page.get("links") or {}).get("next"):
        expected = size
    else:
        return None
    if len(data) >= expected:
        return None
    return f"Kustomer sent {len(data)} of the {expected} objects page {number} should hold; asking again."


@dataclass
class RateLimitResetBackoff(BackoffStrategy):
    """On 429, wait until Kustomer's rate-limit window reopens.

    Kustomer names the reopening time in ``x-ratelimit-reset`` (UTC epoch seconds; some answers give
    seconds from now instead) and may send ``Retry-After``. The reset header rides on ordinary
    responses too, so it is read only on 429; any other retryable error returns ``None`` and gets the
    CDK's exponential backoff.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)
    max_wait_seconds: float = 900

    def backoff_time(
        self,
        response_or_exception: Optional[Union[requests.Response, requests.RequestException]],
        attempt_count: int,
    ) -> Optional[float]:
        if not isinstance(response_or_exception, requests.Response):
            return None
        if response_or_exception.status_code != 429:
            return None
        headers = response_or_exception.headers
        wait = _seconds(headers.get("Retry-After"))
        reset = reset_epoch(headers.get("x-ratelimit-reset"))
        if wait is None and reset is not None:
            wait = reset - time.time()
        if wait is None:
            return None
        return min(max(wait, 1.0), self.max_wait_seconds)


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def reset_epoch(value: Optional[str]) -> Optional[float]:
    """``x-ratelimit-reset`` as epoch seconds: Kustomer sends epoch seconds, some answers seconds from now."""
    seconds = _seconds(value)
    if seconds is None:
        return None
    return seconds if seconds > 1e9 else time.time() + seconds


class RateLimitBucket:
    """One of Kustomer's fixed rate-limit windows as this sync sees it: ``limit`` requests until ``reset_at``.

    ``take`` spends one request or says how long to wait for the window to reopen. ``sync`` adopts
    what Kustomer's headers say: the bucket's limit (never above ``ceiling``, the user's cap), the
    window's true end and, if fewer requests are left than this sync counted (other integrations
    spend from the same org budget), that smaller number. Until a response names the window, it is
    assumed to start with the first request and last ``window_s``. Of each limit the sync spends
    only its ``share`` (the rest is left to the org's other integrations), at least one request.
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        ceiling: Optional[int] = None,
        clock: Optional[Callable[[], float]] = None,
        share: float = 1.0,
    ) -> None:
        self.window_s, self.ceiling, self.share = float(window_s), ceiling, float(share)
        self.limit = self._ours(int(limit))
        self._clock = clock or (lambda: time.time())
        self.remaining, self.reset_at = self.limit, 0.0
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 if a request was spent, else the seconds until this window reopens."""
        with self._lock:
            now = self._clock()
            if now >= self.reset_at:
                self.remaining, self.reset_at = self.limit, now + self.window_s
            if self.remaining > 0:
                self.remaining -= 1
                return 0.0
            return self.reset_at - now

    def sync(self, limit: Optional[int], remaining: Optional[int], reset_at: Optional[float]) -> None:
        with self._lock:
            now = self._clock()
            if reset_at is not None and reset_at <= now:
                return  # an answer from a window that has closed since: nothing left to learn from it
            if limit is not None and limit > 0:
                limit = self._ours(min(limit, self.ceiling or limit))
                self.remaining, self.limit = max(0, self.remaining + limit - self.limit), limit
            if reset_at is not None:
                self.reset_at = reset_at
            if remaining is not None:
                self.remaining = min(self.remaining, remaining)

    def _ours(self, limit: int) -> int:
        return max(1, int(limit * self.share))


SEARCH_PATH = re.compile(r"/v1/customers(/archive)?/search$")


class KustomerApiBudget(APIBudget):
    """Kustomer's two rate-limit buckets, shared by every stream and thread of a sync.

    Every request spends from the org's budget (300 to 2,000 a minute by plan, the
    ``requests_per_minute`` option, of which the sync takes ``rate_limit_share``); a search (``POST /v1/customers/search`` or its archive) spends
    from the API key's search budget too, 100 a minute. Each response's ``x-ratelimit-limit``,
    ``-remaining`` and ``-reset`` update the bucket they describe: a search answer describes the
    search bucket unless its limit is the org's. The search limit is whatever Kustomer says it is; the
    org's never exceeds ``requests_per_minute``. A request whose bucket is empty waits for the reset
    instead of earning a 429. (The CDK's ``HTTPAPIBudget`` charges a request to its first
    matching policy only, takes its limits as constants and reads the reset as whole epoch seconds.)
    """

    def __init__(
        self, requests_per_minute: int = 1000, searches_per_minute: int = 100, window_s: float = 60.0, org_share: float = 1.0
    ) -> None:
        super().__init__(policies=[])
        self.org = RateLimitBucket(requests_per_minute, window_s, ceiling=requests_per_minute, share=org_share)
        self.search = RateLimitBucket(searches_per_minute, window_s)
        self._org_limit_said: Optional[float] = None  # the org limit Kustomer last named

    @classmethod
    def for_config(cls, config: Mapping[str, Any]) -> "KustomerApiBudget":
        """The org's limit is shared by every key and app user of the org: the sync spends only
        ``rate_limit_share`` percent of it (default 50). The search limit is the API key's own."""
        share = config.get("rate_limit_share")
        return cls(
            requests_per_minute=int(config.get("requests_per_minute") or 1000),
            org_share=(float(share) if share else 50.0) / 100,
        )

    @staticmethod
    def is_search(request: Any) -> bool:
        return getattr(request, "method", None) == "POST" and bool(SEARCH_PATH.search(urlsplit(request.url or "").path))

    def acquire_call(self, request: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        for bucket in (self.search, self.org) if self.is_search(request) else (self.org,):
            while (wait := bucket.take()) > 0:
                time.sleep(wait + 0.05)

    def update_from_response(self, request: Any, response: Any) -> None:
        headers = getattr(response, "headers", None) or {}
        limit = _seconds(headers.get("x-ratelimit-limit"))
        remaining = _seconds(headers.get("x-ratelimit-remaining"))
        if limit is None and remaining is None:
            return
        search_answer = self.is_search(request) and limit != self._org_limit_said
        if not search_answer:
            self._org_limit_said = limit
        bucket = self.search if search_answer else self.org
        reset_at = reset_epoch(headers.get("x-ratelimit-reset"))
        bucket.sync(int(limit) if limit else None, int(remaining) if remaining is not None else None, reset_at)


# --------------------------------------------------------------------------------------------------
# Config safety
# --------------------------------------------------------------------------------------------------

_HOST = re.compile(r"^[a-z0-9.-]+$")
_LOOPBACK = {"localhost", "127.0.0.1"}


def config_error(message: str) -> AirbyteTracedException:
    """A setting the user must fix: said as it is, and marked as a config error (no retry helps)."""
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


@dataclass
class KustomerHostOnly(ValidationStrategy):
    """The API token may travel only to Kustomer: https on kustomerapp.com, or loopback for the sandbox.

    ``api_url`` is free text, so it is checked before any request is built: userinfo tricks
    (``https://api.kustomerapp.com@evil.example``), look-alike or non-ASCII hosts, other schemes and
    any other host are refused with a message that says what is accepted.
    """

    def validate(self, value: Any) -> None:
        parts = urlsplit(str(value or ""))
        host = (parts.hostname or "").rstrip(".")
        kustomer = parts.scheme == "https" and (host == "kustomerapp.com" or host.endswith(".kustomerapp.com"))
        loopback = parts.scheme in ("http", "https") and host in _LOOPBACK
        clean = (
            _HOST.match(host) is not None
            and "@" not in parts.netloc
            and parts.path in ("", "/")
            and not parts.query
            and not parts.fragment
            and (loopback or parts.port in (None, 443))
        )
        if not (clean and (kustomer or loopback)):
            raise config_error(
                f"The API URL '{value}' is not a Kustomer API host. Use https://api.kustomerapp.com, "
                "https://api.prod2.kustomerapp.com or https://<org>.api.kustomerapp.com (or leave "
                "api_url empty and pick a region); only http://localhost or http://127.0.0.1 are "
                "accepted besides, for a local sandbox. The API token is never sent anywhere else."
            )


@dataclass
class ApiTokenGiven(ValidationStrategy):
    """An empty token would only earn a 401 from Kustomer; say what is missing instead."""

    def validate(self, value: Any) -> None:
        if not str(value or "").strip():
            raise config_error(
                "The API token (api_token) is empty. Paste the token of a Kustomer API key "
                "(Settings > Security > API Keys)."
            )


@dataclass
class UtcDateTime(ValidationStrategy):
    """``start_date`` must be a real UTC instant: the spec's pattern lets 2024-02-31T00:00:00Z through."""

    def validate(self, value: Any) -> None:
        try:
            ab_datetime_parse(str(value))
            datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise config_error(
                f"The start date '{value}' is not a valid UTC date-time. Write it as YYYY-MM-DDTHH:MM:SSZ, "
                "for example 2024-01-01T00:00:00Z, or leave it empty to replicate all history."
            ) from None


# --------------------------------------------------------------------------------------------------
# Nested streams: rows of the arrays inside a parent resource, read from the parent's pages
# --------------------------------------------------------------------------------------------------


class PageBody:
    """A parent page's ``data`` and ``included``, as one value the CDK's dpath lookups do not walk."""

    __slots__ = ("data", "included")

    def __init__(self, data: List[Any], included: List[Any]) -> None:
        self.data, self.included = data, included


@dataclass
class ParentPageRecord(RecordTransformation):
    """Turns a parent page into the record the nested stream's substream router reads: ``page_key``,
    ``updated_at`` (set before, declaratively) and ``page``, a ``PageBody``.

    The router copies a child's ``extra_fields`` out of each parent record with ``dpath.get``, which
    walks every leaf of the record: 200 ms per 500-conversation page and nested stream when the page
    itself is the record. Tucked into a ``PageBody``, the page is handed over without a walk. Each
    resource keeps only what ``PageItems`` reads (type, id, updatedAt and the arrays at ``items_at``):
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
            value = _at(resource, path)
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
class ParentPage(_RequesterFacade):
    """Answers a nested stream's "request" with its parent's page, carried in the stream slice.

    A customer's emails, phones, ..., a message's attachments and a note's mentions are arrays inside
    the parent resource: Kustomer has no endpoint of their own to call. The nested stream's partition
    router reads the parent's pages (one slice per page, its ``data`` and ``included`` lists in the
    slice's extra field ``page``, see ``ParentPageRecord``); this requester turns the slice back into the "response" the record
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
class PageItems(RecordExtractor):
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
                items = _at(parent, path)
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


def _at(value: Any, path: List[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# --------------------------------------------------------------------------------------------------
# Custom attributes: each org defines its own, so their columns are discovered from Kustomer's metadata
# --------------------------------------------------------------------------------------------------

# Kustomer's attribute types (GET /v1/metadata/{resource}) as JSON schema.
_CUSTOM_TYPES: Dict[str, Dict[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "text": {"type": ["string", "null"]},
    "url": {"type": ["string", "null"]},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date": {"type": ["string", "null"], "format": "date-time"},
}


@dataclass
class PropertiesMap(RecordExtractor):
    """Rows from Kustomer's attribute metadata, which is one object keyed by attribute name.

    ``GET /v1/metadata/{resource}`` answers ``{data: {attributes: {properties: {tierStr: {type, ...}}}}}``;
    each property becomes a row with its ``name``, the ``column`` the connector gives it
    (``custom_tier_str``) and its definition, snake_cased.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = response.json() if response.content else {}
        properties = _at(body, ["data", "attributes", "properties"]) if isinstance(body, dict) else None
        for name, definition in (properties or {}).items():
            row = snake_case_keys(definition) if isinstance(definition, dict) else {}
            yield {"name": name, "column": f"custom_{snake_case(name)}", **row}


@dataclass
class CustomAttributesSchema(SchemaLoader):
    """A stream's schema plus one typed column per custom attribute the org has defined.

    Kustomer lets every org add attributes (``tierStr``, ``totalSpentNum``, ``lastOrderAt``) to
    customers, conversations, companies, messages and each Klass; their types are only known from
    ``GET /v1/metadata/{resource}``. ``base`` is the static schema; ``metadata_requester`` calls that
    endpoint (read as ``PropertiesMap`` reads it). Each attribute becomes a typed ``custom_<name>``
    column and a typed property of the ``custom`` object. Without metadata (404: none defined) the
    base schema stands.
    """

    base: SchemaLoader
    metadata_requester: Requester
    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def get_json_schema(self) -> Mapping[str, Any]:
        schema = json.loads(json.dumps(self.base.get_json_schema()))
        columns = schema.setdefault("properties", {})
        custom = columns.setdefault("custom", {"type": ["object", "null"], "additionalProperties": True})
        response = self.metadata_requester.send_request()
        if response is None or response.status_code != 200:
            return schema  # 404: no custom attributes defined for this resource
        for row in PropertiesMap(parameters={}).extract_records(response):
            column_type = dict(_CUSTOM_TYPES.get(str(row.get("type")), {}))
            if row.get("multi") and column_type:
                column_type = {"type": ["array", "null"], "items": column_type}
            columns[row["column"]] = column_type
            custom.setdefault("properties", {})[snake_case(row["name"])] = column_type
        return schema


@dataclass
class UnionPartitionRouter(PartitionRouter):
    """The partitions of several routers, one after the other.

    Attribute metadata lives at ``/v1/metadata/{resource}`` for four fixed resources and for every
    Klass (``kobject.<name>``), which only ``/v1/klasses`` lists: a fixed list and a substream, which
    the CDK would otherwise combine as a cross product.
    """

    routers: List[PartitionRouter]
    parameters: InitVar[Mapping[str, Any]]

    def stream_slices(self) -> Iterable[StreamSlice]:
        for router in self.routers:
            yield from router.stream_slices()

    def get_request_params(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_headers(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(self, **kwargs: Any) -> Union[Mapping[str, Any], str]:
        return {}

    def get_request_body_json(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_stream_state(self) -> Optional[Mapping[str, StreamState]]:
        return None
