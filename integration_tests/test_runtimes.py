"""One connector in every runtime: the same manifest.yaml run by the package's ``source-kustomer``, by the
CDK's ``source-declarative-manifest`` and by the Connector Builder's handler, against a sandbox whose
rate limits bind (a few searches and requests per two-second window): the same records in each, and
not one 429, since the rate-limit budget lives in the manifest (its requester's authenticator), not in
the package's own source class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

from integration_tests.conftest import CLI, REPO, TOKEN, assert_no_secret, catalog_for, ground_truth
from integration_tests.sandbox import Sandbox

SDM = str(Path(sys.executable).parent / "source-declarative-manifest")
MANIFEST = REPO / "manifest.yaml"
STREAMS = ["conversations", "users"]
#: Tight enough that every run meets both buckets: searches and all requests per two-second window.
LIMITS = {"search_rpm": 4, "org_rpm": 12, "time_scale": 30}
#: The Builder reads at most this much; the org is small enough that a read stays within it.
BUILDER_LIMITS = {"max_records": 1000, "max_pages_per_slice": 50, "max_slices": 50}


def _run(argv: List[str], config: Dict[str, Any], env: Dict[str, str]) -> List[Dict[str, Any]]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert_no_secret(done.stdout + done.stderr, config)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _files(folder: Path, config: Dict[str, Any], streams: List[str]) -> List[str]:
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "catalog.json").write_text(json.dumps(catalog_for(streams)))
    return ["--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json")]


def package_cli(folder: Path, config: Dict[str, Any]) -> Dict[str, Set[str]]:
    messages = _run([CLI, "read", *_files(folder, config, STREAMS)], config, {})
    return {stream: {m["record"]["data"]["id"] for m in messages if m["type"] == "RECORD" and m["record"]["stream"] == stream}
            for stream in STREAMS}


def declarative_manifest(folder: Path, config: Dict[str, Any]) -> Dict[str, Set[str]]:
    """The CDK's generic runner with the manifest file (its classes from the installed package)."""
    argv = [SDM, "read", *_files(folder, config, STREAMS), "--manifest-path", str(MANIFEST)]
    messages = _run(argv, config, {"AIRBYTE_ENABLE_UNSAFE_CODE": "true"})
    return {stream: {m["record"]["data"]["id"] for m in messages if m["type"] == "RECORD" and m["record"]["stream"] == stream}
            for stream in STREAMS}


def connector_builder(folder: Path, config: Dict[str, Any]) -> Dict[str, Set[str]]:
    """The Builder's handler: one test read per stream, the manifest in the config."""
    import yaml

    found = {}
    for stream in STREAMS:
        builder_config = {**config, "__command": "test_read", "__injected_declarative_manifest": yaml.safe_load(MANIFEST.read_text()),
                          "__test_read_config": BUILDER_LIMITS}
        argv = [sys.executable, "-m", "airbyte_cdk.connector_builder.main", "read", *_files(folder, builder_config, [stream])]
        answer = _run(argv, config, {"AIRBYTE_ENABLE_UNSAFE_CODE": "true"})[-1]
        assert answer["type"] == "RECORD", answer
        read = answer["record"]["data"]
        assert not [log for log in read.get("logs", []) if log["level"] in ("ERROR", "FATAL")], read.get("logs")
        assert not [log for log in read.get("logs", []) if "deprecated" in log["message"]], "the manifest uses only current CDK fields"
        found[stream] = {record["id"] for s in read["slices"] for page in s["pages"] for record in page["records"]}
    return found


@pytest.mark.parametrize("runtime", [package_cli, declarative_manifest, connector_builder], ids=lambda f: f.__name__)
def test_every_runtime_reads_the_same_records_within_kustomers_rate_limits(runtime, tmp_path):
    with Sandbox(records=150, seed=9, **LIMITS) as sandbox:
        config = {"api_token": TOKEN, "api_url": sandbox.url, "page_size": 5}

        found = runtime(tmp_path, config)

        assert found == {stream: ground_truth(sandbox, stream) for stream in STREAMS}
        assert sandbox.counters["search"] > LIMITS["search_rpm"]  # the search bucket bound: it was met ...
        assert sandbox.counters["requests"] > LIMITS["org_rpm"]  # ... and so was the org's
        assert sandbox.counters["rate_limited"] == 0  # ... and never overrun
