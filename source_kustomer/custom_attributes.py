"""Custom attributes: each org defines its own, so their columns are discovered from Kustomer's metadata.

- ``AttributePropertiesExtractor``: one row per attribute of ``GET /v1/metadata/{resource}``.
- ``CustomAttributesSchemaLoader``: a stream's schema plus one typed column per attribute.
"""

import json
from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Iterable, Mapping, MutableMapping

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader
from airbyte_cdk.sources.types import Config

from source_kustomer.records import snake_case, snake_case_keys, value_at


# Kustomer's attribute types (GET /v1/metadata/{resource}) as JSON schema.
_CUSTOM_TYPES: Dict[str, Dict[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "text": {"type": ["string", "null"]},
    "url": {"type": ["string", "null"]},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date": {"type": ["string", "null"], "format": "date-time"},
}


@dataclass
class AttributePropertiesExtractor(RecordExtractor):
    """Rows from Kustomer's attribute metadata, which is one object keyed by attribute name.

    ``GET /v1/metadata/{resource}`` answers ``{data: {attributes: {properties: {tierStr: {type, ...}}}}}``;
    each property becomes a row with its ``name``, the ``column`` the connector gives it
    (``custom_tier_str``) and its definition, snake_cased.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = response.json() if response.content else {}
        properties = value_at(body, ["data", "attributes", "properties"]) if isinstance(body, dict) else None
        for name, definition in (properties or {}).items():
            row = snake_case_keys(definition) if isinstance(definition, dict) else {}
            yield {"name": name, "column": f"custom_{snake_case(name)}", **row}


@dataclass
class CustomAttributesSchemaLoader(SchemaLoader):
    """A stream's schema plus one typed column per custom attribute the org has defined.

    Kustomer lets every org add attributes (``tierStr``, ``totalSpentNum``, ``lastOrderAt``) to
    customers, conversations, companies, messages and each Klass; their types are only known from
    ``GET /v1/metadata/{resource}``. ``base`` is the static schema; ``metadata_requester`` calls that
    endpoint (read as ``AttributePropertiesExtractor`` reads it). Each attribute becomes a typed ``custom_<name>``
    column and a typed property of the ``custom`` object. Without metadata (404: none defined) the
    base schema stands.
    """

    base: SchemaLoader
    metadata_requester: Requester
    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)

    def get_json_schema(self) -> Mapping[str, Any]:
        schema = json.loads(json.dumps(self.base.get_json_schema()))
        columns = schema.setdefault("properties", {})
        custom = columns.setdefault("custom", {"type": ["object", "null"], "additionalProperties": True})
        response = self.metadata_requester.send_request()
        if response is None or response.status_code != 200:
            return schema  # 404: no custom attributes defined for this resource
        for row in AttributePropertiesExtractor(parameters={}).extract_records(response):
            column_type = dict(_CUSTOM_TYPES.get(str(row.get("type")), {}))
            if row.get("multi") and column_type:
                column_type = {"type": ["array", "null"], "items": column_type}
            columns[row["column"]] = column_type
            custom.setdefault("properties", {})[snake_case(row["name"])] = column_type
        return schema
