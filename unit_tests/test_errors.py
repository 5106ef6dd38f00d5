"""source_kustomer/errors.py: KustomerErrorHandler on its own (a recording fallback handler), and Kustomer's
faulty answers read through the manifest's error handler: server errors, timeouts, pages garbled or
cut short, both error-body forms. Users are read from the CDK's HttpMocker, searches from MockKustomer.
What a refused key is told is test_access.py's; rate limits are test_rate_limits.py's."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, List, Optional

import pytest
import requests
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.test.mock_http import HttpResponse

from source_kustomer.errors import KustomerErrorHandler
from unit_tests.conftest import CONFIG, ids, read_stream
from unit_tests.kustomer_mock import (
    BASE_URL,
    error_response,
    kustomer_error,
    kustomer_record,
    list_page,
    list_request,
    object_id,
    resource,
    serve_plain_org_http,
)

T0 = datetime(2025, 5, 1, tzinfo=timezone.utc)


def answer(body: bytes, status: int = 200, method: str = "GET", url: str = f"{BASE_URL}/v1/users") -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = status, body, url
    response.request = requests.Request(method, url).prepare()
    return response


def page(data: List[Any], **page: Any) -> bytes:
    return json.dumps({"data": data, **page}).encode()


# --- KustomerErrorHandler on its own ---------------------------------------------------------------


class Fallback:
    """The declarative handler behind KustomerErrorHandler: records what reached it."""

    max_retries, max_time, backoff_strategies = 7, 600, ["the backoff"]

    def __init__(self) -> None:
        self.seen: List[Any] = []

    def interpret_response(self, response_or_exception: Any) -> ErrorResolution:
        self.seen.append(response_or_exception)
        return ErrorResolution(ResponseAction.SUCCESS)


def handler(read_as_empty: Optional[List[int]] = None) -> KustomerErrorHandler:
    return KustomerErrorHandler(handler=Fallback(), parameters={}, read_as_empty=read_as_empty or [])


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


def test_a_status_read_as_empty_is_ignored_and_a_403_names_the_role_in_a_warning(caplog):
    errors = handler(read_as_empty=[403, 404])
    missing = errors.interpret_response(answer(json.dumps(kustomer_error(404, "Not Found")).encode(), status=404, url=f"{BASE_URL}/v1/metadata/customer"))
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        forbidden = errors.interpret_response(answer(b'{"errors":[{"title":"Forbidden"}]}', status=403, url=f"{BASE_URL}/v1/metadata/customer"))

    assert missing.response_action == forbidden.response_action == ResponseAction.IGNORE
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "Kustomer refused GET /v1/metadata/{resource} (Forbidden)" in warning and "org.permission.metadata.read" in warning
    assert warning.endswith("Read as none meanwhile.")
    assert errors.handler.seen == []


def test_a_403_not_read_as_empty_fails_as_a_config_error():
    resolution = handler(read_as_empty=[404]).interpret_response(answer(b'{"errors":[{"title":"Forbidden"}]}', status=403))

    assert (resolution.response_action, resolution.failure_type) == (ResponseAction.FAIL, FailureType.config_error)


def redirected(final_url: str) -> requests.Response:
    response = answer(b'{"data": []}', url=final_url)
    response.history = [answer(b"", status=302, url=f"{BASE_URL}/v1/users")]
    return response


def test_an_answer_from_another_host_after_a_redirect_is_refused_naming_the_host():
    resolution = handler().interpret_response(redirected("https://evil.example/v1/users"))

    assert (resolution.response_action, resolution.failure_type) == (ResponseAction.FAIL, FailureType.config_error)
    assert "redirected the request to evil.example" in resolution.error_message


def test_a_redirect_within_the_host_is_an_ordinary_answer():
    errors = handler()
    within = redirected(f"{BASE_URL}/v1/users/")

    errors.interpret_response(within)

    assert errors.handler.seen == [within]


@pytest.mark.parametrize(
    "body,short",
    [
        (page([{"id": "a"}], meta={"page": 1, "pageSize": 3, "total": 7}), "1 of the 3 objects page 1 should hold"),
        (page([{"id": "a"}], meta={"page": 3, "pageSize": 3, "total": 8}), "1 of the 2 objects page 3 should hold"),  # the last page: 8 - 6
        (page([{"id": "a"}, {"id": "b"}], meta={"page": 1, "pageSize": 3}, links={"next": "/v1/users?page=2"}), "2 of the 3 objects page 1"),
    ],
)
def test_a_page_short_of_what_its_meta_promises_is_asked_for_again(body, short):
    resolution = handler().interpret_response(answer(body))

    assert resolution.response_action == ResponseAction.RETRY and short in resolution.error_message


@pytest.mark.parametrize(
    "body",
    [
        page([{"id": "a"}], meta={"page": 3, "pageSize": 3, "total": 7}),  # the last page holds what is left
        page([{"id": "a"}], meta={"page": 1, "pageSize": 3}, links={"next": None}),  # a short last list page
        page([{"id": "a"}], meta={"page": 1}, links={"next": "/v1/users?page=2"}),  # no page size to judge by
        page([], meta={"page": 1, "pageSize": 3, "total": 0}),
    ],
)
def test_a_page_holding_what_its_meta_promises_goes_to_the_declarative_handler(body):
    errors = handler()

    errors.interpret_response(answer(body))

    assert len(errors.handler.seen) == 1


# --- through the manifest: the users stream (HttpMocker) ------------------------------------------

ONE_USER = list_page([kustomer_record("user", 1, T0)])
ACTIVE_USERS = list_request("users", deleted="false", pageSize=500)  # the pending and deactivated users are asked for first, apart


def no_pending_or_deactivated_users(http_mocker, page_size: int = 500) -> None:
    http_mocker.get(list_request("users", pending="true", pageSize=page_size), list_page([]))
    http_mocker.get(list_request("users", deleted="true", pageSize=page_size), list_page([]))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(http_mocker, status):
    no_pending_or_deactivated_users(http_mocker)
    http_mocker.get(ACTIVE_USERS, [HttpResponse("", status), error_response(status, "Oops"), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    http_mocker.assert_number_of_calls(ACTIVE_USERS, 3)


@pytest.mark.parametrize("body", ['{"data": [{"type": "user", "id": "0000', "", "<html>Bad gateway</html>"])
def test_a_truncated_or_garbled_page_is_asked_for_again(http_mocker, body):
    no_pending_or_deactivated_users(http_mocker)
    http_mocker.get(ACTIVE_USERS, [HttpResponse(body, 200), ONE_USER])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    http_mocker.assert_number_of_calls(ACTIVE_USERS, 2)


def users_page(count: int, page: int = 1, size: int = 3, more: bool = True) -> HttpResponse:
    users = [kustomer_record("user", (page - 1) * size + n, T0) for n in range(1, count + 1)]
    return list_page(users, f"/v1/users?page={page + 1}&pageSize={size}" if more else None, page=page, pageSize=size)


def test_a_list_page_short_of_its_size_though_more_follow_is_asked_for_again(http_mocker):
    serve_plain_org_http(http_mocker, page_size=3)
    no_pending_or_deactivated_users(http_mocker, page_size=3)
    first, second = list_request("users", deleted="false", pageSize=3), list_request("users", deleted="false", page=2, pageSize=3)
    http_mocker.get(first, [users_page(2), users_page(3)])  # page 1 lost an object on the way the first time
    http_mocker.get(second, users_page(1, page=2, more=False))  # the last page may be short

    output = read_stream("users", {**CONFIG, "page_size": 3}, sync_mode=SyncMode.full_refresh)

    assert ids(output) == [object_id(n) for n in (1, 2, 3, 4)]
    http_mocker.assert_number_of_calls(first, 2)
    http_mocker.assert_number_of_calls(second, 1)


def test_a_page_short_every_time_fails_the_sync_instead_of_leaving_a_gap(http_mocker):
    serve_plain_org_http(http_mocker, page_size=3)
    no_pending_or_deactivated_users(http_mocker, page_size=3)
    first = list_request("users", deleted="false", pageSize=3)
    http_mocker.get(first, users_page(2))

    output = read_stream("users", {**CONFIG, "page_size": 3}, sync_mode=SyncMode.full_refresh)

    assert output.errors and "2 of the 3 objects page 1 should hold" in output.errors[-1].trace.error.internal_message + output.errors[-1].trace.error.message
    http_mocker.assert_number_of_calls(first, 1 + 10)  # the first ask and the handler's ten retries


@pytest.mark.parametrize(
    "body,said",
    [
        ({"errors": [{"status": "400", "code": "bad_request", "title": "Invalid criteria"}]}, "Invalid criteria"),
        ({"errors": [{"code": "bad_request", "message": "Invalid request body or parameters.", "meta": {}}]}, "Invalid request body or parameters."),
    ],
)
def test_both_kustomer_error_forms_reach_the_user(http_mocker, body, said):
    http_mocker.get(list_request("users", pending="true", pageSize=500), HttpResponse(json.dumps(body), 400))

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert said in error.message


def test_an_error_text_inside_an_ordinary_record_is_just_data(http_mocker):
    no_pending_or_deactivated_users(http_mocker)
    http_mocker.get(ACTIVE_USERS, list_page([kustomer_record("user", 1, T0, attributes={"name": "Expired token"})]))

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]


# --- through the manifest, requests-mock: failures HttpMocker cannot serve ---------------------------


@pytest.mark.parametrize(
    "failure",
    [requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectionError("connection reset by peer")],
)
def test_timeouts_and_resets_are_retried(requests_mock, failure):
    """(HttpMocker answers; it cannot raise.)"""
    one_user = {"data": [resource("user", 1, T0)], "links": {"next": None}}
    requests_mock.get(f"{BASE_URL}/v1/users?pending=true", json={"data": [], "links": {"next": None}})
    requests_mock.get(f"{BASE_URL}/v1/users?deleted=true", json={"data": [], "links": {"next": None}})
    active = requests_mock.get(f"{BASE_URL}/v1/users?deleted=false", [{"exc": failure}, {"json": one_user}])

    assert ids(read_stream("users", sync_mode=SyncMode.full_refresh)) == [object_id(1)]
    assert active.call_count == 2


def test_a_search_page_short_of_what_its_total_promises_is_asked_for_again(kustomer):
    kustomer.add("note", [resource("note", n, datetime(2025, 5, 1, n, tzinfo=timezone.utc)) for n in range(1, 4)])
    search = kustomer._search
    answers = []

    def lose_one_object_the_first_time(request, context):
        page = search(request, context)
        if page["data"] and 2 not in answers:
            page = {**page, "data": page["data"][:-1]}  # the last page of the query: no next link to notice
        answers.append(len(page["data"]))
        return page

    kustomer.mocker.post(f"{BASE_URL}/v1/customers/search", json=lose_one_object_the_first_time)
    output = read_stream("notes")

    assert sorted(ids(output)) == [object_id(n) for n in range(1, 4)]
    assert 2 in answers and 3 in answers
