"""make live-check: check, the first page of every stream and a schema drift table, against the sandbox
standing in for a real org (KUSTOMER_API_URL), and a clear word without a token."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

from integration_tests.conftest import REPO, TOKEN, assert_no_secret
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

SCRIPT = [sys.executable, str(REPO / "scripts" / "live_check.py")]


def run(**environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUSTOMER_")}
    return subprocess.run(SCRIPT, env={**env, **environment}, capture_output=True, text=True, timeout=600)


def test_without_a_token_it_says_so_and_succeeds():
    done = run()

    assert done.returncode == 0
    assert "KUSTOMER_API_TOKEN is not set" in done.stdout


def test_it_checks_reads_the_first_page_of_every_stream_and_reports_schema_drift():
    with Sandbox(records=1500, seed=41, drift=True, **FAST_KUSTOMER_LIMITS) as sandbox:
        done = run(KUSTOMER_API_TOKEN=TOKEN, KUSTOMER_API_URL=sandbox.url)

        assert done.returncode == 0, done.stderr[-2000:]
        assert_no_secret(done.stdout + done.stderr)
        assert "check: SUCCEEDED" in done.stdout
        table = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
                 for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| stream")}
        # Every stream has its row; the drift the sandbox plays is reported on the conversations' one.
        assert {"customers", "conversations", "users", "conversation_events", "api_key_roles"} <= set(table)
        records, lacking, differing, _ = table["conversations"]
        assert int(records) > 0 and "sandbox_drift" in lacking and "priority: str not integer" in differing
        assert table["customers"][1:3] == ["-", "-"]
        # No request beyond the first page of any stream.
        paged = [target for _, target, _ in sandbox.request_log if int(parse_qs(urlsplit(target).query).get("page", ["1"])[0]) > 1]
        assert paged == []
        # A per-parent list asks its first page's parents until one has items (PerParentRetriever in a test read).
        assert 1 <= sandbox.requests_by_path().get("GET /v1/conversations/{id}/events", 0) <= 25
        assert "POST /v1/customers/archive/search" not in sandbox.requests_by_path()
