"""Every stream against the sandbox: discover lists them all, a full read matches the sandbox's data
exactly, nested streams cost no request beyond their parent's, and incremental syncs follow parents."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest

from integration_tests.conftest import REPO, Connector, api_resources, config_for, expected_keys, latest_states
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox
from unit_tests.manifest_streams import NESTED, SEARCH_STREAMS, STREAMS, stream_rows

# Etleap's entities (seed 001), in snake_case, plus team members.
ETLEAP_STREAMS = """
    audit_logs brands business_schedules cards companies company_emails company_locations company_phones
    company_socials company_urls conversation_events conversation_forwards conversation_times conversations
    custom_attribute_metadata customer_drafts customer_emails customer_external_ids customer_locations
    customer_merges customer_phones customer_shared_emails customer_shared_external_ids customer_shared_phones
    customer_shared_socials customer_socials customer_urls customers kobjects klasses message_attachments
    message_shortcuts messages note_user_mentions notes notifications outbound_accounts queues slas
    sla_criteria sla_versions satisfactions shortcuts snoozes spam_senders tags team_queues
    team_routing_settings teams users team_members
""".split()
# search stream -> the nested streams read from its pages
NESTED_IN_SEARCH = {
    search: children for search, context in SEARCH_STREAMS.items() if (children := [name for name, (source, _, _) in NESTED.items() if source == context])
}


def catalog_of(connector, sandbox: Sandbox, **config: Any) -> Dict[str, Dict[str, Any]]:
    catalog = connector.run("discover", config_for(sandbox, **config)).of_type("CATALOG")[0]["catalog"]
    return {stream["name"]: stream for stream in catalog["streams"]}


def keys(run, stream: str, primary_key: List[List[str]]) -> List[Tuple[Any, ...]]:
    return [tuple(record[field[0]] for field in primary_key) for record in run.records(stream)]


@pytest.fixture(scope="module")
def streams(sandbox, tmp_path_factory) -> Dict[str, Dict[str, Any]]:
    """The discovered catalog of the shared sandbox, by stream name (read once for the module)."""
    return catalog_of(Connector(tmp_path_factory.mktemp("discover")), sandbox)


def test_discover_lists_every_stream_of_the_manifest_and_one_per_enabled_klass(streams, sandbox):
    klasses = {"kobject_" + k["attributes"]["name"].replace("-", "_") for k in api_resources(sandbox, "klasses?status=enabled")}
    assert len(klasses) == 4 and len(api_resources(sandbox, "klasses?status=existing_only")) == 5  # one is disabled
    assert set(streams) == set(STREAMS) | klasses


def test_every_etleap_entity_is_a_stream():
    assert set(ETLEAP_STREAMS) - set(STREAMS) == set()


def test_check_knows_the_endpoints_every_stream_calls(streams):
    from integration_tests.test_contract import roles_report_reads

    named = {stream for streams_of_endpoint in roles_report_reads().values() for stream in streams_of_endpoint}
    discovered = {name if not name.startswith("kobject_") else "kobject_<klass>" for name in streams}
    assert discovered - named == set(), "add each stream to api_key_roles' reads in manifest.yaml, under every endpoint it calls"
    assert named - discovered == set()


def test_custom_attributes_are_typed_columns_from_the_org_metadata(streams, sandbox):
    for stream, resource in [("customers", "customer"), ("conversations", "conversation"), ("companies", "company"),
                             ("kobject_shopify_orders", "kobject.shopify-orders")]:
        properties = streams[stream]["json_schema"]["properties"]
        defined = sandbox.metadata(resource)["attributes"]["properties"]
        assert defined
        for name, definition in defined.items():
            column = properties["custom_" + "".join("_" + c.lower() if c.isupper() else c for c in name)]
            expected = {"string": "string", "text": "string", "url": "string", "number": "number", "boolean": "boolean", "date": "string"}[definition["type"]]
            assert expected in column["type"], (stream, name)
            assert (column.get("format") == "date-time") == (definition["type"] == "date")


def test_full_read_of_every_stream_matches_the_sandbox_exactly(connector, sandbox, streams):
    run = connector.run("read", config_for(sandbox), streams=list(streams), timeout=600)

    assert run.returncode == 0 and run.errors() == []
    for name, stream in streams.items():
        emitted = keys(run, name, stream["source_defined_primary_key"])
        assert len(emitted) == len(set(emitted)), f"{name}: duplicates within one sync"
        assert set(emitted) == expected_keys(sandbox, name), name
        assert emitted or name in ("customer_merges",), f"{name}: the sandbox should give every stream data"
    customer = run.records("customers")[0]
    assert {k: v for k, v in customer.items() if k.startswith("custom_")} == {"custom_" + k: v for k, v in customer["custom"].items()}
    attachment = run.records("message_attachments")[0]
    assert attachment["type"] == "attachment" and attachment["message_id"] and attachment["conversation_id"]
    assert attachment["name"] and attachment["content_type"] and attachment["content_length"] > 0 and attachment["redacted"] in (True, False)
    assert {r["status"] for r in run.records("users")} == {"active", "deactivated", "pending"}
    roles = run.records("api_key_roles")
    assert len(roles) == 1 and roles[0]["roles"] and roles[0]["unreadable_streams"] == [] and "last_token_chars" not in roles[0]


def test_deleted_objects_are_emitted_flagged_by_default_and_left_out_on_request(connector, sandbox):
    deleted = sandbox.deleted_ids("customer")
    assert deleted
    with_deleted = connector.run("read", config_for(sandbox), streams=["customers"])
    flagged = {r["id"]: r for r in with_deleted.records("customers") if r["id"] in deleted}
    assert set(flagged) == deleted and all(r["deleted"] is True and r["deleted_at"] for r in flagged.values())

    live_only = connector.run("read", config_for(sandbox, include_deleted=False), streams=["customers"])
    assert set(live_only.ids("customers")) == sandbox.ids("customer")


def test_nested_streams_cost_no_requests_beyond_their_parents(connector):
    with Sandbox(records=1500, seed=21, **FAST_KUSTOMER_LIMITS) as sandbox:
        parents = list(NESTED_IN_SEARCH) + ["teams", "team_routing_settings", "slas"]
        sandbox.reset_requests()
        connector.run("read", config_for(sandbox, page_size=50), streams=parents)
        parents_only = sandbox.requests_by_path(reset=True)

        nested = [s for children in NESTED_IN_SEARCH.values() for s in children] + ["team_members", "team_queues", "sla_criteria", "sla_versions"]
        run = connector.run("read", config_for(sandbox, page_size=50), streams=parents + nested)
        with_nested = sandbox.requests_by_path(reset=True)

        assert run.returncode == 0 and all(run.records(s) for s in nested if s != "customer_shared_socials")
        assert with_nested == parents_only, "nested streams must not send requests of their own"
        assert parents_only["POST /v1/customers/search"] > 4 * len(NESTED_IN_SEARCH)  # several pages per parent

        # Read without their parent, the nested streams together cost the parent's search requests.
        connector.run("read", config_for(sandbox, page_size=50), streams=["customers"])
        customers_only = sandbox.requests_by_path(reset=True)["POST /v1/customers/search"]
        connector.run("read", config_for(sandbox, page_size=50), streams=NESTED_IN_SEARCH["customers"])
        assert sandbox.requests_by_path(reset=True)["POST /v1/customers/search"] == customers_only


def test_incremental_syncs_of_nested_and_per_parent_streams_visit_only_changed_parents(connector):
    streams = ["customers", "customer_emails", "customer_phones", "conversations", "conversation_events", "conversation_times"]
    with Sandbox(records=1500, seed=23, **FAST_KUSTOMER_LIMITS) as sandbox:
        config = config_for(sandbox, lookback_window="PT0S")
        first = connector.run("read", config, streams=streams)
        assert first.returncode == 0 and first.errors() == []
        touched_customers = set(sandbox.touch("customer", 6))
        touched_conversations = set(sandbox.touch("conversation", 4))

        sandbox.reset_requests()
        second = connector.run("read", config, streams=streams, state=latest_states(first))
        assert second.returncode == 0 and second.errors() == []

        boundary = 1  # the parent at the saved state's instant is read again
        changed = {r["customer_id"] for s in ("customer_emails", "customer_phones") for r in second.records(s)}
        assert changed - touched_customers == set() or len(changed - touched_customers) <= boundary
        emails_of_touched = {c for c in touched_customers if (sandbox.record("customer", c)["attributes"].get("emails"))}
        assert emails_of_touched <= {r["customer_id"] for r in second.records("customer_emails")}

        visited = {r["conversation_id"] for s in ("conversation_events", "conversation_times") for r in second.records(s)}
        assert len(visited - touched_conversations) <= boundary
        expected_events = sandbox.conversation_children_ids("events", touched_conversations)
        assert {i for ids in expected_events.values() for i in ids} <= set(second.ids("conversation_events"))
        requests = sandbox.requests_by_path()
        assert requests.get("GET /v1/conversations/{id}/events", 0) <= len(touched_conversations) + boundary
        # The nested streams' state is their parent's: the same search requests as customers alone.
        assert requests["POST /v1/customers/search"] <= 2 * 2  # one page per context, each shared


@pytest.mark.parametrize("document", ["README.md", "docs/integrations/sources/kustomer.md"])
def test_the_documented_stream_tables_equal_discover(streams, document):
    documented = stream_rows((REPO / document).read_text())
    discovered = {name: s for name, s in streams.items() if not name.startswith("kobject_")}
    assert "kobject_<klass>" in documented
    documented.pop("kobject_<klass>")
    assert set(documented) == set(discovered)
    for name, (_, endpoint, modes, cursor, key) in documented.items():
        stream = discovered[name]
        assert ("incremental" in modes) == ("incremental" in stream["supported_sync_modes"]), name
        assert cursor.strip("`") == ".".join(stream.get("default_cursor_field") or []), name
        assert [k.strip("` ") for k in key.split(",")] == [k[0] for k in stream["source_defined_primary_key"]], name
        assert endpoint, name
