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

from integration_tests.sandbox import FAULT_KINDS, Sandbox

NOW = "2026-01-15T12:00:00.000Z"
TOKEN = {"Authorization": "Bearer sandbox-token"}
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX24 = re.compile(r"^[0-9a-f]{24}$")
UNAUTHORIZED = {"errors": [{"status": "401", "code": "unauthorized", "title": "Unauthorized"}]}
PAGE_LIMIT = {"errors": [{"status": "400", "code": "page_limit_exceeded", "title": "Page exceeds the maximum of 100"}]}
RATE_LIMITED = {"errors": [{"status": "429", "code": "rate_limit_exceeded", "title": "Rate Limit Exceeded"}]}


@pytest.fixture(scope="module")
def sandbox():
    """A read-only org shared by the tests that do not change data (clock frozen for exact boundaries)."""
    with Sandbox(records=4000, seed=7, now=NOW, frozen_clock=True) as sb:
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
        assert reply.status_code == 401 and reply.json()["errors"][0]["title"] == "Missing role"
    assert get({"Authorization": "Bearer nosearch-token"}).status_code == 200
    reply = post({"Authorization": "Bearer nosearch-token"})
    assert reply.status_code == 401 and reply.json()["errors"][0]["title"] == "Missing role"

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer  sandbox-token"},
                    {"Authorization": "Token sandbox-token"}, {"Authorization": "sandbox-token"}):
        reply = get(headers)
        assert reply.status_code == 401 and reply.json() == UNAUTHORIZED, headers


def test_configurable_tokens_and_simple_error_form():
    with Sandbox(records=50, tokens={"k1": {"read", "search"}, "old": "expired"}, error_format="simple") as sb:
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
    assert pages == 3 and ids == sorted(ids) and set(ids) == sandbox.ids_of_list("users")

    for endpoint in ("teams", "tags", "shortcuts", "klasses"):
        body = http.get(f"{sandbox.url}/v1/{endpoint}").json()
        assert {r["id"] for r in body["data"]} == sandbox.ids_of_list(endpoint) and body["links"]["next"] is None

    beyond = http.get(f"{sandbox.url}/v1/users?page=9&pageSize=10").json()
    assert beyond["data"] == [] and beyond["links"]["next"] is None and beyond["links"]["prev"] == "/v1/users?page=8&pageSize=10"


def test_list_variants(sandbox, http):
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


def test_single_resources_and_shapes(sandbox, http):
    me = http.get(f"{sandbox.url}/v1/users/current").json()["data"]
    assert me["type"] == "user" and me["attributes"]["userType"] == "machine"

    customer_id = min(sandbox.ids("customer"))
    customer = http.get(f"{sandbox.url}/v1/customers/{customer_id}").json()["data"]
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
    assert http.get(sandbox.url + kobject["links"]["self"]).json()["data"]["id"] == kobject["id"]

    conversation = search(http, sandbox, {"queryContext": "conversation"}, size=1).json()["data"][0]
    assert isinstance(conversation["attributes"]["sla"], dict) and conversation["relationships"]["sla"]["data"]["type"] == "sla"

    notes = search(http, sandbox, {"queryContext": "note"}, size=200).json()["data"]
    assert all(isinstance(n["relationships"]["userMentions"]["data"], list) for n in notes)
    assert any(n["relationships"]["userMentions"]["data"] for n in notes)

    messages = search(http, sandbox, {"queryContext": "message", "and": [{"message_channel": {"equals": "email"}}]}, size=500).json()["data"]
    shapes = {type(m["attributes"]["meta"][f]).__name__ for m in messages for f in ("to", "cc", "bcc") if f in m["attributes"]["meta"]}
    assert shapes == {"str", "dict", "list"}
    messages = search(http, sandbox, {"queryContext": "message"}, size=500).json()["data"]
    assert any("attachments" in m["relationships"] for m in messages)

    suffixes = {re.sub(r"^[a-z]+(?=[A-Z])", "", k) for c in search(http, sandbox, {"queryContext": "customer"}, size=100).json()["data"]
                for k in c["attributes"]["custom"]}
    assert {"Str", "Num", "At", "Bool", "Txt", "Url"} <= {re.search(r"[A-Z][a-z]+$", s).group() for s in suffixes}
    assert all(HEX24.match(i) for i in sandbox.ids("message"))


# --- search -------------------------------------------------------------------------------------


def test_search_filters_and_sorts_ascending_with_ties_by_id(sandbox, http):
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
    ids = sorted(sandbox.ids("customer"))[:3]
    picked = search(http, sandbox, {"queryContext": "customer", "or": [{"customer_id": {"in": ids}}], "not": [{"customer_id": {"equals": ids[0]}}]}).json()
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


def test_errors(sandbox, http):
    url = sandbox.url
    assert http.get(f"{url}/v1/nothing-here").status_code == 404
    assert http.get(f"{url}/v1/customers/{'0' * 24}").status_code == 404
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
    assert set(FAULT_KINDS) == {"500", "502", "503", "504", "500-nobody", "reset", "timeout", "malformed"}


# --- ground truth and mutation -------------------------------------------------------------------


def test_ground_truth_endpoint(sandbox):
    truth = requests.get(f"{sandbox.url}/__sandbox/ground_truth").json()
    for ctx in ("customer", "conversation", "message", "note", "kobject", "company", "kobject_subscription"):
        assert set(truth[ctx]) == sandbox.ids(ctx)
    for endpoint in ("users", "teams", "tags", "shortcuts", "klasses"):
        assert set(truth[endpoint]) == sandbox.ids_of_list(endpoint)
    assert len(truth["users"]) == 25 and len(truth["teams"]) == 6 and len(truth["tags"]) == 30
    assert len(truth["shortcuts"]) == 20 and len(truth["klasses"]) == 4
    counts = {ctx: len(truth[ctx]) for ctx in ("conversation", "message", "customer", "note", "kobject", "company")}
    assert counts == {"conversation": 1200, "message": 1400, "customer": 600, "note": 400, "kobject": 200, "company": 200}


def test_touch_and_create_change_what_search_returns(fresh, http):
    touched = fresh.touch("conversation", 5)
    assert len(set(touched)) == 5
    newest = search(http, fresh, window("conversation", order="desc"), size=5).json()["data"]
    assert {r["id"] for r in newest} == set(touched)
    assert all(r["attributes"]["updatedAt"] >= NOW for r in newest)

    created = requests.post(f"{fresh.url}/__sandbox/create", json={"context": "message", "n": 3}).json()["ids"]
    assert set(created) <= fresh.ids("message")
    assert http.get(f"{fresh.url}/v1/messages/{created[0]}").status_code == 200
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
        reply = requests.get(f"{match.group(1)}/v1/users/current", headers=TOKEN)
        assert reply.status_code == 200
        assert json.loads(requests.get(f"{match.group(1)}/__sandbox/stats").text)["counts"]["customer"] == 45
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
