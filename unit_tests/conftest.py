"""Shared fixtures: a mocked Kustomer (requests-mock, or the CDK's HttpMocker), a read helper, and
backoff sleeps recorded instead of slept.

Test modules mirror the code: ``test_<module>.py`` tests ``source_kustomer/<module>.py`` (its components
on their own, and through the manifest where that is how they are used). The modules that test whole
streams through the manifest say so in their names, ``test_stream_*.py`` (searches, lists, checkpoints,
record shape, hostile data), and ``test_check_config.py`` tests ``check`` with bad settings.

Every test runs inside requests-mock (``plain_org``), so none reaches the network, unless it asks for
``http_mocker``: then the CDK's HttpMocker alone answers, and a request it was not told of fails.
"""

from __future__ import annotations

import json
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest
import requests_mock
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, _run_command, read
from airbyte_cdk.test.mock_http import HttpMocker
from airbyte_cdk.test.state_builder import StateBuilder

from source_kustomer import SourceKustomer
from unit_tests.kustomer_mock import MockKustomer, kustomer_http, serve_plain_org
from unit_tests.manifest_streams import LIST_STREAMS, SEARCH_STREAMS  # noqa: F401  (re-exported for the tests)

CONFIG: Dict[str, Any] = {"api_token": "unit-test-token-0123456789", "start_date": "2025-01-01T00:00:00Z"}


def read_stream(
    stream: str,
    config: Mapping[str, Any] = CONFIG,
    state: Optional[Mapping[str, Any]] = None,
    sync_mode: SyncMode = SyncMode.incremental,
) -> EntrypointOutput:
    catalog = CatalogBuilder().with_stream(stream, sync_mode).build()
    state_messages = StateBuilder().with_stream_state(stream, dict(state)).build() if state else None
    source = SourceKustomer(catalog=catalog, config=dict(config), state=state_messages)
    return read(source, dict(config), catalog, state_messages)


def ids(output: EntrypointOutput) -> List[str]:
    return [message.record.data["id"] for message in output.records]


def last_state(output: EntrypointOutput) -> Dict[str, Any]:
    return dict(output.state_messages[-1].state.stream.stream_state.__dict__)


@pytest.fixture(autouse=True)
def plain_org(request: pytest.FixtureRequest) -> None:
    """No unit test reaches the network; every one starts from an org without Klasses or custom attributes.

    A test on the CDK's HttpMocker (``http_mocker``) opts out: it names every request itself, and
    HttpMocker, inside requests-mock, would never consult these routes anyway."""
    if "http_mocker" not in request.fixturenames:
        serve_plain_org(request.getfixturevalue("requests_mock"))


@pytest.fixture
def http_mocker() -> Iterator[HttpMocker]:
    """The CDK's HttpMocker serving a plain org (no enabled Klass): the test adds each request it
    expects with its answers (``HttpRequest``, ``HttpResponse``), and may count them
    (``assert_number_of_calls``). A request it was not told of fails the read."""
    with kustomer_http() as mocker:
        yield mocker


@pytest.fixture
def kustomer():
    with requests_mock.Mocker() as mocker:
        yield MockKustomer(mocker)


@pytest.fixture(autouse=True)
def backoff_sleeps(monkeypatch) -> List[float]:
    """Retries wait in the CDK's rate-limit handlers, in the backoff library and in the connector's
    rate-limit budget; record the waits (those longer than zero) and move a shared clock forward
    instead of sleeping them."""
    import backoff._sync
    from airbyte_cdk.sources.streams.http import rate_limiting

    from source_kustomer import rate_limits

    slept: List[float] = []

    def sleep(seconds: float) -> None:
        if seconds > 0:
            slept.append(seconds)

    fake_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    fake_time.sleep = sleep
    fake_time.time = lambda: time.time() + sum(slept)
    for module in (backoff._sync, rate_limiting, rate_limits):
        monkeypatch.setattr(module, "time", fake_time)
    return slept


def check(config: Mapping[str, Any]) -> EntrypointOutput:
    """Run `check` the way the CLI does, with the config in a file."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(dict(config)))
        source = SourceKustomer(catalog=None, config=dict(config), state=None, config_path=str(path))
        return _run_command(source, ["check", "--config", str(path)])


def check_status(output: EntrypointOutput) -> Tuple[str, str]:
    if output.connection_status_messages:
        status = output.connection_status_messages[-1].connectionStatus
        return status.status.value, status.message or ""
    return "ERROR", " ".join(e.trace.error.message for e in output.errors)


def spec_schema() -> Dict[str, Any]:
    """The connection specification, as `spec` prints it."""
    return SourceKustomer(catalog=None, config={}, state=None).spec(None).connectionSpecification
