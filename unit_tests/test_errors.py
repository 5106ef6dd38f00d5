"""Kustomer's errors: rate limits, server faults, rejected keys, both error-body forms."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests
from airbyte_cdk.models import FailureType, SyncMode

from urllib.parse import urlsplit

from source_kustomer.contract import endpoint_for
from unit_tests.conftest import CONFIG, LIST_STREAMS, SEARCH_STREAMS, check, check_status, ids, read_stream
from unit_tests.manifest_streams import LIST_ENDPOINTS
from source_kustomer.contract import ENDPOINTS
from unit_tests.kustomer_mock import BASE_URL, kustomer_error, object_id, resource

EVERY_STREAM = pytest.mark.parametrize("stream", [*SEARCH_STREAMS, *LIST_STREAMS])


def endpoint_of(stream: str) -> tuple[str, str]:
    if stream in SEARCH_STREAMS:
        return "POST", f"{BASE_URL}/v1/customers/search"
    return "GET", f"{BASE_URL}/v1/{LIST_ENDPOINTS[stream]}"


@EVERY_STREAM
def test_every_stream_waits_out_a_429_and_succeeds(requests_mock, backoff_sleeps, stream):
    method, url = endpoint_of(stream)
    page = {"data": [resource(stream, 1, datetime(2025, 5, 1, tzinfo=timezone.utc))], "links": {"next": None}}
    requests_mock.register_uri(method, url, [{"status_code": 429, "headers": {"x-ratelimit-reset": "9"}}, {"json": page}])

    assert set(ids(read_stream(stream))) == {object_id(1)}  # (a canned page answers every search window)
    assert backoff_sleeps == [pytest.approx(10.0, abs=0.01)]  # 9 seconds, plus the CDK's extra second


@EVERY_STREAM
def test_every_stream_tells_an_expired_key_from_a_rejected_one(requests_mock, stream):
    method, url = endpoint_of(stream)
    requests_mock.register_uri(method, url, status_code=401, json=kustomer_error(401, "Expired token"))
    expired = read_stream(stream).errors[0].trace.error.message
    requests_mock.register_uri(method, url, status_code=401, json=kustomer_error(401, "Unauthorized"))
    rejected = read_stream(stream).errors[0].trace.error.message

    assert "has expired" in expired
    assert "Either the key is wrong" in rejected and "or it lacks" in rejected and "expired" not in rejected


@EVERY_STREAM
def test_a_missing_role_names_the_roles_of_the_endpoint_the_stream_reads(requests_mock, stream):
    method, url = endpoint_of(stream)
    requests_mock.register_uri(method, url, status_code=403, json={"errors": [{"status": "403", "code": "forbidden", "title": "Missing required role"}]})

    error = read_stream(stream).errors[0].trace.error

    endpoint = endpoint_for(method, urlsplit(url).path)
    assert error.failure_type == FailureType.config_error
    assert f"Kustomer refused {endpoint.key} (Missing required role): the API key lacks" in error.message
    assert all(role in error.message for role in endpoint.roles)


@pytest.mark.parametrize("pod,region,host", [("prod2", "eu", "https://api.prod2.kustomerapp.com"), ("prod4", "india", "https://api.prod4.kustomerapp.com")])
def test_a_key_of_another_region_is_told_which_host_to_use(requests_mock, pod, region, host):
    said = f"Auth token associated with pod {pod} but request is being handled by prod1"
    requests_mock.get(USERS, status_code=401, json={"errors": [{"code": "unauthorized", "message": said, "meta": {}}]})

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert error.failure_type == FailureType.config_error
    assert f"(pod {pod})" in error.message and f"set Region to {region} ({host})" in error.message
    assert "Set Organization Name" in error.message

USERS = f"{BASE_URL}/v1/users"
ONE_USER = {"data": [resource("user", 1, datetime(2025, 5, 1, tzinfo=timezone.utc))], "links": {"next": None}}
NO_USERS = {"data": [], "links": {"next": None}}
ACTIVE_USERS = f"{USERS}?deleted=false"  # the pending and deactivated users are asked for first, apart


@pytest.fixture(autouse=True)
def no_pending_or_deactivated_users(requests_mock) -> None:
    requests_mock.get(f"{USERS}?pending=true", json=NO_USERS)
    requests_mock.get(f"{USERS}?deleted=true", json=NO_USERS)


def test_429_waits_until_the_reset_time_then_succeeds(requests_mock, backoff_sleeps):
    reset = int(time.time()) + 30
    requests_mock.get(USERS, [
        {"status_code": 429, "json": kustomer_error(429, "Rate Limit Exceeded"), "headers": {"x-ratelimit-reset": str(reset), "x-ratelimit-remaining": "0"}},
        {"json": ONE_USER},
    ])

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(1)]
    assert len(backoff_sleeps) == 1 and 26 <= backoff_sleeps[0] <= 32


def test_429_with_retry_after_waits_that_long(requests_mock, backoff_sleeps):
    requests_mock.get(USERS, [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert backoff_sleeps == [8.0]  # the CDK adds one second for fractions


def test_429_without_headers_backs_off_and_succeeds(requests_mock, backoff_sleeps):
    requests_mock.get(USERS, [{"status_code": 429}, {"status_code": 429}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert len(backoff_sleeps) == 2


def test_reset_header_on_a_server_error_does_not_make_it_wait_for_the_window(requests_mock, backoff_sleeps):
    far_reset = int(time.time()) + 600
    requests_mock.get(USERS, [{"status_code": 503, "headers": {"x-ratelimit-reset": str(far_reset)}}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert len(backoff_sleeps) == 1 and backoff_sleeps[0] < 60


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(requests_mock, status):
    requests_mock.get(USERS, [{"status_code": status, "text": ""}, {"status_code": status, "json": kustomer_error(status, "Oops")}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]


@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectionError("connection reset by peer")],
)
def test_timeouts_and_resets_are_retried(requests_mock, failure):
    requests_mock.get(USERS, [{"exc": failure}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]


@pytest.mark.parametrize("body", ['{"data": [{"type": "user", "id": "0000', "", "<html>Bad gateway</html>"])
def test_a_truncated_or_garbled_page_is_asked_for_again(requests_mock, body):
    requests_mock.get(USERS, [{"status_code": 200, "text": body}, {"json": ONE_USER}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]


def list_page(count: int, page: int = 1, size: int = 3, more: bool = True) -> dict:
    users = [resource("user", (page - 1) * size + n, datetime(2025, 5, 1, tzinfo=timezone.utc)) for n in range(1, count + 1)]
    return {"meta": {"page": page, "pageSize": size}, "data": users,
            "links": {"next": f"/v1/users?page={page + 1}&pageSize={size}" if more else None}}


def test_a_list_page_short_of_its_size_though_more_follow_is_asked_for_again(requests_mock):
    answers = iter([list_page(2), list_page(3), list_page(1, page=2, more=False)])  # page 1 lost an object; the last may be short
    requests_mock.get(ACTIVE_USERS, json=lambda request, context: next(answers))

    output = read_stream("users", {**CONFIG, "page_size": 3}, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in (1, 2, 3, 4)]
    assert [r.qs.get("page") for r in requests_mock.request_history if r.path == "/v1/users" and "deleted=false" in r.url] == [None, None, ["2"]]


def test_a_search_page_short_of_what_its_total_promises_is_asked_for_again(kustomer):
    kustomer.add("note", [resource("note", n, datetime(2025, 5, 1, n, tzinfo=timezone.utc)) for n in range(1, 4)])
    answer = kustomer._search
    answers = []

    def lose_one_object_the_first_time(request, context):
        page = answer(request, context)
        if page["data"] and 2 not in answers:
            page = {**page, "data": page["data"][:-1]}  # the last page of the query: no next link to notice
        answers.append(len(page["data"]))
        return page

    kustomer.mocker.post(f"{BASE_URL}/v1/customers/search", json=lose_one_object_the_first_time)
    output = read_stream("notes")

    assert sorted(ids(output)) == [object_id(n) for n in range(1, 4)]
    assert 2 in answers and 3 in answers


def test_a_page_short_every_time_fails_the_sync_instead_of_leaving_a_gap(requests_mock):
    requests_mock.get(ACTIVE_USERS, json=list_page(2))

    output = read_stream("users", {**CONFIG, "page_size": 3}, sync_mode=SyncMode.full_refresh)

    assert output.errors and "2 of the 3 objects page 1 should hold" in output.errors[-1].trace.error.internal_message + output.errors[-1].trace.error.message
    assert len([r for r in requests_mock.request_history if r.path == "/v1/users" and "deleted=false" in r.url]) == 1 + 10  # the first ask and the handler's ten retries


def test_expired_key_is_told_apart(requests_mock):
    requests_mock.get(USERS, status_code=401, json=kustomer_error(401, "Expired token"))

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    error = output.errors[0].trace.error
    assert "expired" in error.message and "Create a new key" in error.message
    assert error.failure_type == FailureType.config_error


def test_invalid_key_or_missing_role_names_the_roles(requests_mock):
    requests_mock.get(USERS, status_code=401, json=kustomer_error(401, "Unauthorized"))

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert "Kustomer rejected the API key for GET /v1/users (Unauthorized)" in error.message
    assert "org.permission.user.read, org.user.read" in error.message and "expired" not in error.message
    assert error.failure_type == FailureType.config_error


@pytest.mark.parametrize(
    "body,said",
    [
        ({"errors": [{"status": "400", "code": "bad_request", "title": "Invalid criteria"}]}, "Invalid criteria"),
        ({"errors": [{"code": "bad_request", "message": "Invalid request body or parameters.", "meta": {}}]}, "Invalid request body or parameters."),
    ],
)
def test_both_kustomer_error_forms_reach_the_user(requests_mock, body, said):
    requests_mock.get(USERS, status_code=400, json=body)

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert said in error.message


def test_an_error_text_inside_an_ordinary_record_is_just_data(requests_mock):
    user = resource("user", 1, datetime(2025, 5, 1, tzinfo=timezone.utc), {"name": "Expired token"})
    requests_mock.get(USERS, json={"data": [user], "links": {"next": None}})

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]


# --- check ------------------------------------------------------------------------------------

TOKEN_URL = f"{BASE_URL}/v1/auth/tokens/current"
EVERY_ROLE = sorted({role for endpoint in ENDPOINTS for role in endpoint.roles if role.startswith("org.permission.")})


def key(*roles: str) -> dict:
    """Kustomer's answer to GET /v1/auth/tokens/current for a key holding ``roles``."""
    return {"data": {"type": "auth_token", "id": object_id(9), "attributes": {
        "name": "Airbyte", "lastTokenChars": "6789", "roles": list(roles), "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z", "lastAccessedAt": "2025-06-01T00:00:00.000Z"},
        "relationships": {"org": {"data": {"type": "org", "id": object_id(0)}}, "user": {"data": {"type": "user", "id": object_id(8)}}}}}


def test_check_succeeds_with_one_request_for_the_key_s_roles(requests_mock):
    requests_mock.get(TOKEN_URL, json=key(*EVERY_ROLE))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED"
    assert [r.url for r in requests_mock.request_history] == [TOKEN_URL]
    assert requests_mock.request_history[0].headers["Authorization"] == f"Bearer {CONFIG['api_token']}"
    assert not [m for m in output.logs if m.log.level.value == "WARN"]


def test_legacy_roles_are_as_good_as_permission_sets(requests_mock):
    legacy = {next((r for r in e.roles if not r.startswith("org.permission.")), e.roles[0]) for e in ENDPOINTS if e.roles}
    requests_mock.get(TOKEN_URL, json=key(*legacy))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED" and not [m for m in output.logs if m.log.level.value == "WARN"]


def test_check_without_search_fails_naming_the_roles_to_add(requests_mock):
    requests_mock.get(TOKEN_URL, json=key(*(r for r in EVERY_ROLE if "search" not in r)))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and "The API key cannot search Kustomer" in message
    assert "org.permission.search.create" in message and "org.user.search.read" in message


def test_check_warns_naming_each_stream_the_key_cannot_read_and_the_role_that_would_fix_it(requests_mock):
    requests_mock.get(TOKEN_URL, json=key(*(r for r in EVERY_ROLE if r not in ("org.permission.event.read", "org.permission.audit_logs.read"))))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED"
    [warning] = [m.log.message for m in output.logs if m.log.level.value == "WARN"]
    assert "conversation_events (add one of org.permission.event.read, org.user.event.read)" in warning
    assert "audit_logs (add one of org.permission.audit_logs.read, org.user.audit_logs.read)" in warning
    assert "users" not in warning.replace("audit_logs", "")


@pytest.mark.parametrize(
    "status,title,hint",
    [(401, "Expired token", "has expired"), (401, "Unauthorized", "Kustomer rejected the API key (Unauthorized). Copy it again"),
     (401, "Auth token associated with pod prod2 but request is being handled by prod1", "set Region to eu")],
)
def test_check_fails_with_an_actionable_message(requests_mock, status, title, hint):
    requests_mock.get(TOKEN_URL, status_code=status, json=kustomer_error(status, title))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and hint in message
    assert CONFIG["api_token"] not in message


def test_check_reports_an_unreachable_host_quickly(requests_mock, backoff_sleeps):
    requests_mock.get(TOKEN_URL, exc=requests.exceptions.ConnectionError("Connection refused"))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and "Connection" in message
    assert len(requests_mock.request_history) <= 2
