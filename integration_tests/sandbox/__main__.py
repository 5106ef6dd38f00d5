"""``python -m integration_tests.sandbox --port N [options]``: serve a sandbox until killed."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Dict, List, Optional

from .api import USERS_DEFAULTS
from .conformance import ARCHIVE_NOTES, CONTRACT_MODES, UNDOCUMENTED
from .faults import FAULT_KINDS, check_kind
from .roles import ALL_ROLES, DEFAULT_TOKENS, LEGACY_ROLES, SEARCH_ROLES
from .sandbox import DEFAULT_RECORDS, Sandbox

#: Shorthands a --token may use for a whole set of roles.
_ROLE_SETS = {"all": ALL_ROLES, "legacy": LEGACY_ROLES, "search": SEARCH_ROLES}


def _token(text: str):
    """``NAME=ROLES[@POD]``: ROLES is ``expired``, empty (no roles) or a comma list of Kustomer role
    names (``org.permission.tag.read``) and shorthands (all, legacy, search); POD is the key's pod."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=ROLES[@POD], e.g. my-key=all or eu-key=org.permission.tag.read@prod2")
    roles, _, pod = rest.partition("@")
    if roles == "expired":
        return name, "expired"
    granted = set()
    for role in filter(None, (r.strip() for r in roles.split(","))):
        if role in _ROLE_SETS:
            granted |= _ROLE_SETS[role]
        elif role.startswith("org."):
            granted.add(role)
        else:
            raise argparse.ArgumentTypeError(f"{role!r}: roles are Kustomer role names (org.permission.<object>.read ...), "
                                             f"{', '.join(_ROLE_SETS)} or 'expired'")
    return name, {"roles": granted, "name": f"Sandbox: {name}", **({"pod": pod} if pod else {})}


def _status(text: str) -> int:
    if text not in ("400", "401", "403", "404"):
        raise argparse.ArgumentTypeError("a status: 400, 401, 403 or 404")
    return int(text)


def _faults(text: str) -> List[str]:
    try:
        return [check_kind(k.strip()) for k in text.split(",") if k.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fault_at(text: str) -> Dict[int, Optional[str]]:
    """``3,7:503,12:reset``: request numbers, each optionally with its fault kind."""
    out: Dict[int, Optional[str]] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        number, _, kind = item.partition(":")
        out[int(number)] = check_kind(kind) if kind else None
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m integration_tests.sandbox", description="Serve a simulated Kustomer API v1.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--records", type=int, default=DEFAULT_RECORDS, help=f"searchable objects to generate (default {DEFAULT_RECORDS})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--now", default=None, help="the sandbox's 'now' (ISO-8601 UTC); default: the real time")
    p.add_argument("--frozen-clock", action="store_true", help="keep 'now' fixed instead of letting it run")
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--org-rpm", type=int, default=None, help="org-wide requests per window (default: unlimited)")
    p.add_argument("--search-rpm", type=int, default=None, help="search requests per window (default: unlimited)")
    p.add_argument("--time-scale", type=float, default=1.0, help="the rate-limit window is 60 s divided by this")
    p.add_argument("--reset-format", choices=("epoch", "seconds", "epoch-float"), default="epoch", help="x-ratelimit-reset format")
    p.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability that a request fails")
    p.add_argument("--faults", type=_faults, default=None, help=f"fault kinds to draw from: {','.join(FAULT_KINDS)}")
    p.add_argument("--fault-at", type=_fault_at, default=None, help="request numbers that fail, e.g. 3,7:503,12:reset")
    p.add_argument("--fault-timeout-s", type=float, default=5.0, help="how long a 'timeout' fault holds the request")
    p.add_argument("--fault-reset-s", type=float, default=1.0, help="when a '429' fault says the window reopens")
    p.add_argument("--redirect-to", default="http://127.0.0.2:9", help="where a 'redirect' fault sends the client")
    p.add_argument("--error-format", choices=("jsonapi", "simple"), default="jsonapi")
    p.add_argument("--oversize", choices=("clamp", "error"), default="clamp", help="pageSize above the maximum: clamp or 400")
    p.add_argument("--max-search-pages", type=int, default=100)
    p.add_argument("--mutate-per-second", type=float, default=0.0, help="objects updated or created per second while serving")
    p.add_argument("--token", type=_token, action="append", default=[], metavar="NAME=ROLES[@POD]",
                   help="accept another API key (roles: Kustomer role names and all, legacy, search | '' | expired; "
                        "@POD: the key's pod); repeatable")
    p.add_argument("--only-tokens", action="store_true", help="accept only the --token keys, not the default ones")
    p.add_argument("--contract", choices=CONTRACT_MODES, default="enforce",
                   help="requests source_kustomer.contract does not allow: refused with 400 (enforce), only recorded, or unchecked")
    p.add_argument("--missing-role-status", type=_status, default=403, help="status of a key without the role an endpoint needs")
    p.add_argument("--pod", default="prod1", help="the pod (region) this sandbox serves")
    p.add_argument("--wrong-pod-status", type=_status, default=401, help="status of a key of another pod")
    p.add_argument("--users-default", choices=USERS_DEFAULTS, default="active", help="the users GET /v1/users lists without a filter")
    p.add_argument("--users-active-includes-pending", action="store_true", help="deleted=false and pending=false list pending users too")
    p.add_argument("--no-attachment-ids", dest="attachment_ids", action="store_false",
                   help="conversation attachments carry no id (only links.self names it)")
    p.add_argument("--search-attachments", action="store_true", help="messages in search and lists carry relationships.attachments")
    p.add_argument("--archive-notes", choices=ARCHIVE_NOTES, default="refuse", help="a note query on the archive search")
    p.add_argument("--undocumented-sort", choices=UNDOCUMENTED, default="honor", help="the relied-on updatedAt sorts of /search")
    p.add_argument("--undocumented-filter", choices=UNDOCUMENTED, default="honor", help="the relied-on company_updated_at filter of /search")
    p.add_argument("--drift", action="store_true", help="conversations gain an attribute and render priority as a string")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    tokens = {} if args.only_tokens else dict(DEFAULT_TOKENS)
    tokens.update(dict(args.token))
    sandbox = Sandbox(
        records=args.records, seed=args.seed, latency_ms=args.latency_ms, org_rpm=args.org_rpm, search_rpm=args.search_rpm,
        time_scale=args.time_scale, faults=args.faults, now=args.now, fault_rate=args.fault_rate, fault_at=args.fault_at,
        fault_timeout_s=args.fault_timeout_s, fault_reset_s=args.fault_reset_s,
        redirect_to=args.redirect_to, port=args.port, host=args.host, tokens=tokens, error_format=args.error_format,
        reset_format=args.reset_format, retry_after=args.retry_after, max_search_pages=args.max_search_pages,
        oversize=args.oversize, mutate_per_second=args.mutate_per_second, frozen_clock=args.frozen_clock, verbose=args.verbose,
        contract=args.contract, missing_role_status=args.missing_role_status, pod=args.pod, wrong_pod_status=args.wrong_pod_status,
        users_default=args.users_default, users_active_includes_pending=args.users_active_includes_pending,
        attachment_ids=args.attachment_ids, search_attachments=args.search_attachments, archive_notes=args.archive_notes,
        undocumented_sort=args.undocumented_sort, undocumented_filter=args.undocumented_filter, drift=args.drift,
    ).start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"sandbox listening on {sandbox.url}", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
