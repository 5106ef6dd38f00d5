"""`make sync` (scripts/sync.py) as a user runs it, output piped as cron or CI pipe it (not a terminal).

With a token (here pointing at a sandbox through KUSTOMER_API_URL) the first run is a full sync and the
second an incremental one from the state the first left in the DuckDB file: fewer requests, fewer
records, each stream's saved cursor named; the file refuses another org. Without a token the bundled
sandbox is synced into its own schema, which starts over every run, and the org's schema is left alone.
Every run's output is plain text (no IPython reprs, no type warnings) ending in an aligned table, and
the columns PyAirbyte could not type before (pinned, satisfaction, snoozes' value) hold what Kustomer sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import duckdb
import pytest

from integration_tests.conftest import REPO, TOKEN, api_resources, assert_no_secret, ground_truth
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

SCRIPT = REPO / "scripts" / "sync.py"
NOISE = ("<IPython", "Could not determine airbyte type", "FutureWarning", "Traceback")


def run_sync(duckdb_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUSTOMER_") and key != "SANDBOX_RECORDS"}
    env.update(KUSTOMER_DUCKDB_PATH=str(duckdb_path), **settings)
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert_no_secret(done.stdout + done.stderr, {"api_token": settings.get("KUSTOMER_API_TOKEN", "")})
    for noise in NOISE:
        assert noise not in done.stdout + done.stderr, (noise, said(done))
    return done


def said(run: subprocess.CompletedProcess) -> str:
    """A run's output, for the message of an assertion about it."""
    return f"stdout:\n{run.stdout[-6000:]}\nstderr:\n{run.stderr[-2000:]}"


def table(stdout: str) -> List[str]:
    """The summary table's lines: the header, one line per stream, the total."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["stream", "sync", "from"])
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


def assert_aligned(lines: List[str]) -> None:
    """Left-aligned columns start where their header starts, right-aligned ones end where theirs ends."""
    header = lines[0]
    starts = {name: header.index(name) for name in ("sync", "from")}
    ends = {name: header.index(name) + len(name) for name in ("read", "rows", "seconds")}
    for line in lines[1:]:
        for name, at in starts.items():
            assert line[at - 2 : at] == "  ", (name, line)
        for name, at in ends.items():
            if name == "seconds" and len(line) < at:
                continue  # no time for a stream PyAirbyte saw no start or end of
            assert line[at - 1] != " " and (len(line) == at or line[at] == " "), (name, line)


def rows_of(stdout: str) -> Dict[str, Dict[str, str]]:
    """stream -> its sync, from, read, rows, seconds (the table cut where its header's columns are)."""
    lines = table(stdout)
    assert_aligned(lines)
    header = lines[0]
    sync_at, from_at = header.index("sync"), header.index("from")
    read_end, rows_end = header.index("read") + len("read"), header.index("rows") + len("rows")
    parsed = {}
    for line in lines[1:]:
        since_and_read = line[from_at:read_end].rsplit(None, 1)
        parsed[line[:sync_at].strip()] = {
            "sync": line[sync_at:from_at].strip(),
            "from": since_and_read[0].strip() if len(since_and_read) == 2 else "",
            "read": since_and_read[-1],
            "rows": line[read_end:rows_end].strip(),
            "seconds": line[rows_end:].strip(),
        }
    return parsed


def number(text: str) -> int:
    return int(text.replace(",", ""))


def query(path: Path, sql: str) -> list:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def saved_cursor(path: Path, stream: str) -> Optional[str]:
    (state_json,) = query(path, f"SELECT state_json FROM kustomer._airbyte_state WHERE stream_name = '{stream}'")[0]
    return json.loads(state_json)["stream"]["stream_state"].get("updated_at")


def test_the_table_lines_up_whatever_the_stream_names_length(monkeypatch):
    for variable in ("AIRBYTE_OFFLINE_MODE", "DO_NOT_TRACK", "NO_LIVE_PROGRESS"):
        monkeypatch.setenv(variable, "1")  # the module sets them when absent: keep them to this test
    monkeypatch.syspath_prepend(str(REPO))
    from scripts.sync import aligned

    long_name = "kobject_" + "a_very_long_klass_name_" * 4
    lines = aligned(("stream", "sync", "from", "read", "rows", "seconds"),
                    [(long_name, "incremental", "2026-01-01T00:00:00.000000Z", "1,234,567", "12", "3.0"),
                     ("tags", "full (no cursor)", "", "1", "1,234,567,890", "123456.7"),
                     ("total", "", "", "1,234,568", "1,234,567,902", "9.9")], right=(3, 4, 5))

    assert_aligned(lines)
    assert lines[1].startswith(long_name + "  ") and lines[2].startswith("tags ")
    assert len({len(line) for line in lines}) == 1  # every line ends at the seconds column


@pytest.fixture
def org() -> Sandbox:
    """A sandbox playing the user's org, for this test alone (its requests are counted)."""
    with Sandbox(records=300, seed=23, **FAST_KUSTOMER_LIMITS) as running:
        yield running


def test_with_a_token_the_second_run_is_incremental_from_the_state_the_first_saved(org, tmp_path):
    path = tmp_path / "sync.duckdb"
    settings = {"KUSTOMER_API_TOKEN": TOKEN, "KUSTOMER_API_URL": org.url}
    org.requests_by_path(reset=True)

    first = run_sync(path, **settings)

    assert first.returncode == 0, said(first)
    assert f"First (full) sync of {org.url}" in first.stdout and "no state saved there yet" in first.stdout, said(first)
    first_requests = sum(org.requests_by_path(reset=True).values())
    first_rows = rows_of(first.stdout)
    assert len(first_rows) > 50, said(first)
    assert {row["sync"] for name, row in first_rows.items() if name != "total"} == {"full", "full (no cursor)"}, said(first)
    assert first_rows["total"]["read"] == first_rows["total"]["rows"], said(first)  # every record once
    assert first_rows["conversations"]["from"] == "", said(first)
    assert number(first_rows["conversations"]["rows"]) == len(ground_truth(org, "conversations")), said(first)
    conversations_cursor = saved_cursor(path, "conversations")
    assert conversations_cursor

    touched = org.touch("conversation", 3)
    created = org.create("customer", 2)
    second = run_sync(path, **settings)

    assert second.returncode == 0, said(second)
    assert f"Incremental sync of {org.url}" in second.stdout and "from the state saved by the run started" in second.stdout, said(second)
    second_requests = sum(org.requests_by_path(reset=True).values())
    second_rows = rows_of(second.stdout)
    assert second_requests * 3 < first_requests, (second_requests, first_requests)
    assert number(second_rows["total"]["read"]) * 3 < number(first_rows["total"]["read"]), said(second)
    # Each stream with a cursor resumed after the one the first run saved; those without were read whole.
    assert second_rows["conversations"] == {**second_rows["conversations"], "sync": "incremental", "from": conversations_cursor}, said(second)
    assert {row["sync"] for name, row in second_rows.items() if name != "total"} == {"incremental", "full (no cursor)"}, said(second)
    assert 3 <= number(second_rows["conversations"]["read"]) < number(first_rows["conversations"]["read"]), said(second)
    assert number(second_rows["slas"]["read"]) == number(first_rows["slas"]["read"]), said(second)  # read whole, replaced
    # The changes arrived, merged by id: every row once, the touched conversations as they are now.
    assert query(path, "SELECT count(*), count(DISTINCT id) FROM kustomer.customers")[0] == (len(ground_truth(org, "customers")),) * 2, said(second)
    assert set(created) <= {row[0] for row in query(path, "SELECT id FROM kustomer.customers")}, said(second)
    for conversation in touched:
        (updated_at,) = query(path, f"SELECT strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%g') FROM kustomer.conversations WHERE id = '{conversation}'")[0]
        assert org.updated_at("conversation", conversation).startswith(updated_at), (org.updated_at("conversation", conversation), updated_at)

    # The columns PyAirbyte could not type before: typed now (JSON, text), holding what Kustomer sent.
    types = dict(query(path, "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'kustomer' AND column_name IN ('pinned', 'satisfaction', 'value')"))
    assert types == {"conversations.pinned": "JSON", "conversations.satisfaction": "VARCHAR", "snoozes.value": "VARCHAR"}
    sent = {resource["id"]: resource["attributes"]["value"] for resource in api_resources(org, "snoozes")}
    stored = dict(query(path, "SELECT id, value FROM kustomer.snoozes"))
    assert stored.keys() == sent.keys() and {type(value) for value in sent.values()} >= {int, dict}
    assert all(json.loads(stored[i]) == value for i, value in sent.items()), (stored, sent)
    sent = {i: org.record("conversation", i)["attributes"].get("satisfaction") for i in ground_truth(org, "conversations")}
    stored = dict(query(path, "SELECT id, satisfaction FROM kustomer.conversations"))
    assert stored.keys() == sent.keys() and {type(value) for value in sent.values()} == {int, type(None)}
    assert all(stored[i] is None if value is None else json.loads(stored[i]) == value for i, value in sent.items())
    assert {row[0] for row in query(path, "SELECT DISTINCT pinned FROM kustomer.conversations")} == {"[]"}

    # The file holds this org now: another one is refused before anything is read.
    other = run_sync(path, KUSTOMER_API_TOKEN=TOKEN, KUSTOMER_API_URL="http://127.0.0.1:9")
    assert other.returncode == 2 and f"holds {org.url}, not http://127.0.0.1:9" in other.stdout, said(other)
    assert "KUSTOMER_DUCKDB_PATH" in other.stdout
    # A file named like a schema would be ambiguous to DuckDB: refused with the reason.
    ambiguous = run_sync(tmp_path / "kustomer.duckdb", **settings)
    assert ambiguous.returncode == 2 and "Name the file otherwise" in ambiguous.stdout, said(ambiguous)


def test_without_a_token_the_sandbox_is_synced_into_its_own_schema_which_starts_over(tmp_path):
    """The sandbox run into a file that holds an org's schema and the sandbox's from an earlier run: the
    sandbox's starts over (the sandbox is generated anew each run), the org's is left as it was."""
    path = tmp_path / "sync.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE SCHEMA kustomer; CREATE TABLE kustomer.customers AS SELECT 'c1' AS id")
        connection.execute("CREATE SCHEMA kustomer_sandbox; CREATE TABLE kustomer_sandbox.left_from_the_last_run AS SELECT 1 AS x")

    done = run_sync(path, SANDBOX_RECORDS="200")

    assert done.returncode == 0, said(done)
    assert "No KUSTOMER_API_TOKEN set: syncing the bundled Kustomer sandbox (200 records)" in done.stdout
    assert "First (full) sync into" in done.stdout and "schema kustomer_sandbox" in done.stdout and "starts over" in done.stdout
    rows = rows_of(done.stdout)
    assert rows["total"]["read"] == rows["total"]["rows"] and number(rows["customers"]["rows"]) > 0, said(done)
    tables = {row[0] for row in query(path, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'kustomer_sandbox'")}
    assert "left_from_the_last_run" not in tables and {"conversations", "snoozes", "_airbyte_state"} <= tables
    assert query(path, "SELECT id FROM kustomer.customers") == [("c1",)]
