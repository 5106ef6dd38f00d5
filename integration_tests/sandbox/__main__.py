"""``python -m integration_tests.sandbox --port N [options]``: serve a sandbox until killed."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Dict, List, Optional

from .api import DEFAULT_TOKENS, READ, SEARCH
from .faults import FAULT_KINDS, check_kind
from .sandbox import DEFAULT_RECORDS, Sandbox


def _token(text: str):
    """``NAME=ROLES``: ROLES is ``expired``, empty (no roles) or a comma list of read,search."""
    name, sep, roles = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=ROLES, e.g. my-key=read,search")
    if roles == "expired":
        return name, "expired"
    granted = {r for r in roles.split(",") if r}
    if not granted <= {READ, SEARCH}:
        raise argparse.ArgumentTypeError("roles are read and search (or 'expired')")
    return name, granted


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
    p.add_argument("--token", type=_token, action="append", default=[], metavar="NAME=ROLES",
                   help="accept another API key (roles: read,search | '' | expired); repeatable")
    p.add_argument("--only-tokens", action="store_true", help="accept only the --token keys, not the default ones")
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
