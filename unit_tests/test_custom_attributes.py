"""source_kustomer/custom_attributes.py: the org's own attributes, from Kustomer's metadata. One row per
attribute (AttributePropertiesExtractor) and one typed column each (CustomAttributesSchemaLoader) on
their own, then through the manifest: discover's schema and the custom_attribute_metadata stream."""

from __future__ import annotations

import json
from typing import Any, Dict

import requests
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.declarative.schema import InlineSchemaLoader

from source_kustomer import SourceKustomer
from source_kustomer.custom_attributes import AttributePropertiesExtractor, CustomAttributesSchemaLoader
from unit_tests.conftest import CONFIG, read_stream
from unit_tests.kustomer_mock import BASE_URL


def metadata(properties: Dict[str, Any], resource: str = "customer") -> Dict[str, Any]:
    """Kustomer's answer to GET /v1/metadata/{resource}."""
    return {"data": {"type": "metadata", "id": resource, "attributes": {"properties": properties}}}


def metadata_response(properties: Dict[str, Any], status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(metadata(properties)).encode()
    return response


PROPERTIES = {
    "tierStr": {"type": "string", "displayName": "Tier"},
    "totalSpentNum": {"type": "number"},
    "lastOrderAt": {"type": "date"},
    "vipBool": {"type": "boolean"},
    "sizesStr": {"type": "string", "multi": True},
    "oddThing": {"type": "geo"},
}


# --- AttributePropertiesExtractor --------------------------------------------------------------------


def test_attribute_properties_one_row_per_attribute_with_its_column():
    rows = list(AttributePropertiesExtractor(parameters={}).extract_records(metadata_response(PROPERTIES)))
    assert rows[0] == {"name": "tierStr", "column": "custom_tier_str", "type": "string", "display_name": "Tier"}
    assert [r["column"] for r in rows] == ["custom_tier_str", "custom_total_spent_num", "custom_last_order_at", "custom_vip_bool", "custom_sizes_str", "custom_odd_thing"]


def test_an_answer_without_properties_gives_no_rows_and_a_definition_that_is_not_an_object_only_the_name():
    empty = requests.Response()
    empty.status_code, empty._content = 404, b""

    assert list(AttributePropertiesExtractor(parameters={}).extract_records(empty)) == []
    assert list(AttributePropertiesExtractor(parameters={}).extract_records(metadata_response({}))) == []
    assert list(AttributePropertiesExtractor(parameters={}).extract_records(metadata_response({"oddStr": "text"}))) == [
        {"name": "oddStr", "column": "custom_odd_str"}]


# --- CustomAttributesSchemaLoader ------------------------------------------------------------------


class Metadata:
    def __init__(self, response: requests.Response) -> None:
        self.response = response

    def send_request(self, **_: Any) -> requests.Response:
        return self.response


BASE = InlineSchemaLoader(schema={"type": "object", "properties": {"id": {"type": "string"}}}, parameters={})


def test_custom_attributes_schema_adds_typed_columns_and_keeps_the_base():
    schema = CustomAttributesSchemaLoader(base=BASE, metadata_requester=Metadata(metadata_response(PROPERTIES)), parameters={}).get_json_schema()

    columns = schema["properties"]
    assert columns["id"] == {"type": "string"}
    assert columns["custom_tier_str"] == {"type": ["string", "null"]}
    assert columns["custom_total_spent_num"] == {"type": ["number", "null"]}
    assert columns["custom_last_order_at"] == {"type": ["string", "null"], "format": "date-time"}
    assert columns["custom_vip_bool"] == {"type": ["boolean", "null"]}
    assert columns["custom_sizes_str"] == {"type": ["array", "null"], "items": {"type": ["string", "null"]}}
    assert columns["custom_odd_thing"] == {}  # an unknown type: any value
    assert columns["custom"]["properties"]["total_spent_num"] == {"type": ["number", "null"]}
    assert "custom_tier_str" not in BASE.get_json_schema()["properties"]  # the base is not changed

    none_defined = CustomAttributesSchemaLoader(base=BASE, metadata_requester=Metadata(metadata_response({}, status=404)), parameters={})
    assert set(none_defined.get_json_schema()["properties"]) == {"id", "custom"}


def test_a_metadata_request_that_was_ignored_leaves_the_base_schema():
    class Ignored:
        def send_request(self, **_: Any) -> None:
            return None

    schema = CustomAttributesSchemaLoader(base=BASE, metadata_requester=Ignored(), parameters={}).get_json_schema()

    assert schema["properties"] == {"id": {"type": "string"}, "custom": {"type": ["object", "null"], "additionalProperties": True}}


# --- through the manifest ----------------------------------------------------------------------------


def test_discover_types_each_custom_attribute_of_a_resource_the_org_defined(requests_mock):
    requests_mock.get(f"{BASE_URL}/v1/metadata/customer", json=metadata(PROPERTIES))

    catalog = SourceKustomer(None, CONFIG, None).discover(None, CONFIG)

    streams = {stream.name: stream.json_schema["properties"] for stream in catalog.streams}
    assert streams["customers"]["custom_total_spent_num"] == {"type": ["number", "null"]}
    assert streams["customers"]["custom_last_order_at"] == {"type": ["string", "null"], "format": "date-time"}
    assert "custom_total_spent_num" not in streams["conversations"]  # Kustomer answered 404: none defined


def test_the_custom_attribute_metadata_stream_lists_each_resource_s_attributes(requests_mock):
    requests_mock.get(f"{BASE_URL}/v1/metadata/customer", json=metadata({"tierStr": {"type": "string"}}))
    requests_mock.get(f"{BASE_URL}/v1/metadata/conversation", json=metadata({"orderNum": {"type": "number"}}, "conversation"))
    requests_mock.get(f"{BASE_URL}/v1/klasses?status=existing_only", json={"data": [{"type": "klass", "id": "k1", "attributes": {"name": "orders"}}],
                                                                         "links": {"next": None}})
    requests_mock.get(f"{BASE_URL}/v1/metadata/kobject.orders", json=metadata({"skusTxt": {"type": "text"}}, "kobject.orders"))

    output = read_stream("custom_attribute_metadata", sync_mode=SyncMode.full_refresh)

    assert output.errors == []
    assert sorted((m.record.data["resource"], m.record.data["column"], m.record.data["type"]) for m in output.records) == [
        ("conversation", "custom_order_num", "number"), ("customer", "custom_tier_str", "string"), ("kobject.orders", "custom_skus_txt", "text")]
