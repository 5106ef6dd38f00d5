"""End-to-end fixtures: the sandbox on a free port, and the installed `source-kustomer` run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
import requests

from integration_tests.sandbox import DEFAULT_TOKENS, FAST_KUSTOMER_LIMITS, Sandbox
from unit_tests.manifest_streams import LIST_ENDPOINTS, NESTED, SEARCH_STREAMS

REPO = Path(__file__).resolve().parent.parent
CLI = shutil.which("source-kustomer") or str(Path(sys.executable).parent / "source-kustomer")
TOKEN = "sandbox-token"
SEARCH_CONTEXTS = SEARCH_STREAMS
# The search streams and the incremental list streams (their ground truth is a set of ids).
ALL_STREAMS = (*SEARCH_CONTEXTS, *LIST_ENDPOINTS)

# Connector.run(..., fast_clock=True): the connector's waits last this share of their time.
FAST_CLOCK = REPO / "integration_tests" / "fast_clock"
FAST_CLOCK_SCALE = 0.002

# Every key the suite hands the CLI: no output of any command may contain one (see Connector.run).
SECRETS: Set[str] = set(DEFAULT_TOKENS)


@dataclass
class Run:
    messages: List[Dict[str, Any]]
    stdout: str
    stderr: str
    returncode: int

    def of_type(self, kind: str) -> List[Dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    def records(self, stream: Optional[str] = None) -> List[Dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if stream in (None, m["record"]["stream"])]

    def ids(self, stream: str) -> List[str]:
        return [r["id"] for r in self.records(stream)]

    def states(self) -> List[Dict[str, Any]]:
        return [m["state"] for m in self.of_type("STATE")]

    def errors(self) -> List[str]:
        return [m["trace"]["error"]["message"] for m in self.of_type("TRACE") if m["trace"]["type"] == "ERROR"]


class Connector:
    """`source-kustomer <command>` with files in a temporary folder, as a user would run it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, command: str, config: Optional[Dict[str, Any]] = None, streams=None, state=None, timeout: int = 300,
            debug: bool = False, fast_clock: bool = False) -> Run:
        """Run one command. Its stdout and stderr are scanned for every API key the suite uses: a test
        whose command printed one fails, whatever else it asserts (also at debug level, ``debug=True``).
        With ``fast_clock`` every wait of the connector (retry backoffs, rate-limit waits) lasts
        ``FAST_CLOCK_SCALE`` of its time (integration_tests/fast_clock)."""
        argv = [CLI, command, *(["--debug"] if debug else [])]
        if config is not None:
            argv += ["--config", self._write("config.json", config)]
        if streams is not None:
            argv += ["--catalog", self._write("catalog.json", catalog_for(streams))]
        if state is not None:
            argv += ["--state", self._write("state.json", state)]
        env = dict(os.environ)
        if fast_clock:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAST_CLOCK), env.get("PYTHONPATH")]))
            env["SOURCE_KUSTOMER_SLEEP_SCALE"] = str(FAST_CLOCK_SCALE)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        assert_no_secret(done.stdout + done.stderr, config)
        messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return Run(messages, done.stdout, done.stderr, done.returncode)

    def _write(self, name: str, content: Any) -> str:
        path = self.folder / name
        path.write_text(json.dumps(content))
        return str(path)


def assert_no_secret(output: str, config: Optional[Dict[str, Any]] = None) -> None:
    """No API key the suite uses, nor the one in ``config`` (trimmed, as it is sent), is in ``output``."""
    keys = set(SECRETS)
    if config and isinstance(config.get("api_token"), str) and len(config["api_token"].strip()) >= 6:
        keys.add(config["api_token"].strip())
    leaked = [key for key in keys if key in output]
    assert not leaked, f"an API key was printed: {len(leaked)} key(s) found in the command's output"


def catalog_for(streams) -> Dict[str, Any]:
    """A configured catalog: incremental append for each stream, cursor updated_at, key id."""
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                "sync_mode": "incremental",
                "cursor_field": ["updated_at"],
                "destination_sync_mode": "append",
                "primary_key": [["id"]],
            }
            for name in streams
        ]
    }


def ground_truth(sandbox: Sandbox, stream: str) -> set:
    """Ids of a search or list stream, from the sandbox's own store (deleted objects included, the default).
    Notes are searched over the last two years only: Kustomer's archive documents no notes."""
    if stream == "notes":
        cutoff = sandbox.archive_cutoff()
        return {i for i in sandbox.ids("note", include_deleted=True) if sandbox.updated_at("note", i) >= cutoff}
    if stream in SEARCH_CONTEXTS:
        return sandbox.ids(SEARCH_CONTEXTS[stream], include_deleted=True)
    if stream == "klasses":  # every Klass, enabled or not
        return sandbox.ids_of_list("klasses", status="existing_only")
    return sandbox.ids_of_list(SANDBOX_LISTS.get(stream) or LIST_ENDPOINTS[stream].split("?")[0])


# Streams whose ids the sandbox lists under another name.
SANDBOX_LISTS = {"sla_versions": "slas/versions", "slas": "slas", "audit_logs": "audit-logs"}


def api_resources(sandbox: Sandbox, endpoint: str) -> List[Dict[str, Any]]:
    """Every resource (data and included) of a GET list (or of a single object), all pages, straight from the sandbox's API."""
    out: List[Dict[str, Any]] = []
    url: Optional[str] = f"{sandbox.url}/v1/{endpoint}"
    while url:
        body = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
        data = body.get("data", [])
        out += (data if isinstance(data, list) else [data]) + body.get("included", [])
        url = sandbox.url + body["links"]["next"] if (body.get("links") or {}).get("next") else None
    return out


def _at(value: Any, path: List[str]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def expected_keys(sandbox: Sandbox, stream: str) -> Set[Tuple[Any, ...]]:
    """The primary keys a full read of ``stream`` must emit, computed from the sandbox's data."""
    if stream in NESTED:
        source, kind, paths = NESTED[stream]
        searched = next((stream for stream, context in SEARCH_CONTEXTS.items() if context == source), None)
        parents = ([sandbox.record(source, i) for i in ground_truth(sandbox, searched)]
                   if searched else [r for r in api_resources(sandbox, source) if r["type"] == kind])
        keys = set()
        for parent in parents:
            for path in paths:
                for position, _ in enumerate(_at(parent, path) or []):
                    keys.add((parent["id"], path[-1], position) if len(paths) > 1 else (parent["id"], position))
        return keys
    if stream.startswith("kobject_"):
        context = next(c for c in sandbox.contexts() if c.replace("-", "_") == stream)
        return {(i,) for i in sandbox.ids(context, include_deleted=True)}
    if stream in ("conversation_events", "conversation_forwards", "conversation_times"):
        children = sandbox.conversation_children_ids(stream.split("_", 1)[1], sandbox.ids("conversation", include_deleted=True))
        return {(i,) for ids in children.values() for i in ids}
    if stream == "message_attachments":  # every conversation's, deleted ones too (their lists still answer)
        conversations = sandbox.ids("conversation", include_deleted=True)
        return {(attachment,) for _, _, attachment in sandbox.attachments(conversations, include_deleted=True)}
    if stream == "conversation_notes":  # every note a conversation lists: the live ones
        return {(i,) for i in sandbox.ids("note")}
    if stream in ("customer_drafts", "customer_merges"):
        return {(i,) for i in sandbox.customer_children_ids(stream.split("_", 1)[1], sandbox.ids("customer", include_deleted=True))}
    if stream == "api_key_roles":  # the key itself: one record
        return {(record["id"],) for record in api_resources(sandbox, "auth/tokens/current")}
    if stream == "outbound_accounts":
        return set(sandbox.outbound_account_keys())
    if stream == "custom_attribute_metadata":
        return {(r, name) for r in sandbox.metadata_resources() for name in (sandbox.metadata(r) or {}).get("attributes", {}).get("properties", {})}
    return {(i,) for i in ground_truth(sandbox, stream)}


def described(violation: Dict[str, Any]) -> str:
    """One request the contract does not allow, as a person reads it: what was sent and what is wrong."""
    query = "&".join(f"{name}={value}" for name, value in violation["params"])
    body = f" {json.dumps(violation['body'], sort_keys=True)}" if violation["body"] is not None else ""
    return f"{violation['method']} {violation['path']}{'?' + query if query else ''}{body}: {'; '.join(violation['problems'])}"


@pytest.fixture(autouse=True)
def requests_within_kustomers_contract(request) -> Iterator[None]:
    """The contract test, over the whole end-to-end suite: every request the connector sends to any
    sandbox during a test is one Kustomer documents, or one source_kustomer/contract.py names and
    justifies (each sandbox checks every request against that table, and records the others).
    The sandbox's own tests, which send such requests on purpose, and tests marked breaks_contract
    are left out."""
    seen = {id(sandbox): len(sandbox.contract_violations) for sandbox in list(Sandbox.started)}
    yield
    if request.node.get_closest_marker("breaks_contract") or request.node.module.__name__.endswith("test_sandbox"):
        return
    broken = [v for sandbox in list(Sandbox.started) for v in sandbox.contract_violations[seen.get(id(sandbox), 0):]]
    assert not broken, "requests Kustomer does not document:\n" + "\n".join(described(v) for v in broken[:20])


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One shared sandbox, left unchanged by the tests that use it."""
    with Sandbox(records=4000, seed=11, **FAST_KUSTOMER_LIMITS) as running:
        yield running


@pytest.fixture
def connector(tmp_path: Path) -> Connector:
    return Connector(tmp_path)


def config_for(sandbox: Sandbox, **overrides: Any) -> Dict[str, Any]:
    return {"api_token": TOKEN, "api_url": sandbox.url, **overrides}


def latest_states(run):
    """The last STATE message of each stream, as a state file holds them."""
    latest = {}
    for state in run.states():
        latest[state["stream"]["stream_descriptor"]["name"]] = state
    return list(latest.values())
