"""Custom components for the Kustomer manifest: one small class per Kustomer quirk.

Everything the CDK can do declaratively (HTTP, auth, retries, link pagination, state, concurrency)
stays in ``manifest.yaml``. A class lives here only when Kustomer behaves in a way no declarative
component models; its docstring names that behaviour.
"""

from __future__ import annotations

import re
import time
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional, Set, Tuple, Union
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import (
    BackoffStrategy,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.declarative.validators.validation_strategy import ValidationStrategy
from airbyte_cdk.sources.types import Config, Record, StreamSlice, StreamState
from airbyte_cdk.utils.datetime_helpers import ab_datetime_now, ab_datetime_parse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

# --------------------------------------------------------------------------------------------------
# Records: JSON:API resources -> flat, snake_cased rows named as the Stitch (singer) schema names them
# --------------------------------------------------------------------------------------------------

_FIRST_CAP = re.compile(r"(.)([A-Z][a-z]+)")
_ALL_CAP = re.compile(r"([a-z0-9])([A-Z])")

# The conversation carries ``sla`` both as an attribute (SLA status) and as a relationship (the SLA
# object). Stitch keeps the attribute as ``sla`` and moves the relationship to ``sla_data``.
_RELATIONSHIP_RENAMES = {"sla": "sla_data"}


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
    keys snake_cased, so a Stitch user finds the columns they already have.
    """

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        attributes = record.pop("attributes", None) or {}
        relationships = record.pop("relationships", None) or {}
        for key, value in snake_case_keys(attributes).items():
            record.setdefault(key, value)
        for name, relationship in relationships.items():
            if isinstance(relationship, dict) and "data" in relationship:
                key = snake_case(name)
                record[_RELATIONSHIP_RENAMES.get(key, key)] = relationship["data"]


# --------------------------------------------------------------------------------------------------
# The search engine: keyset pagination on updatedAt, exact across caps, bursts and the archive
# --------------------------------------------------------------------------------------------------


def updated_at_of(resource: Mapping[str, Any]) -> Optional[str]:
    attributes = resource.get("attributes")
    return attributes.get("updatedAt") if isinstance(attributes, dict) else None


@dataclass
class SearchKeysetPagination(PaginationStrategy):
    """Pages through ``POST /v1/customers/search`` by ``updatedAt`` instead of by page number.

    Kustomer's search stops at page 100, and page numbers shift whenever a record is updated during
    the sync (it jumps to the end of an ascending sort), so the record that slides across a page
    boundary would be skipped for good. Each request therefore asks again from the last ``updatedAt``
    seen (``gte``), at page 1, and ``BoundaryRepeatFilter`` drops the records of that instant already
    emitted. A page that never leaves one instant (a bulk action touching more records than a page
    holds) is followed by page 2, 3, ... of the same query, so a burst neither loops nor loses
    records, up to the 100 pages Kustomer serves for one query.

    Search sees only objects updated in the last two years; older ones are served by
    ``/v1/customers/archive/search``. A slice that begins before that horizon is read from the
    archive first (the manifest chooses the first URL), then, if it reaches into the last two years,
    from live search: the token's ``archive`` flag tells the requester which endpoint to call.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 500
    max_pages: int = 100
    search_from_days_ago: int = 732

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.search_from_days_ago = int(parameters.get("search_from_days_ago", self.search_from_days_ago))
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
        body = response.json()
        data: List[Mapping[str, Any]] = body.get("data") or []
        archive = "/archive/" in (response.request.path_url or "")
        token: Mapping[str, Any] = last_page_token_value or {}
        if data and (body.get("links") or {}).get("next"):
            first, last = updated_at_of(data[0]), updated_at_of(data[-1])
            if last is None or first == last:
                # The page never left one instant: read the rest of that instant by page number.
                page = int(token.get("page") or 1) + 1 if last == token.get("updated_at") else 2
                return self._burst_page(archive, last, page)
            return {"archive": archive, "updated_at": last, "page": 1}
        if archive and self._slice_reaches_live_search(stream_slice):
            return {"archive": False, "updated_at": None, "page": 1}
        return None

    def _burst_page(self, archive: bool, instant: Optional[str], page: int) -> Mapping[str, Any]:
        if page > self.max_pages:
            raise AirbyteTracedException(
                message=(
                    f"More than {self.max_pages * self.get_page_size()} Kustomer objects share updatedAt "
                    f"{instant}; Kustomer's search serves at most {self.max_pages} pages for one query, so "
                    "they cannot all be read. Please report this to the connector maintainers."
                ),
                failure_type=FailureType.system_error,
            )
        return {"archive": archive, "updated_at": instant, "page": page}

    def _slice_reaches_live_search(self, stream_slice: Optional[StreamSlice]) -> bool:
        end = (stream_slice or {}).get("end_time")
        horizon = ab_datetime_now() - timedelta(days=self.search_from_days_ago)
        return end is None or ab_datetime_parse(end) >= horizon


@dataclass
class BoundaryRepeatFilter(RecordFilter):
    """Drops the records a keyset search page repeats from the page before.

    ``SearchKeysetPagination`` restarts each query at the last ``updatedAt`` it saw (``gte``), so the
    records at exactly that instant come back once more. Within a slice, records arrive in ascending
    ``updatedAt``; the filter remembers the ids met at the latest instant and drops their repeats.
    One slice is read by one thread at a time, so the memory is kept per slice.
    """

    condition: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._latest: Dict[Any, Tuple[Optional[str], Set[str]]] = {}

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: StreamState,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        key = _slice_key(stream_slice)
        instant, ids = self._latest.get(key, (None, set()))
        for record in records:
            updated_at, record_id = updated_at_of(record), record.get("id")
            if updated_at is not None and (instant is None or updated_at > instant):
                instant, ids = updated_at, set()
            elif updated_at == instant:
                if record_id in ids:
                    continue
            ids.add(record_id)
            self._latest[key] = (instant, ids)
            yield record


def _slice_key(stream_slice: Optional[StreamSlice]) -> Any:
    if stream_slice is None:
        return None
    return tuple(sorted((str(k), str(v)) for k, v in {**stream_slice.partition, **stream_slice.cursor_slice}.items()))


# --------------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------------


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
        reset = _seconds(headers.get("x-ratelimit-reset"))
        if wait is None and reset is not None:
            wait = reset - time.time() if reset > 1e9 else reset
        if wait is None:
            return None
        return min(max(wait, 1.0), self.max_wait_seconds)


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Config safety
# --------------------------------------------------------------------------------------------------

_HOST = re.compile(r"^[a-z0-9.-]+$")
_LOOPBACK = {"localhost", "127.0.0.1"}


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
            raise ValueError(
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
            raise ValueError(
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
            raise ValueError(
                f"The start date '{value}' is not a valid UTC date-time. Write it as YYYY-MM-DDTHH:MM:SSZ, "
                "for example 2024-01-01T00:00:00Z, or leave it empty to replicate all history."
            ) from None
