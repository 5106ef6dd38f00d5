"""Tests of the Kustomer API simulator itself (integration_tests/sandbox), over real HTTP."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from integration_tests.sandbox import ALL_ROLES, FAULT_KINDS, Sandbox

NOW = "2026-01-15T12:00:00.000Z"
TOKEN = {"Authorization": "Bearer sandbox-token"}
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
UNAUTHORIZED = {"errors": [{"status": "401", "code": "unauthorized", "title": "Unauthorized"}]}
PAGE_LIMIT = {"errors": [{"status": "400", "code": "page_limit_exceeded", "title": "Page exceeds the maximum of 100"}]}
RATE_LIMITED = {"errors": [{"status": "429", "code": "rate_limit_exceeded", "title": "Rate Limit Exceeded"}]}
MISSING_ROLE = {"errors": [{"status": "403", "code": "forbidden", "title": "Missing required role"}]}


@pytest.fixture(scope="module")
def sandbox():
    """A read-only org shared by the tests that do not change data (clock frozen for exact boundaries)."""
    with Sandbox(records=4000, seed=7, now=NOW, frozen_clock=True) as sb:
        yield sb


@pytest.fixture(scope="module")
def lenient():
    """The same org with the contract only recorded and archive note queries served: for what Kustomer
    serves but does not document (``GET /v1/customers``, ``customer_id``, ``idsOnly`` on the archive ...)."""
    with Sandbox(records=4000, seed=7, now=NOW, frozen_clock=True, contract="record", archive_notes="serve") as sb:
        yield sb


@pytest.fixture()
def fresh():
    """A small org of its own, for tests that mutate data or count requests."""
    with Sandbox(records=1500, seed=3, now=NOW) as sb:
        yield sb


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        session.headers.update(TOKEN)
        yield session


def search(http, sb, body, page=1, size=100, archive=False, **params):
    path = "/v1/customers/archive/search" if archive else "/v1/customers/search"
    return http.post(f"{sb.url}{path}", params={"page": page, "pageSize": size, **params}, json=body)


def search_all(http, sb, body, size=500, archive=False):
    """Every record of a query, following links.next (fails past the 100-page cap)."""
    records, page = [], 1
    while True:
        reply = search(http, sb, body, page, size, archive)
        assert reply.status_code == 200, reply.text
        records += reply.json()["data"]
        if not reply.json()["links"]["next"]:
            return records
        page += 1


def window(ctx, gte=None, lte=None, order="asc"):
    criteria = [{f"{ctx}_updated_at": {"gte": gte}}] if gte else []
    criteria += [{f"{ctx}_updated_at": {"lte": lte}}] if lte else []
    return {"queryContext": ctx, "and": criteria, "sort": [{f"{ctx}_updated_at": order}]}


# --- auth ---------------------------------------------------------------------------------------


def test_auth(sandbox):
    url = sandbox.url
    body = {"queryContext": "customer"}

    def get(headers):
        return requests.get(f"{url}/v1/users", headers=headers)

    def post(headers):
        return requests.post(f"{url}/v1/customers/search", headers=headers, json=body)

    assert get(TOKEN).status_code == 200 and post(TOKEN).status_code == 200

    for reply in (get({"Authorization": "Bearer expired-token"}), post({"Authorization": "Bearer expired-token"})):
        assert reply.status_code == 401 and reply.json()["errors"][0]["title"] == "Expired token"
    for reply in (get({"Authorization": "Bearer norole-token"}), post({"Authorization": "Bearer norole-token"})):
        assert reply.status_code == 403 and reply.json() == MISSING_ROLE
    assert get({"Authorization": "Bearer nosearch-token"}).status_code == 200
    reply = post({"Authorization": "Bearer nosearch-token"})
    assert reply.status_code == 403 and reply.json() == MISSING_ROLE

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer  sandbox-token"},
                    {"Authorization": "Token sandbox-token"}, {"Authorization": "sandbox-token"}):
        reply = get(headers)
        assert reply.status_code == 401 and reply.json() == UNAUTHORIZED, headers


def test_configurable_tokens_and_simple_error_form():
    with Sandbox(records=50, tokens={"k1": ALL_ROLES, "old": "expired"}, error_format="simple") as sb:
        assert requests.get(f"{sb.url}/v1/tags", headers={"Authorization": "Bearer k1"}).status_code == 200
        assert requests.get(f"{sb.url}/v1/tags", headers=TOKEN).status_code == 401
        reply = requests.get(f"{sb.url}/v1/tags", headers={"Authorization": "Bearer old"})
        assert reply.status_code == 401
        assert reply.json() == {"errors": [{"code": "unauthorized", "message": "Expired token", "meta": {"status": 401}}]}


# --- lists --------------------------------------------------------------------------------------


def test_list_pagination_follows_relative_links(sandbox, http):
    ids, path, pages = [], "/v1/users?pageSize=10", 0
    while path:
        assert path.startswith("/v1/users?page=") or pages == 0
        body = http.get(sandbox.url + path).json()
        assert set(body) == {"meta", "data", "links"} and set(body["meta"]) == {"page", "pageSize"}
        assert (body["links"]["prev"] is None) == (pages == 0)
        assert body["links"]["first"] == "/v1/users?page=1&pageSize=10"
        ids += [r["id"] for r in body["data"]]
        path, pages = body["links"]["next"], pages + 1
    active = sandbox.user_ids("active")
    assert pages == math.ceil(len(active) / 10) == 2 and ids == sorted(ids) and set(ids) == active

    for endpoint in ("teams", "tags", "shortcuts", "klasses"):
        body = http.get(f"{sandbox.url}/v1/{endpoint}").json()
        assert {r["id"] for r in body["data"]} == sandbox.ids_of_list(endpoint) and body["links"]["next"] is None

    beyond = http.get(f"{sandbox.url}/v1/users?page=9&pageSize=10").json()
    assert beyond["data"] == [] and beyond["links"]["next"] is None and beyond["links"]["prev"] == "/v1/users?page=8&pageSize=10"


def test_list_variants(lenient, http):
    sandbox = lenient  # these lists are not in Kustomer's published contract
    customers = http.get(f"{sandbox.url}/v1/customers?page=2&pageSize=50").json()
    n = len(sandbox.ids("customer"))
    assert customers["meta"] == {"page": 2, "pageSize": 50, "total": n, "totalPages": math.ceil(n / 50)}
    assert customers["links"]["last"] == f"/v1/customers?page={math.ceil(n / 50)}&pageSize=50"

    # Other query parameters survive in the links; conversations accept sort=desc (by id).
    convs = http.get(f"{sandbox.url}/v1/conversations?pageSize=5&sort=desc").json()
    assert convs["links"]["next"] == "/v1/conversations?page=2&pageSize=5&sort=desc"
    ids = [r["id"] for r in convs["data"]]
    assert ids == sorted(sandbox.ids("conversation"), reverse=True)[:5]

    # Over-maximum page sizes are clamped: 100 for most lists, 500 for users and teams.
    assert http.get(f"{sandbox.url}/v1/messages?pageSize=1000").json()["meta"]["pageSize"] == 100
    assert http.get(f"{sandbox.url}/v1/users?pageSize=1000").json()["meta"]["pageSize"] == 500

    with_attachments = http.get(f"{sandbox.url}/v1/messages?pageSize=100&include=attachments").json()
    assert with_attachments["included"] and all(a["type"] == "attachment" for a in with_attachments["included"])
    linked = [a["id"] for m in with_attachments["data"] for a in m["relationships"].get("attachments", {}).get("data", [])]
    assert linked == [a["id"] for a in with_attachments["included"]]


def test_single_resources_and_shapes(sandbox, lenient, http):
    # Single objects by id are not in Kustomer's published contract: the lenient twin serves them.
    me = http.get(f"{lenient.url}/v1/users/current").json()["data"]
    assert me["type"] == "user" and me["attributes"]["userType"] == "machine"

    customer_id = min(sandbox.ids("customer"))
    customer = http.get(f"{lenient.url}/v1/customers/{customer_id}").json()["data"]
    assert customer["links"]["self"] == f"/v1/customers/{customer_id}"
    for array in ("emails", "phones", "socials", "urls", "locations", "externalIds", "sharedEmails", "sharedPhones",
                  "sharedSocials", "sharedExternalIds", "whatsapps", "facebookIds", "instagramIds", "smoochIds"):
        assert isinstance(customer["attributes"][array], list), array
    assert customer["relationships"]["shopify-orders"]["meta"] == {"kobject": True}
    for stamp in ("createdAt", "updatedAt", "modifiedAt"):
        assert ISO_MS.match(customer["attributes"][stamp])

    body = search(http, sandbox, {"queryContext": "kobject"}, size=5).json()
    kobject = body["data"][0]
    assert "link" in kobject["relationships"]["klass"] and "links" not in kobject["relationships"]["klass"]
    assert http.get(lenient.url + kobject["links"]["self"]).json()["data"]["id"] == kobject["id"]

    conversation = search(http, sandbox, {"queryContext": "conversation"}, size=1).json()["data"][0]
    assert isinstance(conversation["attributes"]["sla"], dict) and conversation["relationships"]["sla"]["data"]["type"] == "sla"

    notes = search(http, sandbox, {"queryContext": "note"}, size=200).json()["data"]
    assert all(isinstance(n["relationships"]["userMentions"]["data"], list) for n in notes)
    assert any(n["relationships"]["userMentions"]["data"] for n in notes)

    messages = search(http, sandbox, {"queryContext": "message", "and": [{"message_channel": {"equals": "email"}}]}, size=500).json()["data"]
    shapes = {type(m["attributes"]["meta"][f]).__name__ for m in messages for f in ("to", "cc", "bcc") if f in m["attributes"]["meta"]}
    assert shapes == {"str", "dict", "list"}
    messages = search(http, sandbox, {"queryContext": "message"}, size=500).json()["data"]
    assert not any("attachments" in m["relationships"] for m in messages)  # documented only with include=attachments

    suffixes = {re.sub(r"^[a-z]+(?=[A-Z])", "", k) for c in search(http, sandbox, {"queryContext": "customer"}, size=100).json()["data"]
                for k in c["attributes"]["custom"]}
    assert {"Str", "Num", "At", "Bool", "Txt", "Url"} <= {re.search(r"[A-Z][a-z]+$", s).group() for s in suffixes}
    assert all(HEX24.match(i) for i in sandbox.ids("message"))


# --- search -------------------------------------------------------------------------------------


def test_search_filters_and_sorts_ascending_with_ties_by_id(sandbox, lenient, http):
    truth = sandbox.ground_truth("conversation", with_updated_at=True)["conversation"]
    cutoff = sandbox.archive_cutoff()
    gte, lte = "2025-03-01T00:00:00.000000Z", "2025-09-30T23:59:59.999000Z"
    expected = sorted((at, i) for i, at in truth.items() if at >= cutoff and "2025-03-01T00:00:00.000Z" <= at <= "2025-09-30T23:59:59.999Z")
    got = [(r["attributes"]["updatedAt"], r["id"]) for r in search_all(http, sandbox, window("conversation", gte, lte), size=100)]
    assert got == expected and len(got) > 100
    # The 520-object burst (identical updatedAt) is in this window: ties are ordered by id.
    assert Counter(at for at, _ in got).most_common(1)[0][1] > 500

    descending = [r["id"] for r in search(http, sandbox, window("conversation", gte, lte, "desc"), size=50).json()["data"]]
    assert descending == [i for _, i in reversed(expected)][:50]

    # Equivalent spellings of one instant give the same result.
    totals = {search(http, sandbox, window("message", value), size=1).json()["meta"]["total"]
              for value in ("2025-05-01", "2025-05-01T00:00:00Z", "2025-05-01T00:00:00.000000Z", "2025-05-01 00:00:00+00:00",
                            "2025-05-01T02:00:00+02:00")}
    assert len(totals) == 1

    # gt excludes the boundary instant, gte includes it; or/not/in/equals work on other attributes.
    some = sorted(truth.items(), key=lambda kv: kv[1])[-1]
    eq = search(http, sandbox, {"queryContext": "conversation", "and": [{"conversation_updated_at": {"equals": some[1]}}]}).json()
    assert some[0] in {r["id"] for r in eq["data"]}
    gt = search(http, sandbox, {"queryContext": "conversation", "and": [{"conversation_updated_at": {"gt": some[1]}}]}).json()
    assert gt["meta"]["total"] == 0
    ids = sorted(sandbox.ids("customer"))[:3]  # customer_id is not a documented search attribute: the lenient twin
    picked = search(http, lenient, {"queryContext": "customer", "or": [{"customer_id": {"in": ids}}], "not": [{"customer_id": {"equals": ids[0]}}]}).json()
    live = {i for i, at in sandbox.ground_truth("customer", with_updated_at=True)["customer"].items() if at >= cutoff}
    assert {r["id"] for r in picked["data"]} == set(ids[1:]) & live

    ids_only = search(http, sandbox, {"queryContext": "customer"}, size=3, idsOnly="true").json()["data"]
    assert all(set(r) == {"type", "id"} for r in ids_only)


def test_search_page_cap(sandbox, http):
    body = window("conversation", "2015-01-01")
    total = search(http, sandbox, body, size=10).json()["meta"]["total"]
    assert total > 1000
    page100 = search(http, sandbox, body, page=100, size=10)
    meta, links = page100.json()["meta"], page100.json()["links"]
    assert meta["totalPages"] == math.ceil(total / 10) > 100
    assert links["next"] == "/v1/customers/search?page=101&pageSize=10"
    assert links["last"] == f"/v1/customers/search?page={math.ceil(total / 10)}&pageSize=10"
    refused = search(http, sandbox, body, page=101, size=10)
    assert refused.status_code == 400 and refused.json() == PAGE_LIMIT
    assert search(http, sandbox, body, size=1000).json()["meta"]["pageSize"] == 500


def test_archive_and_live_split(sandbox, http):
    cutoff = sandbox.archive_cutoff()
    for ctx in ("conversation", "customer", "kobject_shopify-orders"):
        base = "kobject" if ctx.startswith("kobject") else ctx
        body = {"queryContext": ctx, "sort": [{f"{base}_updated_at": "asc"}]}
        live = search_all(http, sandbox, body)
        archive = search_all(http, sandbox, body, archive=True)
        assert archive and live
        assert all(r["attributes"]["updatedAt"] < cutoff for r in archive)
        assert all(r["attributes"]["updatedAt"] >= cutoff for r in live)
        live_ids, archive_ids = {r["id"] for r in live}, {r["id"] for r in archive}
        assert not live_ids & archive_ids and live_ids | archive_ids == sandbox.ids(ctx)
    archive = search(http, sandbox, {"queryContext": "conversation"}, archive=True).json()
    assert archive["links"]["self"].startswith("/v1/customers/archive/search?page=1&pageSize=100")


def test_burst_of_identical_updated_at(sandbox):
    stamps = Counter(sandbox.ground_truth("conversation", with_updated_at=True)["conversation"].values())
    instant, size = stamps.most_common(1)[0]
    assert size > 500 and instant >= sandbox.archive_cutoff()


def test_errors(sandbox, lenient, http):
    # The same errors whether the contract is enforced (its 400 first) or only recorded (Kustomer's own).
    for url in (sandbox.url, lenient.url):
        assert http.get(f"{url}/v1/nothing-here").status_code == 404
        assert http.get(f"{url}/v1/conversations/{'0' * 24}/events").status_code == 404
        assert http.get(f"{url}/v1/kobjects").status_code == 404
        wrong_verb = http.get(f"{url}/v1/customers/search")
        assert wrong_verb.status_code == 405 and wrong_verb.json()["errors"][0]["status"] == "405"
        assert http.post(f"{url}/v1/users").status_code == 405
        assert http.post(f"{url}/v1/customers/search", data="{not json").status_code == 400
        assert http.post(f"{url}/v1/customers/search", json={"and": []}).status_code == 400
        assert http.post(f"{url}/v1/customers/search", json={"queryContext": "widgets"}).status_code == 400
        assert http.post(f"{url}/v1/customers/search", json={"queryContext": "customer", "and": [{"customer_nope": {"equals": 1}}]}).status_code == 400
        assert http.post(f"{url}/v1/customers/search", json={"queryContext": "customer", "and": [{"customer_updated_at": {"gte": "last tuesday"}}]}).status_code == 400
        assert http.post(f"{url}/v1/customers/search", data="x" * (101 * 1024)).status_code == 413
        assert http.get(f"{url}/v1/users?page=abc").status_code == 400
    assert http.get(f"{lenient.url}/v1/customers/{'0' * 24}").status_code == 404


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limits():
    with Sandbox(records=100, org_rpm=6, search_rpm=3, time_scale=30, retry_after=True) as sb, requests.Session() as http:
        http.headers.update(TOKEN)
        replies = [search(http, sb, {"queryContext": "customer"}) for _ in range(4)]
        assert [r.status_code for r in replies] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in replies)
        assert replies[-1].json() == RATE_LIMITED and int(replies[-1].headers["Retry-After"]) >= 1
        reset = int(replies[-1].headers["x-ratelimit-reset"])
        assert time.time() - 1 <= reset <= time.time() + 3

        lists = [http.get(f"{sb.url}/v1/tags") for _ in range(4)]  # the org bucket already spent 3
        assert [r.status_code for r in lists] == [200, 200, 200, 429]
        assert lists[0].headers["x-ratelimit-limit"] == "6" and lists[2].headers["x-ratelimit-remaining"] == "0"

        time.sleep(max(0.0, reset - time.time()) + 0.1)
        assert http.get(f"{sb.url}/v1/tags").status_code == 200
        assert sb.counters["rate_limited"] == 2

    with Sandbox(records=100, org_rpm=100, reset_format="seconds") as sb:
        reply = requests.get(f"{sb.url}/v1/tags", headers=TOKEN)
        assert reply.headers["x-ratelimit-reset"] in ("59", "60") and "Retry-After" not in reply.headers


# --- faults -------------------------------------------------------------------------------------


def test_each_fault_kind(fresh):
    url = f"{fresh.url}/v1/tags"
    fresh.fault_timeout_s = 1.0
    for status in ("500", "502", "503", "504"):
        fresh.inject_fault(status)
        reply = requests.get(url, headers=TOKEN)
        assert reply.status_code == int(status) and reply.json()["errors"][0]["status"] == status
    fresh.inject_fault("500-nobody")
    reply = requests.get(url, headers=TOKEN)
    assert reply.status_code == 500 and reply.content == b""
    fresh.inject_fault("reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, headers=TOKEN)
    fresh.inject_fault("timeout")
    with pytest.raises(requests.Timeout):
        requests.get(url, headers=TOKEN, timeout=0.3)
    fresh.inject_fault("malformed")
    reply = requests.get(url, headers=TOKEN)
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()
    assert requests.get(url, headers=TOKEN).status_code == 200
    assert [entry[2] for entry in fresh.request_log] == [500, 502, 503, 504, 500, "reset", "timeout", 200, 200]
    # Admin paths never fail.
    fresh.inject_fault("503")
    assert requests.get(f"{fresh.url}/__sandbox/stats").status_code == 200
    fresh.faults.clear()


def test_each_added_fault_kind(fresh):
    url = f"{fresh.url}/v1/tags?pageSize=10"
    for kind in ("502-nobody", "503-nobody", "429-bare"):
        fresh.inject_fault(kind)
        reply = requests.get(url, headers=TOKEN)
        assert reply.status_code == int(kind[:3]) and reply.content == b"" and "x-ratelimit-reset" not in reply.headers
    fresh.inject_fault("502-html")
    reply = requests.get(url, headers=TOKEN)
    assert reply.status_code == 502 and reply.content.startswith(b"<html>")
    fresh.inject_fault("429")
    reply = requests.get(url, headers=TOKEN)
    assert reply.status_code == 429 and reply.json()["errors"][0]["status"] == "429"
    assert reply.headers["x-ratelimit-remaining"] == "0" and 0 < int(reply.headers["x-ratelimit-reset"]) - time.time() <= 2
    fresh.inject_fault("not-json")
    reply = requests.get(url, headers=TOKEN)
    assert reply.status_code == 200 and reply.content.startswith(b"<html>")
    whole = requests.get(url, headers=TOKEN).json()
    fresh.inject_fault("short")
    short = requests.get(url, headers=TOKEN).json()
    assert short["data"] == whole["data"][:5] and short["links"] == whole["links"] and short["meta"] == whole["meta"]
    last_page = f"{fresh.url}/v1/tags?pageSize=100"
    fresh.inject_fault("short")
    assert requests.get(last_page, headers=TOKEN).json()["data"] == requests.get(last_page, headers=TOKEN).json()["data"]
    fresh.inject_fault("redirect")
    reply = requests.get(url, headers=TOKEN, allow_redirects=False)
    assert reply.status_code == 302 and reply.headers["Location"] == "http://127.0.0.2:9/v1/tags?pageSize=10"


def test_latency():
    with Sandbox(records=50, latency_ms=150) as sb:
        started = time.perf_counter()
        assert requests.get(f"{sb.url}/v1/tags", headers=TOKEN).status_code == 200
        assert time.perf_counter() - started >= 0.15


def test_fault_rate_is_deterministic():
    def statuses():
        with Sandbox(records=50, seed=11, fault_rate=0.4, faults=["500", "503", "500-nobody", "malformed"]) as sb, requests.Session() as http:
            http.headers.update(TOKEN)
            return [http.get(f"{sb.url}/v1/tags").status_code for _ in range(30)]

    first = statuses()
    assert first == statuses() and 200 in first and {500, 503} & set(first)
    with Sandbox(records=50, fault_at={2: "502", 4: "reset"}) as sb:
        codes = []
        for _ in range(5):
            try:
                codes.append(requests.get(f"{sb.url}/v1/tags", headers=TOKEN).status_code)
            except requests.ConnectionError:
                codes.append("reset")
        assert codes == [200, 502, 200, "reset", 200]
    assert set(FAULT_KINDS) == {"500", "502", "503", "504", "500-nobody", "reset", "timeout", "malformed", "502-nobody",
                                "503-nobody", "502-html", "429", "429-bare", "not-json", "short", "redirect"}


# --- ground truth and mutation -------------------------------------------------------------------


def test_ground_truth_endpoint(sandbox):
    truth = requests.get(f"{sandbox.url}/__sandbox/ground_truth").json()
    for ctx in ("customer", "conversation", "message", "note", "kobject", "company", "kobject_subscription"):
        assert set(truth[ctx]) == sandbox.ids(ctx)
    for endpoint in ("users", "teams", "tags", "shortcuts", "klasses"):
        assert set(truth[endpoint]) == sandbox.ids_of_list(endpoint)
    assert len(truth["users"]) == 25 and len(truth["teams"]) == 6 and len(truth["tags"]) == 30
    assert len(truth["shortcuts"]) == 20 and len(truth["klasses"]) == 4
    counts = {ctx: len(truth[ctx]) + len(truth["deleted"][ctx]) for ctx in ("conversation", "message", "customer", "note", "kobject", "company")}
    assert counts == {"conversation": 1200, "message": 1400, "customer": 600, "note": 400, "kobject": 200, "company": 200}
    assert {ctx: len(ids) for ctx, ids in truth["deleted"].items() if ctx in counts} == {
        "conversation": 24, "message": 0, "customer": 12, "note": 8, "kobject": 4, "company": 4}


def test_touch_and_create_change_what_search_returns(fresh, http):
    touched = fresh.touch("conversation", 5)
    assert len(set(touched)) == 5
    newest = search(http, fresh, window("conversation", order="desc"), size=5).json()["data"]
    assert {r["id"] for r in newest} == set(touched)
    assert all(r["attributes"]["updatedAt"] >= NOW for r in newest)

    created = requests.post(f"{fresh.url}/__sandbox/create", json={"context": "message", "n": 3}).json()["ids"]
    assert set(created) <= fresh.ids("message")
    conversation = fresh.record("message", created[0])["relationships"]["conversation"]["data"]["id"]
    listed = http.get(f"{fresh.url}/v1/conversations/{conversation}/messages?pageSize=100").json()["data"]
    assert created[0] in {m["id"] for m in listed}
    newest = search(http, fresh, window("message", order="desc"), size=3).json()["data"]
    assert {r["id"] for r in newest} == set(created)

    # An archived customer touched over HTTP comes back into live search with a higher rev.
    truth = fresh.ground_truth("customer", with_updated_at=True)["customer"]
    archived = min(truth, key=truth.get)
    old = fresh.record("customer", archived)["attributes"]
    ids = requests.post(f"{fresh.url}/__sandbox/touch", json={"context": "customer", "n": len(truth)}).json()["ids"]
    assert archived in ids
    new = fresh.record("customer", archived)["attributes"]
    assert new["updatedAt"] > old["updatedAt"] and new["rev"] == old["rev"] + 1
    assert search(http, fresh, {"queryContext": "customer"}, archive=True).json()["meta"]["total"] == 0


def test_background_mutation():
    with Sandbox(records=500, seed=5, mutate_per_second=400) as sb:
        time.sleep(0.4)
        assert sb.counters["mutations:touch"] + sb.counters["mutations:create"] > 20


# --- scale and CLI -------------------------------------------------------------------------------


@pytest.mark.skipif(bool(os.environ.get("SANDBOX_SKIP_1M")), reason="SANDBOX_SKIP_1M set")
def test_generates_a_million_records_quickly():
    started = time.perf_counter()
    sb = Sandbox(records=1_000_000, seed=1)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, elapsed
    assert sum(len(sb.store.colls[c]) for c in ("customer", "conversation", "message", "note", "kobject", "company")) == 1_000_000
    with sb, requests.Session() as http:
        http.headers.update(TOKEN)
        reply = search(http, sb, window("message", "2025-01-01", "2025-01-31"), size=500)
        assert reply.status_code == 200 and len(reply.json()["data"]) == 500


def test_cli_serves_until_killed():
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "integration_tests.sandbox", "--port", "0", "--records", "300", "--seed", "2"],
                            cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        reply = requests.get(f"{match.group(1)}/v1/auth/tokens/current", headers=TOKEN)
        assert reply.status_code == 200
        assert json.loads(requests.get(f"{match.group(1)}/__sandbox/stats").text)["counts"]["customer"] == 45
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


# --- org lists, SLAs, outbound accounts ------------------------------------------------------------

ORG_LISTS = ("brands", "schedules", "cards", "routing/queues", "routing/settings", "satisfaction", "snoozes", "spam/senders",
             "notifications", "slas")
NEW_ENDPOINTS = ORG_LISTS + ("outboundAccounts", "audit-logs", "metadata/customer")


def walk(http, sb, path):
    """Every record of a page-numbered GET list, following relative links.next; also the bodies."""
    records, bodies = [], []
    while path:
        reply = http.get(sb.url + path)
        assert reply.status_code == 200, (path, reply.text)
        body = reply.json()
        bodies.append(body)
        records += body["data"]
        path = body["links"]["next"]
        assert path is None or path.startswith("/")
    return records, bodies


def test_org_lists_paginate_to_the_ground_truth(sandbox, http):
    sizes = {}
    for endpoint in ORG_LISTS:
        records, bodies = walk(http, sandbox, f"/v1/{endpoint}?pageSize=3")
        ids = [r["id"] for r in records]
        assert set(ids) == sandbox.ids_of_list(endpoint) and len(ids) == len(set(ids)), endpoint
        assert ids == sorted(ids), endpoint  # creation order
        assert all(set(b) == {"meta", "data", "links"} and set(b["meta"]) == {"page", "pageSize"} for b in bodies)
        assert bodies[0]["links"]["first"] == f"/v1/{endpoint}?page=1&pageSize=3" and bodies[-1]["links"]["next"] is None
        for r in records:
            assert set(r) == {"type", "id", "attributes", "relationships", "links"} and HEX24.match(r["id"]), endpoint
            assert r["links"]["self"].endswith(r["id"]) and ISO_MS.match(r["attributes"]["createdAt"])
            if endpoint != "slas":
                assert ISO_MS.match(r["attributes"]["updatedAt"]) and r["attributes"]["updatedAt"] >= r["attributes"]["createdAt"]
        sizes[endpoint] = len(ids)
        assert http.get(f"{sandbox.url}/v1/{endpoint}?pageSize=1000").json()["meta"]["pageSize"] == 100
    assert sizes == {"brands": 3, "schedules": 4, "cards": 5, "routing/queues": 6, "routing/settings": 6, "satisfaction": 3,
                     "snoozes": 5, "spam/senders": 40, "notifications": 30, "slas": 3}

    def data(endpoint):
        return http.get(f"{sandbox.url}/v1/{endpoint}").json()["data"]

    for schedule in data("schedules"):
        hours = schedule["attributes"]["hours"]
        assert set(hours) == {str(d) for d in range(7)}
        assert all(v is None or all(0 <= a < b <= 1440 for a, b in v) for v in hours.values())
    queues = data("routing/queues")
    assert [q["attributes"]["name"] for q in queues if q["attributes"]["system"]] == ["DEFAULT_QUEUE"]
    queue_ids = {q["id"] for q in queues}
    settings = data("routing/settings")
    assert {s["id"] for s in settings} == sandbox.ids_of_list("teams") == sandbox.ids_of_list("team_routing_settings")
    for s in settings:
        assert s["relationships"]["team"]["data"] == {"type": "team", "id": s["id"]}
        linked = [q["id"] for q in s["relationships"]["queues"]["data"]]
        assert len(linked) <= 4 and set(linked) <= queue_ids and {q["type"] for q in s["relationships"]["queues"]["data"]} <= {"queue"}
        assert {"enabled", "workItemCapacity", "capacity", "externalQueues", "deleted"} <= set(s["attributes"])
    assert any(s["relationships"]["queues"]["data"] for s in settings)
    senders = data("spam/senders")
    assert {s["attributes"]["channel"] for s in senders} == {"email"} and {s["attributes"]["list"] for s in senders} == {"whitelist", "blacklist"}
    assert all((s["attributes"]["deletedAt"] is None) == (not s["attributes"]["deleted"]) for s in senders)
    assert len({s["attributes"]["sender"] for s in senders}) == 40
    me = http.get(f"{sandbox.url}/v1/auth/tokens/current").json()["data"]["relationships"]["user"]["data"]["id"]
    notes = data("notifications")
    assert {n["relationships"]["user"]["data"]["id"] for n in notes} == {me}
    assert {n["attributes"]["status"] for n in notes} == {"read", "unread"} and all(isinstance(n["attributes"]["event"], dict) for n in notes)
    assert {s["attributes"]["type"] for s in data("snoozes")} == {"relative", "absolute", "dynamic"}
    assert all({"name", "formType", "enabled", "channel", "scale", "questions"} <= set(s["attributes"]) for s in data("satisfaction"))
    assert all(isinstance(c["attributes"]["contexts"], list) and c["attributes"]["url"].startswith("https://") for c in data("cards"))
    brands = data("brands")
    assert sum(b["attributes"]["default"] for b in brands) == 1
    # Conversations point at the brands, SLAs, SLA versions and queues these lists serve.
    conversations = search(http, sandbox, {"queryContext": "conversation"}, size=200).json()["data"]
    refs = {rel: {c["relationships"][rel]["data"]["id"] for c in conversations} for rel in ("brand", "sla", "slaVersion", "queue")}
    assert refs["brand"] <= {b["id"] for b in brands} and refs["queue"] <= queue_ids
    assert refs["sla"] <= sandbox.ids_of_list("slas") and refs["slaVersion"] <= set(sandbox.sla_version_ids())


def test_slas_include_their_versions_only_when_asked(sandbox, http):
    assert "included" not in http.get(f"{sandbox.url}/v1/slas").json()
    assert "included" not in http.get(f"{sandbox.url}/v1/slas?versions=active").json()
    assert http.get(f"{sandbox.url}/v1/slas?versions=some").status_code == 400
    records, bodies = walk(http, sandbox, "/v1/slas?versions=all&pageSize=1")
    assert len(bodies) == 3 and bodies[0]["links"]["next"] == "/v1/slas?page=2&pageSize=1&versions=all"
    seen = []
    for body in bodies:
        sla = body["data"][0]
        assert "updatedAt" not in sla["attributes"] and set(sla["attributes"]) == {"name", "currentVersion", "createdAt"}
        wanted = [v["id"] for v in sla["relationships"]["versions"]["data"]]
        included = body["included"]
        assert [v["id"] for v in included] == wanted == sandbox.sla_version_ids(sla["id"])
        assert sla["attributes"]["currentVersion"] == len(wanted) == max(v["attributes"]["version"] for v in included)
        for v in included:
            a = v["attributes"]
            assert v["type"] == "sla_version" and v["relationships"]["sla"]["data"] == {"type": "sla", "id": sla["id"]}
            assert "updatedAt" not in a and ISO_MS.match(a["createdAt"]) and isinstance(a["version"], int)
            assert set(a["metrics"]["firstResponse"]) >= {"enabled", "times"} and set(a["metrics"]["firstResponse"]["times"]) == {"1", "2", "3", "4", "5"}
            assert all(set(c) == {next(iter(c))} and set(next(iter(c.values()))) == {"operator", "value"} for c in a["criteria"]["and"])
            assert set(a["criteria"]) <= {"and", "or"}
        seen += wanted
    assert set(seen) == set(sandbox.sla_version_ids()) == sandbox.ids_of_list("slas/versions") == sandbox.ids_of_list("sla_versions")


def test_outbound_accounts_have_no_ids_and_no_pages(sandbox, http):
    body = http.get(f"{sandbox.url}/v1/outboundAccounts").json()
    assert body["links"] == {"self": "/v1/outboundAccounts"} and "next" not in body["links"]
    assert all(set(a) == {"type", "attributes"} and a["type"] == "outbound_account" and set(a["attributes"]) == {"channel", "name", "account"}
               for a in body["data"])
    keys = [(a["attributes"]["channel"], a["attributes"]["account"]) for a in body["data"]]
    assert len(keys) == len(set(keys)) >= 4 and set(keys) == sandbox.outbound_account_keys()
    assert http.get(f"{sandbox.url}/v1/outboundAccounts?page=2&pageSize=1").json()["data"] == body["data"]


def test_new_endpoints_need_a_key_with_a_role(sandbox):
    for endpoint in NEW_ENDPOINTS:
        url = f"{sandbox.url}/v1/{endpoint}"
        assert requests.get(url).json() == UNAUTHORIZED, endpoint
        reply = requests.get(url, headers={"Authorization": "Bearer norole-token"})
        assert reply.status_code == 403 and reply.json() == MISSING_ROLE, endpoint
        assert requests.get(url, headers={"Authorization": "Bearer expired-token"}).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer nosearch-token"}).status_code == 200, endpoint
    conversation = min(sandbox.ids("conversation"))
    for child in ("events", "forwards", "times"):
        assert requests.get(f"{sandbox.url}/v1/conversations/{conversation}/{child}").status_code == 401


# --- audit logs -----------------------------------------------------------------------------------


def test_audit_logs_cursor_pagination(sandbox, http):
    truth = sandbox.audit_log_ids()
    assert len(truth) == 200 and truth == sorted(truth, reverse=True) and sandbox.ids_of_list("audit-logs") == set(truth)
    first = http.get(f"{sandbox.url}/v1/audit-logs").json()
    assert len(first["data"]) == 100 and first["meta"]["count"] == 100 and first["meta"]["total"] == 200
    assert first["links"]["next"] == f"/v1/audit-logs?count=100&before={first['data'][-1]['id']}"

    got, path, pages = [], "/v1/audit-logs?count=7", 0
    while path:
        body = http.get(sandbox.url + path).json()
        got += body["data"]
        pages += 1
        assert (body["links"]["prev"] is None) == (pages == 1)
        path = body["links"]["next"]
        if path:
            assert path == f"/v1/audit-logs?count=7&before={body['data'][-1]['id']}"
    assert pages == math.ceil(200 / 7) and [r["id"] for r in got] == truth
    stamps = [r["attributes"]["createdAt"] for r in got]
    assert stamps == sorted(stamps, reverse=True)
    assert Counter(stamps).most_common(1)[0][1] >= 6  # entries sharing one millisecond
    for r in got:
        a = r["attributes"]
        assert r["type"] == "audit_log" and "updatedAt" not in a and a["eventName"] == f"kustomer.{a['objectType']}.{a['eventVerb']}"
        assert ISO_MS.match(a["publishedAt"]) and ISO_MS.match(a["expiresAt"]) and a["createdAt"] <= a["publishedAt"] < a["expiresAt"]
        assert isinstance(a["changes"], dict) and a["objectId"] in sandbox.ids(a["objectType"], include_deleted=True)

    # Boundaries are inclusive, also across an instant several entries share; the filters stay in links.next.
    tied = Counter(stamps).most_common(1)[0][0]
    same = http.get(f"{sandbox.url}/v1/audit-logs", params={"filter[start]": tied, "filter[end]": tied}).json()
    assert [r["id"] for r in same["data"]] == [r["id"] for r in got if r["attributes"]["createdAt"] == tied] and len(same["data"]) >= 6
    start, end = stamps[150], stamps[20]
    expected = [r["id"] for r in got if start <= r["attributes"]["createdAt"] <= end]
    assert expected == sandbox.audit_log_ids(start, end)
    ids, path = [], "/v1/audit-logs?" + "&".join(f"{k}={v}" for k, v in (("count", 9), ("filter[start]", start), ("filter[end]", end)))
    while path:
        body = http.get(sandbox.url + path).json()
        ids += [r["id"] for r in body["data"]]
        path = body["links"]["next"]
        if path:
            assert path.startswith("/v1/audit-logs?count=9&before=") and f"filter%5Bstart%5D={start.replace(':', '%3A')}" in path
    assert ids == expected
    # One millisecond later (or earlier) leaves the boundary entries out.
    later, earlier = iso_plus(start, 1), iso_plus(end, -1)
    assert [r["id"] for r in walk_audit(http, sandbox, {"filter[start]": later, "filter[end]": earlier})] == [
        r["id"] for r in got if later <= r["attributes"]["createdAt"] <= earlier] != expected

    # before/after are exclusive cursors; after alone gives the oldest entries above it, still newest first.
    pivot = truth[50]
    before = http.get(f"{sandbox.url}/v1/audit-logs?count=5&before={pivot}").json()
    assert [r["id"] for r in before["data"]] == truth[51:56]
    after = http.get(f"{sandbox.url}/v1/audit-logs?count=5&after={pivot}").json()
    assert [r["id"] for r in after["data"]] == truth[45:50] and after["links"]["next"] is None
    assert after["links"]["prev"] == f"/v1/audit-logs?count=5&after={truth[45]}"
    both = http.get(f"{sandbox.url}/v1/audit-logs?count=100&before={truth[10]}&after={truth[14]}").json()
    assert [r["id"] for r in both["data"]] == truth[11:14] and both["links"]["next"] is None

    for bad in ("count=1001", "count=0", "count=x", "before=nope", f"before={min(sandbox.ids('customer'))}", "filter[start]=yesterday"):
        reply = http.get(f"{sandbox.url}/v1/audit-logs?{bad}")
        assert reply.status_code == 400 and reply.json()["errors"][0]["code"] == "invalid_parameter", bad
    assert len(http.get(f"{sandbox.url}/v1/audit-logs?count=1000").json()["data"]) == 200
    by_type = walk_audit(http, sandbox, {"filter[objectType]": "conversation"})
    assert by_type and {r["attributes"]["objectType"] for r in by_type} == {"conversation"}


def iso_plus(stamp, ms):
    from datetime import datetime, timedelta
    value = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(milliseconds=ms)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (value.microsecond // 1000)


def walk_audit(http, sb, params):
    records, reply = [], http.get(f"{sb.url}/v1/audit-logs", params={"count": 50, **params}).json()
    while True:
        records += reply["data"]
        if not reply["links"]["next"]:
            return records
        reply = http.get(sb.url + reply["links"]["next"]).json()


# --- metadata and klasses -------------------------------------------------------------------------

VALUE_TYPES = {"string": str, "text": str, "url": str, "number": (int, float), "boolean": bool, "date": str}


def test_metadata_matches_the_rendered_custom_attributes(sandbox, http):
    resources = sandbox.metadata_resources()
    assert resources[:4] == ["company", "conversation", "customer", "message"] and "kobject.warranty-claim" in resources
    for resource in resources:
        body = http.get(f"{sandbox.url}/v1/metadata/{resource}").json()
        assert set(body) == {"data"} and body["data"]["type"] == "metadata" and body["data"]["id"] == resource
        properties = body["data"]["attributes"]["properties"]
        assert body["data"] == sandbox.metadata(resource)
        context = "kobject_" + resource.split(".", 1)[1] if resource.startswith("kobject.") else resource
        records = search(http, sandbox, {"queryContext": context, "includeDeleted": True}, size=500).json()["data"]
        records += search(http, sandbox, {"queryContext": context}, size=500, archive=True).json()["data"]
        assert records, resource
        seen = {}
        for r in records:
            for key, value in (r["attributes"].get("custom") or {}).items():
                seen.setdefault(key, set()).add(type(value))
        assert set(seen) == set(properties), resource  # every key the renderer emits, and only those
        for key, prop in properties.items():
            suffix = re.search(r"(Str|Txt|Num|At|Bool|Url)$", key).group()
            assert prop["type"] == {"Str": "string", "Txt": "text", "Num": "number", "At": "date", "Bool": "boolean", "Url": "url"}[suffix]
            assert all(issubclass(t, VALUE_TYPES[prop["type"]]) for t in seen[key]), (resource, key)
            assert prop["displayName"] and isinstance(prop["multi"], bool)
            if "enumeration" in prop:
                values = {r["attributes"]["custom"].get(key) for r in records} - {None}
                assert values <= set(prop["enumeration"])
    customers = sandbox.metadata("customer")["attributes"]["properties"]
    assert customers["tierStr"]["enumeration"] == ["bronze", "silver", "gold", "platinum"]
    assert http.get(f"{sandbox.url}/v1/metadata/message").json()["data"]["attributes"]["properties"] == {}
    for unknown in ("widgets", "kobject.nope", "kobject"):
        reply = http.get(f"{sandbox.url}/v1/metadata/{unknown}")
        assert reply.status_code == 404 and reply.json() == {"errors": [{"status": "404", "code": "not_found", "title": f"metadata {unknown} not found"}]}


def test_klasses_status_filter(sandbox, lenient, http):
    def names(query=""):
        return [k["attributes"]["name"] for k in http.get(f"{sandbox.url}/v1/klasses{query}").json()["data"]]

    assert names() == names("?status=enabled") == ["shopify-orders", "ecomm-order", "subscription", "return-request"]
    assert names("?status=disabled") == ["warranty-claim"]
    assert names("?status=existing_only") == names() + ["warranty-claim"]
    assert http.get(f"{sandbox.url}/v1/klasses?status=all").status_code == 400
    assert len(sandbox.ids_of_list("klasses")) == 4 and len(sandbox.ids_of_list("klasses", status="existing_only")) == 5
    disabled = http.get(f"{sandbox.url}/v1/klasses?status=disabled").json()["data"][0]
    assert disabled["attributes"]["status"] == "disabled"
    # Its kobjects still exist: in search, in the kobject context and under /v1/klasses/<name>.
    hidden = sandbox.ids("kobject_warranty-claim")
    assert hidden and hidden <= sandbox.ids("kobject")
    live = search(http, sandbox, {"queryContext": "kobject_warranty-claim"}, size=500).json()["data"]
    archived = search(http, sandbox, {"queryContext": "kobject_warranty-claim"}, size=500, archive=True).json()["data"]
    assert {r["id"] for r in live + archived} == hidden
    assert {r["id"] for r in http.get(f"{lenient.url}/v1/klasses/warranty-claim?pageSize=100").json()["data"]} == hidden


# --- soft deletes ---------------------------------------------------------------------------------


def test_deleted_objects_are_searchable_only_when_asked(sandbox, lenient, http):
    for ctx in ("customer", "conversation", "company", "note", "kobject", "kobject_shopify-orders"):
        alive, deleted = sandbox.ids(ctx), sandbox.deleted_ids(ctx)
        everything = sandbox.ids(ctx, include_deleted=True)
        assert (deleted or ctx.startswith("kobject_")) and not alive & deleted and alive | deleted == everything
        assert 0.01 <= len(deleted) / len(everything) <= 0.03 or ctx.startswith("kobject")
        base = "kobject" if ctx.startswith("kobject") else ctx
        body = {"queryContext": ctx, "sort": [{f"{base}_updated_at": "asc"}]}

        def found(query):  # idsOnly on the archive and note archive queries are undocumented: the lenient twin
            return [r["id"] for archive in (False, True) for page in range(1, 4)
                    for r in search(http, lenient, query, page, 500, archive, idsOnly="true").json()["data"]]

        assert sorted(found(body)) == sorted(alive), ctx
        assert sorted(found({**body, "includeDeleted": True})) == sorted(everything), ctx
        if ctx != "conversation":
            continue
        with_deleted = search_all(http, sandbox, {**body, "includeDeleted": True})
        stamps = [(r["attributes"]["updatedAt"], r["id"]) for r in with_deleted]
        assert stamps == sorted(stamps) and {r["id"] for r in with_deleted} & deleted  # merged into the same order
        for r in with_deleted:
            a = r["attributes"]
            assert a["deleted"] == (r["id"] in deleted) and (a["deletedAt"] is None) == (not a["deleted"])
            if a["deleted"]:
                assert ISO_MS.match(a["deletedAt"]) and a["createdAt"] <= a["deletedAt"] <= a["updatedAt"]
    explicit = search(http, sandbox, {"queryContext": "conversation", "includeDeleted": False}).json()["meta"]["total"]
    assert explicit == search(http, sandbox, {"queryContext": "conversation"}).json()["meta"]["total"]
    assert search(http, sandbox, {"queryContext": "conversation", "includeDeleted": "yes"}).status_code == 400
    assert sandbox.deleted_ids("message") == set()

    # Lists leave deleted objects out; by id they are still served, flagged.
    gone = min(sandbox.deleted_ids("conversation"))
    listed = {r["id"] for r in walk(http, lenient, "/v1/conversations?pageSize=100")[0]}
    assert listed == sandbox.ids("conversation")
    assert http.get(f"{lenient.url}/v1/conversations/{gone}").json()["data"]["attributes"]["deleted"] is True
    assert http.get(f"{lenient.url}/v1/customers?pageSize=1").json()["meta"]["total"] == len(sandbox.ids("customer"))

    truth = requests.get(f"{sandbox.url}/__sandbox/ground_truth", params={"include_deleted": 1, "context": "note"}).json()
    assert set(truth["note"]) == sandbox.ids("note", include_deleted=True)
    truth = requests.get(f"{sandbox.url}/__sandbox/ground_truth").json()
    assert set(truth["note"]) == sandbox.ids("note") and set(truth["deleted"]["note"]) == sandbox.deleted_ids("note")
    for endpoint in ORG_LISTS + ("audit-logs", "slas/versions"):
        assert set(truth[endpoint]) == sandbox.ids_of_list(endpoint), endpoint
    assert {tuple(k) for k in truth["outboundAccounts"]} == sandbox.outbound_account_keys()
    assert truth["metadata"]["customer"] == sorted(sandbox.metadata("customer")["attributes"]["properties"])


# --- conversation events, forwards, times -----------------------------------------------------------


def test_conversation_sub_resources(sandbox, lenient, http):
    conversations = sorted(sandbox.ids("conversation", include_deleted=True))
    events = sandbox.conversation_children_ids("events", conversations)
    empty = [c for c, ids in events.items() if not ids]
    assert 0.2 < len(empty) / len(conversations) < 0.5
    assert sandbox.conversation_children_ids("events") == {c: ids for c, ids in events.items() if ids}
    busiest = max(conversations, key=lambda c: len(events[c]))
    assert len(events[busiest]) >= 5

    got, bodies = walk(http, sandbox, f"/v1/conversations/{busiest}/events?pageSize=2")
    assert [r["id"] for r in got] == events[busiest] and bodies[0]["links"]["next"] == f"/v1/conversations/{busiest}/events?page=2&pageSize=2"
    stamps = [r["attributes"]["createdAt"] for r in got]
    assert stamps == sorted(stamps) and got[0]["attributes"]["name"] == "kustomer.conversation.create"
    assert stamps[-1] <= sandbox.updated_at("conversation", busiest)
    for r in got:
        a = r["attributes"]
        assert r["type"] == "event" and a["createdAt"] == a["updatedAt"] and a["publishedAt"] >= a["createdAt"]
        assert set(a["changes"]["attributes"]["status"]) >= {"op", "after"}
        assert r["relationships"]["conversation"]["data"]["id"] == busiest and r["relationships"]["customer"]["data"]["type"] == "customer"
    desc = http.get(f"{sandbox.url}/v1/conversations/{busiest}/events?sort=desc").json()["data"]
    assert [r["id"] for r in desc] == events[busiest][::-1]
    assert http.get(f"{sandbox.url}/v1/conversations/{busiest}/events?sort=up").status_code == 400
    created = http.get(f"{lenient.url}/v1/conversations/{busiest}/events?name=kustomer.conversation.create").json()["data"]  # undocumented
    assert [r["id"] for r in created] == events[busiest][:1]
    assert http.get(f"{sandbox.url}/v1/conversations/{busiest}/events?pageSize=1000").json()["meta"]["pageSize"] == 100
    assert http.get(f"{sandbox.url}/v1/conversations/{empty[0]}/events").json()["data"] == []

    forwards = sandbox.conversation_children_ids("forwards")
    assert 0.05 < len(forwards) / len(conversations) < 0.4
    cid = next(iter(forwards))
    got = http.get(f"{sandbox.url}/v1/conversations/{cid}/forwards").json()["data"]
    assert [r["id"] for r in got] == forwards[cid]
    for r in got:
        a = r["attributes"]
        assert {"channel", "from", "to", "subject", "body", "status", "sendAt", "createdAt", "updatedAt"} <= set(a)
        assert isinstance(a["to"], list) and a["status"] in ("draft", "scheduled", "sent", "failed") and a["updatedAt"] >= a["createdAt"]
    assert http.get(f"{sandbox.url}/v1/conversations/{cid}/forwards?pageSize=500").json()["meta"]["pageSize"] == 100

    times = sandbox.conversation_children_ids("times", with_created_at=True)
    assert 0.3 < len(times) / len(conversations) < 0.75
    cid = max(times, key=lambda c: len(times[c]))
    body = http.get(f"{sandbox.url}/v1/conversations/{cid}/times?pageSize=1000").json()
    assert body["meta"]["pageSize"] == 1000 and http.get(f"{sandbox.url}/v1/conversations/{cid}/times?pageSize=5000").json()["meta"]["pageSize"] == 1000
    assert {r["id"]: r["attributes"]["createdAt"] for r in body["data"]} == times[cid]
    for r in body["data"]:
        a = r["attributes"]
        assert "updatedAt" not in a and set(a) == {"createdAt", "createdByTeams", "assignedUsers", "assignedTeams", "handleAt",
                                                   "handleTime", "channels", "messageAt", "messageTime"}
        assert isinstance(a["handleTime"], int) and a["handleAt"] >= a["createdAt"]
    again = http.get(f"{sandbox.url}/v1/conversations/{cid}/times").json()
    assert again["data"] == body["data"]  # stable ids and values
    all_ids = [i for ids in sandbox.conversation_children_ids("times").values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) and all(HEX24.match(i) for i in all_ids)

    for child in ("events", "forwards", "times"):
        for bad in ("0" * 24, "nope", min(sandbox.ids("customer"))):
            reply = http.get(f"{sandbox.url}/v1/conversations/{bad}/{child}")
            assert reply.status_code == 404 and reply.json()["errors"][0]["status"] == "404", (child, bad)
    via_admin = requests.get(f"{sandbox.url}/__sandbox/conversation_children", params={"child": "events", "ids": f"{busiest},{empty[0]}"}).json()
    assert via_admin == {busiest: events[busiest], empty[0]: []}


# --- customer drafts and merges ---------------------------------------------------------------------


def customer_children(sb, child):
    """``{customer id: [ids]}`` of every customer (deleted ones too) that has drafts or merges."""
    out = {}
    for cid in sorted(sb.ids("customer", include_deleted=True)):
        ids = sb.customer_children_ids(child, [cid])
        if ids:
            out[cid] = ids
    return out


def test_customer_drafts(sandbox, http):
    customers = sandbox.ids("customer", include_deleted=True)
    drafts = customer_children(sandbox, "drafts")
    assert 0.05 < len(drafts) / len(customers) < 0.35 and {len(ids) for ids in drafts.values()} == {1, 2, 3}
    assert set().union(*drafts.values()) == sandbox.customer_children_ids("drafts") == sandbox.customer_children_ids("drafts", customers)

    busiest = min(c for c, ids in drafts.items() if len(ids) == 3)
    got, bodies = walk(http, sandbox, f"/v1/customers/{busiest}/drafts?pageSize=2")
    assert {r["id"] for r in got} == drafts[busiest] and len(got) == 3 and len(bodies) == 2
    assert bodies[0]["meta"] == {"page": 1, "pageSize": 2} and set(bodies[0]) == {"meta", "data", "links"}
    assert bodies[0]["links"] == {"self": f"/v1/customers/{busiest}/drafts?page=1&pageSize=2",
                                  "first": f"/v1/customers/{busiest}/drafts?page=1&pageSize=2", "prev": None,
                                  "next": f"/v1/customers/{busiest}/drafts?page=2&pageSize=2"}
    assert bodies[1]["links"]["next"] is None and bodies[1]["links"]["prev"] == f"/v1/customers/{busiest}/drafts?page=1&pageSize=2"
    assert http.get(f"{sandbox.url}/v1/customers/{busiest}/drafts?page=3&pageSize=2").json()["data"] == []
    assert http.get(f"{sandbox.url}/v1/customers/{busiest}/drafts?pageSize=500").json()["meta"]["pageSize"] == 100
    assert http.get(f"{sandbox.url}/v1/customers/{busiest}/drafts?pageSize=0").status_code == 400
    assert [r["attributes"]["createdAt"] for r in got] == sorted(r["attributes"]["createdAt"] for r in got)

    every = [r for c in drafts for r in http.get(f"{sandbox.url}/v1/customers/{c}/drafts").json()["data"]]
    assert len(every) == len({r["id"] for r in every}) == len(sandbox.customer_children_ids("drafts"))
    assert {r["attributes"]["channel"] for r in every} == {"email", "sms", "chat", "whatsapp"}
    tied = 0
    for r in every:
        a, rel = r["attributes"], r["relationships"]
        owner = rel["customer"]["data"]["id"]
        assert r["type"] == "draft" and HEX24.match(r["id"]) and r["id"] in drafts[owner]
        assert r["links"]["self"] == f"/v1/customers/{owner}/drafts/{r['id']}"
        assert {"channel", "body", "subject", "status", "to", "from", "sendAt", "createdAt", "updatedAt", "modifiedAt"} <= set(a)
        assert a["status"] == "draft" and isinstance(a["body"], str) and a["body"]
        assert all(ISO_MS.match(a[k]) for k in ("createdAt", "updatedAt", "modifiedAt"))
        assert a["createdAt"] <= a["updatedAt"] == a["modifiedAt"] <= NOW
        assert a["sendAt"] is None or a["sendAt"] > a["updatedAt"]
        assert (a["subject"] is not None) == (a["channel"] == "email")
        if a["channel"] == "email":
            assert a["to"] in {e["email"] for e in sandbox.record("customer", owner)["attributes"]["emails"]}
        assert set(rel) == {"org", "customer", "conversation", "createdBy"} and rel["createdBy"]["data"]["type"] == "user"
        conversation = rel["conversation"]["data"]
        if conversation is not None:
            tied += 1
            parent = sandbox.record("conversation", conversation["id"])
            assert parent["relationships"]["customer"]["data"]["id"] == owner and parent["attributes"]["createdAt"] <= a["createdAt"]
    assert 0 < tied < len(every)

    # Deterministic: the same again, and the same from another sandbox with the same seed.
    sample = sorted(drafts)[:20]
    first = {c: http.get(f"{sandbox.url}/v1/customers/{c}/drafts").json() for c in sample}
    assert first == {c: http.get(f"{sandbox.url}/v1/customers/{c}/drafts").json() for c in sample}
    with Sandbox(records=4000, seed=7, now=NOW, frozen_clock=True) as twin:
        assert twin.customer_children_ids("drafts") == sandbox.customer_children_ids("drafts")
        assert first == {c: http.get(f"{twin.url}/v1/customers/{c}/drafts").json() for c in sample}
    with Sandbox(records=4000, seed=8, now=NOW, frozen_clock=True) as other:
        assert other.customer_children_ids("drafts") != sandbox.customer_children_ids("drafts")


def test_customer_merges(sandbox, lenient, http):
    customers = sandbox.ids("customer", include_deleted=True)
    merges = customer_children(sandbox, "merges")
    assert 0.005 < len(merges) / len(customers) < 0.12 and {len(ids) for ids in merges.values()} == {1, 2}
    assert set().union(*merges.values()) == sandbox.customer_children_ids("merges")
    assert not sandbox.customer_children_ids("merges") & sandbox.customer_children_ids("drafts")

    target = min(c for c, ids in merges.items() if len(ids) == 2)
    got, bodies = walk(http, sandbox, f"/v1/customers/{target}/merges?pageSize=1")
    assert {r["id"] for r in got} == merges[target] and len(bodies) == 2
    assert bodies[0]["links"]["next"] == f"/v1/customers/{target}/merges?page=2&pageSize=1" and bodies[1]["links"]["next"] is None
    assert http.get(f"{sandbox.url}/v1/customers/{target}/merges?pageSize=1000").json()["meta"]["pageSize"] == 100

    every = [r for c in merges for r in http.get(f"{sandbox.url}/v1/customers/{c}/merges").json()["data"]]
    assert len(every) == len({r["id"] for r in every}) == len(sandbox.customer_children_ids("merges"))
    sources = [r["attributes"]["source"] for r in every]
    assert len(sources) == len(set(sources)) and not set(sources) & customers
    for r in every:
        a = r["attributes"]
        assert r["type"] == "customer_merge" and HEX24.match(r["id"]) and set(a) == {"source", "target", "status", "createdAt", "updatedAt"}
        assert r["id"] in merges[a["target"]] and r["links"]["self"] == f"/v1/customers/{a['target']}/merges/{r['id']}"
        assert a["status"] == "done" and HEX24.match(a["source"]) and a["source"] != a["target"]
        assert sandbox.record("customer", a["target"])["attributes"]["createdAt"] <= a["createdAt"] <= a["updatedAt"] <= NOW
        assert set(r["relationships"]) == {"org", "createdBy"}
    assert http.get(f"{lenient.url}/v1/customers/{sources[0]}").status_code == 404  # merged away
    assert http.get(f"{sandbox.url}/v1/customers/{sources[0]}/merges").status_code == 404

    quiet = min(customers - set(merges))
    assert http.get(f"{sandbox.url}/v1/customers/{quiet}/merges").json() == {
        "meta": {"page": 1, "pageSize": 100}, "data": [],
        "links": {"self": f"/v1/customers/{quiet}/merges?page=1&pageSize=100",
                  "first": f"/v1/customers/{quiet}/merges?page=1&pageSize=100", "prev": None, "next": None}}
    first = http.get(f"{sandbox.url}/v1/customers/{target}/merges").json()
    assert first == http.get(f"{sandbox.url}/v1/customers/{target}/merges").json()


def test_customer_sub_lists_errors_and_ground_truth(sandbox, http):
    customers = sorted(sandbox.ids("customer", include_deleted=True))
    for child in ("drafts", "merges"):
        for bad in ("0" * 24, "nope", min(sandbox.ids("conversation"))):
            reply = http.get(f"{sandbox.url}/v1/customers/{bad}/{child}")
            assert reply.status_code == 404 and reply.json()["errors"][0]["status"] == "404", (child, bad)
        assert http.post(f"{sandbox.url}/v1/customers/{customers[0]}/{child}").status_code == 405
        assert requests.get(f"{sandbox.url}/v1/customers/{customers[0]}/{child}").json() == UNAUTHORIZED
        assert requests.get(f"{sandbox.url}/v1/customers/{customers[0]}/{child}", headers={"Authorization": "Bearer norole-token"}).status_code == 403
        assert requests.get(f"{sandbox.url}/v1/customers/{customers[0]}/{child}", headers={"Authorization": "Bearer nosearch-token"}).status_code == 200
        with pytest.raises(KeyError):
            sandbox.customer_children_ids(child, ["0" * 24])
        assert sandbox.customer_children_ids(child, []) == set()

        # Soft-deleted customers keep their sub-lists, like conversations do.
        for cid in sorted(sandbox.deleted_ids("customer")):
            got = walk(http, sandbox, f"/v1/customers/{cid}/{child}")[0]
            assert {r["id"] for r in got} == sandbox.customer_children_ids(child, [cid])

        # The helper agrees with what the endpoint serves, customer by customer.
        served = set()
        for cid in customers[:300]:
            ids = {r["id"] for r in walk(http, sandbox, f"/v1/customers/{cid}/{child}?pageSize=2")[0]}
            assert ids == sandbox.customer_children_ids(child, [cid]), (child, cid)
            served |= ids
        assert served == sandbox.customer_children_ids(child, customers[:300])
        via_admin = requests.get(f"{sandbox.url}/__sandbox/customer_children", params={"child": child, "ids": ",".join(customers[:300])}).json()
        assert via_admin == {"ids": sorted(served)}
    with pytest.raises(KeyError):
        sandbox.customer_children_ids("events")
    assert requests.get(f"{sandbox.url}/__sandbox/customer_children", params={"child": "notes"}).status_code == 400


def test_customer_sub_lists_ignore_mutations_and_are_counted(fresh, http):
    drafts, merges = fresh.customer_children_ids("drafts"), fresh.customer_children_ids("merges")
    owner = next(c for c in sorted(fresh.ids("customer")) if fresh.customer_children_ids("drafts", [c]))
    target = next(c for c in sorted(fresh.ids("customer")) if fresh.customer_children_ids("merges", [c]))
    before = {child: http.get(f"{fresh.url}/v1/customers/{cid}/{child}").json() for child, cid in (("drafts", owner), ("merges", target))}
    fresh.touch("customer", len(fresh.ids("customer", include_deleted=True)))
    fresh.delete("customer", len(fresh.ids("customer")))  # every customer: deleted parents keep their sub-lists
    fresh.create("conversation", 5)
    new = fresh.create("customer", 2)
    assert fresh.customer_children_ids("drafts") == drafts and fresh.customer_children_ids("merges") == merges
    assert {owner, target} <= fresh.deleted_ids("customer")
    assert {child: http.get(f"{fresh.url}/v1/customers/{cid}/{child}").json() for child, cid in (("drafts", owner), ("merges", target))} == before
    assert all(fresh.customer_children_ids(child, new) == set() for child in ("drafts", "merges"))
    assert http.get(f"{fresh.url}/v1/customers/{new[0]}/merges").json()["data"] == []

    fresh.reset_requests()
    http.get(f"{fresh.url}/v1/customers/{owner}/drafts")
    http.get(f"{fresh.url}/v1/customers/{new[0]}/drafts?page=2")
    http.get(f"{fresh.url}/v1/customers/{owner}/merges")
    assert fresh.requests_by_path() == {"GET /v1/customers/{id}/drafts": 2, "GET /v1/customers/{id}/merges": 1}


def test_mutations_add_events_and_audit_logs(fresh, http):
    before = set(fresh.audit_log_ids())
    touched = fresh.touch("conversation", 3)
    for cid in touched:
        events = http.get(f"{fresh.url}/v1/conversations/{cid}/events?sort=desc&pageSize=1").json()["data"]
        assert events[0]["attributes"]["createdAt"] == events[0]["attributes"]["updatedAt"] == fresh.updated_at("conversation", cid)
        assert events[0]["attributes"]["name"] == "kustomer.conversation.update"
    new = fresh.create("conversation", 1)[0]
    events = http.get(f"{fresh.url}/v1/conversations/{new}/events").json()["data"]
    assert [e["attributes"]["name"] for e in events] == ["kustomer.conversation.create"]
    assert events[0]["attributes"]["createdAt"] == fresh.updated_at("conversation", new)

    gone = fresh.delete("customer", 2)
    assert set(gone) <= fresh.deleted_ids("customer") and not set(gone) & fresh.ids("customer")
    record = fresh.record("customer", gone[0])["attributes"]
    assert record["deleted"] and record["deletedAt"] == record["updatedAt"]
    newest = search(http, fresh, {"queryContext": "customer", "includeDeleted": True}, size=2).json()["data"]
    assert {r["id"] for r in newest} == set(gone)
    assert not set(gone) & {r["id"] for r in search(http, fresh, {"queryContext": "customer"}, size=500).json()["data"]}
    assert not set(gone) & set(fresh.touch("customer", len(fresh.ids("customer", include_deleted=True))))

    added = [i for i in fresh.audit_log_ids() if i not in before]
    logs = http.get(f"{fresh.url}/v1/audit-logs?count={len(added)}").json()["data"]
    assert [r["id"] for r in logs] == added
    names = Counter(r["attributes"]["eventName"] for r in logs)
    assert names["kustomer.conversation.update"] == 3 and names["kustomer.conversation.create"] == 1 and names["kustomer.customer.delete"] == 2
    assert {r["attributes"]["objectId"] for r in logs if r["attributes"]["eventName"] == "kustomer.conversation.update"} == set(touched)
    assert all(r["attributes"]["createdAt"] >= NOW for r in logs)
    with pytest.raises(ValueError):
        fresh.delete("message")
    assert requests.post(f"{fresh.url}/__sandbox/delete", json={"context": "note", "n": 1}).json()["ids"][0] in fresh.deleted_ids("note")


# --- request counts -------------------------------------------------------------------------------


def test_requests_by_path(fresh, http):
    fresh.reset_requests()
    conversations = sorted(fresh.ids("conversation"))[:3]
    for cid in conversations:
        http.get(f"{fresh.url}/v1/conversations/{cid}/events")
    http.get(f"{fresh.url}/v1/conversations/{conversations[0]}/times?pageSize=10")
    search(http, fresh, {"queryContext": "customer"})
    search(http, fresh, {"queryContext": "note"})
    http.get(f"{fresh.url}/v1/klasses/shopify-orders")
    http.get(f"{fresh.url}/v1/customers/{min(fresh.ids('customer'))}/klasses/subscription")
    http.get(f"{fresh.url}/v1/nothing")
    fresh.inject_fault("503")
    http.get(f"{fresh.url}/v1/audit-logs?count=5")
    requests.get(f"{fresh.url}/__sandbox/stats")  # admin requests are not counted
    expected = {"GET /v1/conversations/{id}/events": 3, "GET /v1/conversations/{id}/times": 1, "POST /v1/customers/search": 2,
                "GET /v1/klasses/{name}": 1, "GET /v1/customers/{id}/klasses/{name}": 1, "GET /v1/nothing": 1, "GET /v1/audit-logs": 1}
    assert fresh.requests_by_path() == expected
    assert requests.get(f"{fresh.url}/__sandbox/requests").json() == expected
    assert fresh.requests_by_path(reset=True) == expected and fresh.requests_by_path() == {}
    http.get(f"{fresh.url}/v1/brands")
    assert requests.get(f"{fresh.url}/__sandbox/requests", params={"reset": 1}).json() == {"GET /v1/brands": 1}
    assert fresh.requests_by_path() == {}
    http.get(f"{fresh.url}/v1/brands")
    fresh.clear_log()
    assert fresh.requests_by_path() == {}


# --- the published contract ---------------------------------------------------------------------------


def contract_error(problem, source=None, status=400):
    return {"status": str(status), "code": "bad_request", "title": problem, **({"source": source} if source else {})}


def test_contract_enforced_recorded_or_off():
    undocumented_param = "query parameter 'sortBy' is not documented for GET /v1/tags"
    undocumented_path = "GET /v1/customers is not an endpoint Kustomer documents"
    for mode in ("enforce", "record", "off"):
        with Sandbox(records=300, seed=2, contract=mode) as sb, requests.Session() as http:
            http.headers.update(TOKEN)
            assert http.get(f"{sb.url}/v1/tags", params={"page": 1, "pageSize": 10}).status_code == 200
            extra = http.get(f"{sb.url}/v1/tags", params={"pageSize": 10, "sortBy": "name"})
            path = http.get(f"{sb.url}/v1/customers")
            if mode == "enforce":
                assert extra.status_code == 400 and extra.json() == {"errors": [contract_error(undocumented_param, {"parameter": "sortBy"})]}
                assert path.status_code == 400 and path.json() == {"errors": [contract_error(undocumented_path)]}
            else:
                assert extra.status_code == 200 and len(extra.json()["data"]) == 10
                assert path.status_code == 200 and path.json()["meta"]["total"] == len(sb.ids("customer"))
            # Unknown paths and wrong verbs keep their 404 and 405 (recorded all the same).
            assert http.get(f"{sb.url}/v1/nothing").status_code == 404
            assert http.get(f"{sb.url}/v1/customers/search").status_code == 405
            # A request that fails authentication is not checked.
            assert requests.get(f"{sb.url}/v1/tags?sortBy=name", headers={"Authorization": "Bearer nope"}).status_code == 401
            expected = [] if mode == "off" else [
                {"method": "GET", "path": "/v1/tags", "params": [("pageSize", "10"), ("sortBy", "name")], "body": None,
                 "problems": [undocumented_param]},
                {"method": "GET", "path": "/v1/customers", "params": [], "body": None, "problems": [undocumented_path]},
                {"method": "GET", "path": "/v1/nothing", "params": [], "body": None,
                 "problems": ["GET /v1/nothing is not an endpoint Kustomer documents"]},
                {"method": "GET", "path": "/v1/customers/search", "params": [], "body": None,
                 "problems": ["GET /v1/customers/search is not an endpoint Kustomer documents"]},
            ]
            assert sb.contract_violations == expected
            as_json = json.loads(json.dumps({"violations": expected}))
            assert requests.get(f"{sb.url}/__sandbox/contract_violations").json() == as_json
            assert requests.get(f"{sb.url}/__sandbox/stats").json()["contractViolations"] == len(expected)
            assert requests.get(f"{sb.url}/__sandbox/contract_violations", params={"reset": 1}).json() == as_json
            assert sb.contract_violations == []


def test_a_request_cut_off_by_a_killed_client_is_not_a_request(sandbox):
    """A sync killed mid-request leaves headers and part of a body: nothing was asked, so nothing is
    answered, logged, or counted as a contract violation."""
    import socket

    violations, logged = len(sandbox.contract_violations), len(sandbox.request_log)
    host, port = sandbox.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b"POST /v1/customers/search?page=1&pageSize=100 HTTP/1.1\r\nHost: x\r\n"
                       b"Authorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query")
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1024) == b""  # closed without an answer
    assert len(sandbox.contract_violations) == violations and len(sandbox.request_log) == logged

def test_contract_errors_name_each_problem_in_both_forms(sandbox, http):
    body = {"queryContext": "customer", "bogus": 1, "and": [{"customer_name": {"startsWith": "A"}}],
            "or": [{"and": [{"customer_id": {"equals": "x"}}]}], "sort": [{"customer_name": "asc"}, {"customer_foo": "desc"}]}
    before = len(sandbox.contract_violations)
    reply = search(http, sandbox, body)
    assert reply.status_code == 400 and reply.json() == {"errors": [
        contract_error("body field 'bogus' is not documented", {"pointer": "/bogus"}),
        contract_error("operator 'startsWith' is not documented", {"pointer": "/and/0/customer_name/startsWith"}),
        contract_error("filter attribute 'customer_id' is not documented", {"pointer": "/or/0/and/0/customer_id"}),
        contract_error("sort attribute 'customer_foo' is not documented", {"pointer": "/sort/1"}),
    ]}
    recorded = sandbox.contract_violations[before]
    assert recorded["method"] == "POST" and recorded["path"] == "/v1/customers/search" and recorded["body"] == body
    assert recorded["params"] == [("page", "1"), ("pageSize", "100")] and len(recorded["problems"]) == 4

    archive = search(http, sandbox, {"queryContext": "conversation"}, archive=True, idsOnly="true")
    assert archive.json() == {"errors": [contract_error("query parameter 'idsOnly' is not documented for POST /v1/customers/archive/search",
                                                       {"parameter": "idsOnly"})]}
    not_json = http.post(f"{sandbox.url}/v1/customers/search", data="[1, 2]")
    assert not_json.json() == {"errors": [contract_error("the search body is not a JSON object", {"pointer": ""})]}
    # The relied-on sorts and filters, and everything Kustomer documents, pass.
    for ctx in ("conversation", "message", "note", "company", "kobject_shopify-orders", "customer"):
        assert search(http, sandbox, window(ctx.split("_")[0] if ctx.startswith("kobject") else ctx, "2025-01-01", "2025-06-01") |
                      {"queryContext": ctx, "includeDeleted": True}).status_code == 200, ctx
    assert len(sandbox.contract_violations) == before + 3

    with Sandbox(records=100, seed=2, error_format="simple") as sb:
        reply = requests.get(f"{sb.url}/v1/brands?pageSize=5&order=asc", headers=TOKEN)
        assert reply.json() == {"errors": [{"code": "bad_request", "message": "query parameter 'order' is not documented for GET /v1/brands",
                                            "meta": {"status": 400, "source": {"parameter": "order"}}}]}


def test_contract_comes_after_auth_and_before_roles_and_rate_limits():
    with Sandbox(records=100, seed=2, org_rpm=2, time_scale=1) as sb:
        def get(token, query=""):
            return requests.get(f"{sb.url}/v1/tags{query}", headers={"Authorization": f"Bearer {token}"})

        assert get("expired-token", "?sortBy=x").status_code == 401
        assert get("eu-token", "?sortBy=x").status_code == 401
        assert get("norole-token", "?sortBy=x").status_code == 400  # the contract before the roles
        assert get("norole-token").status_code == 403
        assert [get("sandbox-token").status_code for _ in range(3)] == [200, 200, 429]  # refusals spent no budget
        assert get("sandbox-token", "?sortBy=x").status_code == 400 and get("norole-token").status_code == 403
        assert [v["params"] for v in sb.contract_violations] == [[("sortBy", "x")], [("sortBy", "x")]]


# --- roles, the key itself, pods ----------------------------------------------------------------------


def endpoint_request(sb, endpoint, conversation, customer):
    """``(method, url, json body)`` of one request to a contract endpoint, its ids filled in."""
    path = endpoint.path.replace("{resource}", "customer")
    path = path.replace("/conversations/{id}", f"/conversations/{conversation}").replace("/customers/{id}", f"/customers/{customer}")
    return endpoint.method, sb.url + path, {"queryContext": "customer"} if endpoint.method == "POST" else None


def test_each_endpoint_needs_one_of_its_roles_in_either_form():
    from source_kustomer import contract
    from integration_tests.sandbox import LEGACY_ROLES, SEARCH_ROLES
    from integration_tests.sandbox.roles import SANDBOX_ROLES, roles_needed

    assert not any(r.startswith(("org.user.", "org.admin.")) for r in ALL_ROLES) and SEARCH_ROLES <= set(contract.ENDPOINTS[0].roles)
    assert {"org.user.search.read", "org.user.read", "org.admin.spam.read", "org.permission.snooze.read",
            "org.permission.tag.read"} <= LEGACY_ROLES and not LEGACY_ROLES & {"org.permission.search.create", "org.permission.brand.read"}
    roles = {e.key: roles_needed(e.method, e.path) for e in contract.ENDPOINTS}
    assert roles["GET /v1/auth/tokens/current"] == ()
    assert roles["GET /v1/tags"] == ("org.permission.tag.read",) and roles["GET /v1/users"] == ("org.permission.user.read", "org.user.read")
    assert all(roles[e.key] == e.roles for e in contract.ENDPOINTS if e.roles)
    every = {r for needed in roles.values() for r in needed}
    assumed = {r for _, rs in SANDBOX_ROLES for r in rs}  # also for the routes the contract does not list
    assert every | assumed == ALL_ROLES | {r for e in contract.ENDPOINTS for r in e.roles} and assumed <= ALL_ROLES & LEGACY_ROLES

    tokens = {f"only-{role}": {role} for role in sorted(every)}
    tokens.update({f"but-{n}": (ALL_ROLES | LEGACY_ROLES) - set(roles[e.key]) for n, e in enumerate(contract.ENDPOINTS)})
    tokens.update({"all": ALL_ROLES, "legacy": LEGACY_ROLES, "none": set()})
    with Sandbox(records=300, seed=2, tokens=tokens) as sb:
        conversation, customer = min(sb.ids("conversation")), min(sb.ids("customer"))

        def status(token, endpoint):
            method, url, body = endpoint_request(sb, endpoint, conversation, customer)
            return requests.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}).status_code

        for n, endpoint in enumerate(contract.ENDPOINTS):
            assert status("all", endpoint) == status("legacy", endpoint) == 200, endpoint.key
            for role in roles[endpoint.key]:
                assert status(f"only-{role}", endpoint) == 200, (endpoint.key, role)
            if roles[endpoint.key]:
                assert status(f"but-{n}", endpoint) == status("none", endpoint) == 403, endpoint.key
            else:
                assert status("none", endpoint) == 200, endpoint.key
        assert sb.contract_violations == []


def test_default_keys_and_the_missing_role_answer(sandbox):
    conversation = min(sandbox.ids("conversation"))

    def status(token, path, method="GET"):
        body = {"queryContext": "note"} if method == "POST" else None
        return requests.request(method, f"{sandbox.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}).status_code

    for token in ("sandbox-token", "legacy-token"):
        assert status(token, "/v1/tags") == status(token, "/v1/customers/search", "POST") == status(token, f"/v1/conversations/{conversation}/events") == 200
    assert status("nosearch-token", "/v1/customers/search", "POST") == status("nosearch-token", "/v1/customers/archive/search", "POST") == 403
    assert status("nosearch-token", f"/v1/conversations/{conversation}/events") == 200
    assert status("noevents-token", f"/v1/conversations/{conversation}/events") == 403
    assert status("noevents-token", f"/v1/conversations/{conversation}/times") == status("noevents-token", "/v1/customers/search", "POST") == 200
    for token in ("eu-token", "india-token", "expired-token"):
        assert status(token, "/v1/tags") == 401

    # Every route the sandbox serves needs a role, documented or not (the lenient contract lets them all through).
    paths = ["/v1/users/current", f"/v1/users/{min(sandbox.user_ids())}", "/v1/customers", f"/v1/customers/{min(sandbox.ids('customer'))}",
             "/v1/conversations", "/v1/messages", "/v1/notes", "/v1/companies", f"/v1/companies/{min(sandbox.ids('company'))}/customers",
             "/v1/klasses/shopify-orders", f"/v1/customers/{min(sandbox.ids('customer'))}/klasses/subscription",
             f"/v1/customers/{min(sandbox.ids('customer'))}/conversations", "/v1/teams", f"/v1/tags/{min(sandbox.ids_of_list('tags'))}",
             "/v1/cards", "/v1/routing/settings", "/v1/notifications", "/v1/slas", "/v1/shortcuts"]
    with Sandbox(records=300, seed=7, now=NOW, frozen_clock=True, contract="off") as sb:
        for path in paths:
            assert requests.get(f"{sb.url}{path}", headers={"Authorization": "Bearer norole-token"}).status_code == 403, path
            assert requests.get(f"{sb.url}{path}", headers=TOKEN).status_code in (200, 404), path

    for missing_role_status, error_format, expected in (
            (401, "jsonapi", {"errors": [{"status": "401", "code": "unauthorized", "title": "Missing required role"}]}),
            (403, "simple", {"errors": [{"code": "forbidden", "message": "Missing required role", "meta": {"status": 403}}]})):
        with Sandbox(records=50, missing_role_status=missing_role_status, error_format=error_format) as sb:
            reply = requests.get(f"{sb.url}/v1/tags", headers={"Authorization": "Bearer norole-token"})
            assert reply.status_code == missing_role_status and reply.json() == expected
    with pytest.raises(ValueError):
        Sandbox(records=50, missing_role_status=500)
    with pytest.raises(ValueError):
        Sandbox(records=50, tokens={"k": "read"})


def test_current_token(sandbox, lenient, http):
    from integration_tests.sandbox import LEGACY_ROLES

    body = http.get(f"{sandbox.url}/v1/auth/tokens/current").json()
    token = body["data"]
    assert set(body) == {"data"} and set(token) == {"type", "id", "attributes", "relationships", "links"}
    assert token["type"] == "auth_token" and HEX24.match(token["id"]) and token["links"] == {"self": "/v1/auth/tokens/current"}
    a = token["attributes"]
    assert set(a) == {"name", "lastTokenChars", "roles", "ipAddress", "userAgent", "createdAt", "updatedAt", "lastAccessedAt"}
    assert a["lastTokenChars"] == "oken" and a["roles"] == sorted(ALL_ROLES) and a["name"] and "sandbox-token" not in json.dumps(token)
    assert all(ISO_MS.match(a[k]) for k in ("createdAt", "updatedAt", "lastAccessedAt"))
    assert a["createdAt"] <= a["updatedAt"] <= a["lastAccessedAt"] == NOW
    assert token["relationships"]["org"] == {"data": {"type": "org", "id": sandbox.store.org_id}}
    user = token["relationships"]["user"]["data"]
    assert user["type"] == "user" and user["id"] == http.get(f"{lenient.url}/v1/users/current").json()["data"]["id"]
    assert http.get(f"{sandbox.url}/v1/auth/tokens/current").json() == body  # stable

    def current(key):
        return requests.get(f"{sandbox.url}/v1/auth/tokens/current", headers={"Authorization": f"Bearer {key}"})

    assert current("legacy-token").json()["data"]["attributes"]["roles"] == sorted(LEGACY_ROLES)
    norole = current("norole-token")
    assert norole.status_code == 200 and norole.json()["data"]["attributes"]["roles"] == [] and norole.json()["data"]["id"] != token["id"]
    assert current("expired-token").status_code == 401 and current("eu-token").status_code == 401 and current("nope").status_code == 401
    with Sandbox(records=50, tokens={"key-abcd1234": {"roles": {"org.permission.tag.read"}, "name": "Warehouse sync"}}) as sb:
        reply = requests.get(f"{sb.url}/v1/auth/tokens/current", headers={"Authorization": "Bearer key-abcd1234"}).json()["data"]["attributes"]
        assert (reply["name"], reply["lastTokenChars"], reply["roles"]) == ("Warehouse sync", "1234", ["org.permission.tag.read"])
        assert sb.contract_violations == []


def test_pods():
    with Sandbox(records=100, seed=2) as sb:
        assert sb.switches()["pod"] == "prod1"
        for token, pod in (("eu-token", "prod2"), ("india-token", "prod4")):
            for method, path in (("GET", "/v1/tags"), ("GET", "/v1/auth/tokens/current"), ("POST", "/v1/customers/search"),
                                 ("GET", "/v1/tags?sortBy=x")):
                reply = requests.request(method, f"{sb.url}{path}", json={"queryContext": "customer"}, headers={"Authorization": f"Bearer {token}"})
                assert reply.status_code == 401 and reply.json() == {"errors": [{
                    "status": "401", "code": "unauthorized", "title": f"Auth token associated with pod {pod} but request is being handled by prod1"}]}
        assert sb.contract_violations == []  # refused before the contract is checked
    with Sandbox(records=100, seed=2, pod="prod2", wrong_pod_status=403, error_format="simple") as sb:
        for token in ("eu-token", "sandbox-token"):  # a key that names no pod works on every pod
            assert requests.get(f"{sb.url}/v1/tags", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        reply = requests.get(f"{sb.url}/v1/auth/tokens/current", headers={"Authorization": "Bearer india-token"})
        assert reply.status_code == 403 and reply.json() == {"errors": [{
            "code": "forbidden", "message": "Auth token associated with pod prod4 but request is being handled by prod2", "meta": {"status": 403}}]}


# --- users by status -------------------------------------------------------------------------------

USER_ATTRIBUTES = {"displayName", "name", "userType", "email", "mobile", "roles", "updatedAt", "createdAt"}


def user_list(http, sb, query=""):
    return http.get(f"{sb.url}/v1/users{query}")


def test_users_by_status(sandbox, http):
    everyone = sandbox.user_ids()
    active, deactivated, pending = (sandbox.user_ids(s) for s in ("active", "deactivated", "pending"))
    assert len(everyone) == 25 and active | deactivated | pending == everyone and not active & deactivated and not active & pending
    assert 3 <= len(deactivated) <= 4 and 2 <= len(pending) <= 3 and not deactivated & pending
    assert sandbox.ids_of_list("users") == everyone and set(requests.get(f"{sandbox.url}/__sandbox/ground_truth").json()["users"]) == everyone
    assert requests.get(f"{sandbox.url}/__sandbox/users").json() == {"users": {u: sandbox.user_status(u) for u in sorted(everyone)}}
    machine = http.get(f"{sandbox.url}/v1/auth/tokens/current").json()["data"]["relationships"]["user"]["data"]["id"]
    assert sandbox.user_status(machine) == "active"
    with pytest.raises(KeyError):
        sandbox.user_status("0" * 24)
    with pytest.raises(KeyError):
        sandbox.user_ids("suspended")

    def ids(query=""):
        reply = user_list(http, sandbox, query)
        assert reply.status_code == 200, (query, reply.text)
        return {u["id"] for u in reply.json()["data"]}

    assert ids() == ids("?deleted=false") == ids("?pending=false") == ids("?pending=FALSE") == active
    assert ids("?deleted=true") == deactivated and ids("?pending=true") == pending
    assert ids("?userType=machine") == {machine} and ids("?userType=user") == active - {machine}
    someone = sandbox.record("user", min(active - {machine}))["attributes"]["email"]
    assert ids(f"?email={someone.upper()}") == {min(active - {machine})}
    hidden = sandbox.record("user", min(deactivated))["attributes"]["email"]
    assert ids(f"?email={hidden}") == set()  # userType and email narrow the default list

    for query, second in (("?deleted=true&pending=false", "pending"), ("?userType=user&email=x@example.com", "email"),
                          ("?pending=true&userType=user", "userType"), ("?deleted=false&email=a", "email")):
        reply = user_list(http, sandbox, query)
        assert reply.status_code == 400 and reply.json() == {"errors": [
            {"status": "400", "code": "bad_request", "title": "These filters cannot be combined", "source": {"parameter": second}}]}, query
    assert user_list(http, sandbox, "?deleted=yes").status_code == 400

    # A user resource never tells its status; the documented attributes are always there.
    for user in user_list(http, sandbox, "?deleted=true").json()["data"] + user_list(http, sandbox, "?pending=true").json()["data"]:
        assert USER_ATTRIBUTES <= set(user["attributes"]) and "status" not in user["attributes"]
        assert user["attributes"]["deletedAt"] is None and user == sandbox.record("user", user["id"])
    # Pages keep the filter; pageSize goes up to 500.
    first = user_list(http, sandbox, "?deleted=true&pageSize=2").json()
    assert first["links"]["next"] == "/v1/users?page=2&pageSize=2&deleted=true" and len(first["data"]) == 2
    assert {u["id"] for u in walk(http, sandbox, "/v1/users?deleted=true&pageSize=2")[0]} == deactivated
    assert user_list(http, sandbox, "?pending=true&pageSize=1000").json()["meta"]["pageSize"] == 500

    # Deactivated users still author and own older objects; a pending invitation never acted.
    conversations = search_all(http, sandbox, {"queryContext": "conversation"}) + search_all(http, sandbox, {"queryContext": "conversation"}, archive=True)
    assigned = {u for c in conversations for u in c["attributes"]["assignedUsers"]}
    authors = {c["relationships"]["createdBy"]["data"]["id"] for c in conversations}
    messages = search_all(http, sandbox, {"queryContext": "message"})
    assert deactivated <= assigned and deactivated & authors and deactivated & {m["relationships"]["createdBy"]["data"]["id"] for m in messages}
    text = json.dumps([conversations, messages, search_all(http, sandbox, {"queryContext": "note"})])
    assert not any(u in text for u in pending)


def test_users_default_and_pending_switches():
    with Sandbox(records=300, seed=3) as sb, requests.Session() as http:
        http.headers.update(TOKEN)
        active, deactivated, pending = (sb.user_ids(s) for s in ("active", "deactivated", "pending"))

        def ids(query=""):
            return {u["id"] for u in user_list(http, sb, query).json()["data"]}

        assert ids() == active
        sb.configure(users_active_includes_pending=True)
        assert ids("?deleted=false") == ids("?pending=false") == active | pending and ids() == active
        assert ids("?pending=true") == pending and ids("?deleted=true") == deactivated
        for default, expected in (("all", active | deactivated | pending), ("active_and_pending", active | pending), ("active", active)):
            sb.configure(users_default=default)
            assert ids() == expected, default
        assert requests.post(f"{sb.url}/__sandbox/switches", json={"users_default": "everyone"}).status_code == 400
    with Sandbox(records=300, seed=3, users_default="all") as sb:
        assert {u["id"] for u in requests.get(f"{sb.url}/v1/users", headers=TOKEN).json()["data"]} == sb.user_ids()

    def statuses(seed):  # in user order
        twin = Sandbox(records=300, seed=seed, now=NOW)
        return [twin.user_status(u) for u in sorted(twin.user_ids())]

    assert statuses(3) == statuses(3) != statuses(8)  # deterministic from the seed


# --- conversation attachments ---------------------------------------------------------------------------


def by_conversation(triples):
    out = {}
    for conversation, message, attachment in triples:
        out.setdefault(conversation, []).append((message, attachment))
    return out


def test_conversation_attachments(sandbox, http):
    truth = sandbox.attachments()
    everything = sandbox.attachments(include_deleted=True)
    grouped = by_conversation(truth)
    live = sandbox.ids("conversation")
    assert len(truth) == len({a for _, _, a in truth}) > 100 and set(grouped) <= live
    assert set(by_conversation(everything)) - set(grouped) <= sandbox.deleted_ids("conversation") and len(everything) >= len(truth)
    assert all(HEX24.match(a) for _, _, a in everything)
    busiest = max(grouped, key=lambda c: len(grouped[c]))
    assert len(grouped[busiest]) >= 3 and sandbox.attachments([busiest]) == [(busiest, m, a) for m, a in grouped[busiest]]

    got, bodies = walk(http, sandbox, f"/v1/conversations/{busiest}/attachments?pageSize=2")
    assert [(r["relationships"]["message"]["data"]["id"], r["id"]) for r in got] == grouped[busiest]
    assert bodies[0]["meta"] == {"page": 1, "pageSize": 2} and bodies[0]["links"]["next"] == f"/v1/conversations/{busiest}/attachments?page=2&pageSize=2"
    for r in got:
        message, aid = r["relationships"]["message"]["data"]["id"], r["id"]
        assert set(r) == {"type", "id", "attributes", "relationships", "links"} and r["type"] == "attachment"
        assert set(r["attributes"]) == {"name", "contentType", "contentLength", "redacted"} and isinstance(r["attributes"]["contentLength"], int)
        assert r["relationships"]["message"] == {"data": {"type": "message", "id": message}} and r["relationships"]["org"]["data"]["type"] == "org"
        assert r["links"] == {"self": f"/v1/messages/{message}/attachments/{aid}",
                              "related": f"https://kustomer-sandbox.example/attachments/{aid}?X-Amz-Expires=600"}
        assert sandbox.record("message", message)["relationships"]["conversation"]["data"]["id"] == busiest

    # Every conversation's list is the ground truth (a sample of them, all pages).
    for conversation in sorted(live)[:150]:
        served = [(r["relationships"]["message"]["data"]["id"], r["id"]) for r in walk(http, sandbox, f"/v1/conversations/{conversation}/attachments")[0]]
        assert served == grouped.get(conversation, []), conversation
    quiet = min(live - set(grouped))
    assert http.get(f"{sandbox.url}/v1/conversations/{quiet}/attachments").json() == {
        "meta": {"page": 1, "pageSize": 100}, "data": [],
        "links": {"self": f"/v1/conversations/{quiet}/attachments?page=1&pageSize=100",
                  "first": f"/v1/conversations/{quiet}/attachments?page=1&pageSize=100", "prev": None, "next": None}}
    assert http.get(f"{sandbox.url}/v1/conversations/{busiest}/attachments?pageSize=500").json()["meta"]["pageSize"] == 100
    assert http.get(f"{sandbox.url}/v1/conversations/{busiest}/attachments?pageSize=0").status_code == 400
    assert http.get(f"{sandbox.url}/v1/conversations/{'0' * 24}/attachments").status_code == 404
    gone = next(c for c in sorted(sandbox.deleted_ids("conversation")) if sandbox.attachments([c], include_deleted=True))
    assert sandbox.attachments([gone]) == [] and len(walk(http, sandbox, f"/v1/conversations/{gone}/attachments")[0]) == len(
        sandbox.attachments([gone], include_deleted=True))  # a deleted conversation's list is still served
    with pytest.raises(KeyError):
        sandbox.attachments(["0" * 24])
    admin = requests.get(f"{sandbox.url}/__sandbox/attachments", params={"ids": busiest}).json()
    assert admin == {"attachments": [[busiest, m, a] for m, a in grouped[busiest]]}
    assert requests.get(f"{sandbox.url}/v1/conversations/{busiest}/attachments", headers={"Authorization": "Bearer norole-token"}).status_code == 403


def test_attachments_without_ids_and_of_new_messages(fresh, http):
    truth = by_conversation(fresh.attachments())
    conversation = min(truth)
    fresh.configure(attachment_ids=False)
    items = http.get(f"{fresh.url}/v1/conversations/{conversation}/attachments").json()["data"]
    assert items and all("id" not in r and set(r) == {"type", "attributes", "relationships", "links"} for r in items)
    assert [(r["relationships"]["message"]["data"]["id"], r["links"]["self"].rsplit("/", 1)[1]) for r in items] == truth[conversation]
    fresh.configure(attachment_ids=True)

    created = fresh.create("message", 200)  # attached to conversations picked at random, some with attachments
    after = by_conversation(fresh.attachments())
    changed = [c for c in after if after[c] != truth.get(c, [])]
    assert changed and {m for c in changed for m, _ in after[c]} & set(created)
    for c in changed:
        served = walk(http, fresh, f"/v1/conversations/{c}/attachments")[0]
        assert [(r["relationships"]["message"]["data"]["id"], r["id"]) for r in served] == after[c]


def test_message_attachment_relationships(sandbox, lenient, http):
    truth = by_conversation(sandbox.attachments())
    conversation = max(truth, key=lambda c: len(truth[c]))
    attached = {m: [a for m2, a in truth[conversation] if m2 == m] for m, _ in truth[conversation]}

    def linked(messages):
        return {m["id"]: [a["id"] for a in m["relationships"]["attachments"]["data"]] for m in messages if "attachments" in m["relationships"]}

    # Documented only on GET /v1/conversations/{id}/messages?include=attachments: there it always is.
    plain = http.get(f"{sandbox.url}/v1/conversations/{conversation}/messages").json()
    included = http.get(f"{sandbox.url}/v1/conversations/{conversation}/messages?include=attachments").json()
    assert linked(plain["data"]) == {} and "included" not in plain
    assert linked(included["data"]) == attached and [a["id"] for a in included["included"]] == [a for _, a in truth[conversation]]
    searched = search_all(http, sandbox, {"queryContext": "message"})
    assert linked(searched) == {} and linked(walk(http, lenient, "/v1/messages?pageSize=100")[0]) == {}

    with Sandbox(records=4000, seed=7, now=NOW, frozen_clock=True, search_attachments=True) as sb:
        searched = search_all(http, sb, {"queryContext": "message"}) + search_all(http, sb, {"queryContext": "message"}, archive=True)
        truth = by_conversation(sb.attachments(include_deleted=True))  # messages of deleted conversations are searched too
        everything = {m: [a for m2, a in pairs if m2 == m] for pairs in truth.values() for m, _ in pairs}
        assert linked(searched) == everything
        assert linked(http.get(f"{sb.url}/v1/conversations/{conversation}/messages").json()["data"]) == attached
        assert sb.record("message", next(iter(attached)))["relationships"]["attachments"]["data"][0]["type"] == "attachment"
        sb.configure(search_attachments=False)
        assert linked(search(http, sb, {"queryContext": "message"}, size=500).json()["data"]) == {}


# --- where Kustomer is silent: search switches ------------------------------------------------------


def stamped(sb, ctx, archive=None, include_deleted=False):
    """``[(updatedAt, id)]`` of a context's objects, ascending; ``archive`` True/False keeps one side of the cutoff."""
    truth = sb.ground_truth(ctx, with_updated_at=True, include_deleted=include_deleted)[ctx]
    cutoff = sb.archive_cutoff()
    return sorted((at, i) for i, at in truth.items() if archive is None or (at < cutoff) == archive)


def test_archive_note_queries():
    body = window("note", "2023-01-01", "2023-03-31")
    problems = ["queryContext 'note' is not documented", "filter attribute 'note_updated_at' is not documented",
                "filter attribute 'note_updated_at' is not documented", "sort attribute 'note_updated_at' is not documented"]
    for mode in ("refuse", "ignore", "serve"):
        for contract in ("enforce", "record"):
            with Sandbox(records=3000, seed=5, now=NOW, frozen_clock=True, archive_notes=mode, contract=contract) as sb, requests.Session() as http:
                http.headers.update(TOKEN)
                archived = stamped(sb, "note", archive=True)
                reply = search(http, sb, body, size=50, archive=True)
                if mode == "refuse":
                    assert reply.status_code == 400 and reply.json() == {"errors": [{
                        "status": "400", "code": "bad_request", "title": "Invalid queryContext 'note' for the archive search",
                        "source": {"pointer": "/queryContext"}}]}
                elif mode == "ignore":  # every archived note, newest first: the window and the sort are not applied
                    got = search_all(http, sb, body, archive=True)
                    assert [(r["attributes"]["updatedAt"], r["id"]) for r in got] == archived[::-1]
                    assert reply.json()["meta"]["total"] == len(archived) and any(not "2023-01-01" <= at < "2023-04" for at, _ in archived)
                else:
                    got = search_all(http, sb, body, archive=True)
                    assert [(r["attributes"]["updatedAt"], r["id"]) for r in got] == [
                        (at, i) for at, i in archived if "2023-01-01" <= at <= "2023-03-31T00:00:00.000Z"] != []
                assert sb.contract_violations[0]["problems"] == problems and sb.contract_violations[0]["body"] == body
                # What the switch does not cover is still the contract's to refuse.
                extra = search(http, sb, body, archive=True, idsOnly="true")
                if contract == "enforce":
                    assert extra.status_code == 400 and [e["source"] for e in extra.json()["errors"]] == [{"parameter": "idsOnly"}]
    with pytest.raises(ValueError):
        Sandbox(records=50, archive_notes="maybe")


RELIED_ON_SORTS = ("conversation", "message", "note", "company", "kobject_shopify-orders")


def test_undocumented_sorts():
    for mode in ("honor", "ignore", "refuse"):
        with Sandbox(records=3000, seed=5, now=NOW, frozen_clock=True, undocumented_sort=mode) as sb, requests.Session() as http:
            http.headers.update(TOKEN)
            for ctx in RELIED_ON_SORTS + ("customer",):
                base = "kobject" if ctx.startswith("kobject") else ctx
                body = {**window(base, "2024-06-01", "2025-12-31"), "queryContext": ctx}
                expected = [(at, i) for at, i in stamped(sb, ctx, archive=False) if "2024-06-01" <= at <= "2025-12-31T00:00:00.000Z"]
                reply = search(http, sb, body, size=500)
                if mode == "refuse" and ctx != "customer":
                    assert reply.status_code == 400 and reply.json() == {"errors": [{
                        "status": "400", "code": "bad_request", "title": f"Cannot sort on '{base}_updated_at'", "source": {"pointer": "/sort/0"}}]}
                    continue
                got = [(r["attributes"]["updatedAt"], r["id"]) for r in reply.json()["data"]]
                if mode == "ignore" and ctx != "customer":
                    assert got == expected[::-1][:500], ctx  # the default order: newest first
                else:
                    assert got == expected[:500], ctx
                if ctx != "note":  # the archive documents these sorts: always honored there
                    archived = search(http, sb, {"queryContext": ctx, "sort": [{f"{base}_updated_at": "asc"}]}, size=5, archive=True).json()["data"]
                    assert [(r["attributes"]["updatedAt"], r["id"]) for r in archived] == stamped(sb, ctx, archive=True)[:5]
            assert sb.contract_violations == []  # relied on, not violations: the switch alone decides


def test_undocumented_filter():
    since = "2025-06-01"
    nested = {"queryContext": "company", "or": [{"and": [{"company_updated_at": {"gte": since}}, {"company_name": {"contains": "a"}}]}]}
    for mode in ("honor", "ignore", "refuse"):
        with Sandbox(records=4000, seed=5, now=NOW, frozen_clock=True, undocumented_filter=mode) as sb, requests.Session() as http:
            http.headers.update(TOKEN)
            live = stamped(sb, "company", archive=False)
            named = {r["id"] for r in search_all(http, sb, {"queryContext": "company", "and": [{"company_name": {"contains": "a"}}]})}
            flat = search(http, sb, {"queryContext": "company", "and": [{"company_updated_at": {"gte": since}}]}, size=500)
            inner = search(http, sb, nested, size=500)
            if mode == "refuse":
                for reply, pointer in ((flat, "/and/0/company_updated_at"), (inner, "/or/0/and/0/company_updated_at")):
                    assert reply.status_code == 400 and reply.json() == {"errors": [{
                        "status": "400", "code": "bad_request", "title": "Invalid attribute 'company_updated_at': it cannot be searched",
                        "source": {"pointer": pointer}}]}
            else:
                wanted = {i for at, i in live if mode == "ignore" or at >= since}
                assert {r["id"] for r in flat.json()["data"]} == wanted and flat.json()["meta"]["total"] == len(wanted)
                assert {r["id"] for r in inner.json()["data"]} == wanted & named
            # The archive documents company_updated_at: always applied there.
            old = search(http, sb, {"queryContext": "company", "and": [{"company_updated_at": {"gte": "2024-01-01"}}]}, size=500, archive=True)
            assert {r["id"] for r in old.json()["data"]} == {i for at, i in stamped(sb, "company", archive=True) if at >= "2024-01-01"}
            assert sb.contract_violations == []
    with pytest.raises(ValueError):
        Sandbox(records=50, undocumented_filter="sometimes")


def test_kobject_updated_at_on_every_klass_context(sandbox, http):
    for name in sandbox.store.klass_names:
        ctx = f"kobject_{name}"
        for archive in (False, True):
            got = search_all(http, sandbox, {**window("kobject", "2022-01-01", "2025-12-31"), "queryContext": ctx}, archive=archive)
            expected = [(at, i) for at, i in stamped(sandbox, ctx, archive=archive) if "2022-01-01" <= at <= "2025-12-31T00:00:00.000Z"]
            assert [(r["attributes"]["updatedAt"], r["id"]) for r in got] == expected and expected, (ctx, archive)
    assert not [v for v in sandbox.contract_violations if isinstance(v["body"], dict) and str(v["body"].get("queryContext")).startswith("kobject_")]


# --- schema drift, switches, command line ------------------------------------------------------------


def test_drift(fresh, http):
    def conversations():
        return search(http, fresh, {"queryContext": "conversation"}, size=200).json()["data"]

    assert all(isinstance(c["attributes"]["priority"], int) and "sandboxDrift" not in c["attributes"] for c in conversations())
    customers = search(http, fresh, {"queryContext": "customer"}, size=50).json()["data"]
    requests.post(f"{fresh.url}/__sandbox/switches", json={"drift": True}).raise_for_status()
    drifted = conversations()
    assert all(c["attributes"]["sandboxDrift"] == "new in this org" and re.fullmatch(r"[1-5]", c["attributes"]["priority"]) for c in drifted)
    assert fresh.record("conversation", drifted[0]["id"])["attributes"]["sandboxDrift"] == "new in this org"
    assert search(http, fresh, {"queryContext": "customer"}, size=50).json()["data"] == customers  # only conversations drift
    fresh.configure(drift=False)
    assert [c["attributes"]["priority"] for c in conversations()] == [int(c["attributes"]["priority"]) for c in drifted]
    with Sandbox(records=100, seed=2, drift=True) as sb:
        assert "sandboxDrift" in search(http, sb, {"queryContext": "conversation"}, size=1).json()["data"][0]["attributes"]


def test_switches_change_while_serving(fresh):
    defaults = {"contract": "enforce", "missing_role_status": 403, "pod": "prod1", "wrong_pod_status": 401, "users_default": "active",
                "users_active_includes_pending": False, "attachment_ids": True, "search_attachments": False, "archive_notes": "refuse",
                "undocumented_sort": "honor", "undocumented_filter": "honor", "drift": False}
    assert fresh.switches() == requests.get(f"{fresh.url}/__sandbox/switches").json() == defaults
    changed = requests.post(f"{fresh.url}/__sandbox/switches", json={"contract": "record", "missing_role_status": 401, "pod": "prod2"}).json()
    assert changed == {**defaults, "contract": "record", "missing_role_status": 401, "pod": "prod2"} == fresh.switches()
    assert requests.get(f"{fresh.url}/v1/tags?sortBy=x", headers={"Authorization": "Bearer eu-token"}).status_code == 200
    assert requests.get(f"{fresh.url}/v1/tags", headers={"Authorization": "Bearer norole-token"}).status_code == 401
    for bad in ({"contract": "strict"}, {"missing_role_status": 500}, {"nonsense": 1}):
        assert requests.post(f"{fresh.url}/__sandbox/switches", json=bad).status_code == 400, bad
    with pytest.raises(KeyError):
        fresh.configure(nonsense=True)


def test_cli_options():
    from integration_tests.sandbox import LEGACY_ROLES
    from integration_tests.sandbox.__main__ import _token, parser

    args = parser().parse_args(["--contract", "record", "--missing-role-status", "401", "--pod", "prod2", "--wrong-pod-status", "403",
                                "--users-default", "all", "--users-active-includes-pending", "--no-attachment-ids", "--search-attachments",
                                "--archive-notes", "ignore", "--undocumented-sort", "refuse", "--undocumented-filter", "ignore", "--drift"])
    assert (args.contract, args.missing_role_status, args.pod, args.wrong_pod_status, args.users_default) == ("record", 401, "prod2", 403, "all")
    assert args.users_active_includes_pending and not args.attachment_ids and args.search_attachments and args.drift
    assert (args.archive_notes, args.undocumented_sort, args.undocumented_filter) == ("ignore", "refuse", "ignore")
    defaults = parser().parse_args([])
    assert (defaults.contract, defaults.missing_role_status, defaults.attachment_ids, defaults.archive_notes) == ("enforce", 403, True, "refuse")
    assert _token("k=all@prod2") == ("k", {"roles": set(ALL_ROLES), "name": "Sandbox: k", "pod": "prod2"})
    assert _token("k=legacy,org.permission.x.read")[1]["roles"] == set(LEGACY_ROLES) | {"org.permission.x.read"}
    assert _token("k=") == ("k", {"roles": set(), "name": "Sandbox: k"}) and _token("k=expired") == ("k", "expired")
    with pytest.raises(SystemExit):
        parser().parse_args(["--token", "k=read,search"])  # the sandbox's old pseudo roles are gone

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "integration_tests.sandbox", "--records", "200", "--pod", "prod2", "--only-tokens",
                             "--token", "eu=all@prod2", "--token", "us=all@prod1", "--missing-role-status", "401", "--token", "bare=",
                             "--contract", "record"], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        url = re.fullmatch(r"sandbox listening on (\S+)", proc.stdout.readline().strip()).group(1)

        def get(key, path="/v1/auth/tokens/current"):
            return requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {key}"})

        assert get("eu").json()["data"]["attributes"]["roles"] == sorted(ALL_ROLES)
        assert get("us").status_code == 401 and "pod prod1" in get("us").json()["errors"][0]["title"]
        assert get("bare", "/v1/tags").status_code == 401 and get("sandbox-token").status_code == 401
        assert get("eu", "/v1/tags?sortBy=x").status_code == 200
        assert requests.get(f"{url}/__sandbox/switches").json()["contract"] == "record"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
