"""Kustomer's two rate-limit buckets, spent by every request of a sync from whichever stream and thread.

- ``RateLimitBucket``: one fixed window as the sync sees it, corrected by Kustomer's headers.
- ``KustomerRateLimits``: the org's bucket and the API key's search bucket, one pair per sync.
- ``RateLimitedAuthenticator``: the bearer token, sent once the request's buckets allow it; it hears
  every answer (the CDK's ``ResponseAwareAuthenticator``), so the buckets follow Kustomer's count.
- ``OnRateLimitBackoff``: the CDK's header waits, for a 429 only.
"""

import math
import re
import threading
import time
from dataclasses import InitVar, dataclass, field
from functools import lru_cache
from typing import Any, Callable, List, Mapping, Optional, Union
from urllib.parse import urlsplit

import requests
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import BackoffStrategy
from airbyte_cdk.sources.types import Config


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
    assumed to start with the first request and last ``window_s``. Kustomer's windows follow one
    another: once it has named a window's end, the windows after it end a window's length apart
    (the length learned from two named ends at least ``MIN_WINDOW_STEP`` apart, never above
    ``window_s``), also while only the other bucket's answers come (a stretch of searches reports
    the search bucket): a run-dry bucket waits for Kustomer's next window, not a minute from its
    first request. Of each limit the sync spends only its ``share`` (the rest is left to the org's
    other integrations), at least one request.
    """

    #: Two named ends closer than this belong to one window (an end given in seconds from now moves
    #: with the clock between answers).
    MIN_WINDOW_STEP = 1.5

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
        self._named_end: Optional[float] = None  # the latest window end Kustomer named
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 if a request was spent, else the seconds until this window reopens."""
        with self._lock:
            now = self._clock()
            if now >= self.reset_at:
                self.remaining, self.reset_at = self.limit, self._end_of_window_at(now)
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
                named = self._named_end
                if named is not None and reset_at - named >= self.MIN_WINDOW_STEP:
                    self.window_s = min(self.window_s, reset_at - named)
                if named is None or reset_at > named:
                    self._named_end = reset_at
            if remaining is not None:
                self.remaining = min(self.remaining, remaining)

    def _end_of_window_at(self, now: float) -> float:
        named = self._named_end
        if named is None or named > now:
            return now + self.window_s
        return named + (math.floor((now - named) / self.window_s) + 1) * self.window_s

    def _ours(self, limit: int) -> int:
        return max(1, int(limit * self.share))


SEARCH_PATH = re.compile(r"/v1/customers(/archive)?/search$")


class KustomerRateLimits:
    """Kustomer's two rate-limit buckets, shared by every stream and thread of a sync.

    Every request spends from the org's budget (300 to 2,000 a minute by plan, the
    ``requests_per_minute`` setting, of which the sync takes ``rate_limit_share``); a search (``POST
    /v1/customers/search`` or its archive) spends from the API key's search budget too, 100 a minute.
    Each response's ``x-ratelimit-limit``, ``-remaining`` and ``-reset`` update the bucket they
    describe: a search answer describes the search bucket unless its limit is the org's. The search
    limit is whatever Kustomer says it is; the org's never exceeds ``requests_per_minute``. A request
    whose bucket is empty waits for the reset instead of earning a 429.

    CDK limit: the manifest's ``HTTPAPIBudget`` charges a request to its first matching policy only
    (a search must spend from both buckets), takes its limits as constants (the org's comes from the
    settings and the share) and reads the reset as whole epoch seconds.
    """

    def __init__(
        self, requests_per_minute: int = 1000, searches_per_minute: int = 100, window_s: float = 60.0, org_share: float = 1.0
    ) -> None:
        self.org = RateLimitBucket(requests_per_minute, window_s, ceiling=requests_per_minute, share=org_share)
        self.search = RateLimitBucket(searches_per_minute, window_s)
        self._org_limit_said: Optional[float] = None  # the org limit Kustomer last named

    @staticmethod
    def is_search(request: Any) -> bool:
        return getattr(request, "method", None) == "POST" and bool(SEARCH_PATH.search(urlsplit(request.url or "").path))

    def acquire(self, request: Any) -> None:
        """Waits until every bucket the request spends from has room, then spends from each."""
        for bucket in (self.search, self.org) if self.is_search(request) else (self.org,):
            while (wait := bucket.take()) > 0:
                time.sleep(wait + 0.05)

    def update(self, request: Any, response: Any) -> None:
        """Adopts what Kustomer's ``x-ratelimit-*`` headers say of the bucket the answer describes."""
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


@lru_cache(maxsize=8)
def _limits_of_sync(sync: Any, requests_per_minute: int, share_percent: float) -> KustomerRateLimits:
    return KustomerRateLimits(requests_per_minute=requests_per_minute, org_share=share_percent / 100)


def rate_limits_for(config: Mapping[str, Any]) -> KustomerRateLimits:
    """The buckets of the sync ``config`` belongs to: one pair for every requester the CDK builds for
    it (a sync is known by its ``sync_started_at``, which the manifest adds to the config). The org's
    limit is shared by every key and app user of the org, so the sync spends only ``rate_limit_share``
    percent of it (default 50); the search limit is the API key's own."""
    return _limits_of_sync(
        config.get("sync_started_at"),
        int(config.get("requests_per_minute") or 1000),
        float(config.get("rate_limit_share") or 50),
    )


@dataclass
class RateLimitedAuthenticator(DeclarativeAuthenticator):
    """The declared ``authenticator`` (Kustomer's bearer token), attached once the request's rate-limit
    buckets allow it, and told every answer so the buckets follow Kustomer's own count.

    The CDK's ``HttpClient`` asks the authenticator to sign every attempt of a request, retries
    included, and hands each answer to an authenticator that has ``update_from_response`` (its
    ``ResponseAwareAuthenticator`` protocol): the one place in the manifest every request of every
    stream passes, in every runtime (the package, ``source-declarative-manifest``, the Connector
    Builder). A request answered from ``SharedPagesRequester`` never gets here and spends nothing.
    """

    authenticator: DeclarativeAuthenticator
    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._limits = rate_limits_for(self.config)

    @property
    def auth_header(self) -> str:
        return self.authenticator.auth_header

    @property
    def token(self) -> str:
        return self.authenticator.token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._limits.acquire(request)
        return self.authenticator(request)

    def update_from_response(self, request: requests.PreparedRequest, response: requests.Response) -> None:
        self._limits.update(request, response)


@dataclass
class OnRateLimitBackoff(BackoffStrategy):
    """The declared ``strategies`` (the CDK's ``WaitTimeFromHeader`` and ``WaitUntilTimeFromHeader``
    on Kustomer's ``Retry-After`` and ``x-ratelimit-reset``), asked on a 429 answer only.

    Kustomer sends ``x-ratelimit-reset`` on every answer, a 503 included; a server error that waited
    for the rate-limit window to reopen (up to a minute, for nothing) would slow every recovery. CDK
    limit: an error handler's backoff strategies apply to every retryable answer, whatever its
    status. Any other answer, and a 429 none of the strategies can time, gets ``None``: the next
    strategy of the handler (exponential backoff) decides.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)
    strategies: List[BackoffStrategy] = field(default_factory=list)

    def backoff_time(
        self,
        response_or_exception: Optional[Union[requests.Response, requests.RequestException]],
        attempt_count: int,
    ) -> Optional[float]:
        if not isinstance(response_or_exception, requests.Response) or response_or_exception.status_code != 429:
            return None
        for strategy in self.strategies:
            wait = strategy.backoff_time(response_or_exception, attempt_count)
            if wait is not None:
                return wait
        return None
