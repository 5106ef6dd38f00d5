"""`make live-check`: the connector against a real Kustomer org, before its first sync.

With KUSTOMER_API_TOKEN set (and the other settings of scripts/environment.py): `check`, then the first
page of every stream (no request beyond it: the CDK's test-read limits, as the Connector Builder uses
them), then a report of schema drift a user can paste into a bug report: fields in Kustomer's records
that the stream's schema lacks, values whose type the schema does not allow, streams that came back
empty or failed. Without a token it says so and exits 0. Streams read what changed in the last 700
days (KUSTOMER_START_DATE otherwise): inside Kustomer's two-year search window, so no search goes to
the archive. The token is never printed.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Tuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scripts.environment import kustomer_config, where  # noqa: E402

_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


def drift(record: Mapping[str, Any], schema: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
    """The fields of ``record`` its schema does not name (a custom attribute's own column aside: it is
    typed where Kustomer's metadata types it), and those whose value's type the schema does not allow."""
    properties = schema.get("properties") or {}
    lifted = {f"custom_{key}" for key in record.get("custom") or {}} if isinstance(record.get("custom"), dict) else set()
    unknown = sorted(name for name in record if name not in properties and name not in lifted)
    mistyped = []
    for name, value in record.items():
        allowed = (properties.get(name) or {}).get("type")
        if value is None or not allowed:
            continue
        types = [allowed] if isinstance(allowed, str) else allowed
        python = tuple(_JSON_TYPES[t] for t in types if t in _JSON_TYPES)
        if python and (not isinstance(value, python) or (isinstance(value, bool) and "boolean" not in types)):
            mistyped.append(f"{name}: {type(value).__name__} not {'/'.join(t for t in types if t != 'null')}")
    return unknown, sorted(mistyped)


def report(rows: Iterable[Tuple[str, int, List[str], List[str], str]]) -> str:
    """The drift as a Markdown table, one line per stream."""
    lines = ["| stream | records | fields the schema lacks | types that differ | note |", "| --- | ---: | --- | --- | --- |"]
    for stream, count, unknown, mistyped, note in rows:
        lines.append(f"| {stream} | {count} | {', '.join(unknown) or '-'} | {'; '.join(mistyped) or '-'} | {note or '-'} |")
    return "\n".join(lines)


def main() -> int:
    config = kustomer_config()
    if config is None:
        print("make live-check: KUSTOMER_API_TOKEN is not set, so there is no Kustomer org to check. "
              "Set it (and KUSTOMER_ORG, the recommended host) to check your org before its first sync.")
        return 0

    import yaml
    from airbyte_cdk.models import AirbyteStream, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, DestinationSyncMode, Status, SyncMode, Type
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource, TestLimits
    from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets

    from source_kustomer import SourceKustomer
    from source_kustomer.source import manifest_path

    update_secrets([config["api_token"]])
    config.setdefault("start_date", (datetime.now(timezone.utc) - timedelta(days=700)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    logger = logging.getLogger("airbyte")
    print(f"Checking the Kustomer org {where(config)} (from {config['start_date']}).\n")

    status = SourceKustomer(config=config).check(logger, config)
    print(f"check: {status.status.value}{' - ' + filter_secrets(status.message) if status.message else ''}")
    if status.status != Status.SUCCEEDED:
        return 1

    streams = SourceKustomer(config=config).discover(logger, config).streams
    catalog = ConfiguredAirbyteCatalog(streams=[
        ConfiguredAirbyteStream(stream=AirbyteStream(name=s.name, json_schema=s.json_schema, supported_sync_modes=s.supported_sync_modes),
                                sync_mode=SyncMode.full_refresh, destination_sync_mode=DestinationSyncMode.overwrite)
        for s in streams
    ])
    # The first page of each stream, and of each parent a stream reads through: the test-read limits (a
    # per-parent list asks its first page's parents until one has items, see PerParentRetriever).
    source = ConcurrentDeclarativeSource(
        catalog=catalog, config=config, state=[], source_config=yaml.safe_load(manifest_path().read_text()),
        limits=TestLimits(max_records=10_000, max_pages_per_slice=1, max_slices=1),
    )
    records: Dict[str, List[Mapping[str, Any]]] = {s.name: [] for s in streams}
    failures: Dict[str, str] = {}
    for message in source.read(logger, config, catalog, state=[]):
        if message.type == Type.RECORD:
            records.setdefault(message.record.stream, []).append(message.record.data)
        elif message.type == Type.TRACE and message.trace.error is not None:
            failed = message.trace.error.stream_descriptor.name if message.trace.error.stream_descriptor else "(sync)"
            failures[failed] = filter_secrets(message.trace.error.message or "")[:300]

    rows = []
    for stream in streams:
        unknown: set = set()
        mistyped: set = set()
        for record in records[stream.name]:
            more_unknown, more_mistyped = drift(record, stream.json_schema)
            unknown.update(more_unknown)
            mistyped.update(more_mistyped)
        note = failures.get(stream.name) or ("no record on its first page" if not records[stream.name] else "")
        rows.append((stream.name, len(records[stream.name]), sorted(unknown), sorted(mistyped), note.replace("|", "/")))
    print("\nSchema drift on the first page of each stream (paste this table into a bug report):\n")
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
