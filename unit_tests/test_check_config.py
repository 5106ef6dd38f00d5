"""Connector level, through ``check``: the host the settings choose for the token, a token never sent
elsewhere (not by a look-alike API URL, nor after a redirect), and bad settings refused before any
request. The validators on their own are test_settings.py's; the wording of config errors is
test_run.py's."""

from __future__ import annotations

import pytest
import requests_mock as requests_mock_module

from unit_tests.conftest import check, check_status

TOKEN = "config-test-token-9f8e7d6c5b4a"
A_KEY = {"data": {"type": "auth_token", "id": "k1", "attributes": {"roles": ["org.permission.search.create"]}}}


@pytest.mark.parametrize(
    "config,host",
    [
        ({}, "https://api.kustomerapp.com"),
        ({"region": "us"}, "https://api.kustomerapp.com"),
        ({"region": "eu"}, "https://api.prod2.kustomerapp.com"),
        ({"region": "india"}, "https://api.prod4.kustomerapp.com"),
        ({"region": "eu", "org_name": "acme"}, "https://acme.api.kustomerapp.com"),  # the org host routes to the region
        ({"org_name": "acme"}, "https://acme.api.kustomerapp.com"),
        ({"region": "eu", "api_url": "https://acme.api.prod2.kustomerapp.com/"}, "https://acme.api.prod2.kustomerapp.com"),
        ({"api_url": "http://127.0.0.1:8123"}, "http://127.0.0.1:8123"),
        ({"api_url": "http://localhost:8123"}, "http://localhost:8123"),
    ],
)
def test_region_org_and_api_url_choose_the_host(config, host):
    """(requests-mock: the CDK's HttpRequest matches a host without its port.)"""
    with requests_mock_module.Mocker() as mocker:
        mocker.get(requests_mock_module.ANY, json=A_KEY)

        assert check_status(check({"api_token": TOKEN, **config}))[0] == "SUCCEEDED"
        assert mocker.request_history[0].url == f"{host}/v1/auth/tokens/current"


@pytest.mark.parametrize(
    "api_url",
    [
        "https://api.kustomerapp.com@evil.example",
        "https://evil.example#@api.kustomerapp.com",
        "https://api.kustomerapp.com.evil.example",
        "https://kustomerapp.com.evil.example/",
        "https://evilkustomerapp.com",
        "http://api.kustomerapp.com",
        "https://api.kustomerapp.com:8443",
        "https://api.kustomerаpp.com",  # Cyrillic a
        "https://xn--kustomerpp-ed4e.com",
        "https://10.0.0.8",
        "https://[::1]",
        "ftp://api.kustomerapp.com",
        "https://api.kustomerapp.com/v1/../../evil",
        "https://user:pass@api.kustomerapp.com",
    ],
)
def test_a_token_is_never_sent_to_a_host_outside_kustomer(api_url):
    """Refused twice over: by the spec's pattern (every runtime validates config against it) and by
    settings.KustomerHostValidator (tested in test_settings.py)."""
    with requests_mock_module.Mocker() as mocker:
        mocker.get(requests_mock_module.ANY, json=A_KEY)

        output = check({"api_token": TOKEN, "api_url": api_url})

        status, message = check_status(output)
        assert status == "FAILED" and f"'{api_url}' does not match" in message  # the spec's allow-list
        assert mocker.request_history == []
        assert TOKEN not in str(output._messages)


@pytest.mark.parametrize(
    "config,hint",
    [
        ({"start_date": "2024-13-01"}, "2024-13-01"),
        ({"start_date": "2024-02-31T00:00:00Z"}, "YYYY-MM-DDTHH:MM:SSZ"),
        ({"region": "mars"}, "'mars' is not one of ['us', 'eu', 'india']"),
        ({"page_size": "abc"}, "'abc' is not of type 'integer'"),
        ({"page_size": 5000}, "5000 is greater than the maximum of 500"),
        ({"lookback_window": "5 minutes"}, "5 minutes"),
        ({"org_name": "acme.evil.example/"}, "acme.evil.example/"),
        ({"api_token": ""}, "api_token"),
    ],
)
def test_bad_config_fails_check_before_any_request(config, hint):
    with requests_mock_module.Mocker() as mocker:
        mocker.get(requests_mock_module.ANY, json=A_KEY)

        status, message = check_status(check({"api_token": TOKEN, **config}))

        assert status == "FAILED" and hint in message
        assert mocker.request_history == []


def test_a_redirect_off_kustomer_never_carries_the_token():
    with requests_mock_module.Mocker() as mocker:
        mocker.get("https://api.kustomerapp.com/v1/auth/tokens/current", status_code=302, headers={"Location": "https://evil.example/v1/x"})
        mocker.get("https://evil.example/v1/x", json=A_KEY)

        output = check({"api_token": TOKEN})

        evil = [r for r in mocker.request_history if r.hostname == "evil.example"]
        assert all("Authorization" not in r.headers for r in evil)
        assert all(TOKEN not in str(r.headers) + (r.text or "") for r in evil)
        assert TOKEN not in str(output._messages)
        status, message = check_status(output)
        assert status == "FAILED" and "redirected the request to evil.example" in message  # its answer is not used


def test_a_redirect_within_the_kustomer_host_is_followed():
    with requests_mock_module.Mocker() as mocker:
        mocker.get("https://api.kustomerapp.com/v1/auth/tokens/current", status_code=301,
                   headers={"Location": "https://api.kustomerapp.com/v1/auth/tokens/current/"})
        mocker.get("https://api.kustomerapp.com/v1/auth/tokens/current/", json=A_KEY)

        assert check_status(check({"api_token": TOKEN}))[0] == "SUCCEEDED"
        assert mocker.request_history[-1].headers["Authorization"] == f"Bearer {TOKEN}"

