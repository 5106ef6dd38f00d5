"""`make sync`: sync every Kustomer stream into a local DuckDB file through PyAirbyte.

With KUSTOMER_API_TOKEN set it syncs that org (KUSTOMER_ORG, KUSTOMER_REGION, KUSTOMER_START_DATE: see
scripts/environment.py). Without it, it starts the bundled Kustomer sandbox on 127.0.0.1 and syncs
that (SANDBOX_RECORDS sets its size). Runs offline: no registry look-ups.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # PyAirbyte: no registry or telemetry calls
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.environment import kustomer_config, where  # noqa: E402

DUCKDB_FILE = REPO / ".cache" / "kustomer_sync.duckdb"
CONNECTOR = REPO / ".venv" / "bin" / "source-kustomer"


def config_from_environment(stack: ExitStack) -> Dict[str, Any]:
    config = kustomer_config()
    if config:
        print(f"Syncing your Kustomer org ({where(config)}).")
        return config
    from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

    records = int(os.environ.get("SANDBOX_RECORDS", "20000"))
    DUCKDB_FILE.unlink(missing_ok=True)  # the sandbox is generated anew each time: so is its copy
    sandbox = stack.enter_context(Sandbox(records=records, seed=7, **FAST_KUSTOMER_LIMITS))
    print(f"No KUSTOMER_API_TOKEN set: syncing the bundled Kustomer sandbox ({records:,} records) at {sandbox.url}.")
    return {"api_token": "sandbox-token", "api_url": sandbox.url}


def main() -> int:
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    with ExitStack() as stack:
        config = config_from_environment(stack)
        source = ab.get_source("source-kustomer", config=config, local_executable=str(CONNECTOR))
        source.check()
        source.select_all_streams()
        DUCKDB_FILE.parent.mkdir(parents=True, exist_ok=True)
        cache = DuckDBCache(db_path=str(DUCKDB_FILE), schema_name="kustomer")
        started = time.monotonic()
        result = source.read(cache=cache, force_full_refresh=True)
        elapsed = time.monotonic() - started

    tracker = getattr(result, "_progress_tracker", None)
    starts = getattr(tracker, "stream_read_start_times", {})
    ends = getattr(tracker, "stream_read_end_times", {})
    print()
    print(f"{'stream':<16}{'records':>12}{'seconds':>10}")
    total = 0
    for name in sorted(result.streams):
        count = len(result.streams[name])
        total += count
        seconds = ends[name] - starts[name] if name in starts and name in ends else float("nan")
        print(f"{name:<16}{count:>12,}{seconds:>10.1f}")
    print(f"{'total':<16}{total:>12,}{elapsed:>10.1f}")
    print(f"\nDuckDB file: {DUCKDB_FILE} (schema 'kustomer')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
