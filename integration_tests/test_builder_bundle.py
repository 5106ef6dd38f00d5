"""The Connector Builder bundle outside this repository: ``make builder-bundle``'s manifest.yaml and
components.py, run where only ``airbyte-cdk`` is installed (the version uv.lock pins; this package is
absent), read the same records as the package's ``source-kustomer``, with the rate budget active.

The bundle is made as ``make builder-bundle`` makes it (``python -m scripts.builder_bundle --out <dir>``)
and used exactly as a user uploads it:

- the Connector Builder's handler (``python -m airbyte_cdk.connector_builder.main read``) gets the
  manifest as ``__injected_declarative_manifest`` and components.py as ``__injected_components_py``
  with its md5, which the CDK registers as the module ``source_declarative_manifest.components``
  (the module the bundle's class names point at);
- ``source-declarative-manifest check | discover | read --manifest-path manifest.yaml
  --components-path components.py`` loads the same file under the same module name.

Both refuse custom code unless ``AIRBYTE_ENABLE_UNSAFE_CODE=true`` (what a Builder with custom
components enabled sets). Every run has a sandbox of its own, each serving the same org (same seed, same
"now") with rate limits that bind: a few searches and requests per two-second window, and not one 429.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
import yaml

from integration_tests.conftest import CLI, REPO, TOKEN, assert_no_secret, catalog_for
from integration_tests.fresh_cdk import absent, fresh_cdk_python, isolated_env, pinned_cdk_version
from integration_tests.sandbox import Sandbox

STREAMS = ["users", "conversations"]
#: Kustomer's buckets bind: 4 searches and 10 requests per two-second window (a Builder test read of
#: users alone sends fewer requests: its org allows 2).
LIMITS = {"search_rpm": 4, "org_rpm": 10, "time_scale": 30}
ORG_LIMIT = {"builder users": 2}
#: One org for every sandbox of the module: the same seed and the same "now".
NOW = (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(microsecond=0)
ORG = {"records": 150, "seed": 9, "now": NOW}
#: The whole org limit for this sync. With the default half (5 a window), the run of searches after
#: the lists spends the org bucket without a word from it (a search answer names the search bucket),
#: and the bucket then waits out the 60 s window it assumes (not the sandbox's 2 s): a minute per read.
SETTINGS = {"page_size": 10, "rate_limit_share": 100}
BUILDER_LIMITS = {"max_records": 1000, "max_pages_per_slice": 50, "max_slices": 50}
BUNDLE_MODULE = "source_declarative_manifest.components"


@dataclass
class Run:
    """One command: what it printed, and the sandbox that served it."""

    label: str
    sandbox: Sandbox
    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> List[Dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def of_type(self, kind: str) -> List[Dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self) -> Dict[str, List[Dict[str, Any]]]:
        found: Dict[str, List[Dict[str, Any]]] = {stream: [] for stream in STREAMS}
        for message in self.of_type("RECORD"):
            found.setdefault(message["record"]["stream"], []).append(message["record"]["data"])
        return found


@pytest.fixture(scope="session")
def cdk_python(tmp_path_factory) -> Path:
    """A fresh virtualenv with airbyte-cdk only (made once per test session and process)."""
    folder = tmp_path_factory.getbasetemp() / "fresh-cdk"
    folder.mkdir(exist_ok=True)
    return fresh_cdk_python(folder)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The bundle as ``make builder-bundle`` writes it (its recipe, into a folder of the test's own)."""
    out = tmp_path_factory.mktemp("builder")
    subprocess.run([sys.executable, "-m", "scripts.builder_bundle", "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True, timeout=120)
    return out


def _config(sandbox: Sandbox) -> Dict[str, Any]:
    return {"api_token": TOKEN, "api_url": sandbox.url, **SETTINGS}


def _builder_config(sandbox: Sandbox, bundle: Path) -> Dict[str, Any]:
    """A test read as the Builder sends it with uploaded components."""
    components = (bundle / "components.py").read_text()
    return {
        **_config(sandbox),
        "__command": "test_read",
        "__injected_declarative_manifest": yaml.safe_load((bundle / "manifest.yaml").read_text()),
        "__injected_components_py": components,
        "__injected_components_py_checksums": {"md5": hashlib.md5(components.encode()).hexdigest()},
        "__test_read_config": BUILDER_LIMITS,
    }


@pytest.fixture(scope="module")
def runs(cdk_python: Path, bundle: Path, tmp_path_factory) -> Dict[str, Run]:
    """Every command at once, each against its own sandbox of the same org."""
    sdm = str(cdk_python.parent / "source-declarative-manifest")
    bundle_args = ["--manifest-path", str(bundle / "manifest.yaml"), "--components-path", str(bundle / "components.py")]
    unsafe = isolated_env(AIRBYTE_ENABLE_UNSAFE_CODE="true")
    Command = Callable[[Sandbox, Path], Tuple[List[str], Dict[str, Any], Dict[str, str]]]

    def files(folder: Path, config: Dict[str, Any], streams: List[str]) -> List[str]:
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "catalog.json").write_text(json.dumps(catalog_for(streams)))
        return ["--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json")]

    def package(command: str) -> Command:
        def argv(sandbox: Sandbox, folder: Path):
            args = files(folder, _config(sandbox), STREAMS)
            return [CLI, command, *(args if command == "read" else args[:2])], _config(sandbox), {}
        return argv

    def declarative(command: str) -> Command:
        def argv(sandbox: Sandbox, folder: Path):
            args = files(folder, _config(sandbox), STREAMS)
            return [sdm, command, *(args if command == "read" else args[:2]), *bundle_args], _config(sandbox), unsafe
        return argv

    def builder(stream: str) -> Command:
        def argv(sandbox: Sandbox, folder: Path):
            args = files(folder, _builder_config(sandbox, bundle), [stream])
            return [str(cdk_python), "-m", "airbyte_cdk.connector_builder.main", "read", *args], _config(sandbox), unsafe
        return argv

    commands: Dict[str, Command] = {
        "package read": package("read"),
        "package discover": package("discover"),
        "sdm check": declarative("check"),
        "sdm discover": declarative("discover"),
        "sdm read": declarative("read"),
        **{f"builder {stream}": builder(stream) for stream in STREAMS},
    }

    def run(label: str) -> Run:
        folder = tmp_path_factory.mktemp(label.replace(" ", "-"))
        with Sandbox(**ORG, **{**LIMITS, "org_rpm": ORG_LIMIT.get(label, LIMITS["org_rpm"])}) as sandbox:
            argv, config, env = commands[label](sandbox, folder)
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=folder, env=env or None)
            assert_no_secret(done.stdout + done.stderr, config)
            return Run(label, sandbox, done.returncode, done.stdout, done.stderr)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return dict(zip(commands, pool.map(run, commands)))


def _within_the_budget(run: Run, *buckets: str) -> None:
    """Not one 429, though the run sent more than a window allows to each of ``buckets`` (search, org)."""
    counters = run.sandbox.counters
    assert counters["rate_limited"] == 0, f"{run.label}: Kustomer answered 429 {counters['rate_limited']} times"
    if "search" in buckets:
        assert counters["search"] > LIMITS["search_rpm"], f"{run.label}: the search bucket was never met"
    if "org" in buckets:
        assert counters["requests"] > ORG_LIMIT.get(run.label, LIMITS["org_rpm"]), f"{run.label}: the org bucket was never met"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _by_id(records: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {record["id"]: record for record in records}


# --- the bundle ------------------------------------------------------------------------------------


def test_the_bundle_names_only_its_own_module_and_needs_nothing_but_the_cdk(bundle, cdk_python, tmp_path):
    manifest = (bundle / "manifest.yaml").read_text()
    components = (bundle / "components.py").read_text()
    tree = ast.parse(components)
    defined = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    named = set(_class_names(yaml.safe_load(manifest)))

    # Every class_name is one the Builder can load from the uploaded file, and is defined there.
    assert named and all(name.startswith(BUNDLE_MODULE + ".") for name in named), sorted(named)
    assert {name.rsplit(".", 1)[1] for name in named} <= defined
    # The file imports nothing from this package, and the venv it runs in has no such package.
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name.split(".")[0] == "source_kustomer"}
    assert absent(cdk_python, "source_kustomer", tmp_path)
    version = subprocess.run([str(cdk_python), "-c", "import importlib.metadata as m; print(m.version('airbyte-cdk'))"],
                             capture_output=True, text=True, cwd=tmp_path, env=isolated_env(), timeout=60).stdout.strip()
    assert version == pinned_cdk_version()


def _class_names(value: Any):
    if isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            yield value["class_name"]
        for item in value.values():
            yield from _class_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _class_names(item)


# --- source-declarative-manifest -------------------------------------------------------------------


def test_source_declarative_manifest_checks_the_bundle(runs):
    check = runs["sdm check"]

    assert check.returncode == 0, check.stderr[-2000:]
    [status] = check.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "SUCCEEDED", status
    _within_the_budget(check)


def test_source_declarative_manifest_discovers_the_packages_catalog(runs):
    package, bundled = runs["package discover"], runs["sdm discover"]

    assert bundled.returncode == 0, bundled.stderr[-2000:]
    [expected], [found] = package.of_type("CATALOG"), bundled.of_type("CATALOG")
    assert [s["name"] for s in found["catalog"]["streams"]] == [s["name"] for s in expected["catalog"]["streams"]]
    assert found == expected  # schemas, cursors and keys too
    _within_the_budget(bundled)


def test_source_declarative_manifest_reads_the_packages_records_within_the_rate_limits(runs):
    package, bundled = runs["package read"], runs["sdm read"]

    assert package.returncode == 0 and bundled.returncode == 0, bundled.stderr[-2000:]
    assert not [m for m in bundled.of_type("TRACE") if m["trace"]["type"] == "ERROR"]
    expected, found = package.records(), bundled.records()
    assert all(expected[stream] for stream in STREAMS)
    for stream in STREAMS:
        assert _by_id(found[stream]) == _by_id(expected[stream]), stream
        assert len(found[stream]) == len(expected[stream]), stream
    # The same state at the end, per stream.
    last = {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"] for m in bundled.of_type("STATE")}
    last_package = {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"] for m in package.of_type("STATE")}
    assert last == last_package
    _within_the_budget(package, "search", "org")
    _within_the_budget(bundled, "search", "org")


# --- the Connector Builder -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_the_builder_test_reads_the_packages_records_with_the_uploaded_components(runs, stream):
    package, builder = runs["package read"], runs[f"builder {stream}"]

    assert builder.returncode == 0, builder.stderr[-2000:]
    answer = builder.messages[-1]
    assert answer["type"] == "RECORD", answer.get("trace", {}).get("error", {}).get("message")
    read = answer["record"]["data"]
    assert not [log for log in read.get("logs", []) if log["level"] in ("ERROR", "FATAL")], read.get("logs")
    records = [record for s in read["slices"] for page in s["pages"] for record in page["records"]]
    assert read["test_read_limit_reached"] is False  # the whole stream, not a sample
    # A RECORD message leaves the record's top-level null fields out; the Builder's answer keeps them.
    assert _by_id(_without_nulls(records)) == _by_id(_without_nulls(package.records()[stream]))
    assert len(records) == len(package.records()[stream])
    _within_the_budget(builder, "search" if stream == "conversations" else "org")
