"""The manifest works in Airbyte's Connector Builder: it resolves, and test-reads against the sandbox,
through the CDK's own Builder entry point (``python -m airbyte_cdk.connector_builder.main read``).

The Builder's backend runs one such process per request, with the manifest and the command in the
config: ``__injected_declarative_manifest`` (the manifest as a dict), ``__command`` (``resolve_manifest``,
``full_resolve_manifest``, ``test_read``), ``__test_read_config`` (the limits) and the user's settings;
``test_read`` reads the one stream of ``--catalog``. Its answer is one JSON line: a RECORD whose data
is the resolved manifest or the test read (slices -> pages -> records, each page with its request and
response as the Builder shows them), or a TRACE error.

Custom components. The Builder treats a manifest it is handed as untrusted: ``create_source`` builds
it with ``custom_components_trusted=False``, so any ``class_name`` (and an uploaded components.py,
``__injected_components_py``) is refused unless ``AIRBYTE_ENABLE_UNSAFE_CODE=true`` - for this
manifest even ``resolve_manifest`` needs it, since the spec's config validations are custom classes.
The requests here therefore run with ``AIRBYTE_ENABLE_UNSAFE_CODE=true`` and the manifest exactly as
shipped, its classes (``source_kustomer.<module>.<Class>``) imported from the installed package:
the same code a sync runs, and what a Builder backend with this connector installed executes. One
test shows the refusal without the variable. Another takes the Builder's upload path: components.py
sent as ``__injected_components_py`` (with its md5), classes named
``source_declarative_manifest.components.<Class>``, as the Builder UI sends them.

Every request starts at once (each process spends ~3 s importing the CDK), each against a sandbox of
its own so the requests it sent are its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import yaml

from integration_tests.conftest import REPO, TOKEN, api_resources, assert_no_secret, ground_truth
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox
from scripts.builder_bundle import components_py, manifest_yaml
from unit_tests.manifest_streams import SEARCH_STREAMS, STREAMS

MANIFEST: Dict[str, Any] = yaml.safe_load((REPO / "manifest.yaml").read_text())
# What a user uploads: the bundle of make builder-bundle (the package's modules in one file).
BUNDLED_MANIFEST: Dict[str, Any] = yaml.safe_load(manifest_yaml())
COMPONENTS_PY = components_py()
MANIFEST_STREAMS = list(STREAMS)

# The conversations read: a window of the last 180 days (one slice: the stream steps a year at a
# time), 10 per page, at most 2 pages. The users read: 5 per page, at most 3 pages.
CONVERSATIONS_LIMITS = {"max_records": 100, "max_pages_per_slice": 2, "max_slices": 5}
USERS_LIMITS = {"max_records": 12, "max_pages_per_slice": 3, "max_slices": 5}


@dataclass
class Request:
    """One Builder request: what to ask, with which settings, and whether custom code is allowed."""

    command: str
    stream: Optional[str] = None
    settings: Callable[[Sandbox], Dict[str, Any]] = lambda sandbox: {}
    limits: Dict[str, int] = field(default_factory=dict)
    unsafe_code: bool = True
    uploaded_components: bool = False  # components.py in the config, as the Builder UI uploads it
    token: str = TOKEN


def _since_days(days: int) -> Callable[[Sandbox], Dict[str, Any]]:
    return lambda sandbox: {"start_date": (sandbox.now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")}


REQUESTS: Dict[str, Request] = {
    "resolve": Request("resolve_manifest"),
    "full_resolve": Request("full_resolve_manifest", limits={"max_streams": 100}),
    "conversations": Request("test_read", "conversations", lambda sandbox: {**_since_days(180)(sandbox), "page_size": 10},
                             CONVERSATIONS_LIMITS),
    "users": Request("test_read", "users", lambda sandbox: {"page_size": 5}, USERS_LIMITS),
    "rejected_key": Request("test_read", "users", token="not-a-key"),
    "custom_code_not_allowed": Request("resolve_manifest", unsafe_code=False),
    "uploaded_components": Request("test_read", "users", lambda sandbox: {"page_size": 5}, USERS_LIMITS, uploaded_components=True),
}
# Each search stream test-read as a new user first tries it: no start date (so from 2015, years before
# the sandboxed org's history begins), one page.
FIRST_PAGE_LIMITS = {"max_records": 10, "max_pages_per_slice": 1, "max_slices": 2}
REQUESTS.update({f"first_page_of_{stream}": Request("test_read", stream, lambda sandbox: {"page_size": 10}, FIRST_PAGE_LIMITS)
                 for stream in SEARCH_STREAMS})


@dataclass
class Answer:
    """What the Builder entry point printed for one request, and the sandbox that served it."""

    sandbox: Sandbox
    config: Dict[str, Any]
    returncode: int
    stdout: str
    stderr: str
    messages: List[Dict[str, Any]]

    @property
    def answer(self) -> Dict[str, Any]:
        """The Builder's answer: the last line (the CDK logs LOG lines before it)."""
        return self.messages[-1]

    @property
    def data(self) -> Dict[str, Any]:
        assert self.answer["type"] == "RECORD", f"the Builder answered an error: {self.error()}"
        return self.answer["record"]["data"]

    def error(self) -> Optional[str]:
        return self.answer["trace"]["error"]["message"] if self.answer["type"] == "TRACE" else None

    def error_logs(self) -> List[str]:
        """Error logs, both those the test read collected and those printed beside it."""
        printed = [m["log"]["message"] for m in self.messages if m["type"] == "LOG" and m["log"]["level"] in ("ERROR", "FATAL")]
        shown = [log["message"] for log in self.data.get("logs", []) if log["level"] in ("ERROR", "FATAL")]
        return printed + shown

    def pages(self) -> List[Dict[str, Any]]:
        return [page for slice_ in self.data["slices"] for page in slice_["pages"]]

    def records(self) -> List[Dict[str, Any]]:
        return [record for page in self.pages() for record in page["records"]]


def _config(request: Request, sandbox: Sandbox) -> Dict[str, Any]:
    manifest, extra = MANIFEST, {}
    if request.uploaded_components:
        # As the Builder holds a connector with custom code: the classes named after the module the CDK
        # registers the uploaded file as, the file's text and its checksum in the config.
        manifest = BUNDLED_MANIFEST
        extra = {
            "__injected_components_py": COMPONENTS_PY,
            "__injected_components_py_checksums": {"md5": hashlib.md5(COMPONENTS_PY.encode()).hexdigest()},
        }
    return {
        "api_token": request.token,
        "api_url": sandbox.url,
        **request.settings(sandbox),
        "__command": request.command,
        "__injected_declarative_manifest": manifest,
        "__test_read_config": request.limits,
        **extra,
    }


def _catalog(stream: Optional[str]) -> Dict[str, Any]:
    """The Builder reads one stream; ``read`` wants a catalog file even for the resolve commands."""
    if stream is None:
        return {"streams": []}
    return {"streams": [{"stream": {"name": stream, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                         "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}


@pytest.fixture(scope="module")
def builder(tmp_path_factory) -> Iterator[Dict[str, Answer]]:
    """Every request of ``REQUESTS`` sent to the Builder entry point at once, each against its own sandbox."""
    with ExitStack() as stack:
        running = {}
        for name, request in REQUESTS.items():
            sandbox = stack.enter_context(Sandbox(records=300, seed=5, **FAST_KUSTOMER_LIMITS))
            folder = tmp_path_factory.mktemp(name)
            config = _config(request, sandbox)
            (folder / "config.json").write_text(json.dumps(config))
            (folder / "catalog.json").write_text(json.dumps(_catalog(request.stream)))
            env = {k: v for k, v in os.environ.items() if k != "AIRBYTE_ENABLE_UNSAFE_CODE"}
            if request.unsafe_code:
                env["AIRBYTE_ENABLE_UNSAFE_CODE"] = "true"
            process = subprocess.Popen(
                [sys.executable, "-m", "airbyte_cdk.connector_builder.main", "read",
                 "--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder,
            )
            running[name] = (process, sandbox, config)
        answers = {}
        for name, (process, sandbox, config) in running.items():
            try:
                stdout, stderr = process.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            messages = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
            answers[name] = Answer(sandbox, config, process.returncode, stdout, stderr, messages)
        silent = {name: a.stderr[-2000:] for name, a in answers.items() if not a.messages}
        assert not silent, f"the Builder printed no answer: {silent}"
        yield answers


# --- resolve ---------------------------------------------------------------------------------------


def test_resolve_manifest_returns_every_stream_of_the_manifest_resolved_without_a_request(builder):
    resolved = builder["resolve"]

    assert resolved.returncode == 0 and resolved.answer["type"] == "RECORD", resolved.error()
    assert resolved.answer["record"]["stream"] == "resolve_manifest"
    manifest = resolved.data["manifest"]
    assert [s["name"] for s in manifest["streams"]] == MANIFEST_STREAMS
    assert '"$ref"' not in json.dumps(manifest["streams"])  # every reference resolved in place
    templates = [d["stream_template"]["name"] for d in manifest["dynamic_streams"]]
    assert templates == ["kobject_klass"]
    # The custom classes are kept as the manifest names them, for the Builder to load.
    assert "source_kustomer.search.SearchKeysetPagination" in json.dumps(manifest)
    assert resolved.sandbox.counters["requests"] == 0


def test_full_resolve_manifest_adds_one_kobject_stream_per_enabled_klass_of_the_sandbox(builder):
    resolved = builder["full_resolve"]

    assert resolved.returncode == 0 and resolved.answer["type"] == "RECORD", resolved.error()
    streams = resolved.data["manifest"]["streams"]
    static = [s["name"] for s in streams if s["dynamic_stream_name"] is None]
    generated = {s["name"] for s in streams if s["dynamic_stream_name"] is not None}
    assert static == MANIFEST_STREAMS
    # Its one request: the Klasses the dynamic streams are made from.
    assert [(method, target.split("?")[0], status) for method, target, status in resolved.sandbox.request_log] == [
        ("GET", "/v1/klasses", 200)
    ]
    enabled = {"kobject_" + k["attributes"]["name"].replace("-", "_") for k in api_resources(resolved.sandbox, "klasses?status=enabled")}
    assert generated == enabled and len(enabled) >= 2


# --- test_read -------------------------------------------------------------------------------------


def test_test_read_of_a_search_stream_shows_each_search_request_and_its_records(builder):
    read = builder["conversations"]
    sandbox, start = read.sandbox, read.config["start_date"]

    assert read.returncode == 0 and read.answer["type"] == "RECORD", read.error()
    assert read.answer["record"]["stream"] == "conversations"
    assert read.error_logs() == []
    assert_no_secret(read.stdout + read.stderr, read.config)
    # One slice, the window from the start date: the first two pages of its keyset pagination.
    [slice_] = read.data["slices"]
    window = slice_["slice_descriptor"]
    assert window["start_time"] == start.replace("Z", ".000000Z")
    first, second = slice_["pages"]
    for page in (first, second):
        request = page["request"]
        assert request["url"] == f"{sandbox.url}/v1/customers/search?page=1&pageSize=10"
        assert request["http_method"] == "POST"
        assert request["headers"]["Authorization"] == "Bearer ****"  # the Builder masks the token
        assert page["response"]["status"] == 200
        shown = [r["id"] for r in json.loads(page["response"]["body"])["data"]]
        assert {r["id"] for r in page["records"]} <= set(shown)
    # The search body as Kustomer gets it: the object type, deleted objects too, the window, oldest first.
    body = json.loads(first["request"]["body"])
    assert body == {
        "queryContext": "conversation",
        "includeDeleted": True,
        "and": [{"conversation_updated_at": {"gte": window["start_time"]}}, {"conversation_updated_at": {"lte": window["end_time"]}}],
        "sort": [{"conversation_updated_at": "asc"}],
    }
    # The second page goes on from the last updatedAt of the first (keyset, not page numbers).
    last_seen = json.loads(first["response"]["body"])["data"][-1]["attributes"]["updatedAt"]
    assert json.loads(second["request"]["body"])["and"][0] == {"conversation_updated_at": {"gte": last_seen}}
    # Records: real conversations of the window, each once, oldest first, the boundary repeat dropped.
    records = read.records()
    ids = [r["id"] for r in records]
    assert len(first["records"]) == 10 and len(second["records"]) >= 1
    assert len(ids) == len(set(ids)) and set(ids) <= ground_truth(sandbox, "conversations")
    assert [r["updated_at"] for r in records] == [sandbox.updated_at("conversation", i) for i in ids]
    assert [r["updated_at"] for r in records] == sorted(r["updated_at"] for r in records)
    assert all(r["updated_at"] >= start.replace("Z", ".000Z") for r in records)
    # The page limit stopped the searches, not just the display, and the Builder says it was reached.
    assert len(slice_["pages"]) == CONVERSATIONS_LIMITS["max_pages_per_slice"]
    assert sandbox.counters["search"] == CONVERSATIONS_LIMITS["max_pages_per_slice"]
    assert read.data["test_read_limit_reached"] is True
    assert slice_["state"][-1]["stream"]["stream_descriptor"]["name"] == "conversations"


@pytest.mark.parametrize("stream", list(SEARCH_STREAMS))
def test_test_read_of_each_search_stream_without_a_start_date_shows_its_first_records(builder, stream):
    """The search starts where the org's data starts, not at 2015: the first request already finds
    records, so the Builder shows them."""
    read = builder[f"first_page_of_{stream}"]

    assert read.returncode == 0 and read.answer["type"] == "RECORD", read.error()
    assert read.error_logs() == []
    records = read.records()
    assert records and {r["id"] for r in records} <= ground_truth(read.sandbox, stream)
    # One page of each phase the slice has: the archive's (objects older than two years), then live search's.
    assert read.sandbox.counters["search"] == (1 if stream == "notes" else 2)


def test_test_read_of_a_list_stream_follows_links_next_up_to_the_page_limit(builder):
    read = builder["users"]
    sandbox = read.sandbox

    assert read.returncode == 0 and read.answer["type"] == "RECORD", read.error()
    assert read.answer["record"]["stream"] == "users"
    assert read.error_logs() == []
    assert_no_secret(read.stdout + read.stderr, read.config)
    [slice_] = read.data["slices"]
    pages = slice_["pages"]
    # Each status on its own (Kustomer's filters cannot be combined), each up to the page limit.
    urls = [p["request"]["url"] for p in pages]
    assert urls[:3] == [f"{sandbox.url}/v1/users?pending=true&pageSize=5", f"{sandbox.url}/v1/users?deleted=true&pageSize=5",
                        f"{sandbox.url}/v1/users?deleted=false&pageSize=5"]
    assert urls[3:] == [f"{sandbox.url}/v1/users?page={n}&pageSize=5&deleted=false" for n in (2, 3)]
    for page in pages:
        assert page["request"]["http_method"] == "GET" and page["request"]["body"] is None
        assert page["request"]["headers"]["Authorization"] == "Bearer ****"
        assert page["response"]["status"] == 200
        # Each page's records are the users of its response, in order.
        assert [r["id"] for r in page["records"]] == [u["id"] for u in json.loads(page["response"]["body"])["data"]]
    ids = [r["id"] for r in read.records()]
    expected = len(sandbox.user_ids("pending")) + len(sandbox.user_ids("deactivated")) + 3 * 5
    assert len(ids) == len(set(ids)) == expected and set(ids) <= ground_truth(sandbox, "users")
    # The page limit bounds what is sent: the active users' three pages, the other statuses' one each.
    # CDK 7.39.1 does not cut a read at max_records (12 here): reaching it only sets
    # test_read_limit_reached, so every page's records are shown.
    assert sandbox.requests_by_path().get("GET /v1/users") == len(urls) == 5
    assert read.data["test_read_limit_reached"] is True
    assert len(ids) > USERS_LIMITS["max_records"]


def test_test_read_with_a_rejected_key_shows_the_connectors_own_message(builder):
    read = builder["rejected_key"]

    # Answered, not crashed: a TRACE error carrying the connector's explanation, and no records. (The
    # refusal comes while the CDK builds the streams - the dynamic streams ask for the Klasses first -
    # so CDK 7.39.1 words it "Error reading stream with config={...}: <message>", quoting the whole
    # config: the key is masked only because ApiTokenValidator registers it, since the Builder's handler
    # masks nothing before its read starts. A refusal during the read itself is a clean ERROR log.)
    assert read.returncode == 0
    assert read.answer["type"] == "TRACE" and read.answer["trace"]["type"] == "ERROR"
    assert "'api_token': '****'" in read.error()
    assert_no_secret(read.stdout + read.stderr, read.config)
    assert "Kustomer rejected the API key for GET /v1/klasses (Unauthorized)" in read.error()
    assert "Either the key is wrong" in read.error()
    assert not any(m["type"] == "RECORD" for m in read.messages)
    # One request, answered 401: the Builder does not retry, and the read stops at the first refusal
    # (the Klasses the dynamic streams are made from, asked before any stream is read).
    assert [status for _, _, status in read.sandbox.request_log] == [401]


# --- custom code -----------------------------------------------------------------------------------


def test_without_unsafe_code_allowed_the_builder_refuses_the_manifest_before_any_request(builder):
    refused = builder["custom_code_not_allowed"]

    assert refused.returncode == 0 and refused.answer["type"] == "TRACE"
    assert "Custom connector code is not permitted" in refused.error()
    assert "AIRBYTE_ENABLE_UNSAFE_CODE" in refused.error()
    assert refused.sandbox.counters["requests"] == 0


def test_test_read_with_components_py_uploaded_as_the_builder_ui_sends_it(builder):
    read = builder["uploaded_components"]

    # components.py has no `from __future__ import annotations`: the Builder runs an uploaded file before
    # registering its module, and postponed annotations would make @dataclass fail on the lookup.
    assert read.returncode == 0 and read.answer["type"] == "RECORD", read.error()
    assert read.error_logs() == []
    ids = [r["id"] for r in read.records()]
    expected = len(read.sandbox.user_ids("pending")) + len(read.sandbox.user_ids("deactivated")) + 3 * 5
    assert len(ids) == len(set(ids)) == expected and set(ids) <= ground_truth(read.sandbox, "users")
    assert read.sandbox.requests_by_path().get("GET /v1/users") == 5
