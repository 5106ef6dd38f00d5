"""Kustomer's rate limits: an org-wide request budget and a separate budget for search requests.

Kustomer counts every API request of an org against one budget per 60-second window (300 to 2,000
requests depending on the plan) and, for API keys, search requests against a second budget (100 per
minute). Every response names its budget in ``x-ratelimit-limit`` and ``x-ratelimit-remaining``, and
``x-ratelimit-reset`` tells when the window reopens (UTC epoch seconds; the docs are ambiguous, so
``reset_format="seconds"`` sends seconds from now instead). A request over budget gets 429.

``time_scale`` shrinks the window (60 s / time_scale) so tests can run out of budget and wait for the
reset in a fraction of a second.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional


@dataclass
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the current window ends

    def headers(self, reset_format: str = "epoch", now: Optional[float] = None) -> Dict[str, str]:
        now = time.time() if now is None else now
        if reset_format == "seconds":
            reset = str(max(0, math.ceil(self.reset_at - now)))
        elif reset_format == "epoch-float":
            reset = "%.3f" % self.reset_at
        else:
            reset = str(math.ceil(self.reset_at))
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(self.remaining), "x-ratelimit-reset": reset}

    def retry_after(self, now: Optional[float] = None) -> str:
        now = time.time() if now is None else now
        return str(max(1, math.ceil(self.reset_at - now)))


class FixedWindow:
    """``limit`` requests per window; the window starts with the first request after the last one ended."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = int(limit)
        self.window_s = float(window_s)
        self.clock = clock
        self._start = 0.0
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        if now >= self._start + self.window_s:
            self._start, self._used = now, 0

    def peek(self) -> Verdict:
        with self._lock:
            now = self.clock()
            self._roll(now)
            return Verdict(self._used < self.limit, self.limit, max(0, self.limit - self._used), self._start + self.window_s)

    def take(self) -> Verdict:
        """Spends one request if the budget allows (a refused request costs nothing)."""
        with self._lock:
            now = self.clock()
            self._roll(now)
            if self._used >= self.limit:
                return Verdict(False, self.limit, 0, self._start + self.window_s)
            self._used += 1
            return Verdict(True, self.limit, self.limit - self._used, self._start + self.window_s)

    def refund(self) -> None:
        with self._lock:
            self._used = max(0, self._used - 1)


class RateLimits:
    """The org bucket and the search bucket of one sandbox (either may be off: None)."""

    def __init__(self, org_rpm: Optional[int], search_rpm: Optional[int], time_scale: float = 1.0) -> None:
        self.configure(org_rpm, search_rpm, time_scale)

    def configure(self, org_rpm: Optional[int], search_rpm: Optional[int], time_scale: float = 1.0) -> None:
        window = 60.0 / float(time_scale or 1.0)
        self.time_scale = time_scale
        self.org = FixedWindow(org_rpm, window) if org_rpm else None
        self.search = FixedWindow(search_rpm, window) if search_rpm else None

    def admit(self, is_search: bool) -> Optional[Verdict]:
        """The verdict whose headers the response carries (None when no limit applies).

        A search request spends from both budgets; its response shows the search budget unless the
        org budget is the one that refused it.
        """
        org_verdict = self.org.take() if self.org else None
        if org_verdict is not None and not org_verdict.allowed:
            return org_verdict
        if is_search and self.search is not None:
            search_verdict = self.search.take()
            if not search_verdict.allowed and self.org is not None:
                self.org.refund()
            return search_verdict
        return org_verdict
