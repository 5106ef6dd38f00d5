"""PyAirbyte, as a notebook user runs it, each way the docs give, read into DuckDB:

- ``get_source("source-kustomer", config=..., local_executable=...)``: the installed CLI;
- ``get_source(..., pip_url=<a local clone>)``: PyAirbyte makes a virtualenv of its own and installs
  the connector into it from the clone (with uv, from the package registry: a few seconds once uv's
  cache holds the dependencies; once per test session here);
- ``get_source(..., source_manifest=<manifest.yaml>)``: the connector runs inside PyAirbyte's own
  process, from the package's manifest (its classes from the installed package) or from the Builder
  bundle (``make builder-bundle``: PyAirbyte loads the components.py beside the manifest, with
  ``AIRBYTE_ENABLE_UNSAFE_CODE=true``). It behaves as the package does: each read is a sync of its
  own (fresh shared pages: a second read in the same process asks Kustomer again) and spends
  Kustomer's rate-limit budget (no 429 where the buckets bind).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # no registry look-up, no telemetry
os.environ.setdefault("DO_NOT_TRACK", "1")

from integration_tests.conftest import CLI, REPO, TOKEN, config_for, expected_keys, ground_truth  # noqa: E402
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox  # noqa: E402
from scripts.builder_bundle import components_py, manifest_yaml  # noqa: E402


def test_read_into_duckdb_row_counts_equal_the_ground_truth(sandbox, tmp_path):
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    source = ab.get_source("source-kustomer", config=config_for(sandbox), local_executable=CLI)
    source.check()
    assert len(source.get_available_streams()) > 50
    # One stream of each kind: search, nested, per-conversation, per-Klass, list, audit log.
    streams = ["customers", "conversations", "customer_emails", "conversation_events", "kobject_shopify_orders", "users", "audit_logs"]
    source.select_streams(streams)
    cache = DuckDBCache(db_path=str(tmp_path / "kustomer_test.duckdb"), schema_name="kustomer")

    result = source.read(cache=cache)

    assert sorted(result.streams) == sorted(streams)
    for stream in streams:
        assert len(result[stream].to_pandas()) == len(expected_keys(sandbox, stream)), stream
    assert set(result["customers"].to_pandas()["id"]) == {key[0] for key in expected_keys(sandbox, "customers")}
    conversations = result["conversations"].to_pandas()
    assert {"sla_data", "custom", "customer", "updated_at"} <= set(conversations.columns)


# --- pip_url -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pip_install_root(tmp_path_factory) -> Path:
    """Where PyAirbyte keeps the virtualenvs it makes: one per test session, so it installs once."""
    return tmp_path_factory.getbasetemp() / "pyairbyte-venvs"


@pytest.fixture
def uv_for_pyairbyte(monkeypatch) -> None:
    """PyAirbyte runs ``uv`` from PATH (PyAirbyte installs it beside itself), with this Python: no
    interpreter download."""
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.setenv("UV_PYTHON", sys.executable)
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")


def test_pip_url_of_a_local_clone_installs_the_connector_in_its_own_venv_and_reads_into_duckdb(
    uv_for_pyairbyte, pip_install_root, tmp_path
):
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    streams = ["users", "conversations", "customer_emails"]
    with Sandbox(records=150, seed=9, **FAST_KUSTOMER_LIMITS) as org:
        source = ab.get_source("source-kustomer", config=config_for(org), pip_url=str(REPO), install_root=pip_install_root)
        # Installed where PyAirbyte keeps it, not the CLI of this repository's venv.
        venv = pip_install_root / ".venv-source-kustomer"
        assert (venv / "bin" / "source-kustomer").is_file()
        assert source.executor.get_installed_version() == _project_version()
        source.select_streams(streams)

        result = source.read(cache=DuckDBCache(db_path=str(tmp_path / "pip_url.duckdb"), schema_name="kustomer"))

        assert sorted(result.streams) == sorted(streams)
        for stream in streams:
            assert len(result[stream].to_pandas()) == len(expected_keys(org, stream)), stream
        assert set(result["users"].to_pandas()["id"]) == ground_truth(org, "users")


def _project_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


# --- source_manifest -----------------------------------------------------------------------------

#: Kustomer's buckets bind: 4 searches and 10 requests per two-second window. The sync takes the whole
#: org limit (rate_limit_share): with the default half, the org bucket, spent by a run of searches
#: whose answers name only the search bucket, waits out the 60 s window it assumes (not the 2 s here).
LIMITS = {"search_rpm": 4, "org_rpm": 10, "time_scale": 30}
SETTINGS = {"page_size": 10, "rate_limit_share": 100}
STREAMS = ["users", "conversations"]


@pytest.fixture
def manifest_of(tmp_path, monkeypatch) -> Dict[str, Path]:
    """The manifests a user can hand PyAirbyte: the package's, and the Builder bundle's (with its
    components.py beside it, which PyAirbyte uploads with the manifest; custom code must be allowed)."""
    bundle = tmp_path / "builder"
    bundle.mkdir()
    (bundle / "manifest.yaml").write_text(manifest_yaml())
    (bundle / "components.py").write_text(components_py())
    monkeypatch.setenv("AIRBYTE_ENABLE_UNSAFE_CODE", "true")
    return {"package": REPO / "manifest.yaml", "bundle": bundle / "manifest.yaml"}


@pytest.fixture
def limited_org() -> Iterator[Sandbox]:
    with Sandbox(records=150, seed=9, **LIMITS) as org:
        yield org


@pytest.mark.parametrize("manifest", ["package", "bundle"])
def test_source_manifest_reads_twice_in_one_process_each_read_a_sync_of_its_own_within_the_rate_limits(
    manifest_of, limited_org, manifest, tmp_path
):
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    org = limited_org
    source = ab.get_source("source-kustomer", config={"api_token": TOKEN, "api_url": org.url, **SETTINGS},
                           source_manifest=manifest_of[manifest])
    source.select_streams(STREAMS)
    source.get_available_streams()  # discover first: each read below is the read alone
    sent = []
    for number in (1, 2):
        before, paths_before = dict(org.counters), org.requests_by_path()

        result = source.read(cache=DuckDBCache(db_path=str(tmp_path / f"read{number}.duckdb"), schema_name="kustomer"),
                             force_full_refresh=True)

        paths = org.requests_by_path()
        sent.append({"requests": org.counters["requests"] - before.get("requests", 0),
                     "search": org.counters["search"] - before.get("search", 0),
                     "users": paths.get("GET /v1/users", 0) - paths_before.get("GET /v1/users", 0)})
        for stream in STREAMS:
            assert set(result[stream].to_pandas()["id"]) == ground_truth(org, stream), (number, stream)

    # The second read asked Kustomer again, list and search alike, exactly as much as the first: no page
    # of the first read answered it.
    assert sent[0]["users"] >= 3 and sent[1] == sent[0], sent
    # Each read met both buckets and was never refused: the budget lives in the manifest.
    assert all(read["search"] > LIMITS["search_rpm"] and read["requests"] > LIMITS["org_rpm"] for read in sent), sent
    assert org.counters["rate_limited"] == 0
