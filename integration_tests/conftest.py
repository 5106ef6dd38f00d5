"""End-to-end fixtures: the sandbox on a free port, and the installed `source-kustomer` run as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from integration_tests.sandbox import Sandbox
from unit_tests.manifest_streams import LIST_STREAMS, SEARCH_STREAMS

REPO = Path(__file__).resolve().parent.parent
CLI = shutil.which("source-kustomer") or str(Path(sys.executable).parent / "source-kustomer")
TOKEN = "sandbox-token"
SEARCH_CONTEXTS = SEARCH_STREAMS
LIST_ENDPOINTS = tuple(LIST_STREAMS)
ALL_STREAMS = (*SEARCH_CONTEXTS, *LIST_ENDPOINTS)

# Every CLI output the suite produces is kept here, so one test can scan them all for the token.
CLI_OUTPUTS: List[str] = []


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

    def run(self, command: str, config: Optional[Dict[str, Any]] = None, streams=None, state=None, timeout: int = 300) -> Run:
        argv = [CLI, command]
        if config is not None:
            argv += ["--config", self._write("config.json", config)]
        if streams is not None:
            argv += ["--catalog", self._write("catalog.json", catalog_for(streams))]
        if state is not None:
            argv += ["--state", self._write("state.json", state)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        CLI_OUTPUTS.append(done.stdout + done.stderr)
        messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return Run(messages, done.stdout, done.stderr, done.returncode)

    def _write(self, name: str, content: Any) -> str:
        path = self.folder / name
        path.write_text(json.dumps(content))
        return str(path)


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
    return sandbox.ids(SEARCH_CONTEXTS[stream]) if stream in SEARCH_CONTEXTS else sandbox.ids_of_list(stream)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One shared sandbox, left unchanged by the tests that use it."""
    with Sandbox(records=4000, seed=11) as running:
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
