"""The components behind nested streams, custom attributes and attribute metadata, on their own."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import dpath
import requests
import requests_mock
from airbyte_cdk.sources.declarative.partition_routers.list_partition_router import ListPartitionRouter
from airbyte_cdk.sources.declarative.schema import InlineSchemaLoader
from airbyte_cdk.sources.types import StreamSlice

from source_kustomer.custom_attributes import AttributePropertiesExtractor as PropertiesMap
from source_kustomer.custom_attributes import CustomAttributesSchemaLoader as CustomAttributesSchema
from source_kustomer.nested import PageBody
from source_kustomer.nested import PageItemsExtractor as PageItems
from source_kustomer.nested import ParentPageRequester as ParentPage
from source_kustomer.nested import ParentPageTransformation as ParentPageRecord
from source_kustomer.shared_pages import PageStore
from source_kustomer.shared_pages import SharedPagesRequester as SharedPages


def customer(n: int, updated_at: str, **attributes: Any) -> Dict[str, Any]:
    return {"type": "customer", "id": f"c{n}", "attributes": {"updatedAt": updated_at, **attributes}}


def page_slice(data: List[Dict[str, Any]], included: Optional[List[Dict[str, Any]]] = None) -> StreamSlice:
    return StreamSlice(partition={"page": "p1"}, cursor_slice={}, extra_fields={"page": PageBody(data, included or [])})


def rows(extractor: PageItems, data, included=None) -> List[Dict[str, Any]]:
    response = ParentPage(parameters={}).send_request(stream_slice=page_slice(data, included))
    return list(extractor.extract_records(response))


def test_parent_page_answers_from_the_slice_without_a_request():
    with requests_mock.Mocker() as mocker:  # any real request would fail: nothing is mocked
        response = ParentPage(parameters={}).send_request(stream_slice=page_slice([customer(1, "t")]))
        assert mocker.call_count == 0
    assert response.status_code == 200 and response.json() == {"data": [customer(1, "t")], "included": []}


def test_parent_page_record_hands_the_page_over_in_one_value_dpath_does_not_walk():
    record = {"data": [customer(1, "t")], "included": [customer(2, "t")], "links": {"self": "/x"}, "meta": {}, "page_key": "k", "updated_at": "t"}
    ParentPageRecord(parameters={}).transform(record)

    assert set(record) == {"page_key", "updated_at", "page"}
    assert (record["page"].data, record["page"].included) == ([customer(1, "t")], [customer(2, "t")])
    assert dpath.get(record, ["page"]) is record["page"]  # found at the top, and nothing inside it is visited


def test_page_items_one_row_per_array_item_with_parent_id_cursor_and_position():
    extractor = PageItems(parameters={"query_context": "customer", "items_at": ["attributes", "sharedEmails"]})
    data = [
        customer(1, "2025-01-01T00:00:00.000Z", sharedEmails=[{"email": "a@x", "verifiedAt": None}, {"email": "b@x"}]),
        customer(2, "2025-01-02T00:00:00.000Z", sharedEmails=[]),
        customer(3, "2025-01-03T00:00:00.000Z"),  # no such array at all
        {"type": "company", "id": "o1", "attributes": {"sharedEmails": [{"email": "c@x"}]}},  # not a parent
    ]

    assert rows(extractor, data) == [
        {"email": "a@x", "verified_at": None, "customer_id": "c1", "customer_updated_at": "2025-01-01T00:00:00.000Z", "position": 0},
        {"email": "b@x", "customer_id": "c1", "customer_updated_at": "2025-01-01T00:00:00.000Z", "position": 1},
    ]


def test_page_items_plain_values_parents_in_included_and_several_arrays():
    members = PageItems(parameters={"parent": "team", "items_at": ["attributes", "members"]})
    assert rows(members, [{"type": "team", "id": "t1", "attributes": {"members": ["u1", "u2"]}}]) == [
        {"id": "u1", "team_id": "t1", "team_updated_at": None, "position": 0},
        {"id": "u2", "team_id": "t1", "team_updated_at": None, "position": 1},
    ]

    criteria = PageItems(parameters={"parent": "sla_version", "items_at": [["attributes", "criteria", "and"], ["attributes", "criteria", "or"]]})
    version = {"type": "sla_version", "id": "v1", "attributes": {"criteria": {"and": [{"a": 1}], "or": [{"b": 2}, {"c": 3}]}}}
    assert [(r["group"], r["position"], r["sla_version_id"]) for r in rows(criteria, [{"type": "sla", "id": "s1"}], [version])] == [
        ("and", 0, "v1"), ("or", 0, "v1"), ("or", 1, "v1"),
    ]


def test_shared_pages_sends_a_repeated_request_once_per_sync():
    class Requester:
        calls = 0

        def get_url_base(self, **_: Any) -> str:
            return "https://api.kustomerapp.com"

        def get_path(self, **_: Any) -> str:
            return "/v1/customers/search"

        def get_url(self, **_: Any) -> str:
            return self.get_url_base() + self.get_path()

        def get_request_params(self, **_: Any) -> Dict[str, Any]:
            return {"page": 1}

        def get_request_body_json(self, stream_slice=None, **_: Any) -> Dict[str, Any]:
            return {"queryContext": "customer", "window": stream_slice["start_time"]}

        def send_request(self, stream_slice=None, **_: Any) -> requests.Response:
            Requester.calls += 1
            response = requests.Response()
            response.status_code, response._content, response.url = 200, json.dumps({"data": [Requester.calls]}).encode(), self.get_url()
            response.request = requests.Request("POST", response.url).prepare()
            return response

    shared = SharedPages(requester=Requester(), parameters={}, config={"sync_started_at": "2025-06-01T00:00:00.000000Z"})
    window = {"start_time": "2025"}
    assert shared.send_request(stream_slice=window).json() == {"data": [1]}
    assert shared.send_request(stream_slice=window).json() == {"data": [1]}  # from the store
    assert shared.send_request(stream_slice={"start_time": "2026"}).json() == {"data": [2]}  # another question
    next_sync = SharedPages(requester=Requester(), parameters={}, config={"sync_started_at": "2025-06-02T00:00:00.000000Z"})
    assert next_sync.send_request(stream_slice=window).json() == {"data": [3]}  # a new sync asks again
    assert Requester.calls == 3


def metadata_response(properties: Dict[str, Any], status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"data": {"type": "metadata", "id": "customer", "attributes": {"properties": properties}}}).encode()
    return response


PROPERTIES = {
    "tierStr": {"type": "string", "displayName": "Tier"},
    "totalSpentNum": {"type": "number"},
    "lastOrderAt": {"type": "date"},
    "vipBool": {"type": "boolean"},
    "sizesStr": {"type": "string", "multi": True},
    "oddThing": {"type": "geo"},
}


def test_properties_map_one_row_per_attribute_with_its_column():
    rows_ = list(PropertiesMap(parameters={}).extract_records(metadata_response(PROPERTIES)))
    assert rows_[0] == {"name": "tierStr", "column": "custom_tier_str", "type": "string", "display_name": "Tier"}
    assert [r["column"] for r in rows_] == ["custom_tier_str", "custom_total_spent_num", "custom_last_order_at", "custom_vip_bool", "custom_sizes_str", "custom_odd_thing"]


def test_custom_attributes_schema_adds_typed_columns_and_keeps_the_base():
    class Metadata:
        def __init__(self, response: requests.Response) -> None:
            self.response = response

        def send_request(self, **_: Any) -> requests.Response:
            return self.response

    base = InlineSchemaLoader(schema={"type": "object", "properties": {"id": {"type": "string"}}}, parameters={})
    schema = CustomAttributesSchema(base=base, metadata_requester=Metadata(metadata_response(PROPERTIES)), parameters={}).get_json_schema()

    columns = schema["properties"]
    assert columns["id"] == {"type": "string"}
    assert columns["custom_tier_str"] == {"type": ["string", "null"]}
    assert columns["custom_total_spent_num"] == {"type": ["number", "null"]}
    assert columns["custom_last_order_at"] == {"type": ["string", "null"], "format": "date-time"}
    assert columns["custom_vip_bool"] == {"type": ["boolean", "null"]}
    assert columns["custom_sizes_str"] == {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
    assert columns["custom_odd_thing"] == {}  # an unknown type: any value
    assert columns["custom"]["properties"]["total_spent_num"] == {"type": ["number", "null"]}
    assert "custom_tier_str" not in base.get_json_schema()["properties"]  # the base is not changed

    none_defined = CustomAttributesSchema(base=base, metadata_requester=Metadata(metadata_response({}, status=404)), parameters={})
    assert set(none_defined.get_json_schema()["properties"]) == {"id", "custom"}
