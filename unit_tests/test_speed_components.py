"""The components that keep a sync fast and within Kustomer's rate limits, on their own."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.errors import KustomerErrorHandler as KustomerErrorBodies
from source_kustomer.pages import ParsedOnceDecoder as ParsedOnce
from source_kustomer.pages import RecordsAtExtractor as RecordsAt
from source_kustomer.rate_limits import KustomerRateLimits as KustomerApiBudget
from source_kustomer.rate_limits import RateLimitBucket
from source_kustomer.source import SourceKustomer
from unit_tests.conftest import CONFIG, read_stream


def answer(body: bytes, status: int = 200, method: str = "GET", url: str = "https://api.kustomerapp.com/v1/users",
           headers: Optional[Dict[str, str]] = None) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, body, url
    response.headers.update(headers or {})
    response.request = requests.Request(method, url).prepare()
    return response


# --- ParsedOnce and RecordsAt ---------------------------------------------------------------------


def test_a_page_is_parsed_once_however_many_components_read_it(monkeypatch):
    page = answer(json.dumps({"data": [{"id": "a"}], "links": {"next": None}}).encode())
    decoder = ParsedOnce()
    first = next(decoder.decode(page))
    monkeypatch.setattr("source_kustomer.pages.orjson.loads", lambda _: pytest.fail("parsed twice"))

    assert next(decoder.decode(page)) is first


def test_a_body_that_is_not_json_fails_loudly_instead_of_reading_as_an_empty_page():
    with pytest.raises(AirbyteTracedException) as error:
        next(ParsedOnce().decode(answer(b'{"data": [{"id": "a"}, garbled}')))

    assert "not valid JSON" in error.value.message and error.value.failure_type == FailureType.transient_error


@pytest.mark.parametrize("path,expected", [(["data"], [{"id": "a"}, {"id": "b"}]), (["included"], [{"id": "i"}]), (["meta"], [{"n": 1}]), (["nothing"], [])])
def test_records_at_follows_plain_keys(path, expected):
    page = answer(json.dumps({"data": [{"id": "a"}, {"id": "b"}], "included": [{"id": "i"}], "meta": {"n": 1}}).encode())
    extractor = RecordsAt(field_path=path, config={}, parameters={}, decoder=ParsedOnce())

    assert list(extractor.extract_records(page)) == expected


def test_records_at_does_not_walk_the_page(monkeypatch):
    monkeypatch.setattr("dpath.get", lambda *_a, **_k: pytest.fail("dpath walked the page"))
    page = answer(json.dumps({"data": [{"id": "a", "attributes": {"deep": {"er": [1, 2, 3]}}}]}).encode())

    assert [r["id"] for r in RecordsAt(field_path=["data"], config={}, parameters={}).extract_records(page)] == ["a"]


# --- KustomerErrorBodies --------------------------------------------------------------------------


class Fallback:
    """The declarative handler behind KustomerErrorBodies: records what reached it."""

    max_retries, max_time, backoff_strategies = 7, 600, ["the backoff"]

    def __init__(self) -> None:
        self.seen: List[Any] = []

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        self.seen.append(response_or_exception)
        return ErrorResolution(ResponseAction.SUCCESS)


def handler() -> KustomerErrorBodies:
    return KustomerErrorBodies(handler=Fallback(), parameters={})


def test_an_expired_key_is_told_apart_by_its_body():
    resolution = handler().interpret_response(answer(b'{"errors":[{"status":401,"title":"Expired Token"}]}', status=401))

    assert (resolution.response_action, resolution.failure_type) == (ResponseAction.FAIL, FailureType.config_error)
    assert "the API key has expired" in resolution.error_message


@pytest.mark.parametrize("body", [b'{"data": [{"id": "a"}', b"", b"<html>502</html>", b'  {"data": []'])
def test_a_page_cut_short_is_retried(body):
    resolution = handler().interpret_response(answer(body))

    assert resolution.response_action == ResponseAction.RETRY and "not JSON" in resolution.error_message


def test_a_refused_key_is_a_config_error_saying_what_to_do():
    resolution = handler().interpret_response(answer(b'{"errors":[{"title":"Unauthorized"}]}', status=401))

    assert (resolution.response_action, resolution.failure_type) == (ResponseAction.FAIL, FailureType.config_error)
    assert "Kustomer rejected the API key for GET /v1/users (Unauthorized)" in resolution.error_message


def test_everything_else_goes_to_the_declarative_handler_with_its_retries_and_backoff():
    errors = handler()
    whole, refused, boom = answer(b'{"data": []}\n'), answer(b'{"errors":[{"title":"Conflict"}]}', status=409), ConnectionError()
    for item in (whole, refused, boom):
        errors.interpret_response(item)

    assert errors.handler.seen == [whole, refused, boom]
    assert (errors.max_retries, errors.max_time, errors.backoff_strategies) == (7, 600, ["the backoff"])


# --- RateLimitBucket and KustomerApiBudget ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spends_its_limit_then_says_how_long_until_the_window_reopens():
    clock = Clock()
    bucket = RateLimitBucket(3, window_s=60, clock=clock)

    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == 60
    clock.now += 60
    assert bucket.take() == 0 and bucket.remaining == 2


def test_a_bucket_adopts_kustomers_window_and_a_smaller_remaining_count():
    clock = Clock()
    bucket = RateLimitBucket(100, window_s=60, clock=clock)
    bucket.take()
    bucket.sync(limit=100, remaining=10, reset_at=clock.now + 5)  # other integrations spent 89

    assert (bucket.remaining, bucket.reset_at) == (10, clock.now + 5)
    bucket.sync(limit=100, remaining=50, reset_at=clock.now + 5)  # an answer sent before ours: older news
    assert bucket.remaining == 10
    bucket.sync(limit=100, remaining=0, reset_at=clock.now - 1)  # from a window that has closed: ignored
    assert bucket.remaining == 10


def test_the_org_bucket_never_goes_above_the_configured_plan_but_learns_a_smaller_one():
    clock = Clock()
    org = RateLimitBucket(1000, ceiling=1000, clock=clock)
    org.sync(limit=2000, remaining=1999, reset_at=clock.now + 60)
    assert org.limit == 1000
    org.sync(limit=300, remaining=290, reset_at=clock.now + 60)
    assert (org.limit, org.remaining) == (300, 290)


def request(method: str, path: str) -> requests.PreparedRequest:
    return requests.Request(method, f"https://api.kustomerapp.com{path}").prepare()


def test_a_search_spends_from_both_buckets_and_a_list_request_from_the_org_bucket_only():
    budget = KustomerApiBudget(requests_per_minute=300)
    budget.acquire(request("POST", "/v1/customers/search"))
    budget.acquire(request("POST", "/v1/customers/archive/search"))
    budget.acquire(request("GET", "/v1/users"))

    assert (budget.org.remaining, budget.search.remaining) == (297, 98)


def test_headers_update_the_bucket_they_describe():
    budget = KustomerApiBudget(requests_per_minute=1000)
    budget.update(request("GET", "/v1/users"), answer(b"{}", headers={
        "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "400", "x-ratelimit-reset": "30"}))
    budget.update(request("POST", "/v1/customers/search"), answer(b"{}", headers={
        "x-ratelimit-limit": "100", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "30"}))

    assert (budget.org.remaining, budget.search.remaining) == (400, 7)


def test_an_empty_bucket_waits_for_the_reset_instead_of_earning_a_429(backoff_sleeps):
    budget = KustomerApiBudget()
    budget.update(request("POST", "/v1/customers/search"), answer(b"{}", headers={
        "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}))
    budget.acquire(request("POST", "/v1/customers/search"))

    assert len(backoff_sleeps) == 1 and 12 <= backoff_sleeps[0] <= 12.1


def test_every_request_of_a_sync_goes_through_the_budget(requests_mock, backoff_sleeps):
    """A page that leaves no searches waits out the window before the next search is sent."""
    page = {"data": [{"type": "customer", "id": f"c{i}", "attributes": {"updatedAt": f"2025-05-01T00:00:0{i}.000Z"}} for i in range(2)],
            "links": {"next": "/v1/customers/search?page=2"}}
    last = {"data": [], "links": {"next": None}}
    limits = {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"}
    requests_mock.post("https://api.kustomerapp.com/v1/customers/search", [{"json": page, "headers": limits}, {"json": last}])

    output = read_stream("customers", config={**CONFIG, "start_date": "2025-04-01T00:00:00Z"})

    assert len(output.records) == 2 and not output.errors
    assert any(41 <= wait <= 42.1 for wait in backoff_sleeps)
