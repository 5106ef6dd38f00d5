"""``Sandbox``: a local, stateful Kustomer API v1 to run a Kustomer client against.

It ties the pieces together: the generated org (``data``/``store``), the JSON:API rendering
(``render``), the API behaviour (``api``, ``search``, ``ratelimit``), fault injection (``faults``) and
the HTTP server (``server``). It also gives tests what only the simulator knows (the ground truth):
every id per context, the means to update or create objects while a client reads, and a log of the
requests it answered. The same ground truth is served without auth under ``/__sandbox/``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import data
from .api import DEFAULT_TOKENS, KustomerApi, Options, Reply, error_body
from .faults import FaultPlan
from .ratelimit import RateLimits
from .render import Renderer, iso
from .search import ARCHIVE_AGE_MS, parse_time_us
from .server import SandboxHTTPServer
from .store import ENDPOINT_OF, LIST_TYPES, QUERY_CONTEXTS, Store

DEFAULT_RECORDS = 4000

TimeLike = Union[None, int, float, str, datetime]


def _to_ms(now: TimeLike) -> int:
    if now is None:
        return int(time.time() * 1000)
    if isinstance(now, datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return int(now.timestamp() * 1000)
    if isinstance(now, (int, float)):
        return int(now if now > 1e11 else now * 1000)  # epoch milliseconds or seconds
    return parse_time_us(now) // 1000


class Sandbox:
    """A simulated Kustomer org served over HTTP on 127.0.0.1.

    ``records`` searchable objects are generated from ``seed`` relative to ``now`` (default: the real
    current time); the sandbox clock then runs forward from ``now`` in real time (or stays put with
    ``frozen_clock=True``). Rate limits are off unless ``org_rpm``/``search_rpm`` are given; faults
    are off unless ``fault_rate``, ``fault_at`` or ``inject_fault`` ask for them.
    """

    def __init__(
        self,
        records: int = DEFAULT_RECORDS,
        seed: int = 0,
        latency_ms: float = 0,
        org_rpm: Optional[int] = None,
        search_rpm: Optional[int] = None,
        time_scale: float = 1.0,
        faults: Optional[Sequence[str]] = None,
        now: TimeLike = None,
        *,
        fault_rate: float = 0.0,
        fault_at: Union[None, Iterable[int], Mapping[int, str]] = None,
        fault_timeout_s: float = 5.0,
        port: int = 0,
        host: str = "127.0.0.1",
        tokens: Optional[Mapping[str, Any]] = None,
        error_format: str = "jsonapi",
        reset_format: str = "epoch",
        retry_after: bool = False,
        max_search_pages: int = 100,
        oversize: str = "clamp",
        mutate_per_second: float = 0.0,
        bursts: Optional[Mapping[str, Tuple[int, int]]] = None,
        frozen_clock: bool = False,
        verbose: bool = False,
    ) -> None:
        if error_format not in ("jsonapi", "simple"):
            raise ValueError("error_format must be 'jsonapi' or 'simple'")
        if reset_format not in ("epoch", "seconds", "epoch-float"):
            raise ValueError("reset_format must be 'epoch', 'seconds' or 'epoch-float'")
        if oversize not in ("clamp", "error"):
            raise ValueError("oversize must be 'clamp' or 'error'")
        self.records = int(records)
        self.seed = int(seed)
        self.latency_ms = float(latency_ms)
        self.fault_timeout_s = float(fault_timeout_s)
        self.mutate_per_second = float(mutate_per_second)
        self.frozen_clock = frozen_clock
        self.verbose = verbose
        self._host, self._port = host, int(port)
        self._now0_ms = _to_ms(now)
        self._mono0 = time.monotonic()

        started = time.perf_counter()
        self.store = Store(self.seed, self._now0_ms)
        data.generate(self.store, self.records, bursts)
        self.generation_seconds = time.perf_counter() - started

        self.renderer = Renderer(self.store)
        self.options = Options(
            tokens=dict(DEFAULT_TOKENS if tokens is None else tokens),
            error_format=error_format,
            reset_format=reset_format,
            retry_after=retry_after,
            max_search_pages=max_search_pages,
            oversize=oversize,
        )
        self.limits = RateLimits(org_rpm, search_rpm, time_scale)
        self.faults = FaultPlan(self.seed, fault_rate, faults, fault_at)
        self.api = KustomerApi(self.store, self.renderer, self.limits, self.options, self.now_ms)

        #: ``(method, path with query, status)`` of every API request, in order. ``status`` is the HTTP
        #: status sent, or ``"reset"``/``"timeout"`` when the connection was dropped instead.
        self.request_log: List[Tuple[str, str, Any]] = []
        #: ``requests`` (API requests received), ``status:<code>``, ``fault:<kind>``, ``rate_limited``,
        #: ``search`` (search requests), ``mutations:touch``/``mutations:create``.
        self.counters: Counter = Counter()
        self._request_number = 0
        self._counter_lock = threading.Lock()
        self._mutation_rng = random.Random(f"mutations:{self.seed}")
        self._stop = threading.Event()
        self._server: Optional[SandboxHTTPServer] = None
        self._threads: List[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Sandbox":
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = SandboxHTTPServer((self._host, self._port), self)
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http", daemon=True)
        serve.start()
        self._threads = [serve]
        if self.mutate_per_second > 0:
            mutate = threading.Thread(target=self._mutate_forever, name="sandbox-mutations", daemon=True)
            mutate.start()
            self._threads.append(mutate)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # --- clock ------------------------------------------------------------------------------
    def now_ms(self) -> int:
        if self.frozen_clock:
            return self._now0_ms
        return self._now0_ms + int((time.monotonic() - self._mono0) * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=timezone.utc)

    def archive_cutoff(self) -> str:
        """``updatedAt`` from which objects are in live search (older ones: archive search only)."""
        return iso(self.now_ms() - ARCHIVE_AGE_MS)

    # --- ground truth -----------------------------------------------------------------------
    def contexts(self) -> List[str]:
        """Search contexts: customer, conversation, message, note, kobject, company, kobject_<klass>."""
        return self.store.contexts()

    def ids(self, context: str) -> set:
        """Ids of every object of a search context (live and archive)."""
        return self.store.ids(context)

    def ids_of_list(self, endpoint: str) -> set:
        """Ids of every object of a list endpoint: users, teams, tags, shortcuts, klasses."""
        return self.store.ids(endpoint)

    def record(self, context: str, object_id: str) -> Optional[Dict[str, Any]]:
        """The resource exactly as the API renders it now (None for an unknown id)."""
        kind, _ = self.store.resolve(context)
        with self.store.lock:
            i = self.store.colls[kind].index_of(object_id)
            return None if i is None else self.renderer.resource(kind, i)

    def updated_at(self, context: str, object_id: str) -> Optional[str]:
        ms = self.store.updated_at_ms(context, object_id)
        return None if ms is None else iso(ms)

    def ground_truth(self, context: Optional[str] = None, with_updated_at: bool = False) -> Dict[str, Any]:
        """``{context or endpoint: [ids...]}`` (or ``{id: updatedAt}`` maps), sorted by id."""
        names = [context] if context else self.contexts() + [ENDPOINT_OF[k] for k in LIST_TYPES]
        out: Dict[str, Any] = {}
        with self.store.lock:
            for name in names:
                kind, klass = self.store.resolve(name)
                coll = self.store.colls[kind]
                indices = self.store.indices(kind, klass)
                if with_updated_at:
                    out[name] = {coll.id_of(i): iso(coll.updated[i]) for i in indices}
                else:
                    out[name] = [coll.id_of(i) for i in indices]
        return out

    def touch(self, context: str, n: int = 1) -> List[str]:
        """Updates ``n`` random existing objects (``updatedAt`` = now, ``rev`` + 1); returns their ids."""
        ids = data.touch(self.store, context, n, self.now_ms(), self._mutation_rng)
        self.counters["mutations:touch"] += len(ids)
        return ids

    def create(self, context: str, n: int = 1) -> List[str]:
        """Creates ``n`` new objects (created and updated now); returns their ids."""
        kind, _ = self.store.resolve(context)
        if kind == "klass":
            raise ValueError("klasses cannot be created in the sandbox")
        ids = data.create(self.store, context, n, self.now_ms(), self._mutation_rng)
        self.counters["mutations:create"] += len(ids)
        return ids

    # --- runtime knobs ----------------------------------------------------------------------
    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next ``count`` API requests fail with ``kind`` (see ``faults.FAULT_KINDS``)."""
        self.faults.inject(kind, count)

    def set_rate_limits(self, org_rpm: Optional[int] = None, search_rpm: Optional[int] = None, time_scale: Optional[float] = None) -> None:
        self.limits.configure(org_rpm, search_rpm, self.limits.time_scale if time_scale is None else time_scale)

    def clear_log(self) -> None:
        self.request_log.clear()
        self.counters.clear()

    # --- used by the HTTP server ------------------------------------------------------------
    def begin_request(self) -> Tuple[int, Optional[str]]:
        with self._counter_lock:
            self._request_number += 1
            number = self._request_number
            self.counters["requests"] += 1
        return number, self.faults.decide(number)

    def log_request(self, method: str, target: str, status: Any, fault: Optional[str]) -> None:
        self.request_log.append((method, target, status))
        with self._counter_lock:
            self.counters[f"status:{status}"] += 1
            if fault:
                self.counters[f"fault:{fault}"] += 1
            if status == 429:
                self.counters["rate_limited"] += 1
            if method == "POST" and target.split("?")[0].endswith("/search"):
                self.counters["search"] += 1

    def sleep_latency(self) -> None:
        if self.latency_ms > 0:
            self._stop.wait(self.latency_ms / 1000)

    def hold(self) -> None:
        """A hung request: wait ``fault_timeout_s`` (or until the sandbox stops)."""
        self._stop.wait(self.fault_timeout_s)

    def _mutate_forever(self) -> None:
        """Background churn: ``mutate_per_second`` changes, 85% updates and 15% new objects, spread
        over the search contexts in proportion to their size."""
        rng = random.Random(f"churn:{self.seed}")
        weights = [len(self.store.colls[c]) for c in QUERY_CONTEXTS]
        owed = 0.0
        last = time.monotonic()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            owed += (now - last) * self.mutate_per_second
            last = now
            while owed >= 1:
                owed -= 1
                context = rng.choices(QUERY_CONTEXTS, weights)[0]
                if rng.random() < 0.85:
                    self.touch(context, 1)
                else:
                    self.create(context, 1)

    # --- admin endpoints (no auth, no faults, no rate limits, not logged) --------------------
    def admin(self, method: str, path: str, params: Sequence[Tuple[str, str]], body: bytes) -> Reply:
        values = dict(params)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return Reply(400, error_body(400, "bad_request", "Request body is not valid JSON"))
        routes = {
            ("GET", "/__sandbox/ground_truth"): lambda: self.ground_truth(values.get("context"), values.get("updated") in ("1", "true")),
            ("GET", "/__sandbox/stats"): self._stats,
            ("GET", "/__sandbox/log"): lambda: {"requests": [list(entry) for entry in self.request_log]},
            ("GET", "/__sandbox/record"): lambda: {"data": self.record(values["context"], values["id"])},
            ("POST", "/__sandbox/touch"): lambda: {"context": payload["context"], "ids": self.touch(payload["context"], int(payload.get("n", 1)))},
            ("POST", "/__sandbox/create"): lambda: {"context": payload["context"], "ids": self.create(payload["context"], int(payload.get("n", 1)))},
            ("POST", "/__sandbox/faults"): lambda: self._admin_faults(payload),
            ("POST", "/__sandbox/limits"): lambda: self._admin_limits(payload),
            ("POST", "/__sandbox/clear_log"): lambda: (self.clear_log(), {"ok": True})[1],
        }
        handler = routes.get((method, path))
        if handler is None:
            known = {p for _m, p in routes}
            status = 405 if path in known else 404
            return Reply(status, error_body(status, "not_found" if status == 404 else "method_not_allowed", f"{method} {path}"))
        try:
            return Reply(200, handler())
        except (KeyError, ValueError, TypeError) as exc:
            return Reply(400, error_body(400, "bad_request", f"{type(exc).__name__}: {exc}"))

    def _stats(self) -> Dict[str, Any]:
        return {
            "now": iso(self.now_ms()),
            "archiveCutoff": self.archive_cutoff(),
            "counts": {name: len(self.store.colls[self.store.resolve(name)[0]]) for name in list(QUERY_CONTEXTS) + [ENDPOINT_OF[k] for k in LIST_TYPES]},
            "counters": dict(self.counters),
            "generationSeconds": round(self.generation_seconds, 3),
        }

    def _admin_faults(self, payload: Mapping[str, Any]) -> Dict[str, Any]:
        if payload.get("clear"):
            self.faults.clear()
        if "kind" in payload:
            self.inject_fault(str(payload["kind"]), int(payload.get("count", 1)))
        if "rate" in payload:
            self.faults.fault_rate = float(payload["rate"])
        return {"ok": True}

    def _admin_limits(self, payload: Mapping[str, Any]) -> Dict[str, Any]:
        self.set_rate_limits(payload.get("org_rpm"), payload.get("search_rpm"), payload.get("time_scale"))
        return {"ok": True}
