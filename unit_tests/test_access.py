"""source_kustomer/access.py: what an API key may read. ``refusal`` (a 401 or 403 worded for the person who
fixes it) and ``KeyRolesExtractor`` (the key's roles against contract.py's) on their own; then through
the manifest: every stream's refused key, and ``check``, which reads the key's roles (GET
/v1/auth/tokens/current, on the CDK's HttpMocker)."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import pytest
import requests
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.test.mock_http import HttpRequest, HttpResponse
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.access import KeyRolesExtractor, refusal
from source_kustomer.contract import ENDPOINTS, endpoint_for
from unit_tests.conftest import CONFIG, LIST_STREAMS, SEARCH_STREAMS, check, check_status, read_stream
from unit_tests.kustomer_mock import BASE_URL, error_response, kustomer_error, list_request, object_id
from unit_tests.manifest_streams import LIST_ENDPOINTS

EVERY_STREAM = pytest.mark.parametrize("stream", [*SEARCH_STREAMS, *LIST_STREAMS])


def refused(status: int, body: Any, method: str = "GET", path: str = "/v1/users", host: str = BASE_URL) -> requests.Response:
    response = requests.Response()
    response.status_code, response.url = status, f"{host}{path}"
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.request = requests.Request(method, response.url).prepare()
    return response


# --- refusal ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pod,region,host,where", [("prod2", "eu", "https://api.prod2.kustomerapp.com", "the European Union"),
                                                   ("prod4", "india", "https://api.prod4.kustomerapp.com", "India"),
                                                   ("prod1", "us", "https://api.kustomerapp.com", "the United States")])
def test_a_key_of_another_region_is_told_its_region_and_host(pod, region, host, where):
    said = f"Auth token associated with pod {pod} but request is being handled by prod9"

    message = refusal(refused(401, {"errors": [{"code": "unauthorized", "message": said}]}))

    assert f"region in {where} (pod {pod}), but it was sent to api.kustomerapp.com (prod9)" in message
    assert f"set Region to {region} ({host})" in message and "https://<org>.api.kustomerapp.com" in message


def test_a_key_of_a_pod_no_region_names_is_told_to_set_the_org_name():
    message = refusal(refused(403, {"errors": [{"message": "Auth token associated with pod prod7 but request is being handled by prod1"}]}))

    assert message == "This API key belongs to another Kustomer region (pod prod7) than api.kustomerapp.com (prod1). Set Organization Name."


def test_an_expired_key_is_told_to_create_a_new_one_whatever_the_endpoint():
    for method, path in (("GET", "/v1/users"), ("POST", "/v1/customers/search"), ("GET", "/v1/nowhere")):
        message = refusal(refused(401, kustomer_error(401, "Expired Token"), method, path))
        assert message.startswith("Kustomer says the API key has expired. Create a new key")


def test_a_401_says_the_key_is_wrong_or_lacks_one_of_the_endpoint_s_roles():
    message = refusal(refused(401, kustomer_error(401, "Unauthorized"), "GET", f"/v1/conversations/{object_id(1)}/events"))

    assert message.startswith("Kustomer rejected the API key for GET /v1/conversations/{id}/events (Unauthorized). Either the key is wrong")
    assert "or it lacks one of the roles org.permission.event.read, org.user.event.read" in message


def test_a_403_says_which_roles_the_key_lacks():
    message = refusal(refused(403, kustomer_error(403, "Forbidden"), "POST", "/v1/customers/archive/search"))

    assert message.startswith("Kustomer refused POST /v1/customers/archive/search (Forbidden): the API key lacks one of the roles ")
    assert all(role in message for role in endpoint_for("POST", "/v1/customers/archive/search").roles)


def test_an_endpoint_any_key_may_call_blames_the_key_itself():
    message = refusal(refused(403, kustomer_error(403, "Forbidden"), "GET", "/v1/auth/tokens/current"))

    assert message.startswith("Kustomer rejected the API key (Forbidden). Copy it again") and "role" not in message


def test_an_endpoint_the_contract_does_not_know_is_named_by_its_request():
    message = refusal(refused(403, kustomer_error(403, "Forbidden"), "GET", "/v1/somewhere/else"))

    assert "Kustomer refused GET /v1/somewhere/else (Forbidden): the API key lacks the role Kustomer requires for it" in message


@pytest.mark.parametrize(
    "body,said",
    [
        ({"errors": [{"status": "401", "code": "unauthorized", "title": "Bad key"}]}, "(Bad key)"),
        ({"errors": [{"code": "unauthorized", "message": "Invalid token.", "meta": {}}]}, "(Invalid token.)"),
        ({"errors": [{"code": "unauthorized"}]}, "(unauthorized)"),
        ({"errors": []}, "(401)"),
        ({"errors": ["a string"]}, "(401)"),
        (["not", "an", "object"], "(401)"),
        (b"<html>401</html>", "(401)"),
    ],
)
def test_kustomer_s_own_words_are_quoted_from_either_error_form_else_the_status(body, said):
    assert said in refusal(refused(401, body))


# --- KeyRolesExtractor -----------------------------------------------------------------------------

READS = {"POST /v1/customers/search": ["customers", "notes"], "GET /v1/users": ["users"],
         "GET /v1/conversations/{id}/events": ["conversation_events"], "GET /v1/teams": ["teams"]}
SEARCH_ROLE, USER_ROLE, EVENT_ROLE = "org.permission.search.create", "org.user.read", "org.permission.event.read"


def key(*roles: str, **attributes: Any) -> Dict[str, Any]:
    """Kustomer's answer to GET /v1/auth/tokens/current for a key holding ``roles``."""
    return {"data": {"type": "auth_token", "id": object_id(9), "attributes": {
        "name": "Airbyte", "lastTokenChars": "6789", "roles": list(roles), "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z", "lastAccessedAt": "2025-06-01T00:00:00.000Z", **attributes},
        "relationships": {"org": {"data": {"type": "org", "id": object_id(0)}}, "user": {"data": {"type": "user", "id": object_id(8)}}}}}


def key_record(body: Any, reads: Optional[Dict[str, Any]] = None) -> list:
    extractor = KeyRolesExtractor(config={}, parameters={}, reads=READS if reads is None else reads)
    return list(extractor.extract_records(refused(200, body, path="/v1/auth/tokens/current")))


def test_a_key_holding_every_role_is_read_whole_but_for_its_last_characters(caplog):
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        [record] = key_record(key(SEARCH_ROLE, USER_ROLE, EVENT_ROLE))

    assert record["unreadable_streams"] == [] and record["id"] == object_id(9)
    assert "lastTokenChars" not in record["attributes"] and record["attributes"]["name"] == "Airbyte"
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_key_without_a_role_lists_and_warns_of_each_stream_it_cannot_read(caplog):
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        [record] = key_record(key(SEARCH_ROLE))

    assert record["unreadable_streams"] == [
        {"stream": "users", "endpoint": "GET /v1/users", "needs_one_of": ["org.permission.user.read", "org.user.read"]},
        {"stream": "conversation_events", "endpoint": "GET /v1/conversations/{id}/events", "needs_one_of": [EVENT_ROLE, "org.user.event.read"]},
    ]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "users (add one of org.permission.user.read, org.user.read); conversation_events (add one of" in warning
    assert "teams" not in warning  # Kustomer documents no role for teams: any key reads them


def test_a_key_that_cannot_search_is_a_config_error_naming_the_search_roles():
    with pytest.raises(AirbyteTracedException) as error:
        key_record(key(USER_ROLE, EVENT_ROLE))

    assert error.value.failure_type == FailureType.config_error
    assert error.value.message.startswith("The API key cannot search Kustomer: it has none of the roles org.permission.search.create, ")


def test_lacking_answers_which_endpoints_the_roles_do_not_open():
    extractor = KeyRolesExtractor(config={}, parameters={}, reads=READS)

    assert set(extractor.lacking([USER_ROLE])) == {"POST /v1/customers/search", "GET /v1/conversations/{id}/events"}
    assert extractor.lacking([SEARCH_ROLE, "org.permission.user.read", "org.user.event.read"]) == {}


@pytest.mark.parametrize("body", [{}, {"data": None}, {"data": ["a", "list"]}, ["not", "an", "object"]])
def test_an_answer_without_a_key_record_gives_no_record(body):
    assert key_record(body) == []


def test_reads_naming_an_endpoint_the_contract_does_not_list_is_refused_at_build():
    with pytest.raises(ValueError, match=r"contract.py does not list: \['GET /v1/nowhere'\]"):
        KeyRolesExtractor(config={}, parameters={}, reads={"GET /v1/nowhere": ["x"]})


# --- through the manifest: every stream's refused key (requests-mock: searches and lists alike) ----


def endpoint_of(stream: str) -> tuple[str, str]:
    if stream in SEARCH_STREAMS:
        return "POST", f"{BASE_URL}/v1/customers/search"
    return "GET", f"{BASE_URL}/v1/{LIST_ENDPOINTS[stream]}"


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


# --- through the manifest: the users stream (HttpMocker) ------------------------------------------

PENDING_USERS = list_request("users", pending="true", pageSize=500)  # the users' first request


@pytest.mark.parametrize("pod,region,host", [("prod2", "eu", "https://api.prod2.kustomerapp.com"), ("prod4", "india", "https://api.prod4.kustomerapp.com")])
def test_a_key_of_another_region_is_told_which_host_to_use(http_mocker, pod, region, host):
    said = f"Auth token associated with pod {pod} but request is being handled by prod1"
    http_mocker.get(PENDING_USERS, HttpResponse(json.dumps({"errors": [{"code": "unauthorized", "message": said, "meta": {}}]}), 401))

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert error.failure_type == FailureType.config_error
    assert f"(pod {pod})" in error.message and f"set Region to {region} ({host})" in error.message
    assert "Set Organization Name" in error.message


def test_expired_key_is_told_apart(http_mocker):
    http_mocker.get(PENDING_USERS, error_response(401, "Expired token"))

    output = read_stream("users", sync_mode=SyncMode.full_refresh)

    error = output.errors[0].trace.error
    assert "expired" in error.message and "Create a new key" in error.message
    assert error.failure_type == FailureType.config_error
    http_mocker.assert_number_of_calls(PENDING_USERS, 1)  # a refused key is not asked again


def test_invalid_key_or_missing_role_names_the_roles(http_mocker):
    http_mocker.get(PENDING_USERS, error_response(401, "Unauthorized"))

    error = read_stream("users", sync_mode=SyncMode.full_refresh).errors[0].trace.error

    assert "Kustomer rejected the API key for GET /v1/users (Unauthorized)" in error.message
    assert "org.permission.user.read, org.user.read" in error.message and "expired" not in error.message
    assert error.failure_type == FailureType.config_error


# --- through the manifest: check reads the key's roles (HttpMocker) ---------------------------------

TOKEN_URL = f"{BASE_URL}/v1/auth/tokens/current"
EVERY_ROLE = sorted({role for endpoint in ENDPOINTS for role in endpoint.roles if role.startswith("org.permission.")})
#: check's one request: the key's own record, with the key as the bearer token.
THE_KEY = HttpRequest(TOKEN_URL, headers={"Authorization": f"Bearer {CONFIG['api_token']}"})


def key_answer(*roles: str) -> HttpResponse:
    return HttpResponse(json.dumps(key(*roles)))


def warnings_of(output) -> list:
    return [m.log.message for m in output.logs if m.log.level.value == "WARN"]


def test_check_succeeds_with_one_request_for_the_key_s_roles(http_mocker):
    http_mocker.get(THE_KEY, key_answer(*EVERY_ROLE))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED"
    http_mocker.assert_number_of_calls(THE_KEY, 1)  # (any other request would fail: HttpMocker knows no other)
    assert not warnings_of(output)


def test_legacy_roles_are_as_good_as_permission_sets(http_mocker):
    legacy = {next((r for r in e.roles if not r.startswith("org.permission.")), e.roles[0]) for e in ENDPOINTS if e.roles}
    http_mocker.get(THE_KEY, key_answer(*legacy))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED" and not warnings_of(output)


def test_check_without_search_fails_naming_the_roles_to_add(http_mocker):
    http_mocker.get(THE_KEY, key_answer(*(r for r in EVERY_ROLE if "search" not in r)))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and "The API key cannot search Kustomer" in message
    assert "org.permission.search.create" in message and "org.user.search.read" in message


def test_check_warns_naming_each_stream_the_key_cannot_read_and_the_role_that_would_fix_it(http_mocker):
    http_mocker.get(THE_KEY, key_answer(*(r for r in EVERY_ROLE if r not in ("org.permission.event.read", "org.permission.audit_logs.read"))))

    output = check(CONFIG)

    assert check_status(output)[0] == "SUCCEEDED"
    [warning] = warnings_of(output)
    assert "conversation_events (add one of org.permission.event.read, org.user.event.read)" in warning
    assert "audit_logs (add one of org.permission.audit_logs.read, org.user.audit_logs.read)" in warning
    assert "users" not in warning.replace("audit_logs", "")


@pytest.mark.parametrize(
    "status,title,hint",
    [(401, "Expired token", "has expired"), (401, "Unauthorized", "Kustomer rejected the API key (Unauthorized). Copy it again"),
     (401, "Auth token associated with pod prod2 but request is being handled by prod1", "set Region to eu")],
)
def test_check_fails_with_an_actionable_message(http_mocker, status, title, hint):
    http_mocker.get(THE_KEY, error_response(status, title))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and hint in message
    assert CONFIG["api_token"] not in message


def test_check_reports_an_unreachable_host_quickly(requests_mock, backoff_sleeps):
    """(requests-mock: HttpMocker answers; it cannot refuse the connection.)"""
    requests_mock.get(TOKEN_URL, exc=requests.exceptions.ConnectionError("Connection refused"))

    status, message = check_status(check(CONFIG))

    assert status == "FAILED" and "Connection" in message
    assert len(requests_mock.request_history) <= 2

