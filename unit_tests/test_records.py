"""source_kustomer/records.py on its own: column names (snake_case, snake_case_keys), the flattened row
(FlattenJsonApiResource), key paths (value_at) and Kustomer's timestamps (parse_instant, updated_at_of,
instant_or_none). The rows of whole streams are test_stream_record_shape.py's."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from source_kustomer import records
from source_kustomer.records import (
    FlattenJsonApiResource,
    JsonTextFields,
    instant_or_none,
    parse_instant,
    snake_case,
    snake_case_keys,
    updated_at_of,
    value_at,
)

# --- snake_case and snake_case_keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    "camel,snake",
    [
        ("createdAt", "created_at"),
        ("lastMessageUnrespondedToSinceLastDone", "last_message_unresponded_to_since_last_done"),
        ("totalSpentNum", "total_spent_num"),
        ("os00Str", "os00_str"),
        ("smoochIds", "smooch_ids"),
        ("shopify-orders", "shopify-orders"),
        ("id", "id"),
        ("sla", "sla"),
    ],
)
def test_snake_case_matches_stitch(camel, snake):
    assert snake_case(camel) == snake


@pytest.mark.parametrize("camel", ["os00Str", "shopify-orders"])
def test_the_cdk_s_keys_to_snake_case_would_rename_stitch_s_columns(camel):
    """Why snake_case is the connector's own: the CDK's KeysToSnakeCase splits digits and hyphens,
    so a Stitch user's ``os00_str`` would become another column."""
    from airbyte_cdk.sources.declarative.transformations.keys_to_snake_transformation import KeysToSnakeCaseTransformation

    record = {camel: 1}
    KeysToSnakeCaseTransformation().transform(record)
    assert list(record) != [snake_case(camel)]


def test_snake_case_keys_renames_keys_at_any_depth_and_leaves_values_alone():
    value = {"sharedEmails": [{"verifiedAt": "2025-01-01", "tagIds": ["aB", {"innerKey": "camelValue"}]}], "count": 3}

    assert snake_case_keys(value) == {"shared_emails": [{"verified_at": "2025-01-01", "tag_ids": ["aB", {"inner_key": "camelValue"}]}], "count": 3}
    assert snake_case_keys("camelCase") == "camelCase" and snake_case_keys(None) is None


# --- FlattenJsonApiResource ------------------------------------------------------------------------


def test_flatten_keeps_id_type_links_and_relationship_data():
    record = {
        "type": "kobject",
        "id": "k1",
        "attributes": {"title": "Order", "custom": {"skusTxt": "a,b"}},
        "relationships": {"klass": {"link": "/v1/klasses/orders", "data": {"type": "klass", "id": "x"}}, "org": {"links": {}}},
        "links": {"self": "/v1/klasses/orders/k1"},
    }

    FlattenJsonApiResource().transform(record)

    assert record == {
        "type": "kobject",
        "id": "k1",
        "title": "Order",
        "custom": {"skus_txt": "a,b"},
        "custom_skus_txt": "a,b",
        "klass": {"type": "klass", "id": "x"},
        "links": {"self": "/v1/klasses/orders/k1"},
    }


def test_flatten_moves_only_the_conversation_s_sla_relationship_to_sla_data():
    conversation = {"type": "conversation", "id": "c1", "attributes": {"sla": {"breached": True}},
                    "relationships": {"sla": {"data": {"type": "sla", "id": "s1"}}}}
    version = {"type": "sla_version", "id": "v1", "attributes": {}, "relationships": {"sla": {"data": {"type": "sla", "id": "s1"}}}}

    FlattenJsonApiResource().transform(conversation)
    FlattenJsonApiResource().transform(version)

    assert (conversation["sla"], conversation["sla_data"]) == ({"breached": True}, {"type": "sla", "id": "s1"})
    assert version["sla"] == {"type": "sla", "id": "s1"} and "sla_data" not in version


def test_flatten_leaves_out_malformed_parts_with_a_warning_naming_the_resource(caplog):
    record = {"type": "tag", "id": "t1", "attributes": ["not", "an", "object"],
              "relationships": {"owner": "a string", "watchers": {"data": [{"type": "user", "id": "u1"}, 7]}, "id": {"data": {"id": "x"}}}}

    with caplog.at_level(logging.WARNING, logger="airbyte"):
        FlattenJsonApiResource().transform(record)

    assert record == {"type": "tag", "id": "t1", "watchers": [{"type": "user", "id": "u1"}]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and all(w.startswith("Kustomer sent tag t1 with ") for w in warnings)
    assert any("attributes as a list" in w for w in warnings) and any("'owner' as a string" in w for w in warnings)
    assert any("'watchers' listing 1 item(s)" in w for w in warnings) and any("would replace its own id" in w for w in warnings)


# --- value_at --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,path,found",
    [
        ({"attributes": {"emails": [{"email": "a@x"}]}}, ["attributes", "emails"], [{"email": "a@x"}]),
        ({"a": {"b": 0}}, ["a", "b"], 0),  # a falsy value is still found
        ({"a": 1}, [], {"a": 1}),  # the empty path is the value itself
        ({"a": {"b": 1}}, ["a", "missing"], None),
        ({"a": [1, 2]}, ["a", "b"], None),  # the path leaves the objects: a list
        ({"a": "text"}, ["a", "b"], None),  # ... or a string
        (None, ["a"], None),
    ],
)
def test_value_at_follows_plain_keys_and_gives_none_where_the_path_leaves_the_objects(value, path, found):
    assert value_at(value, path) == found


# --- parse_instant ---------------------------------------------------------------------------------


def test_parse_instant_reads_kustomer_s_own_form_with_the_standard_library(monkeypatch):
    monkeypatch.setattr(records, "ab_datetime_parse", lambda value: pytest.fail(f"the slow parser read {value}"))

    moment = parse_instant("2025-05-01T09:30:00.123Z")

    assert moment == datetime(2025, 5, 1, 9, 30, 0, 123000, tzinfo=timezone.utc) and moment.utcoffset() == timedelta(0)
    assert parse_instant("2025-05-01T09:30:00.000000Z") == datetime(2025, 5, 1, 9, 30, tzinfo=timezone.utc)
    assert parse_instant("2025-05-01T11:30:00+02:00") == datetime(2025, 5, 1, 9, 30, tzinfo=timezone.utc)


def test_parse_instant_reads_a_time_without_an_offset_as_utc():
    moment = parse_instant("2025-05-01T09:30:00")

    assert moment.tzinfo is not None and moment == datetime(2025, 5, 1, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("value,expected", [("1714554000", datetime(2024, 5, 1, 9, tzinfo=timezone.utc)),
                                            ("May 1 2025", datetime(2025, 5, 1, tzinfo=timezone.utc))])
def test_parse_instant_hands_other_forms_to_the_cdk_s_parser(value, expected, monkeypatch):
    asked = []
    slow = records.ab_datetime_parse
    monkeypatch.setattr(records, "ab_datetime_parse", lambda v: asked.append(v) or slow(v))

    moment = parse_instant(value)

    assert asked == [value] and moment == expected and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("junk", ["yesterday", "", "2025-13-01T00:00:00Z"])
def test_parse_instant_raises_value_error_on_what_is_not_a_time(junk):
    with pytest.raises(ValueError):
        parse_instant(junk)


# --- updated_at_of and instant_or_none -------------------------------------------------------------


@pytest.mark.parametrize(
    "resource,updated_at",
    [
        ({"id": "a", "attributes": {"updatedAt": "2025-05-01T09:00:00.000Z"}}, "2025-05-01T09:00:00.000Z"),
        ({"id": "a", "updated_at": "2025-05-01T09:00:00.000Z"}, "2025-05-01T09:00:00.000Z"),  # flattened in place
        ({"updated_at": "2025-05-01T09:00:00.000Z"}, None),  # not a resource: no id
        ({"id": "a", "attributes": {"updatedAt": None}}, None),
        ({"id": "a", "attributes": {"updatedAt": 1740787320000}}, None),
        ({"id": "a", "attributes": {"updatedAt": "yesterday"}}, None),
        ({"id": "a", "attributes": ["not", "an", "object"], "updated_at": "2025-05-01T09:00:00.000Z"}, "2025-05-01T09:00:00.000Z"),
        ("a string", None),
        (None, None),
    ],
)
def test_updated_at_of_is_a_date_time_text_or_none(resource, updated_at):
    assert updated_at_of(resource) == updated_at


@pytest.mark.parametrize("value", [None, 1740787320000, "yesterday", "2025-05-01", "2025-13-45T00:00:00Z", ["2025-05-01T09:00:00Z"]])
def test_instant_or_none_is_none_for_what_is_not_a_time(value):
    assert instant_or_none(value) is None


def test_instant_or_none_reads_a_time_as_parse_instant_does():
    assert instant_or_none("2025-05-01T09:00:00.500Z") == datetime(2025, 5, 1, 9, 0, 0, 500000, tzinfo=timezone.utc)
    assert instant_or_none("2025-05-01T09:00:00Z").tzinfo is not None


# --- JsonTextFields ---------------------------------------------------------------------------------


def test_json_text_fields_writes_what_is_not_text_as_its_json_text_and_leaves_the_rest():
    record = {"satisfaction": 4, "value": {"time": "09:00", "day": 1}, "name": "x", "other": 5}
    JsonTextFields(fields=["satisfaction", "value", "name", "missing"], parameters={}).transform(record)

    assert record == {"satisfaction": "4", "value": '{"day": 1, "time": "09:00"}', "name": "x", "other": 5}
    empty = {"satisfaction": None}
    JsonTextFields(fields=["satisfaction"], parameters={}).transform(empty)
    assert empty == {"satisfaction": None}

