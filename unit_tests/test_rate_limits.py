"""source_kustomer/rate_limits.py: Kustomer's two rate-limit buckets (RateLimitBucket, KustomerRateLimits,
one pair per sync: rate_limits_for), the authenticator that spends from them and hears every answer
(RateLimitedAuthenticator), and the header waits asked on a 429 only (OnRateLimitBackoff), each on its
own and as the manifest declares them; then 429s read through the manifest (users on the CDK's
HttpMocker, every stream on requests-mock)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest
import requests
import yaml
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.declarative.auth.token import BearerAuthenticator
from airbyte_cdk.sources.declarative.auth.token_provider import InterpolatedStringTokenProvider
from airbyte_cdk.sources.streams.http.requests_native_auth import ResponseAwareAuthenticator
from airbyte_cdk.test.mock_http import HttpResponse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.rate_limits import (
    KustomerRateLimits,
    OnRateLimitBackoff,
    RateLimitBucket,
    RateLimitedAuthenticator,
    rate_limits_for,
    reset_epoch,
)
from source_kustomer.source import manifest_path
from unit_tests.conftest import CONFIG, LIST_STREAMS, SEARCH_STREAMS, ids, read_stream
from unit_tests.kustomer_mock import BASE_URL, error_response, kustomer_record, list_page, list_request, object_id, resource
from unit_tests.manifest_streams import LIST_ENDPOINTS

T0 = datetime(2025, 5, 1, tzinfo=timezone.utc)


def answer(status: int = 200, headers: Optional[Dict[str, str]] = None, body: bytes = b"{}") -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body
    response.headers.update(headers or {})
    return response


def request(method: str, path: str) -> requests.PreparedRequest:
    return requests.Request(method, f"{BASE_URL}{path}").prepare()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# --- RateLimitBucket -------------------------------------------------------------------------------


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


def test_once_kustomer_named_two_window_ends_a_run_dry_bucket_waits_for_its_next_window_not_a_minute():
    clock = Clock()
    bucket = RateLimitBucket(2, window_s=60, clock=clock)
    start = clock.now
    bucket.sync(limit=2, remaining=2, reset_at=start + 0.5)
    clock.now = start + 1.0
    bucket.sync(limit=2, remaining=1, reset_at=start + 2.5)  # the next window: 2 s long

    clock.now = start + 7.2  # no answer since (a stretch of the other bucket's requests)
    assert [bucket.take(), bucket.take()] == [0, 0]
    assert bucket.take() == pytest.approx(1.3)  # Kustomer's window ends at start + 8.5, in step with the named ones
    assert bucket.window_s == 2


def test_ends_named_within_one_window_do_not_shorten_it():
    clock = Clock()
    bucket = RateLimitBucket(1, window_s=60, clock=clock)
    for jitter in (0.0, 0.4, 0.9, 0.3):  # seconds-from-now resets read a little apart
        bucket.sync(limit=1, remaining=1, reset_at=clock.now + 30 + jitter)

    assert bucket.window_s == 60
    clock.now += 31
    bucket.take()
    assert bucket.take() == pytest.approx(60 - 0.1, abs=0.01)  # the named end + one window


def test_the_org_bucket_never_goes_above_the_configured_plan_but_learns_a_smaller_one():
    clock = Clock()
    org = RateLimitBucket(1000, ceiling=1000, clock=clock)
    org.sync(limit=2000, remaining=1999, reset_at=clock.now + 60)
    assert org.limit == 1000
    org.sync(limit=300, remaining=290, reset_at=clock.now + 60)
    assert (org.limit, org.remaining) == (300, 290)


def test_a_bucket_spends_only_its_share_of_each_limit_and_at_least_one_request():
    clock = Clock()
    half = RateLimitBucket(1000, ceiling=1000, clock=clock, share=0.5)
    tiny = RateLimitBucket(1, clock=clock, share=0.1)

    assert (half.limit, tiny.limit) == (500, 1)
    half.sync(limit=300, remaining=None, reset_at=None)  # Kustomer names the org's plan: half of that
    assert half.limit == 150


# --- KustomerRateLimits ----------------------------------------------------------------------------


def test_a_search_spends_from_both_buckets_and_a_list_request_from_the_org_bucket_only():
    budget = KustomerRateLimits(requests_per_minute=300)
    budget.acquire(request("POST", "/v1/customers/search"))
    budget.acquire(request("POST", "/v1/customers/archive/search"))
    budget.acquire(request("GET", "/v1/users"))

    assert (budget.org.remaining, budget.search.remaining) == (297, 98)


def test_headers_update_the_bucket_they_describe():
    budget = KustomerRateLimits(requests_per_minute=1000)
    budget.update(request("GET", "/v1/users"), answer(headers={
        "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "400", "x-ratelimit-reset": "30"}))
    budget.update(request("POST", "/v1/customers/search"), answer(headers={
        "x-ratelimit-limit": "100", "x-ratelimit-remaining": "7", "x-ratelimit-reset": "30"}))

    assert (budget.org.remaining, budget.search.remaining) == (400, 7)


def test_an_answer_without_rate_limit_headers_changes_nothing():
    budget = KustomerRateLimits(requests_per_minute=1000)
    budget.update(request("GET", "/v1/users"), answer(headers={"x-ratelimit-reset": "30"}))
    budget.update(request("GET", "/v1/users"), None)

    assert (budget.org.remaining, budget.search.remaining) == (1000, 100)


def test_an_empty_bucket_waits_for_the_reset_instead_of_earning_a_429(backoff_sleeps):
    budget = KustomerRateLimits()
    budget.update(request("POST", "/v1/customers/search"), answer(headers={
        "x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}))
    budget.acquire(request("POST", "/v1/customers/search"))

    assert len(backoff_sleeps) == 1 and 12 <= backoff_sleeps[0] <= 12.1


@pytest.mark.parametrize("value,seconds_from_now", [("30", 30), ("0.5", 0.5)])
def test_reset_epoch_reads_seconds_from_now(value, seconds_from_now):
    assert reset_epoch(value) == pytest.approx(time.time() + seconds_from_now, abs=1)


def test_reset_epoch_reads_epoch_seconds_as_they_are_and_junk_as_none():
    assert reset_epoch("1800000000") == 1_800_000_000.0
    assert reset_epoch("soon") is None and reset_epoch(None) is None


# --- rate_limits_for: one pair of buckets per sync -----------------------------------------------


def test_every_requester_of_a_sync_shares_its_buckets_and_a_new_sync_gets_new_ones():
    sync = {**CONFIG, "sync_started_at": "2031-01-01T00:00:00.000001Z"}

    shared = rate_limits_for(sync)

    assert rate_limits_for(dict(sync)) is shared
    assert rate_limits_for({**sync, "sync_started_at": "2031-01-01T00:00:00.000002Z"}) is not shared


def test_the_sync_spends_its_share_of_the_org_s_limit_and_the_key_s_whole_search_limit():
    default = rate_limits_for({"sync_started_at": "2031-01-02T00:00:00.000000Z"})
    configured = rate_limits_for({"sync_started_at": "2031-01-03T00:00:00.000000Z", "requests_per_minute": 300, "rate_limit_share": 20})

    assert (default.org.limit, default.search.limit) == (500, 100)  # half of 1,000 by default
    assert (configured.org.limit, configured.search.limit) == (60, 100)


# --- RateLimitedAuthenticator --------------------------------------------------------------------


class Signer:
    """The wrapped authenticator: signs with the bearer token and notes the buckets as they were then."""

    def __init__(self, inner: BearerAuthenticator, limits: KustomerRateLimits, slept: List[float]) -> None:
        self.inner, self.limits, self.slept, self.seen = inner, limits, slept, []

    @property
    def auth_header(self) -> str:
        return self.inner.auth_header

    @property
    def token(self) -> str:
        return self.inner.token

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        self.seen.append((self.limits.org.remaining, self.limits.search.remaining, len(self.slept)))
        return self.inner(prepared)


def authenticator(sync: str, slept: List[float]) -> RateLimitedAuthenticator:
    config = {"api_token": "secret-token", "sync_started_at": sync, "requests_per_minute": 1000, "rate_limit_share": 100}
    bearer = BearerAuthenticator(InterpolatedStringTokenProvider(api_token="{{ config['api_token'] }}", config=config, parameters={}),
                                 config=config, parameters={})
    return RateLimitedAuthenticator(authenticator=Signer(bearer, rate_limits_for(config), slept), config=config, parameters={})


def test_the_authenticator_signs_with_the_wrapped_bearer_token():
    auth = authenticator("2031-02-01T00:00:00.000000Z", [])

    signed = auth(request("GET", "/v1/users"))

    assert signed.headers["Authorization"] == "Bearer secret-token"
    assert (auth.auth_header, auth.token) == ("Authorization", "Bearer secret-token")
    assert auth.get_auth_header() == {"Authorization": "Bearer secret-token"}


def test_the_authenticator_spends_from_the_request_s_buckets_before_signing(backoff_sleeps):
    auth = authenticator("2031-02-02T00:00:00.000000Z", backoff_sleeps)
    limits = rate_limits_for(auth.config)

    auth(request("GET", "/v1/users"))
    auth(request("POST", "/v1/customers/search"))
    limits.search.sync(limit=100, remaining=0, reset_at=time.time() + 20)  # no search left in this window
    auth(request("POST", "/v1/customers/search"))

    assert auth.authenticator.seen == [(999, 100, 0), (998, 99, 0), (997, 99, 1)]  # spent (and waited) before signing
    assert len(backoff_sleeps) == 1 and 19 <= backoff_sleeps[0] <= 20.1


def test_the_authenticator_hears_every_answer_and_the_buckets_follow_it():
    auth = authenticator("2031-02-03T00:00:00.000000Z", [])
    limits = rate_limits_for(auth.config)

    auth.update_from_response(request("GET", "/v1/users"), answer(headers={"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "12"}))
    auth.update_from_response(request("POST", "/v1/customers/search"), answer(headers={"x-ratelimit-limit": "100", "x-ratelimit-remaining": "3"}))

    assert (limits.org.remaining, limits.search.remaining) == (12, 3)
    assert isinstance(auth, ResponseAwareAuthenticator)  # how the CDK's HttpClient knows to tell it every answer


def test_the_authenticators_of_one_sync_spend_from_the_same_buckets():
    one, other = authenticator("2031-02-04T00:00:00.000000Z", []), authenticator("2031-02-04T00:00:00.000000Z", [])

    one(request("GET", "/v1/users"))
    other(request("GET", "/v1/teams"))

    assert rate_limits_for(one.config).org.remaining == 998


# --- OnRateLimitBackoff on its own ---------------------------------------------------------------


class Strategy:
    def __init__(self, wait: Optional[float]) -> None:
        self.wait, self.asked = wait, []

    def backoff_time(self, response_or_exception: Any, attempt_count: int) -> Optional[float]:
        self.asked.append(attempt_count)
        return self.wait


def test_on_a_429_the_first_strategy_that_names_a_wait_wins():
    silent, first, second = Strategy(None), Strategy(7.0), Strategy(99.0)
    backoff = OnRateLimitBackoff(parameters={}, strategies=[silent, first, second])

    assert backoff.backoff_time(answer(429), 3) == 7.0
    assert (silent.asked, first.asked, second.asked) == ([3], [3], [])


def test_a_429_no_strategy_can_time_gets_none():
    assert OnRateLimitBackoff(parameters={}, strategies=[Strategy(None), Strategy(None)]).backoff_time(answer(429), 1) is None
    assert OnRateLimitBackoff(parameters={}).backoff_time(answer(429), 1) is None


@pytest.mark.parametrize("status", [200, 404, 500, 503])
def test_any_other_status_gets_none_without_asking_the_strategies(status):
    strategy = Strategy(5.0)

    assert OnRateLimitBackoff(parameters={}, strategies=[strategy]).backoff_time(answer(status, {"x-ratelimit-reset": "30"}), 1) is None
    assert strategy.asked == []


@pytest.mark.parametrize("failure", [requests.ConnectionError(), requests.ReadTimeout(), None])
def test_an_exception_gets_none(failure):
    strategy = Strategy(5.0)

    assert OnRateLimitBackoff(parameters={}, strategies=[strategy]).backoff_time(failure, 1) is None
    assert strategy.asked == []


# --- the error handler's backoff, as the manifest declares it -------------------------------------


def declared_backoff() -> List[Any]:
    """The backoff strategies of the manifest's error handler, built by the CDK's own factory."""
    from airbyte_cdk.sources.declarative.models.declarative_component_schema import DefaultErrorHandler
    from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer
    from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
    from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory

    manifest = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(manifest_path().read_text()))
    handler = ManifestComponentTransformer().propagate_types_and_parameters("", manifest["definitions"]["error_handler"]["handler"], {})
    return ModelToComponentFactory().create_component(DefaultErrorHandler, handler, config={}).backoff_strategies


def wait_for(response_or_exception: Any) -> Optional[float]:
    """The wait before the first retry: the first strategy that names one, as the CDK's HttpClient asks them."""
    return next((wait for wait in (s.backoff_time(response_or_exception, 1) for s in declared_backoff()) if wait is not None), None)


EPOCH = "epoch"  # x-ratelimit-reset given as UTC epoch seconds, offset from now
EXPONENTIAL = 5.0  # the first retry's exponential backoff: 2.5 x 2


def test_the_manifest_asks_its_header_waits_through_on_rate_limit_backoff_then_backs_off_exponentially():
    on_429, exponential = declared_backoff()

    assert isinstance(on_429, OnRateLimitBackoff) and [type(s).__name__ for s in on_429.strategies] == [
        "WaitTimeFromHeaderBackoffStrategy", "WaitUntilTimeFromHeaderBackoffStrategy", "WaitTimeFromHeaderBackoffStrategy"]
    assert type(exponential).__name__ == "ExponentialBackoffStrategy"


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
    wait = wait_for(answer(429, headers))
    assert low - 0.01 <= wait <= high


def test_a_window_further_than_fifteen_minutes_fails_instead_of_waiting():
    with pytest.raises(AirbyteTracedException, match="longer than the connector is allowed to wait"):
        wait_for(answer(429, {"x-ratelimit-reset": str(int(time.time()) + 99999)}))


@pytest.mark.parametrize("status,headers", [(429, {}), (429, {"x-ratelimit-reset": "soon"}), (500, {"x-ratelimit-reset": "12"}),
                                            (503, {"x-ratelimit-reset": str(int(time.time()) + 50)})])
def test_other_answers_get_the_exponential_backoff(status, headers):
    assert wait_for(answer(status, headers)) == EXPONENTIAL
    assert wait_for(requests.ConnectionError()) == EXPONENTIAL


# --- through the manifest: the users stream (HttpMocker) ------------------------------------------

ONE_USER = list_page([kustomer_record("user", 1, T0)])
ACTIVE_USERS = list_request("users", deleted="false", pageSize=500)


@pytest.fixture
def users(http_mocker):
    """Kustomer serving no pending and no deactivated users; a test answers the active users."""
    http_mocker.get(list_request("users", pending="true", pageSize=500), list_page([]))
    http_mocker.get(list_request("users", deleted="true", pageSize=500), list_page([]))
    return http_mocker


def test_429_waits_until_the_reset_time_then_succeeds(users, backoff_sleeps):
    reset = int(time.time()) + 30
    users.get(ACTIVE_USERS, [error_response(429, "Rate Limit Exceeded", {"x-ratelimit-reset": str(reset), "x-ratelimit-remaining": "0"}), ONE_USER])

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(1)]
    assert len(backoff_sleeps) == 1 and 26 <= backoff_sleeps[0] <= 32
    users.assert_number_of_calls(ACTIVE_USERS, 2)


def test_429_with_retry_after_waits_that_long(users, backoff_sleeps):
    users.get(ACTIVE_USERS, [HttpResponse("", 429, {"Retry-After": "7"}), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert backoff_sleeps == [8.0]  # the CDK adds one second for fractions


def test_429_without_headers_backs_off_and_succeeds(users, backoff_sleeps):
    users.get(ACTIVE_USERS, [HttpResponse("", 429), HttpResponse("", 429), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert len(backoff_sleeps) == 2
    users.assert_number_of_calls(ACTIVE_USERS, 3)


def test_reset_header_on_a_server_error_does_not_make_it_wait_for_the_window(users, backoff_sleeps):
    far_reset = int(time.time()) + 600
    users.get(ACTIVE_USERS, [HttpResponse("", 503, {"x-ratelimit-reset": str(far_reset)}), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert len(backoff_sleeps) == 1 and backoff_sleeps[0] < 60


# --- through the manifest: every stream (requests-mock: searches and lists alike) -----------------


def endpoint_of(stream: str) -> tuple[str, str]:
    if stream in SEARCH_STREAMS:
        return "POST", f"{BASE_URL}/v1/customers/search"
    return "GET", f"{BASE_URL}/v1/{LIST_ENDPOINTS[stream]}"


@pytest.mark.parametrize("stream", [*SEARCH_STREAMS, *LIST_STREAMS])
def test_every_stream_waits_out_a_429_and_succeeds(requests_mock, backoff_sleeps, stream):
    method, url = endpoint_of(stream)
    page = {"data": [resource(stream, 1, T0)], "links": {"next": None}}
    requests_mock.register_uri(method, url, [{"status_code": 429, "headers": {"x-ratelimit-reset": "9"}}, {"json": page}])

    assert set(ids(read_stream(stream))) == {object_id(1)}  # (a canned page answers every search window)
    assert backoff_sleeps == [pytest.approx(10.0, abs=0.01)]  # 9 seconds, plus the CDK's extra second


def test_every_request_of_a_sync_goes_through_the_budget(requests_mock, backoff_sleeps):
    """A page that leaves no searches waits out the window before the next search is sent."""
    page = {"data": [{"type": "customer", "id": f"c{i}", "attributes": {"updatedAt": f"2025-05-01T00:00:0{i}.000Z"}} for i in range(2)],
            "links": {"next": "/v1/customers/search?page=2"}}
    last = {"data": [], "links": {"next": None}}
    limits = {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"}
    requests_mock.post(f"{BASE_URL}/v1/customers/search", [{"json": page, "headers": limits}, {"json": last}])

    output = read_stream("customers", config={**CONFIG, "start_date": "2025-04-01T00:00:00Z"})

    assert len(output.records) == 2 and not output.errors
    assert any(41 <= wait <= 42.1 for wait in backoff_sleeps)


def test_a_429_answer_counts_against_the_bucket_it_names(users, backoff_sleeps):
    """The 429's own headers say the org's window is spent (and name no reset): after the Retry-After,
    the retry also waits for the window the sync assumed, a minute from its first request."""
    users.get(ACTIVE_USERS, [error_response(429, "Rate Limit Exceeded", {"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0",
                                                                        "Retry-After": "1"}), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    # the Retry-After, then the rest of the bucket's minute (less the time the read took, seconds on a busy machine)
    assert backoff_sleeps[0] == 2.0 and 45 <= backoff_sleeps[1] <= 60.1, backoff_sleeps
