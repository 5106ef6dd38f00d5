"""Shared fixtures: a mocked Kustomer, a read helper, and backoff sleeps recorded instead of slept."""

from __future__ import annotations

import time
import types
from typing import Any, Dict, List, Mapping, Optional

import pytest
import requests_mock
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_kustomer import SourceKustomer
from unit_tests.kustomer_mock import MockKustomer

CONFIG: Dict[str, Any] = {"api_token": "unit-test-token-0123456789", "start_date": "2025-01-01T00:00:00Z"}
SEARCH_STREAMS = {
    "customers": "customer",
    "conversations": "conversation",
    "messages": "message",
    "notes": "note",
    "kobjects": "kobject",
    "companies": "company",
}
LIST_STREAMS = {"users": 500, "teams": 500, "tags": 100, "shortcuts": 100, "klasses": 100}


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


@pytest.fixture
def kustomer():
    with requests_mock.Mocker() as mocker:
        yield MockKustomer(mocker)


@pytest.fixture(autouse=True)
def backoff_sleeps(monkeypatch) -> List[float]:
    """Retries wait through the backoff library; record the waits instead of sleeping them."""
    import backoff._sync

    slept: List[float] = []
    fake_time = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    fake_time.sleep = slept.append
    monkeypatch.setattr(backoff._sync, "time", fake_time)
    return slept
