"""Kustomer's JSON:API resources as rows: flat, snake_cased, named as the Stitch (singer) schema names them.

- ``FlattenJsonApiResource`` turns ``{type, id, attributes, relationships, links}`` into one row.
- ``snake_case`` names a column; ``value_at`` follows a key path; ``updated_at_of`` and
  ``parse_instant`` read a resource's timestamp.
"""

import json
import logging
import re
from dataclasses import InitVar, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Dict, List, Mapping, MutableMapping, Optional

from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.datetime_helpers import ab_datetime_parse

_FIRST_CAP = re.compile(r"(.)([A-Z][a-z]+)")
_ALL_CAP = re.compile(r"([a-z0-9])([A-Z])")

# The conversation carries ``sla`` both as an attribute (SLA status) and as a relationship (the SLA
# object). Stitch keeps the attribute as ``sla`` and moves the relationship to ``sla_data``; an SLA
# version's ``sla`` is only a relationship and keeps its name.
_RELATIONSHIP_RENAMES = {("conversation", "sla"): "sla_data"}

# The row's own identity: JSON:API forbids a relationship of that name, so one never replaces them.
_ENVELOPE = frozenset({"id", "type", "links"})

_JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list", dict: "an object"}

logger = logging.getLogger("airbyte")


@lru_cache(maxsize=65536)
def snake_case(name: str) -> str:
    """``lastMessageUnrespondedTo`` -> ``last_message_unresponded_to``; hyphenated keys stay as they are.

    Stitch's column names, not the CDK's KeysToSnakeCase: that one splits digits (``os00Str`` would be
    ``os_00_str``, Stitch has ``os00_str``) and hyphens, so a Stitch user's columns would change."""
    return _ALL_CAP.sub(r"\1_\2", _FIRST_CAP.sub(r"\1_\2", name)).lower()


def snake_case_keys(value: Any) -> Any:
    """Snake-case every dict key, at any depth (custom attributes such as ``totalSpentNum`` included)."""
    if isinstance(value, dict):
        return {snake_case(key): snake_case_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snake_case_keys(item) for item in value]
    return value


@dataclass
class FlattenJsonApiResource(RecordTransformation):
    """Kustomer answers in JSON:API: ``{type, id, attributes{camelCase}, relationships{x: {data}}, links}``.

    The row keeps ``id``, ``type`` and ``links``, lifts every attribute to the top level, and turns each
    relationship that carries ``data`` into a field holding ``{id, type}`` (a list for to-many), all
    keys snake_cased, so a Stitch user finds the columns they already have. The org's own attributes
    (``custom: {tierStr}``) stay in ``custom`` as Stitch has them and are lifted to ``custom_tier_str``.

    Kustomer does not always keep to JSON:API. ``attributes`` or ``relationships`` that are not an
    object (a list, a string) would stop the whole stream (``'list' object has no attribute 'items'``),
    and a relationship whose ``data`` is neither null, an identifier nor a list of identifiers would
    put a string where the schema has a reference. The row keeps all that is well formed, and a
    warning names the resource and what was left out of it. Attribute values are passed on as sent,
    whatever their type; a relationship never replaces the row's own ``id``, ``type`` or ``links``.
    """

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        attributes = _members(record, "attributes")
        relationships = _members(record, "relationships")
        for key, value in snake_case_keys(attributes).items():
            record.setdefault(key, value)
        # Custom attributes also get a column each (custom_tier_str ...), typed by CustomAttributesSchemaLoader.
        if isinstance(record.get("custom"), dict):
            for key, value in record["custom"].items():
                record.setdefault(f"custom_{key}", value)
        for name, relationship in relationships.items():
            if isinstance(relationship, dict) and "data" in relationship:
                key = snake_case(name)
                key = _RELATIONSHIP_RENAMES.get((record.get("type"), key), key)
                if key in _ENVELOPE:
                    _left_out(record, f"a relationship named {name[:80]!r}, which would replace its own {key}")
                else:
                    record[key] = _linkage(record, name, relationship["data"])
            elif relationship is not None and not isinstance(relationship, dict):
                _left_out(record, f"relationship {name[:80]!r} as {_kind(relationship)}, not an object")


def _members(record: MutableMapping[str, Any], name: str) -> Mapping[str, Any]:
    """A resource's ``attributes`` or ``relationships`` (taken out of the row): an object, or nothing."""
    members = record.pop(name, None)
    if isinstance(members, dict):
        return members
    if members is not None and members != []:
        _left_out(record, f"{name} as {_kind(members)}, not an object")
    return {}


def _linkage(record: Mapping[str, Any], name: str, data: Any) -> Any:
    """A relationship's ``data`` as JSON:API defines it: null, one identifier or a list of identifiers.

    The identifiers of a list are kept and the items that are not one are dropped; ``data`` that is
    something else (``"x"``, a number) becomes null.
    """
    if data is None or isinstance(data, dict):
        return data
    if isinstance(data, list):
        if all(isinstance(item, dict) for item in data):
            return data
        identifiers = [item for item in data if isinstance(item, dict)]
        _left_out(record, f"relationship {name[:80]!r} listing {len(data) - len(identifiers)} item(s) that are not identifiers")
        return identifiers
    _left_out(record, f"relationship {name[:80]!r} whose data is {_kind(data)}, not an identifier")
    return None


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _left_out(record: Mapping[str, Any], what: str) -> None:
    """One warning per malformed resource part, naming the resource: the row goes on without it."""
    logger.warning(
        f"Kustomer sent {str(record.get('type'))[:80]} {str(record.get('id'))[:80]} with {what}: "
        "that part is left out of its row, the rest of the row is kept."
    )


def value_at(value: Any, path: List[str]) -> Any:
    """The value at a path of plain keys, or None where the path leaves the objects."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value



_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


def parse_instant(value: str) -> datetime:
    """A Kustomer timestamp as an aware UTC time.

    Kustomer writes ISO 8601 with milliseconds and ``Z``, which the standard library parses about 20
    times faster than the CDK's general parser (that cost was a third of the CPU of a search sync,
    parsing every record's ``updatedAt`` twice); anything else goes to the CDK's parser, which raises
    ``ValueError`` on what is not a time.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ab_datetime_parse(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def updated_at_of(resource: Any) -> Optional[str]:
    """A resource's updatedAt, also once ``FlattenJsonApiResource`` has flattened it in place.

    Only a date-time text counts: Kustomer always sends one, but a resource with a null, a number or
    other text there must neither stop the search nor send it to query from a value Kustomer refuses.
    """
    if not isinstance(resource, dict):
        return None
    attributes = resource.get("attributes")
    if isinstance(attributes, dict):
        value = attributes.get("updatedAt")
    else:
        value = resource.get("updated_at") if "id" in resource else None
    return value if isinstance(value, str) and _DATE_TIME.match(value) else None


def instant_or_none(value: Any) -> Optional[datetime]:
    """A cursor value as a time, or None when it is not one (Kustomer junk never stops a sync)."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


@dataclass
class JsonTextFields(RecordTransformation):
    """Columns whose schema is text though Kustomer sends other types too: a conversation's CSAT
    ``satisfaction`` (a number; Stitch types it text) and a snooze's ``value`` (milliseconds, an epoch,
    or ``{day, time}``). A value that is not text becomes its JSON text (``4`` -> ``"4"``), so a
    destination maps one type and nothing is lost. (The CDK's AddFields with a Jinja condition does the
    same at about 120 microseconds a record, a fifth of what a whole record costs.)"""

    fields: List[str]
    parameters: InitVar[Mapping[str, Any]]

    def transform(self, record: Dict[str, Any], config: Optional[Config] = None, stream_state: Optional[StreamState] = None,
                  stream_slice: Optional[StreamSlice] = None) -> None:
        for name in self.fields:
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                record[name] = json.dumps(value, sort_keys=True)

