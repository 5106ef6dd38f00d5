"""Kustomer as its documents describe it: the contract held on every request, and the connector
correct under each answer Kustomer might give where its documents are silent (each a sandbox switch):
exact, or a loud failure that the next sync resumes without loss. Through the installed CLI.

Every other end-to-end test is a contract test too: the autouse fixture requests_within_kustomers_contract
(conftest.py) fails any test in which the connector sent a request source_kustomer/contract.py does
not allow, naming it.
"""

from __future__ import annotations

from typing import Any, Dict, List


import pytest

from integration_tests.conftest import REPO, config_for, expected_keys, ground_truth, latest_states
from integration_tests.sandbox import ALL_ROLES, FAST_KUSTOMER_LIMITS, Sandbox
from source_kustomer import contract
from unit_tests.manifest_streams import reads_table, role_rows

RECORDS = 600


def org(**switches: Any) -> Sandbox:
    return Sandbox(records=RECORDS, seed=31, **FAST_KUSTOMER_LIMITS, **switches)


def keys(run, stream: str) -> set:
    return {(record["id"],) for record in run.records(stream)}


# --- the contract itself ---------------------------------------------------------------------------


@pytest.mark.breaks_contract
def test_a_parameter_the_contract_does_not_list_fails_the_request_that_sends_it_and_names_it(connector, monkeypatch):
    """Take pageSize out of GET /v1/users' documented parameters: the sandbox refuses the users'
    requests as Kustomer would, the sync says so, and the recorded violation names the request."""
    users = contract.endpoint_for("GET", "/v1/users")
    narrowed = tuple(e if e is not users else contract.Endpoint(e.method, e.path, e.params - {"pageSize"}, e.roles, e.source, e.max_page_size)
                     for e in contract.ENDPOINTS)
    monkeypatch.setattr(contract, "ENDPOINTS", narrowed)
    with org() as sandbox:
        run = connector.run("read", config_for(sandbox), streams=["users", "tags"])

        assert run.returncode != 0
        assert any("query parameter 'pageSize' is not documented for GET /v1/users" in e for e in run.errors())
        assert set(run.ids("tags")) == ground_truth(sandbox, "tags")  # the other stream is unaffected
        [violation, *_] = sandbox.contract_violations
        assert (violation["method"], violation["path"]) == ("GET", "/v1/users")
        assert ("pageSize", "500") in violation["params"]
        assert violation["problems"] == ["query parameter 'pageSize' is not documented for GET /v1/users"]


def roles_report_reads() -> Dict[str, List[str]]:
    """The manifest's table of the endpoints each stream calls (check's roles report reads it)."""
    return reads_table((REPO / "manifest.yaml").read_text())


def test_the_documented_roles_per_stream_are_the_manifest_s_and_the_contract_s():
    documented = role_rows((REPO / "docs/integrations/sources/kustomer.md").read_text())
    reads = roles_report_reads()
    assert list(documented) == list(reads), "the docs' roles table lists the endpoints of api_key_roles' reads, in order"
    for key, (streams, roles) in documented.items():
        endpoint = contract.endpoint_for(*key.split(" ", 1))
        assert streams == reads[key], key
        expected = list(endpoint.roles) or (["any valid key"] if endpoint.any_key else ["not documented by Kustomer"])
        assert roles == expected, key


def test_what_the_connector_relies_on_beyond_the_documents_is_named_and_justified():
    relied = contract.relied_on()
    assert set(relied) >= {"GET /v1/tags", "GET /v1/slas", f"{contract.SEARCH} sort conversation_updated_at",
                           f"{contract.SEARCH} filter company_updated_at", "conversation noteCount"}
    assert all(len(why) > 40 for why in relied.values())


# --- where Kustomer's documents are silent ----------------------------------------------------------


@pytest.mark.parametrize("answer", ["refuse", "ignore", "serve"])
def test_notes_are_exact_whatever_the_archive_does_with_a_note_query(connector, answer):
    """The archive documents no notes, so the connector never asks it about notes: what it would
    answer changes nothing. Notes of the last two years come from search, every note of every
    conversation from conversation_notes."""
    with org(archive_notes=answer) as sandbox:
        run = connector.run("read", config_for(sandbox), streams=["notes", "conversation_notes"])

        assert run.returncode == 0 and run.errors() == []
        assert set(run.ids("notes")) == ground_truth(sandbox, "notes")
        assert keys(run, "conversation_notes") == expected_keys(sandbox, "conversation_notes")
        older = sandbox.ids("note") - ground_truth(sandbox, "notes")
        assert older and older <= set(run.ids("conversation_notes"))  # notes search cannot reach, delivered
        assert sandbox.contract_violations == []


@pytest.mark.parametrize("answer", ["ignore", "refuse"])
def test_a_search_kustomer_does_not_sort_stops_loudly_and_the_next_sync_loses_nothing(connector, answer):
    """Kustomer documents sorting only customers by updatedAt on /search. If it ignored the sort for
    conversations, or refused it, the conversations stream stops with what Kustomer answered, the
    other streams complete and checkpoint, and a later sync (Kustomer sorting again) is exact."""
    with org(undocumented_sort=answer) as sandbox:
        streams = ["conversations", "customers", "users"]
        failed = connector.run("read", config_for(sandbox), streams=streams)

        assert failed.returncode != 0
        said = " ".join(failed.errors())
        assert "conversations" in said
        if answer == "ignore":
            assert "not in ascending order" in said and "did not apply the filter or the sort" in said
        else:
            assert "sort" in said and "Kustomer refused the request" in said
        for stream in ("customers", "users"):  # documented sort, plain list: complete, with their state
            assert set(failed.ids(stream)) == ground_truth(sandbox, stream), stream
        assert {s["stream"]["stream_descriptor"]["name"] for s in failed.states()} >= {"customers", "users"}

        sandbox.configure(undocumented_sort="honor")
        resumed = connector.run("read", config_for(sandbox), streams=streams, state=latest_states(failed))
        assert resumed.returncode == 0 and resumed.errors() == []
        assert set(failed.ids("conversations")) | set(resumed.ids("conversations")) == ground_truth(sandbox, "conversations")


@pytest.mark.parametrize("answer", ["ignore", "refuse"])
def test_companies_are_exact_or_stop_loudly_whatever_search_does_with_their_updated_at_filter(connector, answer):
    with org(undocumented_filter=answer) as sandbox:
        run = connector.run("read", config_for(sandbox, page_size=20), streams=["companies", "users"])

        assert set(run.ids("users")) == ground_truth(sandbox, "users")
        if run.returncode == 0:
            assert set(run.ids("companies")) == ground_truth(sandbox, "companies")
        else:
            said = " ".join(run.errors())
            assert "companies" in said and ("outside that range" in said or "Kustomer refused the request" in said)
            sandbox.configure(undocumented_filter="honor")
            resumed = connector.run("read", config_for(sandbox, page_size=20), streams=["companies"], state=latest_states(run))
            assert set(run.ids("companies")) | set(resumed.ids("companies")) == ground_truth(sandbox, "companies")


@pytest.mark.parametrize("default", ["active", "all", "active_and_pending"])
@pytest.mark.parametrize("active_includes_pending", [False, True])
def test_users_of_every_status_arrive_once_with_their_status_whatever_a_plain_call_returns(connector, default, active_includes_pending):
    with org(users_default=default, users_active_includes_pending=active_includes_pending) as sandbox:
        run = connector.run("read", config_for(sandbox), streams=["users"])

        assert run.returncode == 0 and run.errors() == []
        statuses = {record["id"]: record["status"] for record in run.records("users")}
        assert len(statuses) == len(run.records("users"))  # each user once
        assert statuses == {user: sandbox.user_status(user) for user in sandbox.user_ids()}
        assert set(statuses.values()) == {"active", "deactivated", "pending"}


@pytest.mark.parametrize("with_ids", [True, False])
@pytest.mark.parametrize("on_search_pages", [False, True])
def test_attachments_arrive_with_names_types_and_sizes_whether_or_not_kustomer_gives_them_ids_or_lists_them_on_search(
        connector, with_ids, on_search_pages):
    with org(attachment_ids=with_ids, search_attachments=on_search_pages) as sandbox:
        run = connector.run("read", config_for(sandbox), streams=["message_attachments"])

        assert run.returncode == 0 and run.errors() == []
        assert keys(run, "message_attachments") == expected_keys(sandbox, "message_attachments") != set()
        truth = {attachment: (conversation, message) for conversation, message, attachment in
                 sandbox.attachments(sandbox.ids("conversation", include_deleted=True), include_deleted=True)}
        for record in run.records("message_attachments"):
            assert (record["conversation_id"], record["message_id"]) == truth[record["id"]]
            assert record["name"] and record["content_type"] and record["content_length"] >= 0 and record["redacted"] in (True, False)


@pytest.mark.parametrize("status", [403, 401])
def test_a_stream_whose_role_is_missing_ends_with_a_config_error_naming_it_and_the_others_complete(connector, status):
    """Newer Kustomer answers 403 for a missing role, older 401: either way only that stream stops."""
    with org(missing_role_status=status) as sandbox:
        run = connector.run("read", config_for(sandbox, api_token="noevents-token"), streams=["conversations", "conversation_events", "users"])

        assert run.returncode != 0
        errors = [m["trace"]["error"] for m in run.of_type("TRACE") if m["trace"]["type"] == "ERROR"]
        refused = [e for e in errors if "GET /v1/conversations/{id}/events" in e["message"]]
        assert refused and all(e["failure_type"] == "config_error" for e in refused)
        assert "org.permission.event.read" in refused[0]["message"] and "org.user.event.read" in refused[0]["message"]
        assert run.ids("conversation_events") == []
        for stream in ("conversations", "users"):
            assert set(run.ids(stream)) == ground_truth(sandbox, stream), stream
        assert {s["stream"]["stream_descriptor"]["name"] for s in run.states()} >= {"conversations", "users"}


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("token,region,host", [("eu-token", "eu", "https://api.prod2.kustomerapp.com"),
                                               ("india-token", "india", "https://api.prod4.kustomerapp.com")])
def test_a_key_of_another_region_fails_check_and_read_with_the_host_to_use(connector, status, token, region, host):
    with org(wrong_pod_status=status) as sandbox:
        config = config_for(sandbox, api_token=token)
        checked = connector.run("check", config).of_type("CONNECTION_STATUS")[0]["connectionStatus"]
        read = connector.run("read", config, streams=["users"])

        assert checked["status"] == "FAILED" and f"set Region to {region} ({host})" in checked["message"]
        assert read.returncode != 0 and any(f"set Region to {region} ({host})" in e for e in read.errors())


def test_check_names_each_stream_a_key_cannot_read_and_discover_lists_what_it_can(connector):
    """A key without the Klass and metadata roles: per-Klass streams and typed custom columns are out of
    its reach (check says so, with the roles), everything else is discovered and read."""
    lacking = {role for role in ALL_ROLES if ".klass." in role or ".metadata." in role}
    with org(tokens={"partial-token": ALL_ROLES - lacking}) as sandbox:
        config = config_for(sandbox, api_token="partial-token")
        checked = connector.run("check", config)
        discovered = connector.run("discover", config)

        assert checked.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"] == "SUCCEEDED"
        [warning] = [m["log"]["message"] for m in checked.of_type("LOG") if m["log"]["level"] == "WARN"]
        for stream, role in [("klasses", "org.permission.klass.read"), ("kobject_<klass>", "org.permission.klass.read"),
                             ("custom_attribute_metadata", "org.permission.metadata.read")]:
            assert f"{stream} (add one of {role}" in warning
        assert discovered.returncode == 0
        streams = {s["name"]: s for s in discovered.of_type("CATALOG")[0]["catalog"]["streams"]}
        assert "customers" in streams and not any(name.startswith("kobject_") for name in streams)
        assert not any(column.startswith("custom_") for column in streams["customers"]["json_schema"]["properties"])
        warnings = [m["log"]["message"] for m in discovered.of_type("LOG") if m["log"]["level"] == "WARN"]
        assert any("GET /v1/klasses" in w and "org.permission.klass.read" in w for w in warnings)


def test_a_legacy_key_reads_as_much_as_a_permission_set_key(connector):
    with org() as sandbox:
        streams: List[str] = ["conversations", "conversation_events", "users", "brands", "audit_logs"]
        legacy = connector.run("read", config_for(sandbox, api_token="legacy-token"), streams=streams)

        assert legacy.returncode == 0 and legacy.errors() == []
        for stream in ("conversations", "users", "brands"):
            assert set(legacy.ids(stream)) == ground_truth(sandbox, stream), stream
