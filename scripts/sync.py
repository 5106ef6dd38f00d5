"""`make sync`: sync every Kustomer stream into a local DuckDB file through PyAirbyte, and keep it fresh.

With KUSTOMER_API_TOKEN set it syncs that org (KUSTOMER_ORG, KUSTOMER_REGION, KUSTOMER_START_DATE,
KUSTOMER_API_URL: see scripts/environment.py) into schema ``kustomer``. PyAirbyte keeps each stream's state
with the data (``kustomer._airbyte_state``), so the first run is a full sync and every later one is
incremental: it reads what changed since the state the last run saved, and merges it by primary key.
Streams without a cursor (SLAs, team members, ...) are read whole every run and replace their table.
The schema records the org it holds (``kustomer._make_sync``): another org's is refused, a changed start
date makes the run a full one.

Without a token it starts the bundled Kustomer sandbox on 127.0.0.1 and syncs it into schema
``kustomer_sandbox``. The sandbox is generated anew each run (new timestamps), so a state saved from the
last one would describe another org: that schema starts over every run (a full sync), and the org's
schema in the same file is left alone.

KUSTOMER_DUCKDB_PATH sets the file (default .cache/kustomer_sync.duckdb). Runs offline: no registry
look-ups. Output is plain text off a terminal (a progress line every 30 seconds while reading), with
PyAirbyte's live view on one; it ends with a table per stream.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # PyAirbyte: no registry or telemetry calls
os.environ.setdefault("DO_NOT_TRACK", "1")
if not sys.stdout.isatty():
    os.environ.setdefault("NO_LIVE_PROGRESS", "1")  # PyAirbyte's plain progress style: no live view to redraw
# The Google Cloud libraries PyAirbyte imports warn at import about Python 3.11's end of support in 2027.
warnings.filterwarnings("ignore", category=FutureWarning, message="You are using a Python version")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.environment import kustomer_config, where  # noqa: E402

CONNECTOR_NAME = "source-kustomer"
CONNECTOR = Path(sys.executable).parent / "source-kustomer"
DEFAULT_DUCKDB_FILE = REPO / ".cache" / "kustomer_sync.duckdb"
ORG_SCHEMA = "kustomer"
SANDBOX_SCHEMA = "kustomer_sandbox"
ORIGIN_TABLE = "_make_sync"  # one row: the org the schema holds, its start date, the last run's times
STATE_TABLE = "_airbyte_state"  # PyAirbyte's (airbyte/caches/_state_backend.py)
PROGRESS_EVERY_SECONDS = 30


@dataclass
class Target:
    config: Dict[str, Any]
    schema: str
    org: str  # the org, as a person names it (never the token)
    start_date: str
    sandbox: bool


@dataclass
class Origin:
    org: str
    start_date: str
    last_started: Optional[str]
    last_finished: Optional[str]


def duckdb_file() -> Path:
    return Path(os.environ.get("KUSTOMER_DUCKDB_PATH", "").strip() or DEFAULT_DUCKDB_FILE).resolve()


def target_from_environment(stack: ExitStack) -> Target:
    config = kustomer_config()
    if config:
        return Target(config, ORG_SCHEMA, where(config), config.get("start_date", ""), sandbox=False)
    from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

    records = int(os.environ.get("SANDBOX_RECORDS", "20000"))
    sandbox = stack.enter_context(Sandbox(records=records, seed=7, **FAST_KUSTOMER_LIMITS))
    print(f"No KUSTOMER_API_TOKEN set: syncing the bundled Kustomer sandbox ({records:,} records) at {sandbox.url}.")
    return Target({"api_token": "sandbox-token", "api_url": sandbox.url}, SANDBOX_SCHEMA, "the bundled sandbox", "", sandbox=True)


# --- what the DuckDB file holds, read before PyAirbyte opens it --------------------------------------


def _tables(connection: Any, schema: str) -> set:
    rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]).fetchall()
    return {row[0] for row in rows}


def read_origin(path: Path, schema: str) -> tuple:
    """(the schema's Origin or None, whether the schema holds any table)."""
    if not path.exists():
        return None, False
    import duckdb

    with duckdb.connect(str(path)) as connection:
        tables = _tables(connection, schema)
        if ORIGIN_TABLE not in tables:
            return None, bool(tables)
        row = connection.execute(f"SELECT org, start_date, last_started, last_finished FROM {schema}.{ORIGIN_TABLE}").fetchone()
    return (Origin(*row) if row else None), True


def start_over(path: Path, schema: str) -> None:
    """Drop ``schema`` (its tables and its saved state); the file's other schemas stay."""
    if not path.exists():
        return
    import duckdb

    with duckdb.connect(str(path)) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def record_origin(cache: Any, target: Target, start_date: str, started: str, finished: Optional[str]) -> None:
    def text(value: Optional[str]) -> str:
        return "NULL" if value is None else "'" + value.replace("'", "''") + "'"

    table = f"{target.schema}.{ORIGIN_TABLE}"
    cache.execute_sql(
        [
            f"CREATE TABLE IF NOT EXISTS {table} (org VARCHAR, start_date VARCHAR, last_started VARCHAR, last_finished VARCHAR)",
            f"DELETE FROM {table}",
            f"INSERT INTO {table} VALUES ({text(target.org)}, {text(start_date)}, {text(started)}, {text(finished)})",
        ]
    )


def cursor_of(stream_state: Mapping[str, Any]) -> Optional[str]:
    """The cursor a saved stream state resumes after, as text; None for a stream without a cursor."""
    if not stream_state or stream_state.get("__ab_no_cursor_state_message"):
        return None
    inner = stream_state["state"] if isinstance(stream_state.get("state"), dict) else stream_state  # per-parent streams
    values = [value for value in inner.values() if isinstance(value, str)]
    return values[0] if len(values) == 1 else "(saved per parent)"


def saved_cursors(cache: Any) -> Dict[str, Optional[str]]:
    """Stream -> the cursor its saved state resumes after (None: a state without a cursor)."""
    provider = cache.get_state_provider(source_name=CONNECTOR_NAME)
    cursors = {}
    for stream in provider.stream_state_artifacts:
        state = stream.stream_state.model_dump() if stream.stream_state is not None else {}
        cursors[stream.stream_descriptor.name] = cursor_of(state)
    return cursors


# --- PyAirbyte's progress display ---------------------------------------------------------------------


def plain_progress_off_a_terminal() -> None:
    """PyAirbyte takes 'stdout is not a terminal' for 'in a notebook' (airbyte.progress.IS_NOTEBOOK) and
    prints an IPython Markdown object's repr at every update. A script is never a notebook: off a
    terminal its progress is plain (NO_LIVE_PROGRESS, set above), which prints nothing while reading,
    so a line every PROGRESS_EVERY_SECONDS says how far the read is (cron and CI logs stay readable)."""
    import airbyte.progress as progress
    import airbyte.sources.base as sources

    progress.IS_NOTEBOOK = False
    if sys.stdout.isatty():
        return

    class PlainProgress(progress.ProgressTracker):
        def _update_display(self, *, force_refresh: bool = False) -> None:
            super()._update_display(force_refresh=force_refresh)
            now = time.monotonic()
            last = self.__dict__.setdefault("_plain_line_at", now)
            if self.style is progress.ProgressStyle.PLAIN and now - last >= PROGRESS_EVERY_SECONDS:
                self._plain_line_at = now
                print(f"{time.strftime('%H:%M:%S')}  {self.total_records_read:,} records read, "
                      f"{len(self.stream_read_end_times)} streams done", flush=True)

    sources.ProgressTracker = PlainProgress


# --- the summary ------------------------------------------------------------------------------------------


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int]) -> List[str]:
    """Rows as lines whose columns line up, whatever their widths (two spaces between columns)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [str(cell).rjust(width) if i in right else str(cell).ljust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def main() -> int:
    path = duckdb_file()
    if path.stem in (ORG_SCHEMA, SANDBOX_SCHEMA):
        print(f"KUSTOMER_DUCKDB_PATH={path}: DuckDB names the database after the file, and {path.stem} is also the name of "
              "a schema this script writes, which DuckDB cannot tell apart. Name the file otherwise, e.g. kustomer_sync.duckdb.")
        return 2
    with ExitStack() as stack:
        target = target_from_environment(stack)
        where_to = f"{path}, schema {target.schema}"
        origin, full_reason = None, ""
        if target.sandbox:
            start_over(path, target.schema)
            full_reason = f"First (full) sync into {where_to}: the sandbox is generated anew each run, so its copy starts over too."
        else:
            origin, has_tables = read_origin(path, target.schema)
            if origin and origin.org != target.org:
                print(f"{where_to} holds {origin.org}, not {target.org}: its saved state would skip {target.org}'s data. "
                      "Set KUSTOMER_DUCKDB_PATH to another file for this org (or delete that file to start over).")
                return 2
            if not origin and has_tables:
                start_over(path, target.schema)
                full_reason = (f"First (full) sync of {target.org} into {where_to}: the schema was written without a record "
                               "of its org (an older make sync, which also wrote the sandbox there), so it starts over.")
            elif origin and origin.start_date != target.start_date:
                full_reason = (f"Full sync of {target.org} into {where_to}: the start date changed "
                               f"({origin.start_date or 'none'} -> {target.start_date or 'none'}), so no saved state is used.")

        plain_progress_off_a_terminal()
        import airbyte as ab
        from airbyte.caches import DuckDBCache

        cache = DuckDBCache(db_path=str(path), schema_name=target.schema)
        cursors = {} if full_reason else saved_cursors(cache)
        full = bool(full_reason) or not cursors
        if full:
            print(full_reason or f"First (full) sync of {target.org} into {where_to}: no state saved there yet.")
        else:
            last = f"the run started {origin.last_started}" if origin and origin.last_started else "the last run"
            if origin and origin.last_started:
                last += f", finished {origin.last_finished}" if origin.last_finished else ", which did not finish (its last checkpoints)"
            print(f"Incremental sync of {target.org} into {where_to}, from the state saved by {last}: "
                  f"{sum(1 for cursor in cursors.values() if cursor)} streams read only what changed after their saved cursor "
                  "('from' below).")

        source = ab.get_source(CONNECTOR_NAME, config=target.config, local_executable=str(CONNECTOR))
        source._log_incremental_streams = lambda **_: None  # prints a Python set of every stream name; the line above says it
        source.check()
        streams = source.discovered_catalog.streams
        incremental = [s.name for s in streams if "incremental" in {getattr(mode, "value", mode) for mode in s.supported_sync_modes or []}]
        whole = [s.name for s in streams if s.name not in incremental]
        run_started = utc_now()
        if not target.sandbox:
            # The new start date is recorded when the run finishes: a full run cut short is a full run again next time.
            record_origin(cache, target, origin.start_date if origin else target.start_date, run_started, None)
        started = time.monotonic()
        results = []
        if incremental:  # merged by primary key
            results.append(source.read(cache=cache, streams=incremental, force_full_refresh=full))
        if whole:  # no cursor: read whole, and the table replaced (a row Kustomer no longer lists goes too)
            results.append(source.read(cache=cache, streams=whole, force_full_refresh=True, write_strategy="replace"))
        elapsed = time.monotonic() - started
        if not target.sandbox:
            record_origin(cache, target, target.start_date, run_started, utc_now())

        rows = []
        total_read = total_rows = 0
        for result in results:
            tracker = getattr(result, "_progress_tracker", None)
            counts = getattr(tracker, "stream_read_counts", {})
            starts = getattr(tracker, "stream_read_start_times", {})
            ends = getattr(tracker, "stream_read_end_times", {})
            for name in result.streams:
                read, in_table = counts.get(name, 0), len(result.streams[name])
                total_read, total_rows = total_read + read, total_rows + in_table
                if name in whole:
                    mode, since = "full (no cursor)", ""
                elif full or not cursors.get(name):
                    mode, since = "full", ""
                else:
                    mode, since = "incremental", cursors[name]
                seconds = f"{ends[name] - starts[name]:.1f}" if name in starts and name in ends else ""
                rows.append((name, mode, since, f"{read:,}", f"{in_table:,}", seconds))
        rows.sort()
        rows.append(("total", "", "", f"{total_read:,}", f"{total_rows:,}", f"{elapsed:.1f}"))

    print()
    for line in aligned(("stream", "sync", "from", "read", "rows", "seconds"), rows, right=(3, 4, 5)):
        print(line)
    print(f"\n'read': records this run read; 'rows': rows in the table now. DuckDB file: {path} (schema '{target.schema}')")
    if not target.sandbox:
        print("The next make sync reads only what changed since this one.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
