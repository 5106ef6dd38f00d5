"""The installed `source-kustomer` command, run as a user runs it, on inputs that need no server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

CLI = shutil.which("source-kustomer") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "source-kustomer")
TOKEN = "cli-offline-token-5a4b3c2d1e"


def run(*args: str, config: dict | None = None, tmp_path: Path | None = None) -> list[dict]:
    argv = [CLI, *args]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        argv += ["--config", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert TOKEN not in result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_spec_lists_every_config_field_in_form_order():
    spec = next(m for m in run("spec") if m["type"] == "SPEC")["spec"]["connectionSpecification"]

    order = sorted(spec["properties"], key=lambda name: spec["properties"][name]["order"])
    assert order == ["api_token", "start_date", "region", "org_name", "page_size", "lookback_window", "include_deleted", "requests_per_minute", "num_workers", "api_url"]
    assert spec["required"] == ["api_token"]
    assert spec["properties"]["api_token"]["airbyte_secret"] is True


@pytest.mark.parametrize(
    "config,hint",
    [
        ({"api_token": TOKEN, "api_url": "https://api.kustomerapp.com@evil.example"}, "does not match"),
        ({"api_token": TOKEN, "start_date": "yesterday"}, "yesterday"),
        ({"api_token": TOKEN, "region": "apac"}, "'apac' is not one of"),
    ],
)
def test_check_refuses_bad_config_with_a_message(tmp_path, config, hint):
    status = next(m for m in run("check", config=config, tmp_path=tmp_path) if m["type"] == "CONNECTION_STATUS")

    assert status["connectionStatus"]["status"] == "FAILED"
    assert hint in status["connectionStatus"]["message"]
