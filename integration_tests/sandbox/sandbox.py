"""``Sandbox``: a local, stateful Kustomer API v1 to run a Kustomer client against.

It ties the pieces together: the generated org (``data``/``store``), the JSON:API rendering
(``render``), the API behaviour (``api``, ``search``, ``ratelimit``), fault injection (``faults``) and
the HTTP server (``server``). It also gives tests what only the simulator knows (the ground truth):
every id per context, the means to update or create objects while a client reads, and a log of the
requests it answered. The same ground truth is served without auth under ``/__sandbox/``.

Deleted objects: ``ids(context)`` is what a search without ``includeDeleted`` returns over live plus
archive (soft-deleted objects left out); ``ids(context, include_deleted=True)`` adds them and
``deleted_ids(context)`` lists only them. ``ids_of_list(endpoint)`` is what a client paging through
that GET list with its default parameters collects; for users it is every user of every status
(``user_ids(status)`` and ``user_status(id)`` tell them apart). ``attachments()`` lists the
conversations' attachments.

The contract: ``contract="enforce"`` (default) refuses what ``source_kustomer.contract`` does not
allow, ``"record"`` only records it, ``"off"`` does neither; ``contract_violations`` holds every
offending request (see ``conformance``). Where Kustomer's documents are silent, one switch each
picks the answer (``archive_notes``, ``undocumented_sort``, ``undocumented_filter``,
``users_default``, ``users_active_includes_pending``, ``attachment_ids``, ``search_attachments``,
``missing_role_status``, ``wrong_pod_status``); ``drift`` changes the conversations' shape.
``configure(**switches)`` (or ``POST /__sandbox/switches``) changes any of them while serving.
"""

from __future__ import annotations

import json
import random
import threading
import time
import weakref
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import data
from .api import USERS_DEFAULTS, KustomerApi, Options, Reply, auth_status, error_body
from .conformance import ARCHIVE_NOTES, CONTRACT_MODES, UNDOCUMENTED, ContractCheck, check_choice
from .data import USER_STATUSES
from .faults import FaultPlan
from .ratelimit import RateLimits
from .render import iso
from .render_org import OrgRenderer
from .roles import DEFAULT_TOKENS, parse_token
from .search import ARCHIVE_AGE_MS, parse_time_us
from .server import SandboxHTTPServer
from .store import CONFIG_TYPES, DELETABLE, ENDPOINT_OF, LIST_TYPES, QUERY_CONTEXTS, Store

#: Every paginated GET list with ids, as ``ids_of_list`` and ``/__sandbox/ground_truth`` name them.
LIST_ENDPOINTS = ("users", "teams", "tags", "shortcuts", "klasses", "brands", "schedules", "cards", "routing/queues",
                  "routing/settings", "satisfaction", "snoozes", "spam/senders", "notifications", "slas", "slas/versions",
                  "audit-logs")
#: Other names tests (or stream names) may use for those lists.
LIST_ALIASES = {"business_schedules": "schedules", "queues": "routing/queues", "routing_queues": "routing/queues",
                "team_routing_settings": "routing/settings", "routing_settings": "routing/settings",
                "satisfactions": "satisfaction", "spam_senders": "spam/senders", "sla_versions": "slas/versions",
                "audit_logs": "audit-logs"}
#: Conversation sub-lists served under ``/v1/conversations/{id}/``.
CONVERSATION_CHILDREN = ("events", "forwards", "times")
#: Customer sub-lists served under ``/v1/customers/{id}/``.
CUSTOMER_CHILDREN = ("drafts", "merges")

DEFAULT_RECORDS = 4000

#: Kustomer's rate limits (an org plan of 2,000 requests and 100 searches a window) with one-second
#: windows: what a connector under test runs against, so its rate-limit budget is always exercised
#: yet a test never waits long. ``Sandbox(**FAST_KUSTOMER_LIMITS)``.
FAST_KUSTOMER_LIMITS: Dict[str, Any] = {"org_rpm": 2000, "search_rpm": 100, "time_scale": 60}

TimeLike = Union[None, int, float, str, datetime]

#: Switches ``configure`` (and ``POST /__sandbox/switches``) may change while serving: name -> check.
SWITCHES = {
    "contract": lambda v: check_choice("contract", v, CONTRACT_MODES),
    "missing_role_status": lambda v: auth_status("missing_role_status", v),
    "wrong_pod_status": lambda v: auth_status("wrong_pod_status", v),
    "pod": str,
    "users_default": lambda v: check_choice("users_default", v, USERS_DEFAULTS),
    "users_active_includes_pending": bool,
    "attachment_ids": bool,
    "search_attachments": bool,
    "archive_notes": lambda v: check_choice("archive_notes", v, ARCHIVE_NOTES),
    "undocumented_sort": lambda v: check_choice("undocumented_sort", v, UNDOCUMENTED),
    "undocumented_filter": lambda v: check_choice("undocumented_filter", v, UNDOCUMENTED),
    "drift": bool,
}


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

    Mutations while serving: ``touch`` (update), ``create`` and ``delete`` (soft delete). Each one also
    appends an audit-log entry and, for a conversation, an event stamped with its new ``updatedAt``.

    ``tokens`` maps each API key to its spec (see ``roles.parse_token``; default ``DEFAULT_TOKENS``).
    The contract and the switches where Kustomer is silent are described in the module docstring.
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
        fault_reset_s: float = 1.0,
        redirect_to: str = "http://127.0.0.2:9",
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
        contract: str = "enforce",
        missing_role_status: int = 403,
        pod: str = "prod1",
        wrong_pod_status: int = 401,
        users_default: str = "active",
        users_active_includes_pending: bool = False,
        attachment_ids: bool = True,
        search_attachments: bool = False,
        archive_notes: str = "refuse",
        undocumented_sort: str = "honor",
        undocumented_filter: str = "honor",
        drift: bool = False,
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
        self.fault_reset_s = float(fault_reset_s)
        self.redirect_to = redirect_to
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

        self.renderer = OrgRenderer(self.store)
        self.options = Options(
            tokens={key: parse_token(spec) for key, spec in (DEFAULT_TOKENS if tokens is None else tokens).items()},
            error_format=error_format,
            reset_format=reset_format,
            retry_after=retry_after,
            max_search_pages=max_search_pages,
            oversize=oversize,
        )
        self.limits = RateLimits(org_rpm, search_rpm, time_scale)
        self.faults = FaultPlan(self.seed, fault_rate, faults, fault_at)
        self.contract = ContractCheck(contract)
        #: ``{method, path, params, body, problems}`` of every API request the contract does not allow, in
        #: order (kept unless ``contract="off"``); ``params`` is the list of query ``(name, value)`` pairs
        #: and ``body`` the parsed JSON body (None without one).
        self.contract_violations: List[Dict[str, Any]] = self.contract.violations
        self.api = KustomerApi(self.store, self.renderer, self.limits, self.options, self.now_ms, self.contract)
        self.configure(contract=contract, missing_role_status=missing_role_status, pod=pod, wrong_pod_status=wrong_pod_status,
                       users_default=users_default, users_active_includes_pending=users_active_includes_pending,
                       attachment_ids=attachment_ids, search_attachments=search_attachments, archive_notes=archive_notes,
                       undocumented_sort=undocumented_sort, undocumented_filter=undocumented_filter, drift=drift)

        #: ``(method, path with query, status)`` of every API request, in order. ``status`` is the HTTP
        #: status sent, or ``"reset"``/``"timeout"`` when the connection was dropped instead.
        self.request_log: List[Tuple[str, str, Any]] = []
        #: ``requests`` (API requests received), ``status:<code>``, ``fault:<kind>``, ``rate_limited``,
        #: ``search`` (search requests), ``mutations:touch``/``mutations:create``/``mutations:delete``.
        self.counters: Counter = Counter()
        #: ``"<METHOD> <path template>"`` -> API requests received (see ``requests_by_path``).
        self._by_path: Counter = Counter()
        self._request_number = 0
        self._counter_lock = threading.Lock()
        self._mutation_rng = random.Random(f"mutations:{self.seed}")
        self._stop = threading.Event()
        self._server: Optional[SandboxHTTPServer] = None
        self._threads: List[threading.Thread] = []

    # --- lifecycle --------------------------------------------------------------------------
    #: Every sandbox started in this process (weakly held): a test suite can look at what each was sent.
    started: "weakref.WeakSet[Sandbox]" = weakref.WeakSet()

    def start(self) -> "Sandbox":
        if self._server is not None:
            return self
        Sandbox.started.add(self)
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

    def ids(self, context: str, include_deleted: bool = False) -> set:
        """Ids of every object of a search context (live and archive).

        Without ``include_deleted`` this is exactly what search answers without ``includeDeleted``
        (soft-deleted objects left out); with it, what search answers with ``"includeDeleted": true``.
        """
        return self.store.ids(context, include_deleted=include_deleted)

    def deleted_ids(self, context: str) -> set:
        """Ids of the soft-deleted objects of a search context."""
        return self.store.deleted_ids(context)

    def _list_indices(self, endpoint: str, status: str = "enabled") -> Tuple[str, List[int]]:
        """``(type, indexes)`` behind a GET list, in list order (``routing/settings`` are teams)."""
        endpoint = LIST_ALIASES.get(endpoint, endpoint)
        if endpoint not in LIST_ENDPOINTS:
            raise KeyError(f"unknown list endpoint {endpoint!r}; expected one of {', '.join(LIST_ENDPOINTS)}")
        if endpoint == "routing/settings":
            return "team", list(range(len(self.store.colls["team"])))
        kind, _ = self.store.resolve(endpoint)
        indices = list(range(len(self.store.colls[kind])))
        if kind == "klass" and status != "existing_only":
            names, off = self.store.klass_names, self.store.disabled_klasses
            indices = [i for i in indices if (names[i % len(names)] in off) == (status == "disabled")]
        return kind, indices

    def ids_of_list(self, endpoint: str, status: str = "enabled") -> set:
        """Ids a client collects from a GET list with default parameters (for ``users``: every user of
        every status, what a client collects from ``GET /v1/users`` with and without ``deleted=true``
        and ``pending=true``).

        ``endpoint`` is one of ``LIST_ENDPOINTS`` (users, teams, tags, shortcuts, klasses, brands,
        schedules, cards, routing/queues, routing/settings (= team ids), satisfaction, snoozes,
        spam/senders, notifications, slas, slas/versions (the sla_version ids ``versions=all``
        includes), audit-logs) or an alias in ``LIST_ALIASES``. ``status`` applies to klasses
        (enabled by default, like the API; disabled; existing_only = all).
        """
        with self.store.lock:
            kind, indices = self._list_indices(endpoint, status)
            coll = self.store.colls[kind]
            return {coll.id_of(i) for i in indices}

    def user_ids(self, status: Optional[str] = None) -> set:
        """Ids of every user, or of those in one status: ``active``, ``deactivated`` or ``pending``."""
        if status is not None and status not in USER_STATUSES:
            raise KeyError(f"status must be one of {', '.join(USER_STATUSES)}")
        users = self.store.colls["user"]
        with self.store.lock:
            return {users.id_of(i) for i in range(len(users)) if status is None or self._user_status(i) == status}

    def user_status(self, user_id: str) -> str:
        """``active``, ``deactivated`` or ``pending`` (KeyError for an unknown id)."""
        with self.store.lock:
            i = self.store.colls["user"].index_of(user_id)
            if i is None:
                raise KeyError(f"unknown user {user_id}")
            return self._user_status(i)

    def _user_status(self, i: int) -> str:
        column = self.store.colls["user"].rel.get("status")
        return USER_STATUSES[column[i]] if column is not None and column[i] >= 0 else "active"

    def attachments(self, conversation_ids: Optional[Iterable[str]] = None, include_deleted: bool = False) -> List[Tuple[str, str, str]]:
        """``(conversation id, message id, attachment id)`` of the attachments of every live conversation
        (or of the given ones), in conversation then message order: what a client collects from
        ``GET /v1/conversations/{id}/attachments``. Soft-deleted conversations (whose lists are still
        served) only with ``include_deleted``; unknown ids raise KeyError."""
        renderer = self.renderer
        with self.store.lock:
            conversations = self.store.colls["conversation"]
            pairs = self._id_index_pairs("conversation", conversation_ids)
            wanted = {c for _, c in pairs if include_deleted or not conversations.is_deleted(c)}
            messages = self.store.colls["message"]
            column = messages.rel["conversation"]
            found: Dict[int, List[Tuple[str, str, str]]] = {}
            for i in range(len(messages)):
                c = column[i]
                if c in wanted:
                    count = renderer.attachment_count(i)
                    if count:
                        mid = messages.id_of(i)
                        found.setdefault(c, []).extend((conversations.id_of(c), mid, renderer.attachment_id(i, k)) for k in range(count))
            return [item for c in sorted(found) for item in found[c]]

    def sla_version_ids(self, sla_id: Optional[str] = None) -> List[str]:
        """Ids of the versions of one SLA (oldest first), or of every SLA."""
        slas, versions = self.store.colls["sla"], self.store.colls["sla_version"]
        wanted = range(len(slas)) if sla_id is None else [slas.index_of(sla_id)]
        return [versions.id_of(v) for s in wanted if s is not None for v in self.renderer.sla_versions_of(s)]

    def outbound_account_keys(self) -> set:
        """``(channel, account)`` of every outbound account (they have no id)."""
        return {(a["attributes"]["channel"], a["attributes"]["account"]) for a in self.renderer.outbound_accounts()}

    def audit_log_ids(self, start: TimeLike = None, end: TimeLike = None) -> List[str]:
        """Audit-log ids newest first (ties: higher id first) with ``start <= createdAt <= end`` (inclusive)."""
        coll = self.store.colls["audit_log"]
        lo_ms = None if start is None else (-(-parse_time_us(start) // 1000) if isinstance(start, str) else _to_ms(start))
        hi_ms = None if end is None else _to_ms(end)
        with self.store.lock:
            return [coll.id_of(i) for i in range(len(coll) - 1, -1, -1)
                    if (lo_ms is None or coll.created[i] >= lo_ms) and (hi_ms is None or coll.created[i] <= hi_ms)]

    def conversation_children_ids(self, child: str, conversation_ids: Optional[Iterable[str]] = None,
                                  with_created_at: bool = False) -> Dict[str, Any]:
        """``{conversation id: [ids oldest first]}`` (or ``{id: createdAt}``) of events, forwards or times.

        With ``conversation_ids`` every given conversation is a key (unknown ids raise KeyError); without,
        only the conversations that have at least one item are.
        """
        if child not in CONVERSATION_CHILDREN:
            raise KeyError(f"child must be one of {', '.join(CONVERSATION_CHILDREN)}")
        out: Dict[str, Any] = {}
        with self.store.lock:
            for cid, c in self._id_index_pairs("conversation", conversation_ids):
                items = self.renderer.conversation_items(child, c)
                if conversation_ids is None and not items:
                    continue
                if with_created_at:
                    out[cid] = {oid: make()["attributes"]["createdAt"] for oid, make in items}
                else:
                    out[cid] = [oid for oid, _ in items]
        return out

    def customer_children_ids(self, child: str, customer_ids: Optional[Iterable[str]] = None) -> set:
        """Ids of the drafts or merges (``child``) of the given customers, or of every customer.

        This is what a client collects from ``GET /v1/customers/{id}/<child>`` for each customer.
        Soft-deleted customers count too (their sub-lists are still served); unknown ids raise KeyError.
        """
        if child not in CUSTOMER_CHILDREN:
            raise KeyError(f"child must be one of {', '.join(CUSTOMER_CHILDREN)}")
        with self.store.lock:
            pairs = self._id_index_pairs("customer", customer_ids)
            return {oid for _, c in pairs for oid, _ in self.renderer.customer_items(child, c)}

    def _id_index_pairs(self, kind: str, ids: Optional[Iterable[str]]) -> List[Tuple[str, int]]:
        """``(id, index)`` of the given objects of ``kind`` (unknown ids raise KeyError), or of every one."""
        coll = self.store.colls[kind]
        if ids is None:
            return [(coll.id_of(i), i) for i in range(len(coll))]
        pairs = []
        for object_id in ids:
            i = coll.index_of(object_id)
            if i is None:
                raise KeyError(f"unknown {kind} {object_id}")
            pairs.append((object_id, i))
        return pairs

    def metadata(self, resource: str) -> Optional[Dict[str, Any]]:
        """``GET /v1/metadata/{resource}``'s ``data`` (None for an unknown resource)."""
        return self.renderer.metadata(resource)

    def metadata_resources(self) -> List[str]:
        """Resources the metadata endpoint knows: company, conversation, customer, message, kobject.<klass>."""
        return self.renderer.metadata_resources()

    def record(self, context: str, object_id: str) -> Optional[Dict[str, Any]]:
        """The resource exactly as the API renders it now (None for an unknown id)."""
        kind, _ = self.store.resolve(context)
        with self.store.lock:
            i = self.store.colls[kind].index_of(object_id)
            return None if i is None else self.renderer.resource(kind, i)

    def updated_at(self, context: str, object_id: str) -> Optional[str]:
        ms = self.store.updated_at_ms(context, object_id)
        return None if ms is None else iso(ms)

    def ground_truth(self, context: Optional[str] = None, with_updated_at: bool = False, include_deleted: bool = False) -> Dict[str, Any]:
        """``{context or endpoint: [ids...]}`` (or ``{id: updatedAt}`` maps), sorted by id.

        Contexts follow ``ids`` (soft-deleted objects only with ``include_deleted``), list endpoints
        ``ids_of_list``. For SLAs, SLA versions and audit logs the time is ``createdAt`` (they have
        no ``updatedAt``). Without ``context``, the answer also has ``deleted`` (``{context: [ids]}``),
        ``outboundAccounts`` (``[[channel, account], ...]``) and ``metadata`` (``{resource: [keys]}``).
        """
        names = [context] if context else self.contexts() + list(LIST_ENDPOINTS)
        out: Dict[str, Any] = {}
        with self.store.lock:
            for name in names:
                if LIST_ALIASES.get(name, name) in LIST_ENDPOINTS:
                    kind, indices = self._list_indices(name)
                else:
                    kind, klass = self.store.resolve(name)
                    indices = self.store.indices(kind, klass)
                    if not include_deleted:
                        indices = self.store.colls[kind].alive(indices)
                coll = self.store.colls[kind]
                if with_updated_at:
                    out[name] = {coll.id_of(i): iso(coll.updated[i]) for i in indices}
                else:
                    out[name] = [coll.id_of(i) for i in indices]
            if not context:
                out["deleted"] = {ctx: sorted(self.deleted_ids(ctx)) for ctx in self.contexts()}
                out["outboundAccounts"] = sorted(list(key) for key in self.outbound_account_keys())
                out["metadata"] = {r: sorted(self.metadata(r)["attributes"]["properties"]) for r in self.metadata_resources()}
        return out

    def touch(self, context: str, n: int = 1) -> List[str]:
        """Updates ``n`` random existing objects (``updatedAt`` = now, ``rev`` + 1); returns their ids."""
        ids = data.touch(self.store, context, n, self.now_ms(), self._mutation_rng)
        self.counters["mutations:touch"] += len(ids)
        return ids

    def delete(self, context: str, n: int = 1) -> List[str]:
        """Soft-deletes ``n`` random objects (``deletedAt`` = ``updatedAt`` = now); returns their ids.

        Only customers, conversations, companies, notes and kobjects can be deleted.
        """
        ids = data.delete(self.store, context, n, self.now_ms(), self._mutation_rng)
        self.counters["mutations:delete"] += len(ids)
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
    def configure(self, **switches: Any) -> Dict[str, Any]:
        """Changes any of ``SWITCHES`` (the contract mode and the silent behaviours); returns them all."""
        unknown = set(switches) - set(SWITCHES)
        if unknown:
            raise KeyError(f"unknown switches: {', '.join(sorted(unknown))}; expected some of {', '.join(SWITCHES)}")
        checked = {name: SWITCHES[name](value) for name, value in switches.items()}
        for name, value in checked.items():
            if name == "contract":
                self.contract.mode = value
            elif name in ("search_attachments", "drift"):
                setattr(self.renderer, name, value)
            else:
                setattr(self.options, name, value)
        return self.switches()

    def switches(self) -> Dict[str, Any]:
        """The current value of every one of ``SWITCHES``."""
        out: Dict[str, Any] = {}
        for name in SWITCHES:
            if name == "contract":
                out[name] = self.contract.mode
            elif name in ("search_attachments", "drift"):
                out[name] = getattr(self.renderer, name)
            else:
                out[name] = getattr(self.options, name)
        return out

    def inject_fault(self, kind: str, count: int = 1) -> None:
        """The next ``count`` API requests fail with ``kind`` (see ``faults.FAULT_KINDS``)."""
        self.faults.inject(kind, count)

    def set_rate_limits(self, org_rpm: Optional[int] = None, search_rpm: Optional[int] = None, time_scale: Optional[float] = None) -> None:
        self.limits.configure(org_rpm, search_rpm, self.limits.time_scale if time_scale is None else time_scale)

    def clear_log(self) -> None:
        self.request_log.clear()
        with self._counter_lock:
            self.counters.clear()
            self._by_path.clear()

    def requests_by_path(self, reset: bool = False) -> Dict[str, int]:
        """API requests received since the start or the last reset, by ``"<METHOD> <path template>"``.

        Ids in paths are ``{id}`` and Klass names ``{name}`` (``"GET /v1/conversations/{id}/events"``,
        ``"GET /v1/klasses/{name}"``); query strings are dropped. Every request counts, whatever its
        answer (faults and 429s included); admin requests do not. ``reset=True`` reads and zeroes
        the counts at once.
        """
        with self._counter_lock:
            counts = dict(self._by_path)
            if reset:
                self._by_path.clear()
        return counts

    def reset_requests(self) -> None:
        """Zeroes ``requests_by_path`` (``counters`` and ``request_log`` are left alone)."""
        with self._counter_lock:
            self._by_path.clear()

    # --- used by the HTTP server ------------------------------------------------------------
    def begin_request(self) -> Tuple[int, Optional[str]]:
        with self._counter_lock:
            self._request_number += 1
            number = self._request_number
            self.counters["requests"] += 1
        return number, self.faults.decide(number)

    def log_request(self, method: str, target: str, status: Any, fault: Optional[str]) -> None:
        self.request_log.append((method, target, status))
        path = target.split("?")[0]
        with self._counter_lock:
            self._by_path[f"{method} {self.api.template(path)}"] += 1
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
            ("GET", "/__sandbox/ground_truth"): lambda: self.ground_truth(values.get("context"), values.get("updated") in ("1", "true"),
                                                                          values.get("include_deleted") in ("1", "true")),
            ("GET", "/__sandbox/conversation_children"): lambda: self.conversation_children_ids(
                values["child"], [i for i in values["ids"].split(",") if i] if "ids" in values else None, values.get("created") in ("1", "true")),
            ("GET", "/__sandbox/customer_children"): lambda: {"ids": sorted(self.customer_children_ids(
                values["child"], [i for i in values["ids"].split(",") if i] if "ids" in values else None))},
            ("GET", "/__sandbox/audit_logs"): lambda: {"ids": self.audit_log_ids(values.get("start"), values.get("end"))},
            ("GET", "/__sandbox/metadata"): lambda: {"data": self.metadata(values["resource"])},
            ("GET", "/__sandbox/requests"): lambda: self.requests_by_path(values.get("reset") in ("1", "true")),
            ("GET", "/__sandbox/stats"): self._stats,
            ("GET", "/__sandbox/log"): lambda: {"requests": [list(entry) for entry in self.request_log]},
            ("GET", "/__sandbox/record"): lambda: {"data": self.record(values["context"], values["id"])},
            ("POST", "/__sandbox/touch"): lambda: {"context": payload["context"], "ids": self.touch(payload["context"], int(payload.get("n", 1)))},
            ("POST", "/__sandbox/create"): lambda: {"context": payload["context"], "ids": self.create(payload["context"], int(payload.get("n", 1)))},
            ("POST", "/__sandbox/delete"): lambda: {"context": payload["context"], "ids": self.delete(payload["context"], int(payload.get("n", 1)))},
            ("POST", "/__sandbox/faults"): lambda: self._admin_faults(payload),
            ("POST", "/__sandbox/limits"): lambda: self._admin_limits(payload),
            ("POST", "/__sandbox/clear_log"): lambda: (self.clear_log(), {"ok": True})[1],
            ("GET", "/__sandbox/users"): lambda: {"users": {u: self.user_status(u) for u in sorted(self.user_ids())}},
            ("GET", "/__sandbox/attachments"): lambda: {"attachments": [list(a) for a in self.attachments(
                [i for i in values["ids"].split(",") if i] if "ids" in values else None, values.get("include_deleted") in ("1", "true"))]},
            ("GET", "/__sandbox/contract_violations"): lambda: {"violations": self.contract.snapshot(values.get("reset") in ("1", "true"))},
            ("GET", "/__sandbox/switches"): self.switches,
            ("POST", "/__sandbox/switches"): lambda: self.configure(**payload),
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
            "counts": {name: len(self.store.colls[self.store.resolve(name)[0]])
                       for name in list(QUERY_CONTEXTS) + [ENDPOINT_OF[k] for k in LIST_TYPES + CONFIG_TYPES]},
            "deleted": {kind: len(self.store.colls[kind].deleted) for kind in DELETABLE},
            "counters": dict(self.counters),
            "contractViolations": len(self.contract_violations),
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
