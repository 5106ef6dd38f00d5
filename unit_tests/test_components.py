"""Each component in source_kustomer/components.py, on its own."""

from __future__ import annotations

import time
from typing import Dict

import pytest
import requests
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.components import (
    ApiTokenGiven,
    FlattenJsonApiResource,
    KustomerHostOnly,
    RateLimitResetBackoff,
    UtcDateTime,
    snake_case,
)


@pytest.mark.parametrize(
    "camel,snake",
    [
        ("createdAt", "created_at"),
        ("lastMessageUnrespondedToSinceLastDone", "last_message_unresponded_to_since_last_done"),
        ("totalSpentNum", "total_spent_num"),
        ("os00Str", "os00_str"),
        ("smoochIds", "smooch_ids"),
        ("shopify-orders", "shopify-orders"),
        ("id", "id"),
        ("sla", "sla"),
    ],
)
def test_snake_case_matches_stitch(camel, snake):
    assert snake_case(camel) == snake


def test_flatten_keeps_id_type_links_and_relationship_data():
    record = {
        "type": "kobject",
        "id": "k1",
        "attributes": {"title": "Order", "custom": {"skusTxt": "a,b"}},
        "relationships": {"klass": {"link": "/v1/klasses/orders", "data": {"type": "klass", "id": "x"}}, "org": {"links": {}}},
        "links": {"self": "/v1/klasses/orders/k1"},
    }

    FlattenJsonApiResource().transform(record)

    assert record == {
        "type": "kobject",
        "id": "k1",
        "title": "Order",
        "custom": {"skus_txt": "a,b"},
        "custom_skus_txt": "a,b",
        "klass": {"type": "klass", "id": "x"},
        "links": {"self": "/v1/klasses/orders/k1"},
    }


# --- RateLimitResetBackoff ------------------------------------------------------------------------


def response(status: int, headers: Dict[str, str]) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers)
    return r


EPOCH = "epoch"  # x-ratelimit-reset given as UTC epoch seconds, offset from now


@pytest.mark.parametrize(
    "reset,reset_form,retry_after,low,high",
    [
        (20, EPOCH, None, 18, 21),
        (12, "seconds", None, 12, 12),  # seconds from now, the other form seen in the wild
        (50, EPOCH, "3", 3, 3),
        (-5, EPOCH, None, 1, 1),
        (99999, EPOCH, None, 900, 900),
    ],
)
def test_429_waits_for_the_window(reset, reset_form, retry_after, low, high):
    headers = {"x-ratelimit-reset": str(int(time.time()) + reset if reset_form == EPOCH else reset)}
    if retry_after:
        headers["Retry-After"] = retry_after
    wait = RateLimitResetBackoff(parameters={}).backoff_time(response(429, headers), 1)
    assert low - 0.01 <= wait <= high


@pytest.mark.parametrize("status,headers", [(429, {}), (429, {"x-ratelimit-reset": "soon"}), (500, {"x-ratelimit-reset": "12"})])
def test_other_cases_leave_the_wait_to_the_cdk(status, headers):
    assert RateLimitResetBackoff(parameters={}).backoff_time(response(status, headers), 1) is None
    assert RateLimitResetBackoff(parameters={}).backoff_time(requests.ConnectionError(), 1) is None


# --- config validations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.kustomerapp.com", "https://api.prod2.kustomerapp.com/", "https://acme.api.kustomerapp.com", "http://127.0.0.1:8080", "http://localhost:1"],
)
def test_kustomer_and_loopback_hosts_pass(url):
    KustomerHostOnly().validate(url)


@pytest.mark.parametrize("url", ["https://api.kustomerapp.com@evil.example", "http://api.kustomerapp.com", "https://evil.example", "", None])
def test_other_hosts_are_refused(url):
    with pytest.raises(AirbyteTracedException, match="not a Kustomer API host"):
        KustomerHostOnly().validate(url)


def test_start_date_must_be_a_real_utc_instant():
    UtcDateTime().validate("2024-02-29T00:00:00Z")
    with pytest.raises(AirbyteTracedException, match="YYYY-MM-DDTHH:MM:SSZ"):
        UtcDateTime().validate("2023-02-29T00:00:00Z")


def test_blank_token_is_refused():
    with pytest.raises(AirbyteTracedException, match="api_token"):
        ApiTokenGiven().validate("  \n")
