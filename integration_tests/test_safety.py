"""Safety against the sandbox, through the installed CLI: the token never appears in any output (also at
debug level and on errors), it is never sent to a host outside Kustomer (loopback only for the
sandbox), and bad settings are refused at `check` and `read` before any request, with a message that
says what to fix."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest

from integration_tests.conftest import TOKEN, config_for
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox


class EvilHost(ThreadingHTTPServer):
    """A host outside Kustomer, on another loopback address: it records what reaches it."""

    def __init__(self) -> None:
        self.seen: List[Dict[str, Any]] = []
        super().__init__(("127.0.0.2", 0), _Recorder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.2:{self.server_address[1]}"


class _Recorder(BaseHTTPRequestHandler):
    server: EvilHost

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        payload = b'{"data": [], "links": {"next": null}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def evil_host() -> Iterator[EvilHost]:
    server = EvilHost()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def status_of(run) -> Dict[str, Any]:
    return run.of_type("CONNECTION_STATUS")[0]["connectionStatus"]


# --- secrets ---------------------------------------------------------------------------------------


def test_no_command_prints_the_token_even_at_debug_level_through_faults_and_retries(connector):
    """Connector.run scans stdout and stderr of every command for every key; here each command runs
    at debug level, which logs every request with its headers, through errors and retries, with the
    key pasted with spaces and a newline around it (it is sent trimmed, and masked trimmed)."""
    faults = {"fault_rate": 0.2, "faults": ["500", "503", "reset", "malformed", "429"], "fault_reset_s": 0.5}
    with Sandbox(records=200, seed=4, **FAST_KUSTOMER_LIMITS, **faults) as sandbox:
        config = config_for(sandbox, api_token=f"  {TOKEN}\n", page_size=50)
        runs = [
            connector.run("check", config, debug=True, fast_clock=True),
            connector.run("read", config, streams=["conversations", "customers", "customer_emails", "users"], debug=True, fast_clock=True),
        ]

        assert [run.returncode for run in runs] == [0, 0]
        debug_lines = [line for run in runs for line in run.stdout.splitlines() if '"DEBUG"' in line]
        assert any("Authorization" in line for line in debug_lines)  # the headers were logged, masked
        assert sum(v for k, v in sandbox.counters.items() if k.startswith("fault:")) > 0


@pytest.mark.parametrize("token", ["expired-token", "norole-token", "a-key-kustomer-never-issued"])
def test_a_rejected_key_is_never_printed_at_debug_level(connector, sandbox, token):
    check = connector.run("check", config_for(sandbox, api_token=token), debug=True)

    assert status_of(check)["status"] == "FAILED"  # and Connector.run found no key in what it printed


def test_a_config_that_cannot_be_read_never_echoes_the_token(connector, tmp_path):
    import subprocess

    from integration_tests.conftest import CLI, assert_no_secret

    broken = tmp_path / "config.json"
    broken.write_text('{"api_token": "%s", "start_date": ' % TOKEN)  # cut short
    done = subprocess.run([CLI, "check", "--config", str(broken)], capture_output=True, text=True, timeout=60)

    assert done.returncode != 0 and "could not start" in done.stdout
    assert_no_secret(done.stdout + done.stderr)


# --- host safety -----------------------------------------------------------------------------------


def hostile_urls(sandbox: Sandbox, evil: EvilHost) -> List[str]:
    """The tricks that point a loopback- or Kustomer-looking URL elsewhere (unit_tests/test_check_config.py
    tries many more, with mocked HTTP)."""
    port, evil_port = sandbox.port, evil.server_address[1]
    return [
        f"http://127.0.0.1:{port}@127.0.0.2:{evil_port}",  # userinfo: the host is the part after @
        f"http://127.0.0.2:{evil_port}",  # an IP literal that is not the sandbox's loopback address
        f"https://api.kustomerapp.com.127.0.0.2.nip.io:{evil_port}",  # a look-alike host
        "https://api.kustomerаpp.com",  # a unicode look-alike (Cyrillic a)
        f"{evil.url}#@api.kustomerapp.com",  # a fragment that looks like userinfo
    ]


def test_a_token_is_never_sent_to_a_host_outside_kustomer(connector, evil_host):
    with Sandbox(records=50, seed=4, **FAST_KUSTOMER_LIMITS) as sandbox:
        for url in hostile_urls(sandbox, evil_host):
            result = status_of(connector.run("check", config_for(sandbox, api_url=url)))

            assert result["status"] == "FAILED", url
            assert "(api_url)" in result["message"] and "is not of the form https://<host>.kustomerapp.com" in result["message"], url
        read = connector.run("read", config_for(sandbox, api_url=f"http://127.0.0.2:{evil_host.server_address[1]}"), streams=["users"])

        assert read.returncode != 0 and read.records() == []
        assert evil_host.seen == [] and sandbox.counters["requests"] == 0


def test_a_redirect_to_another_host_is_not_followed_with_the_token_and_fails_the_sync(connector, evil_host):
    with Sandbox(records=200, seed=4, redirect_to=evil_host.url, fault_at={3: "redirect"}, **FAST_KUSTOMER_LIMITS) as sandbox:
        run = connector.run("read", config_for(sandbox), streams=["conversations", "users"])

        assert sandbox.counters["fault:redirect"] == 1
        assert run.returncode != 0
        assert any(f"redirected the request to {evil_host.url[7:]}" in error for error in run.errors())
        assert all("Authorization" not in request["headers"] and TOKEN.encode() not in request["body"] for request in evil_host.seen)


def test_check_refuses_a_redirect_off_kustomer(connector, evil_host):
    with Sandbox(records=50, seed=4, redirect_to=evil_host.url, fault_at={1: "redirect"}, **FAST_KUSTOMER_LIMITS) as sandbox:
        result = status_of(connector.run("check", config_for(sandbox)))

        assert result["status"] == "FAILED" and "redirected the request" in result["message"]
        assert all("Authorization" not in request["headers"] for request in evil_host.seen)


# --- bad config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings,hint",
    [
        ({"start_date": "2024-13-01"}, "Start Date (start_date): '2024-13-01' is not of the form YYYY-MM-DDTHH:MM:SSZ"),
        ({"start_date": "2024-02-31T00:00:00Z"}, "Write it as YYYY-MM-DDTHH:MM:SSZ"),
        ({"start_date": "yesterday"}, "For example: 2024-01-01T00:00:00Z"),
        ({"region": "mars"}, "Region (region): 'mars' is not one of ['us', 'eu', 'india']"),
        ({"page_size": "abc"}, "Page Size (page_size): 'abc' is not of type 'integer'"),
        ({"page_size": 0}, "Page Size (page_size): 0 is less than the minimum of 1"),
        ({"api_token": ""}, "The API token (api_token) is empty"),
        ({"api_token": "   "}, "The API token (api_token) is empty"),
        ({"lookback_window": "5 minutes"}, "is not of the form an ISO-8601 duration (PT5M, PT1H, P1D)"),
        ({"requests_per_minute": 123}, "(requests_per_minute): 123 is not one of [300, 500, 1000, 2000]"),
        ({"num_workers": 0}, "Concurrent Requests (num_workers): 0 is less than the minimum of 1"),
        ({"org_name": "acme.evil.example/"}, "is not of the form a subdomain"),
    ],
)
def test_bad_config_fails_check_with_an_actionable_message_before_any_request(connector, sandbox, settings, hint):
    config = {**config_for(sandbox), **settings}
    before = sandbox.counters["requests"]

    result = status_of(connector.run("check", config))

    assert result["status"] == "FAILED" and hint in result["message"], result["message"]
    assert sandbox.counters["requests"] == before  # nothing reached the API


@pytest.mark.parametrize(
    "settings,hint",
    [({"start_date": "2024-13-01"}, "Start Date (start_date)"), ({"api_token": " "}, "The API token (api_token) is empty")],
)
def test_bad_config_fails_read_with_a_config_error_before_any_request(connector, sandbox, settings, hint):
    before = sandbox.counters["requests"]

    read = connector.run("read", {**config_for(sandbox), **settings}, streams=["users"])

    assert read.returncode != 0 and read.records() == []
    errors = [m["trace"]["error"] for m in read.of_type("TRACE") if m["trace"]["type"] == "ERROR"]
    assert any(hint in error["message"] and error["failure_type"] == "config_error" for error in errors)
    assert sandbox.counters["requests"] == before
