"""Stream level, hostile data: whatever shape Kustomer gives its records, the sync goes on and emits
valid rows.

Hypothesis builds pages of JSON:API resources with nulls everywhere, values of the wrong type, huge
strings, any unicode (emoji, right-to-left text, NUL, half of a surrogate pair), attributes and
relationships missing, null or not objects, relationships in every malformed form, deep nesting and
keys with odd characters, and serves them to a search stream and a list stream read in one sync
(a source is slow to build: one sync per example keeps the file quick). For every example:

- the read ends without an error, and every resource is emitted exactly once (the connector leaves
  out malformed parts of a resource, never the resource);
- each part left out (attributes or relationships that are not an object, a relationship that is
  not an object, ``data`` that is not an identifier) is named in a warning with the resource's id,
  and a well-formed resource draws no warning;
- every attribute reaches its snake_cased column as Kustomer sent it, half surrogate pairs aside
  (they become U+FFFD);
- every row validates against the schema ``discover`` gives, except in columns holding a value that
  Kustomer itself sent with another type: the manifest asks the CDK for no type normalisation, so
  such a value is passed on as sent (the destination types it), never turned into something else;
  a relationship column always holds JSON:API linkage (null, an object or a list of objects);
- every row is written by orjson, as the CDK writes it: none falls back to json or is lost (rows
  nested deeper than orjson writes, 254 levels, aside: see the test of those below).

On a search stream, a resource without a usable updatedAt (null, missing, a number, text that is not
a date, attributes that are not an object) is emitted too, once, the cursor saying it cannot read it;
the tests at the end hold the search engine to that (it pages on the dated resources only).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Tuple

import orjson
import pytest
import requests_mock
from airbyte_cdk.models import Level, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from source_kustomer import SourceKustomer
from source_kustomer.records import snake_case, snake_case_keys
from source_kustomer.search import SearchKeysetPagination
from unit_tests.conftest import CONFIG, LIST_STREAMS, SEARCH_STREAMS, ids, read_stream
from unit_tests.kustomer_mock import (
    ARCHIVE_AGE,
    BASE_URL,
    MockKustomer,
    iso,
    kustomer_error,
    object_id,
    page_and_size,
    parse,
    serve_plain_org,
)
from unit_tests.manifest_streams import LIST_ENDPOINTS

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
MISSING = object()  # a key left out of the resource altogether
ENVELOPE = {"id", "type", "links"}
RENAMED = {"sla": "sla_data"}  # the conversation's sla relationship, as Stitch names its column
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MEGABYTE = "x" * 1_000_000

HOSTILE = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates (category Cs) included
ODD_TEXTS = [
    "",
    " ",
    "\u0000",
    "NUL\u0000inside",
    "😀",
    "👩‍👩‍👧‍👦",
    "שלום עולם",
    "مرحبا",
    "\u202eoverride\u202c",
    "\ufeffBOM",
    "\ud83d",  # half an emoji: the text was cut between the two halves of its surrogate pair
    "cut here \ud83d",
    "\ude00 low half first",
    "null",
    '"quoted" \\ back\\slash',
    "line\nbreak\ttab",
]
texts = st.one_of(st.text(ANY_CHARACTER, max_size=30), st.sampled_from(ODD_TEXTS))
numbers = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
ODD_KEYS = ["", " ", "a key", "dotted.key", "camelCase2Go", "HTMLBody", "x-hyphen", "$ref", "😀", "nul\u0000", "half\ud800", "ID", "Custom"]
keys = st.one_of(st.sampled_from(ODD_KEYS), st.text(ANY_CHARACTER, max_size=12))


def nested(depth: int, leaf: Any) -> Any:
    for level in range(depth):
        leaf = {f"level{level}": leaf} if level % 2 else [leaf]
    return leaf


def mostly(usual: st.SearchStrategy[Any], *hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else one of ``hostile``: pages mix well-formed resources with the rest."""
    return st.sampled_from([0, 1, 2, 3]).flatmap(lambda pick: usual if pick else st.one_of(*hostile))


values = st.one_of(
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=10),
    st.builds(nested, st.integers(10, 100), scalars),
)
# Columns the schemas type, sent with any value (a number for a name, a string for a count ...).
known_attributes = st.fixed_dictionaries(
    {},
    optional={
        "name": values,
        "createdAt": values,
        "messageCount": values,
        "deleted": values,
        "emails": values,
        "custom": st.one_of(st.dictionaries(keys, values, max_size=4), values),
        "satisfactionLevel": values,
    },
)
attribute_maps = st.builds(lambda known, other: {**known, **other}, known_attributes, st.dictionaries(keys, values, max_size=6))
not_objects = st.one_of(st.lists(values, min_size=1, max_size=3), texts, numbers, st.booleans())
attributes_fields = mostly(attribute_maps, st.sampled_from([None, MISSING, []]), not_objects)

identifiers = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "team", "customer", "org"]), "id": st.text(ANY_CHARACTER, min_size=1, max_size=24)},
    optional={"meta": st.dictionaries(keys, scalars, max_size=2)},
)
linkages = mostly(
    st.one_of(st.none(), identifiers, st.lists(identifiers, max_size=3)),
    texts,
    numbers,
    st.booleans(),
    st.lists(st.one_of(st.none(), numbers, texts, identifiers), min_size=1, max_size=4),
)
relationship_values = mostly(
    st.one_of(
        st.builds(lambda data: {"data": data}, linkages),
        st.builds(lambda data: {"data": data, "links": {"self": "/v1/x"}}, linkages),
        st.just({"links": {"self": "/v1/conversations/1/messages"}}),
        st.just({"meta": {"kobject": True}}),
        st.just({}),
        st.none(),
    ),
    not_objects,
)
RELATIONSHIP_NAMES = ["customer", "org", "createdBy", "assignedUsers", "sla", "queue", "userMentions", "messages", "shopify-orders"]
relationship_names = mostly(st.sampled_from(RELATIONSHIP_NAMES), st.sampled_from(["id", "Type", "links"]), keys)
relationship_maps = st.dictionaries(relationship_names, relationship_values, max_size=4)
relationships_fields = mostly(relationship_maps, st.sampled_from([None, MISSING, []]), not_objects)
links_fields = mostly(st.just({"self": "/v1/x"}), st.sampled_from([None, MISSING]), values)


def types_for(kind: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([kind, kind, kind, None, MISSING, 5])


def build(fields: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not MISSING}


def with_updated_at(attributes: Any, updated_at: Any) -> Any:
    """``attributes`` carrying ``updated_at`` (``MISSING``: without updatedAt) when they are an object."""
    if isinstance(attributes, dict):
        attributes = {key: value for key, value in attributes.items() if key != "updatedAt"}
        if updated_at is not MISSING:
            attributes["updatedAt"] = updated_at
    return attributes


@dataclass
class HostileSync:
    search_stream: str
    indexed: List[Tuple[datetime, Dict[str, Any]]]  # each resource with the instant Kustomer's index sorts it at
    list_stream: str
    listed: List[Dict[str, Any]]
    page_size: int


@st.composite
def hostile_syncs(draw: st.DrawFn) -> HostileSync:
    """A search stream and a list stream, their hostile resources, and the page size of the sync.

    The search resources span several pages, every one with its updatedAt (keyset pagination needs
    one), or a single page where updatedAt may also be null or missing and attributes not an object
    at all. The list resources have any updatedAt, and some an id that is null, missing or not a string.
    """
    paged = draw(st.booleans())
    search_stream, search_resources = draw(search_pages(paged))
    list_stream, listed = draw(list_pages())
    return HostileSync(search_stream, search_resources, list_stream, listed, draw(st.sampled_from([1, 2, 3])) if paged else 500)


@st.composite
def search_pages(draw: st.DrawFn, paged: bool) -> Tuple[str, List[Tuple[datetime, Dict[str, Any]]]]:
    stream = draw(st.sampled_from(sorted(SEARCH_STREAMS)))
    kind = SEARCH_STREAMS[stream]
    indexed, instant = [], T0
    for n in range(1, draw(st.integers(1, 10)) + 1):
        instant += timedelta(minutes=draw(st.integers(0, 2)))
        if paged:
            attributes = with_updated_at(draw(attribute_maps), iso(instant))
        else:
            attributes = with_updated_at(draw(attributes_fields), draw(st.sampled_from([iso(instant), iso(instant), None, MISSING])))
        resource = build(
            {
                "type": draw(types_for(kind)),
                "id": object_id(n),
                "attributes": attributes,
                "relationships": draw(relationships_fields),
                "links": draw(links_fields),
            }
        )
        indexed.append((instant, resource))
    return stream, indexed


@st.composite
def list_pages(draw: st.DrawFn) -> Tuple[str, List[Dict[str, Any]]]:
    stream = draw(st.sampled_from(sorted(LIST_STREAMS)))
    resources = []
    for n in range(101, draw(st.integers(101, 110)) + 1):  # ids apart from the search stream's
        updated_at = draw(st.one_of(st.sampled_from([iso(T0 + timedelta(minutes=n)), None, MISSING]), values))
        resource = build(
            {
                "type": draw(types_for(stream)),
                "id": draw(st.sampled_from([object_id(n), object_id(n), object_id(n), None, MISSING, n, ""])),
                "attributes": with_updated_at(draw(attributes_fields), updated_at),
                "relationships": draw(relationships_fields),
                "links": draw(links_fields),
            }
        )
        resources.append(resource)
    return stream, resources


# --------------------------------------------------------------------------------------------------
# Kustomer serving them
# --------------------------------------------------------------------------------------------------


def serve_search(mocker: requests_mock.Mocker, indexed: List[Tuple[datetime, Dict[str, Any]]]) -> None:
    """Kustomer's search over hostile resources, as ``MockKustomer`` serves it, except that a resource's
    place in the sort is its index instant, whatever its updatedAt attribute says (the index knows when
    an object changed even when the attribute served is broken). A bound that is not a date is refused,
    as Kustomer refuses it. Bodies are written by ``json.dumps``, so half a surrogate pair reaches the
    connector as the escape Kustomer sends, ``"\\ud83d"``."""

    def search(request: Any, context: Any) -> str:
        body = request.json()
        context_name = body["queryContext"]
        page, size = page_and_size(request)
        try:
            bounds = {op: parse(value) for criterion in body.get("and", []) for op, value in criterion[f"{context_name}_updated_at"].items()}
        except (AttributeError, TypeError, ValueError):
            context.status_code = 400
            return json.dumps(kustomer_error(400, "Invalid date"))
        archive = "/archive/" in request.path
        horizon = datetime.now(timezone.utc) - ARCHIVE_AGE
        matches = sorted(
            (
                (at, resource)
                for at, resource in indexed
                if (at < horizon) == archive and bounds.get("gte", at) <= at <= bounds.get("lte", at)
            ),
            key=lambda pair: (pair[0], pair[1]["id"]),
        )
        path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
        more = page * size < len(matches)
        return json.dumps(
            {
                "meta": {"pageSize": size, "page": page, "total": len(matches)},
                "data": [resource for _, resource in matches[(page - 1) * size : page * size]],
                "links": {"self": f"{path}?page={page}&pageSize={size}", "next": f"{path}?page={page + 1}&pageSize={size}" if more else None},
            }
        )

    mocker.post(f"{BASE_URL}/v1/customers/search", text=search)
    mocker.post(f"{BASE_URL}/v1/customers/archive/search", text=search)


def read_sync(sync: HostileSync) -> EntrypointOutput:
    """Both streams of ``sync`` read in one sync, as the CLI reads them."""
    config = {**CONFIG, "page_size": sync.page_size}
    catalog = CatalogBuilder().with_stream(sync.search_stream, SyncMode.incremental).with_stream(sync.list_stream, SyncMode.incremental).build()
    with requests_mock.Mocker() as mocker:
        MockKustomer(mocker).serve_list(LIST_ENDPOINTS[sync.list_stream], sync.listed)
        serve_search(mocker, sync.indexed)
        return read(SourceKustomer(catalog=catalog, config=config, state=None), config, catalog)


def read_search(stream: str, indexed: List[Tuple[datetime, Dict[str, Any]]], page_size: int = 500, **config: Any) -> EntrypointOutput:
    with requests_mock.Mocker() as mocker:
        serve_plain_org(mocker)
        serve_search(mocker, indexed)
        return read_stream(stream, {**CONFIG, "page_size": page_size, **config})


def read_list(stream: str, resources: List[Dict[str, Any]], page_size: int = 500) -> EntrypointOutput:
    with requests_mock.Mocker() as mocker:
        MockKustomer(mocker).serve_list(LIST_ENDPOINTS[stream], resources)
        return read_stream(stream, {**CONFIG, "page_size": page_size})


@pytest.fixture(autouse=True)
def endless_paging_fails(monkeypatch) -> None:
    """A search that asks for the same page again and again (answered from the page store, so without
    a request to count) fails the read here instead of hanging the suite."""
    next_page_token = SearchKeysetPagination.next_page_token

    def counted(self: SearchKeysetPagination, *args: Any, **kwargs: Any) -> Any:
        self.__dict__["_pages_asked"] = self.__dict__.get("_pages_asked", 0) + 1
        if self.__dict__["_pages_asked"] > 200:
            raise RuntimeError("the search asked for more than 200 pages of a handful of records: it loops")
        return next_page_token(self, *args, **kwargs)

    monkeypatch.setattr(SearchKeysetPagination, "next_page_token", counted)


# --------------------------------------------------------------------------------------------------
# What Kustomer sent, and what the row must hold
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def schemas() -> Mapping[str, Mapping[str, Any]]:
    with requests_mock.Mocker() as mocker:
        serve_plain_org(mocker)
        catalog = SourceKustomer(None, dict(CONFIG), None).discover(None, dict(CONFIG))
    return {stream.name: stream.json_schema for stream in catalog.streams}


def as_read(value: Any) -> Any:
    """``value`` as the connector reads it from the page: half surrogate pairs replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {as_read(key): as_read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_read(item) for item in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1``, ``1.0`` and ``true`` differ."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


def usable(resource_id: Any) -> bool:
    return isinstance(resource_id, str) and resource_id != ""


def relationships_with_data(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """Column -> the identifiers Kustomer sent in a relationship's data (JSON:API linkage)."""
    relationships = as_read(resource.get("relationships"))
    columns: Dict[str, Any] = {}
    for name, relationship in (relationships.items() if isinstance(relationships, dict) else ()):
        column = RENAMED.get(snake_case(name), snake_case(name))
        if isinstance(relationship, dict) and "data" in relationship and column not in ENVELOPE:
            data = relationship["data"]
            columns[column] = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else data if isinstance(data, dict) else None
    return columns


def attribute_columns(resource: Mapping[str, Any]) -> Dict[str, Any]:
    """Column -> value for each attribute whose column no other attribute, relationship or the row's
    own id, type and links also claims."""
    attributes = as_read(resource.get("attributes"))
    if not isinstance(attributes, dict):
        return {}
    claimed = Counter(snake_case(key) for key in attributes)
    taken = ENVELOPE | set(relationships_with_data(resource))
    return {snake_case(key): snake_case_keys(value) for key, value in attributes.items() if claimed[snake_case(key)] == 1 and snake_case(key) not in taken}


def sent_for(resource: Mapping[str, Any], column: str) -> List[Any]:
    """Every value Kustomer sent that may land in ``column``, snake_cased as the row holds it."""
    resource = as_read(resource)
    attributes = resource.get("attributes") if isinstance(resource.get("attributes"), dict) else {}
    candidates = [resource[column]] if column in ENVELOPE and column in resource else []
    candidates += [snake_case_keys(value) for key, value in attributes.items() if snake_case(key) == column]
    custom = snake_case_keys(attributes.get("custom"))
    if isinstance(custom, dict) and column.startswith("custom_"):
        candidates += [value for key, value in custom.items() if f"custom_{key}" == column]
    relationships = relationships_with_data(resource)
    return candidates + ([relationships[column]] if column in relationships else [])


def left_out(resource: Mapping[str, Any]) -> bool:
    """Whether the resource has a part the row must leave out (and a warning must name)."""
    for part in ("attributes", "relationships"):
        if resource.get(part) not in (None, []) and not isinstance(resource.get(part), dict):
            return True
    relationships = resource.get("relationships")
    for name, relationship in (relationships.items() if isinstance(relationships, dict) else ()):
        if relationship is not None and not isinstance(relationship, dict):
            return True
        if isinstance(relationship, dict) and "data" in relationship:
            data = relationship["data"]
            if RENAMED.get(snake_case(as_read(name)), snake_case(as_read(name))) in ENVELOPE:
                return True
            if not (data is None or isinstance(data, dict) or (isinstance(data, list) and all(isinstance(item, dict) for item in data))):
                return True
    return False


def is_linkage(value: Any) -> bool:
    return value is None or isinstance(value, dict) or (isinstance(value, list) and all(isinstance(item, dict) for item in value))


def warnings_of(output: EntrypointOutput) -> List[str]:
    return [message.log.message for message in output.logs if message.log.level == Level.WARN]


def assert_the_sync_went_on(output: EntrypointOutput, stream: str, sent: List[Dict[str, Any]]) -> None:
    assert output.errors == [], [error.trace.error.internal_message or error.trace.error.message for error in output.errors]
    lost = [message.log.message[:200] for message in output.logs if message.log.message.startswith('{"type":"RECORD"')]
    assert lost == [], "record messages the test harness could not read back"
    rows = [message.record.data for message in output.records if message.record.stream == stream]
    assert len(rows) == len(sent)

    # (a resource without an id takes the column from an attribute that snake_cases to id: anything at all)
    emitted = Counter(row.get("id") for row in rows if isinstance(row.get("id"), str))
    flattener_warnings = [warning for warning in warnings_of(output) if warning.startswith("Kustomer sent ")]
    for resource in sent:
        if usable(resource.get("id")):
            assert emitted[resource["id"]] == 1, resource["id"]
            named = [warning for warning in flattener_warnings if f" {resource['id']} with " in warning]
            assert bool(named) == left_out(resource), (resource["id"], named)

    validator = Draft7Validator(schemas()[stream])
    by_id = {resource["id"]: resource for resource in sent if usable(resource.get("id"))}
    for row in rows:
        orjson.dumps(row)  # raises on a half surrogate pair, or nesting orjson cannot write
        resource = by_id.get(row["id"]) if isinstance(row.get("id"), str) else None
        if resource is None:
            continue
        for error in validator.iter_errors(row):
            column = error.absolute_path[0] if error.absolute_path else None
            assert column is not None, error.message
            assert any(same(row[column], value) for value in sent_for(resource, column)), (column, error.message[:300])
        # (the CDK leaves a top-level null out of the record message: a missing column is a null one)
        for column, value in attribute_columns(resource).items():
            assert same(row.get(column), value), column
        for column in relationships_with_data(resource):
            assert is_linkage(row.get(column)), column


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------


@HOSTILE
@given(hostile_syncs())
@example(  # a megabyte string on both streams, paged one resource at a time, and half emojis
    HostileSync(
        "customers",
        [
            (at, {"type": "customer", "id": object_id(n), "attributes": {"updatedAt": iso(at), "name": f"cut {n} \ud83d", "notes": MEGABYTE}})
            for n, at in ((1, T0), (2, T0 + timedelta(minutes=1)))
        ],
        "users",
        [{"type": "user", "id": object_id(101), "attributes": {"name": MEGABYTE, "email\udc00": "\ud83d@x"}}, {"id": None}, {"id": 3}],
        1,
    )
)
def test_every_hostile_resource_is_emitted_once_valid_or_named_in_a_warning_and_the_sync_goes_on(sync):
    output = read_sync(sync)

    assert_the_sync_went_on(output, sync.search_stream, [resource for _, resource in sync.indexed])
    assert_the_sync_went_on(output, sync.list_stream, sync.listed)


# --------------------------------------------------------------------------------------------------
# The cases above, one at a time
# --------------------------------------------------------------------------------------------------


HALF_AN_EMOJI = {"type": "conversation", "id": object_id(1), "attributes": {"name": "cut \ud83d", "preview\ud83d": ["\ude00", {"k\udbff": "v"}]}}
EVERY_MALFORMED_RELATIONSHIP = {
    "type": "conversation",
    "id": object_id(2),
    "attributes": {"updatedAt": iso(T0)},
    "relationships": {
        "stringValue": "x",
        "listValue": [1, 2],
        "nullValue": None,
        "dataNull": {"data": None},
        "dataString": {"data": "x"},
        "dataNumber": {"data": 7},
        "dataMixed": {"data": [None, 1, {"type": "user", "id": "u1"}]},
        "linksOnly": {"links": {"self": "/v1/x"}},
        "customer": {"data": [{"type": "customer", "id": "c1"}]},
        "id": {"data": {"type": "user", "id": "not the resource's id"}},
    },
}


def test_half_an_emoji_becomes_a_replacement_character_instead_of_failing_the_page():
    output = read_search("conversations", [(T0, HALF_AN_EMOJI)])

    assert output.errors == []
    (row,) = [message.record.data for message in output.records]
    assert row["name"] == "cut \ufffd"
    assert row["preview\ufffd"] == ["\ufffd", {"k\ufffd": "v"}]


def test_bytes_that_are_not_utf8_become_replacement_characters_instead_of_failing_the_page():
    # An emoji cut short in the bytes themselves (its last byte missing), not in a JSON escape.
    body = b'{"data": [{"type": "tag", "id": "t1", "attributes": {"name": "cut \xf0\x9f\x98"}}], "links": {"next": null}}'
    with requests_mock.Mocker() as mocker:
        serve_plain_org(mocker)
        mocker.get(f"{BASE_URL}/v1/tags", content=body)
        output = read_stream("tags")

    assert output.errors == []
    assert [message.record.data["name"] for message in output.records] == ["cut \ufffd"]


def test_each_malformed_relationship_is_left_out_or_cleaned_and_named_in_a_warning():
    output = read_search("conversations", [(T0, EVERY_MALFORMED_RELATIONSHIP)])

    assert output.errors == []
    (row,) = [message.record.data for message in output.records]
    assert row["id"] == object_id(2)  # a relationship named id does not replace the resource's own
    assert row.get("data_null") is None and row.get("data_string") is None and row.get("data_number") is None
    assert row["data_mixed"] == [{"type": "user", "id": "u1"}]
    assert row["customer"] == [{"type": "customer", "id": "c1"}]  # a list where one is expected: passed on
    assert not {"string_value", "list_value", "null_value", "links_only"} & set(row)
    warnings = [warning for warning in warnings_of(output) if object_id(2) in warning]
    for name in ("stringValue", "listValue", "dataString", "dataNumber", "dataMixed", "'id'"):
        assert any(name in warning for warning in warnings), name
    assert not any(name in warning for warning in warnings for name in ("nullValue", "dataNull", "linksOnly", "customer"))


def test_attributes_or_relationships_that_are_not_objects_leave_the_rest_of_the_row_and_a_warning():
    resources = [
        {"type": "tag", "id": object_id(1), "attributes": ["a", "list"], "relationships": {"org": {"data": {"type": "org", "id": "o"}}}},
        {"type": "tag", "id": object_id(2), "attributes": {"name": "kept"}, "relationships": "a string"},
        {"type": "tag", "id": object_id(3), "attributes": None, "relationships": []},  # empty: nothing to leave out
    ]

    output = read_list("tags", resources)

    assert output.errors == []
    rows = {row["id"]: row for row in (message.record.data for message in output.records)}
    assert rows[object_id(1)]["org"] == {"type": "org", "id": "o"}
    assert rows[object_id(2)]["name"] == "kept"
    assert set(rows[object_id(3)]) == {"type", "id"}
    warnings = warnings_of(output)
    assert any(object_id(1) in warning and "attributes as a list" in warning for warning in warnings)
    assert any(object_id(2) in warning and "relationships as a string" in warning for warning in warnings)
    assert not any(object_id(3) in warning for warning in warnings)


def test_a_record_nested_deeper_than_orjson_writes_still_arrives_through_the_cdks_json_fallback():
    # orjson writes at most 254 levels; the CDK then writes the message with json (and says so once).
    deep = nested(300, "bottom")

    output = read_list("tags", [{"type": "tag", "id": object_id(1), "attributes": {"deep": deep}}])

    assert output.errors == []
    assert output.records[0].record.data["deep"] == snake_case_keys(deep)


def test_search_resources_without_a_usable_updated_at_on_one_page_are_emitted_and_the_cursor_says_so():
    indexed = [
        (T0, {"type": "note", "id": object_id(1), "attributes": {"updatedAt": None}}),
        (T0 + timedelta(minutes=1), {"type": "note", "id": object_id(2), "attributes": {}}),
        (T0 + timedelta(minutes=2), {"type": "note", "id": object_id(3)}),
        (T0 + timedelta(minutes=3), {"type": "note", "id": object_id(4), "attributes": {"updatedAt": iso(T0 + timedelta(minutes=3))}}),
    ]

    output = read_search("notes", indexed)

    assert output.errors == []
    assert ids(output) == [object_id(n) for n in range(1, 5)]
    assert any("Could not find cursor field `updated_at`" in warning for warning in warnings_of(output))
    assert output.state_messages[-1].state.stream.stream_state.__dict__["updated_at"].startswith("2025-03-01T00:03:00")


# --------------------------------------------------------------------------------------------------
# The search engine pages on dated resources only (SearchKeysetPagination, SearchPageExtractor, BoundaryRepeatFilter)
# --------------------------------------------------------------------------------------------------


def test_search_resources_whose_updated_at_is_a_number_or_not_a_date_are_emitted_and_the_sync_goes_on():
    # A number: the repeat filter raised TypeError ('>' between int and str). A page ending on a
    # text that is not a date: the next query asks Kustomer for gte=yesterday, which it refuses.
    updated_at = {1: iso(T0 + timedelta(minutes=1)), 2: 1740787320000, 3: iso(T0 + timedelta(minutes=3)), 4: "yesterday", 5: iso(T0 + timedelta(minutes=5))}
    indexed = [(T0 + timedelta(minutes=n), {"type": "note", "id": object_id(n), "attributes": {"updatedAt": updated_at[n]}}) for n in updated_at]

    output = read_search("notes", indexed, page_size=2)

    assert output.errors == [] and ids(output) == [object_id(n) for n in updated_at]


def test_a_full_page_of_one_instant_opening_with_a_resource_without_updated_at_is_read_once_not_forever():
    # The query starts at 00:01; its page is [no updatedAt, 00:01]: first != last, so the paginator
    # asks the very same query again, answered from the page store, for ever.
    at = T0 + timedelta(minutes=1)
    indexed = [
        (at, {"type": "note", "id": object_id(1), "attributes": {"updatedAt": None}}),
        (at, {"type": "note", "id": object_id(2), "attributes": {"updatedAt": iso(at)}}),
        (at + timedelta(minutes=1), {"type": "note", "id": object_id(3), "attributes": {"updatedAt": iso(at + timedelta(minutes=1))}}),
    ]

    output = read_search("notes", indexed, page_size=2, start_date="2025-03-01T00:01:00Z")

    assert output.errors == [] and ids(output) == [object_id(1), object_id(2), object_id(3)]


@pytest.mark.parametrize("stream", ["notes", "tags"])
def test_an_item_of_data_that_is_not_an_object_is_skipped_with_a_warning(stream):
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    good = [{"type": "x", "id": object_id(n), "attributes": {"updatedAt": iso(yesterday)}} for n in (1, 2)]
    body = json.dumps({"meta": {"total": 3}, "data": [good[0], None, good[1]], "links": {"next": None}})
    with requests_mock.Mocker() as mocker:
        serve_plain_org(mocker)
        mocker.post(f"{BASE_URL}/v1/customers/search", text=body)
        mocker.get(f"{BASE_URL}/v1/tags", text=body)
        output = read_stream(stream, {**CONFIG, "start_date": (yesterday - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")})

    assert output.errors == [] and ids(output) == [object_id(1), object_id(2)]
