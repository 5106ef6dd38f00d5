"""Run the Singer tap ``tap-kustomer`` (PyPI 1.1.0) against another Kustomer API base URL.

The tap hard-codes ``https://api.kustomerapp.com/v1`` in ``KustomerClient.__init__``. This module
replaces only that: it wraps ``KustomerClient.__init__`` so that ``base_url`` is the given URL, then
runs the tap's own ``main()``. Everything else stays as shipped (its ``@utils.ratelimit(250, 60)``
limiters, its backoff, its page size, its 429 handling, its Singer output on stdout and logs on
stderr).

It runs with the tap's interpreter (``.bench/tap-venv/bin/python``), not the project's: it needs only
the standard library and the tap's own packages, and imports the tap lazily, so the stdlib helpers
(``api_base``, ``tap_config``, ``summarize``) can also be imported by a driver in another venv.

Usage::

    # a catalog with these streams selected (the tap's discovery is local: no request is sent)
    python benchmarks/singer_tap.py --discover-selected customers,conversations,users > catalog.json
    # a sync: every argument after the wrapper's own is the tap's (-c/--config, --catalog, -s/--state, -d)
    python benchmarks/singer_tap.py --base-url http://127.0.0.1:PORT -c config.json --catalog catalog.json [-s state.json]
    # a config file for the tap
    python benchmarks/singer_tap.py --write-config config.json --token sandbox-token --start-date 2000-01-01T00:00:00Z

``--base-url`` takes the server root (``http://127.0.0.1:PORT``) or the API root (``.../v1``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

#: The tap version this wrapper was written against (its base URL lives in ``KustomerClient.__init__``).
TAP_VERSION = "1.1.0"
API_VERSION = "v1"
#: ``main()`` reads ``config['user_agent']`` unconditionally (KeyError without it), so configs carry one.
DEFAULT_USER_AGENT = "tap-kustomer-benchmark"


def api_base(url: str) -> str:
    """``http://host:port`` or ``http://host:port/v1`` (trailing slash or not) -> ``http://host:port/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/" + API_VERSION) else f"{url}/{API_VERSION}"


def tap_config(token: str, start_date: str, user_agent: str = DEFAULT_USER_AGENT,
               page_size_limit: Optional[int] = None) -> Dict[str, Any]:
    """A config for the tap: ``api_token`` and ``start_date`` are required, ``user_agent`` is read anyway.

    ``page_size_limit`` (the tap's default: 500) is left out unless given, to keep the shipped default.
    """
    config: Dict[str, Any] = {"api_token": token, "start_date": start_date, "user_agent": user_agent}
    if page_size_limit is not None:
        config["page_size_limit"] = int(page_size_limit)
    return config


def summarize(lines: Iterable[str]) -> Dict[str, Any]:
    """Counts of the tap's Singer output: RECORD lines and distinct ``id``s per stream, and the last STATE."""
    records: Counter[str] = Counter()
    ids: Dict[str, Set[Any]] = {}
    last_state: Optional[Dict[str, Any]] = None
    states = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        kind = message.get("type")
        if kind == "RECORD":
            stream = message["stream"]
            records[stream] += 1
            ids.setdefault(stream, set()).add(message["record"].get("id"))
        elif kind == "STATE":
            states += 1
            last_state = message["value"]
    return {"records": dict(records), "distinct_ids": {s: len(v) for s, v in ids.items()},
            "state_messages": states, "last_state": last_state}


def patch_base_url(base_url: str) -> None:
    """Makes every ``KustomerClient`` use ``base_url`` (the API root, e.g. ``http://127.0.0.1:PORT/v1``)."""
    from tap_kustomer import client

    shipped = client.KustomerClient.__init__

    def __init__(self: Any, token: str, user_agent: Optional[str] = None) -> None:
        shipped(self, token, user_agent)  # sets the hard-coded base_url (and the session, token, agent)
        self.base_url = base_url

    client.KustomerClient.__init__ = __init__


def selected_catalog(streams: Sequence[str]) -> Dict[str, Any]:
    """The tap's discovered catalog with ``selected: true`` on the given streams (and false elsewhere).

    Selection is the stream-level metadata (breadcrumb ``[]``); field metadata is left as discovered
    (``inclusion`` automatic/available, no ``selected``), which the tap's transformer keeps in full.
    """
    from tap_kustomer.discover import discover

    catalog: Dict[str, Any] = discover().to_dict()
    known = [entry["tap_stream_id"] for entry in catalog["streams"]]
    unknown = sorted(set(streams) - set(known))
    if unknown:
        raise SystemExit(f"unknown tap-kustomer streams: {', '.join(unknown)} (known: {', '.join(known)})")
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if not item["breadcrumb"]:  # the stream itself (breadcrumb () from discovery)
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def run_tap(base_url: str, tap_args: List[str]) -> None:
    """Runs the tap's ``main()`` (Singer output on stdout) with its client pointed at ``base_url``."""
    patch_base_url(api_base(base_url))
    import tap_kustomer

    sys.argv = ["tap-kustomer", *tap_args]
    tap_kustomer.main()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run tap-kustomer against another base URL; unrecognised arguments go to the tap.",
        allow_abbrev=False)
    parser.add_argument("--base-url", help="server root or API root (…/v1) to send the tap's requests to")
    parser.add_argument("--discover-selected", metavar="STREAMS",
                        help="print the tap's catalog with these comma-separated streams selected, then exit")
    parser.add_argument("--write-config", metavar="PATH", help="write a tap config to PATH, then exit")
    parser.add_argument("--token", default="sandbox-token", help="api_token for --write-config")
    parser.add_argument("--start-date", default="2000-01-01T00:00:00Z", help="start_date for --write-config")
    parser.add_argument("--page-size-limit", type=int, default=None, help="page_size_limit for --write-config (tap default 500)")
    args, tap_args = parser.parse_known_args(argv)

    if args.write_config:
        with open(args.write_config, "w", encoding="utf-8") as handle:
            json.dump(tap_config(args.token, args.start_date, page_size_limit=args.page_size_limit), handle, indent=2)
        return 0
    if args.discover_selected is not None:
        streams = [s.strip() for s in args.discover_selected.split(",") if s.strip()]
        if args.base_url:
            patch_base_url(api_base(args.base_url))
        json.dump(selected_catalog(streams), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not args.base_url:
        parser.error("--base-url is required to run the tap")
    run_tap(args.base_url, tap_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
