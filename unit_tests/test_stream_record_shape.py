"""Stream level: the rows of search streams as a sync emits them (read through the manifest, Kustomer
mocked by MockKustomer): flat, snake_cased, named as Stitch names the columns, and valid against the
schema discover gives. The flattening itself, on its own, is test_records.py's."""

from __future__ import annotations

from datetime import datetime, timezone

import jsonschema

from unit_tests.conftest import read_stream
from unit_tests.kustomer_mock import object_id, resource

AT = datetime(2025, 4, 1, 12, 0, tzinfo=timezone.utc)

CONVERSATION = resource(
    "conversation",
    7,
    AT,
    attributes={
        "name": "Where is my order?",
        "messageCount": 3,
        "lastMessageUnrespondedToSinceLastDone": {"sentAt": "2025-04-01T11:00:00.000Z"},
        "firstResponse": {"businessTime": 40, "createdByTeams": ["t1"]},
        "sla": {"breached": False, "matchedAt": "2025-04-01T10:00:00.000Z", "summary": {"firstBreachAt": None}},
        "custom": {"orderNumberStr": "A-1", "totalSpentNum": 12.5, "os00Str": "x"},
        "channels": ["email"],
        "satisfactionLevel": {"sentByTeams": []},
    },
    relationships={
        "customer": {"data": {"type": "customer", "id": object_id(1)}, "links": {"self": "/v1/customers/1"}},
        "sla": {"data": {"type": "sla", "id": object_id(2)}},
        "slaVersion": {"data": {"type": "sla_version", "id": object_id(3)}},
        "messages": {"links": {"self": "/v1/conversations/7/messages"}},
        "queue": {"data": None},
        "shopify-orders": {"links": {"self": "/v1/customers/1/klasses/shopify-orders"}, "meta": {"kobject": True}},
    },
)


def the_conversation(kustomer):
    kustomer.add("conversation", [CONVERSATION])
    output = read_stream("conversations")
    assert len(output.records) == 1
    return output.records[0].record.data, output


def test_attributes_are_lifted_to_the_top_and_snake_cased_like_stitch(kustomer):
    row, _ = the_conversation(kustomer)

    assert row["id"] == object_id(7) and row["type"] == "conversation"
    assert row["message_count"] == 3
    assert row["last_message_unresponded_to_since_last_done"] == {"sent_at": "2025-04-01T11:00:00.000Z"}
    assert row["first_response"] == {"business_time": 40, "created_by_teams": ["t1"]}
    assert row["satisfaction_level"] == {"sent_by_teams": []}
    assert row["updated_at"] == "2025-04-01T12:00:00.000Z"
    assert "attributes" not in row and "relationships" not in row


def test_custom_attribute_keys_are_snake_cased_too(kustomer):
    row, _ = the_conversation(kustomer)

    assert row["custom"] == {"order_number_str": "A-1", "total_spent_num": 12.5, "os00_str": "x"}


def test_relationships_with_data_become_id_type_fields_and_sla_goes_to_sla_data(kustomer):
    row, _ = the_conversation(kustomer)

    assert row["customer"] == {"type": "customer", "id": object_id(1)}
    assert row["sla_data"] == {"type": "sla", "id": object_id(2)}
    assert row["sla"]["breached"] is False and row["sla"]["matched_at"] == "2025-04-01T10:00:00.000Z"
    assert row["sla_version"] == {"type": "sla_version", "id": object_id(3)}
    assert row["org"] == {"type": "org", "id": object_id(0)}
    assert row.get("queue") is None  # an empty to-one relationship is a null column
    assert "messages" not in row and "shopify-orders" not in row  # link-only relationships carry no data
    assert row["links"] == {"self": f"/v1/conversations/{object_id(7)}"}


def test_to_many_relationships_stay_lists(kustomer):
    note = resource(
        "note",
        9,
        AT,
        attributes={"body": "@ann please look"},
        relationships={"userMentions": {"data": [{"type": "user", "id": object_id(4)}, {"type": "user", "id": object_id(5)}]}},
    )
    kustomer.add("note", [note])

    row = read_stream("notes").records[0].record.data

    assert row["user_mentions"] == [{"type": "user", "id": object_id(4)}, {"type": "user", "id": object_id(5)}]


def test_rows_validate_against_the_discovered_schema(kustomer):
    row, output = the_conversation(kustomer)
    from source_kustomer import SourceKustomer

    schema = next(s for s in SourceKustomer(None, {"api_token": "x"}, None).discover(None, {"api_token": "x"}).streams if s.name == "conversations").json_schema

    jsonschema.validate(row, schema)
    for column in ("sla_data", "custom", "customer", "first_response", "updated_at", "created_at", "message_count"):
        assert column in schema["properties"]
    assert schema["properties"]["updated_at"]["format"] == "date-time"
