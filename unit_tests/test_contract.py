"""source_kustomer/contract.py on its own: Kustomer's published API contract as data. Which endpoint a
request goes to (endpoint_for), what in a request Kustomer does not document (problems, search_problems),
the search attribute of each context's updatedAt, and what the connector relies on beyond the documents
(relied_on). The contract held on every request of the end-to-end suite is integration_tests/test_contract.py's."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from source_kustomer import contract
from source_kustomer.contract import ARCHIVE, ENDPOINTS, REGIONS, SEARCH, SEARCHES, AttributeSet, endpoint_for, problems, relied_on, updated_at_attribute
from unit_tests.manifest_streams import LIST_ENDPOINTS, LIST_STREAMS, SEARCH_STREAMS

ID = "0123456789abcdef01234567"


def search_body(context: str = "conversation", **extra: Any) -> Dict[str, Any]:
    """A search body as the connector sends it."""
    attribute = updated_at_attribute(context)
    return {"queryContext": context, "includeDeleted": True,
            "and": [{attribute: {"gte": "2025-01-01T00:00:00.000000Z"}}, {attribute: {"lte": "2025-06-01T00:00:00.000000Z"}}],
            "sort": [{attribute: "asc"}], **extra}


# --- endpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,key",
    [
        ("GET", "/v1/users", "GET /v1/users"),
        ("get", "/v1/users/", "GET /v1/users"),  # any case, a trailing slash
        ("GET", f"/v1/conversations/{ID}/events", "GET /v1/conversations/{id}/events"),
        ("GET", "/v1/metadata/kobject.orders", "GET /v1/metadata/{resource}"),
        ("POST", "/v1/customers/search", f"POST {SEARCH}"),
        ("POST", "/v1/customers/archive/search", f"POST {ARCHIVE}"),
    ],
)
def test_a_request_goes_to_the_endpoint_its_method_and_path_match(method, path, key):
    assert endpoint_for(method, path).key == key


@pytest.mark.parametrize("method,path", [("POST", "/v1/users"), ("GET", "/v1/customers/search"), ("GET", f"/v1/conversations/{ID}"),
                                         ("GET", f"/v1/conversations/{ID}/events/extra"), ("GET", "/v1/unknown")])
def test_a_request_to_no_documented_endpoint_has_none(method, path):
    assert endpoint_for(method, path) is None


def test_each_endpoint_is_listed_once_with_where_it_is_documented_and_roles_in_both_forms_where_any():
    keys = [endpoint.key for endpoint in ENDPOINTS]
    assert len(keys) == len(set(keys))
    for endpoint in ENDPOINTS:
        assert endpoint.source and endpoint.method in ("GET", "POST") and endpoint.path.startswith("/v1/")
        assert not (endpoint.any_key and endpoint.roles)
        if endpoint.roles:
            assert any(role.startswith("org.permission.") for role in endpoint.roles), endpoint.key


def test_every_stream_of_the_manifest_reads_an_endpoint_of_the_contract_within_its_page_size():
    for stream, endpoint in LIST_ENDPOINTS.items():
        documented = endpoint_for("GET", "/v1/" + endpoint.split("?")[0])
        assert documented is not None, stream
        assert LIST_STREAMS[stream] <= (documented.max_page_size or 100), stream
    assert SEARCH_STREAMS and all(SEARCHES[SEARCH].contexts.match(context) for context in SEARCH_STREAMS.values())


def test_each_region_names_its_pod_and_api_host():
    assert {name: (pod, host) for name, (pod, host, _) in REGIONS.items()} == {
        "us": ("prod1", "https://api.kustomerapp.com"), "eu": ("prod2", "https://api.prod2.kustomerapp.com"),
        "india": ("prod4", "https://api.prod4.kustomerapp.com")}


# --- problems --------------------------------------------------------------------------------------


def test_a_documented_request_has_no_problem():
    assert problems("GET", "/v1/users", [("deleted", "false"), ("page", "2"), ("pageSize", "500")], None) == []
    assert problems("POST", SEARCH, [("page", "1"), ("pageSize", "500")], search_body("customer")) == []
    assert problems("POST", ARCHIVE, [("page", "1")], search_body("message")) == []


def test_an_undocumented_endpoint_or_query_parameter_is_named():
    assert problems("GET", "/v1/unknown", [], None) == ["GET /v1/unknown is not an endpoint Kustomer documents"]
    assert problems("GET", "/v1/teams", [("pageSize", "100"), ("sort", "name")], None) == [
        "query parameter 'sort' is not documented for GET /v1/teams"]


def test_what_the_connector_relies_on_is_no_problem_but_any_other_undocumented_search_is():
    assert problems("POST", SEARCH, [], search_body("company")) == []  # company_updated_at: relied on
    assert problems("POST", SEARCH, [], search_body("note", sort=[{"note_created_at": "asc"}])) == [
        "sort attribute 'note_created_at' is not documented"]


@pytest.mark.parametrize(
    "body,problem",
    [
        (search_body(fields=["id"], extra=1), "body field 'extra' is not documented"),
        (search_body("tag"), "queryContext 'tag' is not documented"),
        ({**search_body(), "queryContext": None}, "queryContext None is not documented"),
        (search_body(**{"or": [{"conversation_secret": {"equals": 1}}]}), "filter attribute 'conversation_secret' is not documented"),
        (search_body(**{"not": {"conversation_name": {"like": "x"}}}), "operator 'like' is not documented"),
        (search_body(**{"or": [{"and": [{"conversation_name": "x"}]}]}), "criterion 'conversation_name' is not an {operator: value} object"),
        ("not an object", "the search body is not a JSON object"),
    ],
)
def test_each_undocumented_part_of_a_search_body_is_named(body, problem):
    assert problem in problems("POST", SEARCH, [], body)


def test_the_archive_documents_its_own_contexts_and_attributes():
    assert problems("POST", ARCHIVE, [], search_body("note")) == [
        "queryContext 'note' is not documented", "filter attribute 'note_updated_at' is not documented",
        "filter attribute 'note_updated_at' is not documented", "sort attribute 'note_updated_at' is not documented"]
    assert problems("POST", ARCHIVE, [], search_body("kobject_orders")) == []
    assert "body field 'fields' is not documented" in problems("POST", ARCHIVE, [], search_body(fields=["id"]))


def test_custom_attributes_of_the_org_are_documented_filters():
    body = search_body("customer", **{"or": [{"customer_custom_tier_str": {"equals": "gold"}}, {"kobject_custom_orders_total_num": {"gt": 1}}]})

    assert problems("POST", SEARCH, [], body) == []


# --- attributes and what is relied on -------------------------------------------------------------


@pytest.mark.parametrize("context,attribute", [("customer", "customer_updated_at"), ("conversation", "conversation_updated_at"),
                                               ("kobject", "kobject_updated_at"), ("kobject_orders", "kobject_updated_at")])
def test_each_context_s_updated_at_attribute(context, attribute):
    assert updated_at_attribute(context) == attribute


def test_an_attribute_set_holds_its_names_and_what_its_patterns_match():
    attributes = AttributeSet.of("a_name other", "^kobject_.*_id$")

    assert "a_name" in attributes and "kobject_orders_id" in attributes
    assert "kobject_orders_name" not in attributes and "a" not in attributes and 7 not in attributes


def test_everything_relied_on_beyond_the_documents_is_named_with_why():
    found = relied_on()

    assert {"GET /v1/tags", "GET /v1/slas", f"{SEARCH} sort conversation_updated_at", f"{SEARCH} filter company_updated_at"} <= set(found)
    assert all(len(why) > 40 for why in found.values())
    undocumented = {e.key for e in ENDPOINTS if e.source.startswith("no Kustomer document")}
    assert undocumented <= set(found)  # an endpoint Kustomer does not document is there only with a reason


def test_a_relied_on_sort_is_one_kustomer_does_not_document():
    for attribute in SEARCHES[SEARCH].relied_on_sorts.names:
        assert attribute not in SEARCHES[SEARCH].sorts
    assert contract.OPERATORS >= {"gte", "lte"}
