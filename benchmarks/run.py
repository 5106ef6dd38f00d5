"""``make bench``: source-kustomer against the Singer tap ``tap-kustomer``, on the same sandboxed org.

Each mode starts the bundled Kustomer sandbox (``integration_tests/sandbox``) on 127.0.0.1, then syncs
it with both connectors in turn, each as its own process, and prints for each: records per second,
requests per record, 429s, peak RSS and CPU seconds per 1,000 records, and the ratios (ours / tap's).

Modes (``--modes``, default all but ``memory``; each prints its figure beside its target):

* ``unthrottled``: 30 ms of latency per request, no rate limits enforced.
* ``cpu``: no latency and no limits: what each record costs in CPU.
* ``throttled``: Kustomer's limits (1,000 requests and 100 searches per window), with the window
  shortened ``--time-scale`` times so the run takes minutes. Only the search streams are synced, and
  the report adds the share of the search bucket's throughput reached (100 searches x 500 records
  per window) and the search requests sent over the fewest that could return the same records.
* ``rework``: source-kustomer alone, the search streams, killed (SIGKILL) at a random record and resumed
  from its last state, ``--kills`` times: the records each resumed run reads again, per stream, against
  one page (the target: a sync killed at any moment re-reads about one page per stream).
* ``history``: source-kustomer alone, the search streams of an org whose history begins four years ago,
  without a start date (so from 2015): search requests against the fewest (``ceil(records / 500)`` per
  stream, plus one archive/search hand-over per stream that has an archive).
* ``per-parent``: source-kustomer alone, the per-conversation and per-customer lists, with Kustomer's
  org limit (1,000 requests per window, the window shortened ``--time-scale`` times): requests per
  second against the org bucket's bound (target: 90%).
* ``memory``: source-kustomer alone, every stream, on a ``--memory-records`` org (default 1,000,000) for
  at most ``--memory-minutes``: peak RSS each minute (target: under 300 MB and flat) and peak disk of the
  shared pages (target: under 100 MB).

Both connectors read the same records: the streams the tap has, objects updated in the last 700 days
(the tap never reads Kustomer's archive) and not deleted (it never asks for deleted objects), and no
bulk-update bursts of 500+ objects at one instant (the tap pages by timestamp alone and loops forever
on those; that is reported by the integration tests, not here). The tap runs from its own venv
(``.bench/tap-venv``, made by ``make bench``) through ``benchmarks/singer_tap.py``, which only points
its hard-coded base URL at the sandbox.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.singer_tap import summarize, tap_config  # noqa: E402  (stdlib-only helpers)
from integration_tests.sandbox import Sandbox  # noqa: E402
from integration_tests.conftest import ground_truth  # noqa: E402  (the sandbox's own ids of a stream)
from source_kustomer.contract import ARCHIVE, SEARCHES  # noqa: E402
from unit_tests.manifest_streams import SEARCH_STREAMS as CONTEXTS  # noqa: E402  (stream -> query context)

OURS = REPO / ".venv" / "bin" / "source-kustomer"
TAP_PYTHON = REPO / ".bench" / "tap-venv" / "bin" / "python"
TAP_WRAPPER = REPO / "benchmarks" / "singer_tap.py"
TOKEN = "sandbox-token"

SEARCH_STREAMS = ["customers", "conversations", "messages", "notes", "kobjects"]
LIST_STREAMS = ["users", "teams", "tags", "shortcuts"]
#: Kustomer's documented limits for an org on the 1,000-requests plan and an API key's searches.
ORG_RPM, SEARCH_RPM, SEARCH_PAGE = 1000, 100, 500
UNLIMITED = 10**9


@dataclass
class Result:
    """One connector's run: what it emitted, what it cost, how it ended."""

    name: str
    seconds: float
    records: int
    distinct: int
    requests: int
    searches: int
    rate_limited: int
    peak_rss_mb: float
    cpu_seconds: float
    exit_code: int
    error: str = ""
    per_stream: Dict[str, int] = field(default_factory=dict)
    peak_disk_mb: float = 0.0
    #: (seconds since start, RSS in MB), sampled every half second.
    rss_timeline: List[Tuple[float, float]] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def requests_per_record(self) -> float:
        return self.requests / self.records if self.records else math.inf

    @property
    def cpu_per_1k(self) -> float:
        return 1000 * self.cpu_seconds / self.records if self.records else math.inf


def measure(name: str, argv: Sequence[str], sandbox: Sandbox, folder: Path, timeout: float, count: Any) -> Result:
    """Runs ``argv`` with stdout to a file; peak RSS and CPU come from the kernel's rusage of that process,
    RSS over time and the disk its temporary files take (its own ``TMPDIR``) from samples every 0.5 s."""
    sandbox.reset_requests()
    before = Counter(sandbox.counters)
    out_path, err_path = folder / f"{name}.out", folder / f"{name}.err"
    tmp = folder / f"{name}.tmp"
    tmp.mkdir(exist_ok=True)
    timeline: List[Tuple[float, float]] = []
    peak_disk = 0
    started = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, cwd=REPO, env={**os.environ, "TMPDIR": str(tmp)})
        deadline, status, usage, sampled = started + timeout, None, None, 0.0
        while status is None:
            try:
                pid, raw_status, raw_usage = os.wait4(process.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its exit code is still known, its rusage is not
                pid, raw_status, raw_usage = process.pid, 0, None
                process.wait()
            if pid:
                status, usage = raw_status, raw_usage
            elif time.monotonic() > deadline:
                process.kill()
            else:
                if time.monotonic() - sampled >= 0.5:
                    sampled = time.monotonic()
                    timeline.append((sampled - started, _rss_mb(process.pid)))
                    peak_disk = max(peak_disk, _disk_bytes(tmp))
                time.sleep(0.05)
    seconds = time.monotonic() - started
    counters = Counter(sandbox.counters) - before
    records, distinct, per_stream, error = count(out_path)
    if process.returncode is None:
        process.returncode = os.waitstatus_to_exitcode(status)
    if timeout and seconds >= timeout:
        error = f"killed after {timeout:.0f} s (no end in sight). " + error
    if not error and process.returncode != 0:
        error = _last_line(err_path)
    return Result(
        name=name, seconds=seconds, records=records, distinct=distinct, requests=counters["requests"],
        searches=counters["search"], rate_limited=counters["rate_limited"],
        peak_rss_mb=usage.ru_maxrss / 1024 if usage else max((rss for _, rss in timeline), default=0.0),
        cpu_seconds=usage.ru_utime + usage.ru_stime if usage else math.nan, exit_code=process.returncode, error=error, per_stream=per_stream,
        peak_disk_mb=peak_disk / 2**20, rss_timeline=timeline,
    )


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS")), 0.0)
    except OSError:
        return 0.0


def _disk_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def count_airbyte(path: Path):
    per_stream: Counter[str] = Counter()
    ids: Dict[str, set] = {}
    error = ""
    with open(path, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                record = json.loads(line)["record"]
                per_stream[record["stream"]] += 1
                # the whole row: a nested row's id (a user's, in team_members) repeats across parents and positions
                ids.setdefault(record["stream"], set()).add(hash(json.dumps(record["data"], sort_keys=True)))
            elif line.startswith(b'{"type":"TRACE"') and b'"ERROR"' in line:
                error = error or json.loads(line)["trace"]["error"]["message"]
    return sum(per_stream.values()), sum(len(v) for v in ids.values()), dict(per_stream), error


def count_singer(path: Path):
    with open(path, encoding="utf-8", errors="replace") as lines:  # (a killed tap may leave half a line)
        summary = summarize(line for line in lines if line.startswith("{") and line.rstrip().endswith("}"))
    records = summary.get("records", {})
    distinct = summary.get("distinct_ids", {})
    return sum(records.values()), sum(distinct.values()), dict(records), ""


def write_catalog(sandbox: Sandbox, folder: Path, streams: Optional[List[str]], config: Dict[str, Any]) -> List[str]:
    """Writes ``config`` and the configured catalog of ``streams`` (every stream if None); the argv to read them."""
    config_path = folder / "ours_config.json"
    config_path.write_text(json.dumps({"api_token": TOKEN, "api_url": sandbox.url, **config}))
    discovered = subprocess.run([str(OURS), "discover", "--config", str(config_path)], capture_output=True, text=True, check=True)
    catalog = next(json.loads(line)["catalog"] for line in discovered.stdout.splitlines() if '"CATALOG"' in line)
    chosen = [s for s in catalog["streams"] if streams is None or s["name"] in streams]
    configured = {"streams": [{
        "stream": s,
        "sync_mode": "incremental" if "incremental" in s["supported_sync_modes"] else "full_refresh",
        "destination_sync_mode": "append",
    } for s in chosen]}
    catalog_path = folder / "ours_catalog.json"
    catalog_path.write_text(json.dumps(configured))
    return [str(OURS), "read", "--config", str(config_path), "--catalog", str(catalog_path)]


def run_ours(sandbox: Sandbox, folder: Path, streams: Optional[List[str]], config: Dict[str, Any], timeout: float) -> Result:
    argv = write_catalog(sandbox, folder, streams, config)
    return measure("source-kustomer", argv, sandbox, folder, timeout, count_airbyte)


def run_tap(sandbox: Sandbox, folder: Path, streams: List[str], start_date: str, timeout: float) -> Result:
    config_path, catalog_path = folder / "tap_config.json", folder / "tap_catalog.json"
    config_path.write_text(json.dumps(tap_config(TOKEN, start_date)))
    catalog = subprocess.run([str(TAP_PYTHON), str(TAP_WRAPPER), "--discover-selected", ",".join(streams)],
                             capture_output=True, text=True, check=True, cwd=REPO).stdout
    catalog_path.write_text(catalog)
    argv = [str(TAP_PYTHON), str(TAP_WRAPPER), "--base-url", sandbox.url, "-c", str(config_path), "--catalog", str(catalog_path)]
    return measure("tap-kustomer", argv, sandbox, folder, timeout, count_singer)


def report(title: str, results: List[Result], extra: Sequence[str] = ()) -> None:
    print(f"\n=== {title} ===")
    header = f"{'':16} {'records':>9} {'seconds':>8} {'rec/s':>8} {'req/rec':>8} {'429s':>5} {'RSS MB':>7} {'CPU s/1k':>9}  exit"
    print(header)
    for r in results:
        print(f"{r.name:16} {r.records:>9,} {r.seconds:>8.1f} {r.per_second:>8,.0f} {r.requests_per_record:>8.4f} "
              f"{r.rate_limited:>5} {r.peak_rss_mb:>7.0f} {r.cpu_per_1k:>9.3f}  {r.exit_code}")
    for r in results:
        if r.error:
            print(f"  {r.name} error: {r.error}")
        if r.records != r.distinct:
            print(f"  {r.name}: {r.records - r.distinct:,} records emitted more than once ({r.distinct:,} distinct)")
    if len(results) == 2 and all(r.records for r in results):
        ours, tap = results
        print(f"  ratios (source-kustomer / tap): rec/s {ours.per_second / tap.per_second:.2f}x, "
              f"req/record {ours.requests_per_record / tap.requests_per_record:.2f}x, "
              f"peak RSS {ours.peak_rss_mb / tap.peak_rss_mb:.2f}x, CPU/1k records {ours.cpu_per_1k / tap.cpu_per_1k:.2f}x")
    for line in extra:
        print(f"  {line}")
    sys.stdout.flush()


def comparison(title: str, records: int, latency_ms: float, folder: Path) -> None:
    with Sandbox(records=records, seed=7, latency_ms=latency_ms, bursts={}, org_rpm=UNLIMITED, search_rpm=UNLIMITED) as sandbox:
        start = (sandbox.now() - timedelta(days=700)).strftime("%Y-%m-%dT%H:%M:%SZ")
        config = {"start_date": start, "include_deleted": False, "requests_per_minute": 2000}
        ours = run_ours(sandbox, folder, SEARCH_STREAMS + LIST_STREAMS, config, timeout=1800)
        tap = run_tap(sandbox, folder, SEARCH_STREAMS + LIST_STREAMS, start, timeout=max(120.0, 10 * ours.seconds))
    report(f"{title}: {records:,}-record org, {latency_ms:.0f} ms latency, no rate limits", [ours, tap])


def throttled(records: int, time_scale: float, folder: Path) -> None:
    window = 60.0 / time_scale
    with Sandbox(records=records, seed=7, latency_ms=30, bursts={}, org_rpm=ORG_RPM, search_rpm=SEARCH_RPM, time_scale=time_scale) as sandbox:
        start = (sandbox.now() - timedelta(days=700)).strftime("%Y-%m-%dT%H:%M:%SZ")
        config = {"start_date": start, "include_deleted": False, "requests_per_minute": ORG_RPM}
        ours = run_ours(sandbox, folder, SEARCH_STREAMS, config, timeout=3600)
        tap = run_tap(sandbox, folder, SEARCH_STREAMS, start, timeout=max(120.0, 3 * ours.seconds))
    bucket = SEARCH_RPM * SEARCH_PAGE / window  # records per second the search bucket lets through
    fewest = sum(math.ceil(n / SEARCH_PAGE) for n in ours.per_stream.values())
    report(
        f"throttled: {records:,}-record org, Kustomer's limits ({ORG_RPM} requests, {SEARCH_RPM} searches per "
        f"{window:g} s window: 60 s / {time_scale:g}), 30 ms latency, search streams",
        [ours, tap],
        [f"source-kustomer: {ours.per_second / bucket:.1%} of the search bucket's throughput "
         f"({SEARCH_RPM} x {SEARCH_PAGE} records per {window:g} s = {bucket:,.0f} records/s)",
         f"source-kustomer: {ours.searches:,} search requests for {fewest:,} at the fewest "
         f"(ceil(records / {SEARCH_PAGE}) per stream): {ours.searches / fewest:.3f}x"],
    )


def memory(records: int, minutes: float, folder: Path) -> None:
    with Sandbox(records=records, seed=7, org_rpm=UNLIMITED, search_rpm=UNLIMITED) as sandbox:
        # Kustomer's largest plan, all of it: the per-parent lists (a request per conversation or customer)
        # are bound by it and run on for days on such an org; the run stops after ``minutes``.
        ours = run_ours(sandbox, folder, None, {"requests_per_minute": 2000, "rate_limit_share": 100}, timeout=60 * minutes)
    per_minute = {}
    for seconds, rss in ours.rss_timeline:
        per_minute[int(seconds // 60)] = max(rss, per_minute.get(int(seconds // 60), 0.0))
    report(
        f"memory: {records:,}-record org, every stream, at most {minutes:g} minutes",
        [ours],
        [f"peak RSS per minute (MB): {', '.join(f'{rss:.0f}' for _, rss in sorted(per_minute.items()))} "
         f"(target: under 300, flat); growth from the first minute to the last: "
         f"{(list(per_minute.values()) or [0])[-1] - (list(per_minute.values()) or [0])[0]:+.0f} MB",
         f"peak disk of the shared pages: {ours.peak_disk_mb:.1f} MB (target: under 100 MB)"],
    )


def rework(records: int, kills: int, folder: Path) -> None:
    """Kills the search streams' sync at random records and resumes each time from its last state."""
    chance = random.Random(7)
    streams = SEARCH_STREAMS + ["companies"]
    with Sandbox(records=records, seed=7, bursts={}, org_rpm=UNLIMITED, search_rpm=UNLIMITED) as sandbox:
        argv = write_catalog(sandbox, folder, streams, {"requests_per_minute": 2000, "rate_limit_share": 100})
        total = sum(len(ground_truth(sandbox, stream)) for stream in streams)
        state: Dict[str, Any] = {}
        seen: Set[Tuple[str, str, Any]] = set()
        reread: Dict[str, List[int]] = {stream: [] for stream in streams}
        for run in range(kills + 1):
            kill_at = chance.randint(total // (4 * kills + 4), total // (kills + 1)) if run < kills else None
            emitted = _read_until(argv, folder, state, kill_at)
            if run:
                again = Counter(stream for stream, *_ in emitted & seen)
                for stream in streams:
                    reread[stream].append(again[stream])
            seen |= emitted
        lost = sum(len(ground_truth(sandbox, stream) - {i for s, i, _ in seen if s == stream}) for stream in streams)
    print(f"\n=== rework: {records:,}-record org, the search streams, killed {kills} times at random records, "
          f"page size {SEARCH_PAGE} ===")
    for stream in streams:
        counts = reread[stream]
        print(f"  {stream:14} records read again per resume: max {max(counts):>4}, mean {sum(counts) / len(counts):>6.1f} "
              f"(target: about one page, {SEARCH_PAGE})")
    print(f"  records lost: {lost} (target: 0)")
    sys.stdout.flush()


def _read_until(argv: List[str], folder: Path, state: Dict[str, Any], kill_at: Optional[int]) -> Set[Tuple[str, str, Any]]:
    """Reads from ``state`` (updated in place with each STATE), SIGKILLed after ``kill_at`` records."""
    state_path = folder / "ours_state.json"
    state_path.write_text(json.dumps(list(state.values())))
    process = subprocess.Popen([*argv, "--state", str(state_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    emitted: Set[Tuple[str, str, Any]] = set()
    count = 0
    for line in process.stdout:
        if line.startswith(b'{"type":"RECORD"'):
            record = json.loads(line)["record"]
            emitted.add((record["stream"], record["data"].get("id"), record["data"].get("updated_at")))
            count += 1
            if kill_at is not None and count >= kill_at:
                process.send_signal(signal.SIGKILL)
                break
        elif line.startswith(b'{"type":"STATE"'):
            message = json.loads(line)["state"]
            state[message["stream"]["stream_descriptor"]["name"]] = message
    process.wait()
    return emitted


def history(records: int, folder: Path) -> None:
    """Search streams without a start date (from 2015) on an org whose history begins four years ago."""
    streams = SEARCH_STREAMS + ["companies"]
    with Sandbox(records=records, seed=7, bursts={}, org_rpm=UNLIMITED, search_rpm=UNLIMITED) as sandbox:
        ours = run_ours(sandbox, folder, streams, {"requests_per_minute": 2000, "rate_limit_share": 100}, timeout=1800)
    archive = SEARCHES[ARCHIVE].contexts  # the contexts Kustomer's archive search documents (not notes)
    fewest = sum(math.ceil(n / SEARCH_PAGE) + bool(archive.match(CONTEXTS[stream])) for stream, n in ours.per_stream.items())
    report(
        f"history: {records:,}-record org whose history begins four years ago, no start date (from 2015), search streams",
        [ours],
        [f"search requests: {ours.searches:,} for {fewest:,} at the fewest (ceil(records / {SEARCH_PAGE}) per stream, "
         f"plus one archive/search hand-over per stream with an archive): {ours.searches - fewest:+,} "
         f"(target: at most one per stream beyond that, {len(streams)})"],
    )


def per_parent(records: int, time_scale: float, folder: Path) -> None:
    """The per-conversation and per-customer lists, bound by the org's bucket."""
    window = 60.0 / time_scale
    streams = ["conversation_events", "conversation_forwards", "conversation_times", "message_attachments",
               "conversation_notes", "customer_drafts", "customer_merges"]
    with Sandbox(records=records, seed=7, latency_ms=30, bursts={}, org_rpm=ORG_RPM, search_rpm=SEARCH_RPM, time_scale=time_scale) as sandbox:
        config = {"requests_per_minute": ORG_RPM, "rate_limit_share": 100}
        ours = run_ours(sandbox, folder, streams, config, timeout=3600)
    bound = ORG_RPM / window
    report(
        f"per-parent lists: {records:,}-record org, Kustomer's limits ({ORG_RPM} requests per {window:g} s window: "
        f"60 s / {time_scale:g}), 30 ms latency, rate_limit_share 100",
        [ours],
        [f"requests per second: {ours.requests / ours.seconds:,.1f} of the org bucket's {bound:,.1f}: "
         f"{ours.requests / ours.seconds / bound:.1%} (target: at least 90%)"],
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="unthrottled,cpu,throttled,rework,history,per-parent",
                        help="comma list of unthrottled, cpu, throttled, rework, history, per-parent, memory")
    parser.add_argument("--records", type=int, default=40_000, help="org size for the unthrottled and cpu modes")
    parser.add_argument("--throttled-records", type=int, default=200_000, help="org size for the throttled mode")
    parser.add_argument("--time-scale", type=float, default=2.0, help="the throttled window is 60 s divided by this")
    parser.add_argument("--memory-records", type=int, default=1_000_000, help="org size for the memory mode")
    parser.add_argument("--memory-minutes", type=float, default=20, help="how long the memory mode syncs at most")
    parser.add_argument("--rework-records", type=int, default=30_000, help="org size for the rework mode")
    parser.add_argument("--kills", type=int, default=5, help="kills in the rework mode")
    parser.add_argument("--history-records", type=int, default=40_000, help="org size for the history mode")
    parser.add_argument("--per-parent-records", type=int, default=4_000, help="org size for the per-parent mode")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m in ("unthrottled", "cpu", "throttled") for m in modes) and not TAP_PYTHON.exists():
        parser.error(f"{TAP_PYTHON} is missing: run `make bench`, which creates the tap's venv")
    with tempfile.TemporaryDirectory(prefix="kustomer-bench-") as tmp:
        folder = Path(tmp)
        for mode in modes:
            if mode == "unthrottled":
                comparison("unthrottled", args.records, 30, folder)
            elif mode == "cpu":
                comparison("cpu", args.records, 0, folder)
            elif mode == "throttled":
                throttled(args.throttled_records, args.time_scale, folder)
            elif mode == "memory":
                memory(args.memory_records, args.memory_minutes, folder)
            elif mode == "rework":
                rework(args.rework_records, args.kills, folder)
            elif mode == "history":
                history(args.history_records, folder)
            elif mode == "per-parent":
                per_parent(args.per_parent_records, args.time_scale, folder)
            else:
                parser.error(f"unknown mode {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
