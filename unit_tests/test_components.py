"""Each component in source_kustomer/components.py, on its own."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import pytest
import requests
import yaml
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.records import FlattenJsonApiResource, snake_case
from source_kustomer.source import manifest_path
from source_kustomer.settings import ApiTokenValidator as ApiTokenGiven
from source_kustomer.settings import KustomerHostValidator as KustomerHostOnly
from source_kustomer.settings import UtcDateTimeValidator as UtcDateTime


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


# --- the error handler's backoff, as the manifest declares it -------------------------------------


def response(status: int, headers: Dict[str, str]) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers)
    return r


def declared_backoff() -> List[Any]:
    """The backoff strategies of the manifest's error handler, built by the CDK's own factory."""
    from airbyte_cdk.sources.declarative.models.declarative_component_schema import DefaultErrorHandler
    from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer
    from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
    from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory

    manifest = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(manifest_path().read_text()))
    handler = ManifestComponentTransformer().propagate_types_and_parameters("", manifest["definitions"]["error_handler"]["handler"], {})
    return ModelToComponentFactory().create_component(DefaultErrorHandler, handler, config={}).backoff_strategies


def wait_for(answer: Any) -> Optional[float]:
    """The wait before the first retry: the first strategy that names one, as the CDK's HttpClient asks them."""
    return next((wait for wait in (s.backoff_time(answer, 1) for s in declared_backoff()) if wait is not None), None)


EPOCH = "epoch"  # x-ratelimit-reset given as UTC epoch seconds, offset from now
EXPONENTIAL = 5.0  # the first retry's exponential backoff: 2.5 x 2


@pytest.mark.parametrize(
    "reset,reset_form,retry_after,low,high",
    [
        (20, EPOCH, None, 18, 21),
        (12, "seconds", None, 12, 12),  # seconds from now, the other form seen in the wild
        (50, EPOCH, "3", 3, 3),
        (-5, EPOCH, None, EXPONENTIAL, EXPONENTIAL),  # a window already reopened: the usual backoff
    ],
)
def test_429_waits_for_the_window(reset, reset_form, retry_after, low, high):
    headers = {"x-ratelimit-reset": str(int(time.time()) + reset if reset_form == EPOCH else reset)}
    if retry_after:
        headers["Retry-After"] = retry_after
    wait = wait_for(response(429, headers))
    assert low - 0.01 <= wait <= high


def test_a_window_further_than_fifteen_minutes_fails_instead_of_waiting():
    with pytest.raises(AirbyteTracedException, match="longer than the connector is allowed to wait"):
        wait_for(response(429, {"x-ratelimit-reset": str(int(time.time()) + 99999)}))


@pytest.mark.parametrize("status,headers", [(429, {}), (429, {"x-ratelimit-reset": "soon"}), (500, {"x-ratelimit-reset": "12"}),
                                            (503, {"x-ratelimit-reset": str(int(time.time()) + 50)})])
def test_other_answers_get_the_exponential_backoff(status, headers):
    assert wait_for(response(status, headers)) == EXPONENTIAL
    assert wait_for(requests.ConnectionError()) == EXPONENTIAL


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
