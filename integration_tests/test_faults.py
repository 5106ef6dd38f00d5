"""The fault matrix: every fault the sandbox can throw, against the installed CLI. A sync either ends
exact against the sandbox's ground truth or fails loudly with a clear message; it never reports
success with data missing, and a failed sync resumed from its last state loses nothing."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Set, Tuple

import pytest
from airbyte_cdk.models import SyncMode

from integration_tests.conftest import Run, config_for, expected_keys, ground_truth, latest_states
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

# A search stream, its nested stream (read from the same pages), a second search stream and a list.
STREAMS = ["conversations", "customers", "customer_emails", "users"]
KEYS = {"customer_emails": ("customer_id", "position")}
# Storms: three requests in a row fail, three times during the sync (10 workers: several requests).
STORMS = [3, 4, 5, 9, 10, 11, 15, 16, 17]
RECOVERABLE = [
    "429", "429-bare",  # rate-limit storms with and without x-ratelimit headers and body
    "500", "502", "503", "504",  # server errors with Kustomer's error body
    "500-nobody", "502-nobody", "503-nobody", "502-html",  # empty-body and HTML error pages
    "reset", "timeout",  # connection reset; a request held, then dropped without an answer
    "malformed", "not-json",  # a page cut in half; an HTML page with status 200
    "short",  # a page that lost objects on the way (links and meta unchanged)
]


def small_pages(sandbox: Sandbox, **config: Any) -> Dict[str, Any]:
    return config_for(sandbox, page_size=20, **config)


def faulty_sandbox(**faults: Any) -> Sandbox:
    # 800 records read 20 a page: about 30 requests, so the storms below all fall inside the sync.
    return Sandbox(records=800, seed=21, fault_timeout_s=1, fault_reset_s=1, **FAST_KUSTOMER_LIMITS, **faults)


def emitted_keys(records: Iterable[Dict[str, Any]], stream: str) -> List[Tuple[Any, ...]]:
    return [tuple(record[field] for field in KEYS.get(stream, ("id",))) for record in records]


def truth(sandbox: Sandbox, stream: str) -> Set[Tuple[Any, ...]]:
    return expected_keys(sandbox, stream) if stream in KEYS else {(i,) for i in ground_truth(sandbox, stream)}


def assert_exact(sandbox: Sandbox, runs: List[Run]) -> None:
    for stream in STREAMS:
        emitted = {key for run in runs for key in emitted_keys(run.records(stream), stream)}
        assert emitted == truth(sandbox, stream), stream


@pytest.mark.parametrize("kind", RECOVERABLE)
def test_a_sync_through_fault_storms_ends_exact(connector, kind):
    with faulty_sandbox(fault_at={n: kind for n in STORMS}) as sandbox:
        run = connector.run("read", small_pages(sandbox), streams=STREAMS, fast_clock=True)

        assert sandbox.counters[f"fault:{kind}"] == len(STORMS)  # every storm hit the sync
        assert run.returncode == 0 and run.errors() == []
        assert_exact(sandbox, [run])
        for stream in STREAMS:
            keys = emitted_keys(run.records(stream), stream)
            assert len(keys) == len(set(keys)), f"{stream}: duplicates within one sync"


@pytest.mark.parametrize(
    "kind,says",
    [
        ("503", "service unavailable"),
        ("500-nobody", "500"),
        ("malformed", "not json"),
        ("short", "objects page 1 should hold"),
    ],
)
def test_a_fault_that_never_ends_fails_the_sync_loudly_and_the_resumed_sync_loses_nothing(connector, kind, says):
    # After the 12th request every request fails: the sync is well under way when the fault starts.
    with faulty_sandbox(fault_at={n: kind for n in range(12, 5000)}) as sandbox:
        config = small_pages(sandbox)
        failed = connector.run("read", config, streams=STREAMS, fast_clock=True)

        assert failed.returncode != 0
        assert failed.errors() and says in " ".join(failed.errors()).lower()
        sandbox.faults.clear()
        resumed = connector.run("read", config, streams=STREAMS, state=latest_states(failed), fast_clock=True)

        assert resumed.returncode == 0 and resumed.errors() == []
        assert_exact(sandbox, [failed, resumed])


def test_random_faults_of_every_recoverable_kind_at_once_end_exact(connector):
    with faulty_sandbox(fault_rate=0.25, faults=RECOVERABLE) as sandbox:
        run = connector.run("read", small_pages(sandbox), streams=STREAMS, fast_clock=True)

        assert run.returncode == 0 and run.errors() == []
        assert_exact(sandbox, [run])
        assert sum(v for k, v in sandbox.counters.items() if k.startswith("fault:")) >= 5


def test_a_request_held_past_the_read_timeout_is_retried(monkeypatch, tmp_path):
    """The manifest waits 120 s for an answer; a test cannot, so this one runs the source in-process
    with a 1 s read timeout while the sandbox holds two requests for 3 s: real socket timeouts. The
    retries' backoff sleeps a fiftieth of its time (the sandbox's own sleeps are untouched)."""
    import time
    import types

    import backoff._sync
    from airbyte_cdk.sources.streams.http import http_client
    from airbyte_cdk.test.catalog_builder import CatalogBuilder
    from airbyte_cdk.test.entrypoint_wrapper import read

    from source_kustomer import SourceKustomer
    from source_kustomer.errors import KustomerErrorHandler

    fast = types.SimpleNamespace(**{name: getattr(time, name) for name in dir(time) if not name.startswith("__")})
    fast.sleep = lambda seconds: time.sleep(seconds / 50)
    monkeypatch.setattr(backoff._sync, "time", fast)
    build, interpret = http_client.HttpClient.__init__, KustomerErrorHandler.interpret_response
    monkeypatch.setattr(http_client.HttpClient, "__init__", lambda self, *a, **kw: build(self, *a, **{**kw, "request_timeout": (5, 1)}))
    answers: List[str] = []
    monkeypatch.setattr(KustomerErrorHandler, "interpret_response", lambda self, answer: answers.append(type(answer).__name__) or interpret(self, answer))
    with Sandbox(records=200, seed=21, fault_at={2: "timeout", 3: "timeout"}, fault_timeout_s=3, **FAST_KUSTOMER_LIMITS) as sandbox:
        config = small_pages(sandbox)
        catalog = CatalogBuilder().with_stream("conversations", SyncMode.incremental).with_stream("users", SyncMode.full_refresh).build()
        output = read(SourceKustomer(catalog=catalog, config=config, state=None), config, catalog)

        assert output.errors == [] and sandbox.counters["fault:timeout"] == 2
        assert answers.count("ReadTimeout") == 2
        for stream in ("conversations", "users"):
            assert {m.record.data["id"] for m in output.records if m.record.stream == stream} == ground_truth(sandbox, stream), stream
