"""Shared pages: a request asked twice in one sync (a nested stream reads its parent's pages, a schema
and a stream read the same metadata) is sent to Kustomer once.

- ``PageStore``: the pages of this sync, on disk.
- ``RequesterFacade``: the ``Requester`` methods of a wrapper that delegates them.
- ``SharedPagesRequester``: answers a repeated request from the store.
"""

import json
import os
import sqlite3
import tempfile
import threading
import zlib
from collections import OrderedDict
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Dict, Mapping, MutableMapping, Optional, Tuple, Union

import requests
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator, NoAuth
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod, Requester
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState



#: The most page bytes a sync keeps on disk; beyond it the oldest pages go.
MAX_STORED_BYTES = 64 * 2**20


class PageStore:
    """Search pages already fetched in this sync, on disk (SQLite in a private temp dir, compressed), so RAM
    stays flat.

    A key is the whole request (URL, query, JSON body); a page is stored only when Kustomer answered
    200 or an ignored 404 (no metadata). While one thread fetches a page, others asking for the same
    key wait for it instead of sending the request a second time.

    The store is bounded (the disk of an Airbyte worker is small, an org's pages are gigabytes): once
    its pages weigh more than ``max_bytes``, the oldest go first. Streams sharing a query that run at
    the same time read each page moments apart (one fetches it, the others wait for it); a stream that
    starts later (the CDK runs only ``num_workers / 2`` partition generators at a time) or falls
    further behind than the store reaches asks Kustomer again: a search more, never a record less.
    Which streams will still read a page is not known here (components never see the catalog, and
    every stream of the manifest is built, selected or not), so age, not a reader count, decides.
    """

    _latest: Optional[Tuple[Any, "PageStore"]] = None
    _latest_lock = threading.Lock()

    def __init__(self, max_bytes: Optional[int] = None) -> None:
        self.max_bytes = MAX_STORED_BYTES if max_bytes is None else max_bytes
        self._directory: Optional[tempfile.TemporaryDirectory[str]] = None
        self._db: Optional[sqlite3.Connection] = None
        self._lock = threading.Lock()
        self._fetching: Dict[str, threading.Lock] = {}
        self._sizes: "OrderedDict[str, int]" = OrderedDict()  # oldest first
        self._bytes = 0

    @classmethod
    def of_sync(cls, config: Mapping[str, Any]) -> "PageStore":
        """The store of the sync ``config`` belongs to, known by the ``sync_started_at`` the manifest adds
        to the config. A new sync in the same process (the Connector Builder reads again and again)
        gets an empty store: pages of an earlier one are never reused, and are deleted once the last
        requester holding them is gone."""
        sync = config.get("sync_started_at")
        with cls._latest_lock:
            if cls._latest is None or cls._latest[0] != sync:
                cls._latest = (sync, cls())
            return cls._latest[1]

    @property
    def stored_bytes(self) -> int:
        """What the pages held now weigh on disk (compressed bodies, requests and keys)."""
        return self._bytes

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
            if key not in self._sizes:
                return None
            row = self._open().execute("SELECT status, method, url, request, headers, body FROM page WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        response = requests.Response()
        status, method, url, request_body, headers, body = row
        response.status_code, response.url, response._content = status, url, zlib.decompress(body)
        response.headers.update(json.loads(headers))
        response.request = requests.Request(method, url, data=request_body).prepare()
        return response

    def put(self, key: str, response: requests.Response) -> None:
        headers = json.dumps({k: v for k, v in response.headers.items() if k.lower() == "content-type"})
        method = response.request.method if response.request else "GET"
        request_body = response.request.body if response.request is not None else None
        body = zlib.compress(response.content or b"", 1)  # JSON pages shrink 5 to 10 times, for ~10 ms a page
        size = len(key) + len(body) + len(request_body or b"")
        with self._lock:
            db = self._open()
            db.execute(
                "INSERT OR REPLACE INTO page VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, response.status_code, method, response.url, request_body, headers, body),
            )
            self._bytes += size - self._sizes.pop(key, 0)
            self._sizes[key] = size
            while self._bytes > self.max_bytes and len(self._sizes) > 1:
                oldest, oldest_size = self._sizes.popitem(last=False)
                db.execute("DELETE FROM page WHERE key = ?", (oldest,))
                self._bytes -= oldest_size
                self._fetching.pop(oldest, None)


class RequesterFacade(Requester):
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
class SharedPagesRequester(RequesterFacade):
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

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._pages = PageStore.of_sync(self.config)

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
                self.requester.get_url_base(**options),
                path or self.requester.get_path(**options),
                {**self.requester.get_request_params(**options), **(request_params or {})},
                {**self.requester.get_request_body_json(**options), **(request_body_json or {})},
            ],
            sort_keys=True,
            default=str,
        )
        pages = self._pages
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
