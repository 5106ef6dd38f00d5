"""source_kustomer/run.py, the ``source-kustomer`` command, and source.py, the source it runs: config errors
worded by setting (config_problems, KustomerEntrypoint), a source that cannot start said as a TRACE with
the token masked, the usage without a command, and the config file read with the token trimmed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.run import KustomerEntrypoint, config_problems, run
from source_kustomer.source import SourceKustomer, manifest_path
from unit_tests.conftest import spec_schema

TOKEN = "run-test-token-5e4d3c2b1a"


def messages(out: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def run_command(monkeypatch, capsys, *args: str) -> tuple[int, List[Dict[str, Any]], str]:
    """``source-kustomer <args>``: its exit code, its Airbyte messages and its stderr."""
    monkeypatch.setattr(sys, "argv", ["source-kustomer", *args])
    code = 0
    try:
        run()
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, messages(out), err


def write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


# --- config_problems and KustomerEntrypoint ---------------------------------------------------------


def test_config_errors_name_the_setting_and_the_form_it_expects_and_never_quote_the_token():
    problems = config_problems({"api_token": 12345678, "start_date": "2024-13-01", "num_workers": 0, "region": "mars"}, spec_schema())

    assert problems is not None
    assert "Start Date (start_date): '2024-13-01' is not of the form YYYY-MM-DDTHH:MM:SSZ. For example: 2024-01-01T00:00:00Z." in problems
    assert "Concurrent Requests (num_workers): 0 is less than the minimum of 1." in problems
    assert "Region (region): 'mars' is not one of ['us', 'eu', 'india']." in problems
    assert "API Token (api_token): is not valid (type)." in problems and "12345678" not in problems
    assert config_problems({}, spec_schema()) == "API Token (api_token): is missing."
    assert config_problems({"api_token": "x"}, spec_schema()) is None


def test_the_entry_point_refuses_a_config_breaking_the_spec_as_a_config_error_in_those_words():
    spec = SourceKustomer(catalog=None, config={}, state=None).spec(None)

    with pytest.raises(AirbyteTracedException) as error:
        KustomerEntrypoint.validate_connection(spec, {"api_token": TOKEN, "page_size": 5000})

    assert error.value.failure_type == FailureType.config_error
    assert error.value.message == "Config validation error: Page Size (page_size): 5000 is greater than the maximum of 500."
    KustomerEntrypoint.validate_connection(spec, {"api_token": TOKEN})  # a valid config passes


# --- the command ---------------------------------------------------------------------------------


def test_without_a_command_it_prints_the_usage_and_exits_2(monkeypatch, capsys):
    code, printed, err = run_command(monkeypatch, capsys)

    assert code == 2 and printed == []
    assert err.startswith("usage: source-kustomer {spec,check,discover,read}")


def test_spec_prints_the_connection_specification(monkeypatch, capsys):
    code, printed, _ = run_command(monkeypatch, capsys, "spec")

    [spec] = [m["spec"] for m in printed if m["type"] == "SPEC"]
    assert code == 0 and spec["connectionSpecification"]["required"] == ["api_token"]
    assert spec["connectionSpecification"]["properties"]["api_token"]["airbyte_secret"] is True


def test_check_with_a_config_breaking_the_spec_fails_naming_each_setting(monkeypatch, capsys, tmp_path):
    config = write(tmp_path / "config.json", {"api_token": TOKEN, "start_date": "2024-13-01", "num_workers": 0})

    code, printed, _ = run_command(monkeypatch, capsys, "check", "--config", config)

    [status] = [m["connectionStatus"] for m in printed if m["type"] == "CONNECTION_STATUS"]
    assert code == 0 and status["status"] == "FAILED"
    assert status["message"] == ("Config validation error: Concurrent Requests (num_workers): 0 is less than the minimum of 1. Start Date "
                                 "(start_date): '2024-13-01' is not of the form YYYY-MM-DDTHH:MM:SSZ. For example: 2024-01-01T00:00:00Z.")


def test_a_source_that_cannot_start_says_why_in_a_trace_with_the_token_masked_and_exits_1(monkeypatch, capsys, tmp_path):
    config = write(tmp_path / "config.json", {"api_token": f" {TOKEN}\n"})
    catalog = write(tmp_path / "catalog.json", {"streams": TOKEN})  # a catalog that quotes the token back

    code, printed, _ = run_command(monkeypatch, capsys, "read", "--config", config, "--catalog", catalog)

    [trace] = [m["trace"] for m in printed if m["type"] == "TRACE"]
    assert code == 1 and trace["error"]["failure_type"] == "config_error"
    assert trace["error"]["message"].startswith("source-kustomer could not start: ") and "streams" in trace["error"]["message"]
    assert TOKEN not in json.dumps(printed) and "****" in trace["error"]["message"]


def test_a_config_file_that_cannot_be_read_is_said_as_a_trace(monkeypatch, capsys, tmp_path):
    code, printed, _ = run_command(monkeypatch, capsys, "check", "--config", str(tmp_path / "missing.json"))

    [trace] = [m["trace"] for m in printed if m["type"] == "TRACE"]
    assert code == 1 and "No such file or directory" in trace["error"]["message"]


# --- source.py -----------------------------------------------------------------------------------


def test_the_config_file_is_read_with_the_api_key_trimmed(tmp_path):
    assert SourceKustomer.read_config(write(tmp_path / "a.json", {"api_token": "  key \n", "region": " eu "})) == {"api_token": "key", "region": " eu "}
    assert SourceKustomer.read_config(write(tmp_path / "b.json", {"api_token": 7})) == {"api_token": 7}


def test_the_source_runs_the_repository_s_manifest():
    path = manifest_path()

    assert path.is_file() and path.name == "manifest.yaml"
    assert "source_kustomer.rate_limits.RateLimitedAuthenticator" in path.read_text()
