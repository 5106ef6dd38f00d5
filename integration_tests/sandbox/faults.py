"""Fault injection: the transport and server failures a Kustomer client must survive.

Kinds:

* ``500``, ``502``, ``503``, ``504``: that status with a JSON error body;
* ``500-nobody``, ``502-nobody``, ``503-nobody``: that status with an empty body;
* ``502-html``: a load balancer's HTML error page;
* ``429``: a rate-limit answer as Kustomer sends it (error body, ``x-ratelimit-*`` headers, the
  window reopening ``fault_reset_s`` seconds later), whatever the real buckets hold;
* ``429-bare``: a 429 with neither headers nor body;
* ``reset``: the connection is reset (TCP RST) without any response;
* ``timeout``: the server holds the request ``fault_timeout_s`` seconds, then closes the connection
  without answering (a client with a shorter read timeout sees a timeout);
* ``malformed``: a 200 whose JSON body is cut in half;
* ``not-json``: a 200 whose body is an HTML page;
* ``short``: a page in mid-stream (one that links ``next``) whose ``data`` lost its second half,
  links and meta unchanged (as if the server dropped objects from the page; a last page is left
  whole: a short last page is what every list ends with);
* ``redirect``: a 302 to the same path on another host (``redirect_to``).

``TRANSIENT_KINDS`` (the default for random faults) are those a client recovers from by asking
again; ``short`` and ``redirect`` are drawn only when named.

Which requests fail is deterministic for a given seed and request sequence: request number n (1-based,
counting every non-admin request) fails when it is listed in ``fault_at``, when a fault was queued with
``inject``, or when the n-th draw of a generator seeded by ``seed`` falls under ``fault_rate``.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Deque, Dict, Iterable, Mapping, Optional, Sequence, Union

TRANSIENT_KINDS = ("500", "502", "503", "504", "500-nobody", "reset", "timeout", "malformed")
FAULT_KINDS = (
    *TRANSIENT_KINDS, "502-nobody", "503-nobody", "502-html", "429", "429-bare", "not-json", "short", "redirect",
)


def check_kind(kind: str) -> str:
    kind = str(kind)
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    return kind


class FaultPlan:
    def __init__(
        self,
        seed: int = 0,
        fault_rate: float = 0.0,
        kinds: Optional[Sequence[str]] = None,
        fault_at: Union[None, Iterable[int], Mapping[int, str]] = None,
    ) -> None:
        self.kinds = tuple(check_kind(k) for k in (kinds or TRANSIENT_KINDS))
        self.fault_rate = float(fault_rate)
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self._queued: Deque[str] = deque()
        self.at: Dict[int, Optional[str]] = {}
        if isinstance(fault_at, Mapping):
            self.at = {int(n): check_kind(k) for n, k in fault_at.items()}
        elif fault_at:
            self.at = {int(n): None for n in fault_at}

    def inject(self, kind: str, count: int = 1) -> None:
        """The next ``count`` requests fail with ``kind``."""
        with self._lock:
            self._queued.extend([check_kind(kind)] * int(count))

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self.at.clear()
            self.fault_rate = 0.0

    def decide(self, n: int) -> Optional[str]:
        """The fault for request number ``n`` (None = answer normally). Call once per request, in order."""
        with self._lock:
            # One draw per request keeps the random sequence aligned with the request sequence.
            draw, pick = self._rng.random(), self._rng.choice(self.kinds)
            if self._queued:
                return self._queued.popleft()
            if n in self.at:
                return self.at[n] or pick
            if draw < self.fault_rate:
                return pick
            return None
