"""Renders the rest of the org: configuration lists, the audit log, custom-attribute metadata, the
per-conversation events, forwards and times and the per-customer drafts and merges.

Like ``render.py``, nothing here is stored: every value comes from a generator seeded by the seed and
the object's index, so an item renders identically on every request. Conversation and customer
sub-resources are not objects of the ``Store`` at all. A conversation's follow from its index, its
creation time and its ``updatedAt`` as generated, plus the events that mutations recorded in
``Store.extra_events``; a customer's from its index, its creation time and the instant the org was
generated (so touching or deleting the customer changes nothing). Their ids are
``<created s:8><tag:6><parent index << 16 | k:10>``, so they never change and map back to their parent.

Shapes reproduced from Kustomer:

* a team's routing setting has the team's id; its ``queues`` relationship lists queue ids;
* an SLA has no ``updatedAt``; its versions are ``sla_version`` resources (``included`` with
  ``versions=all``) whose ``criteria`` hold ``and`` (and sometimes ``or``) condition lists;
* an outbound account has no id and no timestamps;
* audit-log entries and conversation times have no ``updatedAt``;
* a customer's drafts are unsent outbound messages (``status: "draft"``, ``sendAt`` set only when
  scheduled), some tied to one of its conversations; its merges (``customer_merge``) name the
  merged-away customer as ``source`` (an id no longer served: merging removes that customer) and
  itself as ``target``;
* metadata is ``{type: "metadata", id: <resource>, attributes: {properties: {<key>: {type, ...}}}}``;
* the API key itself (``GET /v1/auth/tokens/current``) is an ``auth_token`` whose attributes give
  its name, the last four characters of the key, its roles (sorted), where it was created from and
  when it was last used, and whose relationships name the org and the key's (machine) user.
"""

from __future__ import annotations

import random
import re
from typing import Any, Dict, List, Optional, Tuple

from .data import AUDIT_OBJECT_TYPES, AUDIT_VERBS, KLASSES
from .render import CHANNELS, CUSTOM_ENUMS, CUSTOM_KEYS, FIRST, LAST, SENTENCES, SUBJECTS, Renderer, iso, suffix_type
from .store import DAY_MS, stable_hash

BRANDS = ("Acme Outdoors", "Acme Kids", "Acme Wholesale", "Acme Outlet", "Acme Labs")
SCHEDULES = (("Business hours (US)", "America/New_York"), ("EU support", "Europe/Berlin"), ("Weekend coverage", "America/Chicago"),
             ("APAC", "Asia/Tokyo"), ("Holiday season", "America/Los_Angeles"))
CARDS = ("Shopify", "Recharge", "Loop Returns", "Yotpo", "Gorgias Migration", "Stripe", "Zendesk History")
QUEUES = (("DEFAULT_QUEUE", "Default Queue"), ("vip", "VIP"), ("billing", "Billing"), ("returns", "Returns"), ("social", "Social"),
          ("spanish", "Spanish speakers"), ("escalations", "Escalations"), ("after-hours", "After hours"))
SURVEYS = ("Post-conversation CSAT", "Chat CSAT", "NPS quarterly", "Returns feedback")
SNOOZES = (("1 hour", "relative", 3_600_000), ("Tomorrow morning", "dynamic", None), ("3 days", "relative", 3 * DAY_MS),
           ("1 week", "relative", 7 * DAY_MS), ("After Black Friday", "absolute", None), ("Next Monday", "dynamic", None))
SPAM_DOMAINS = ("mailer-daemon.example", "promo-blast.example", "crypto-win.example", "newsletter.example", "partner.example",
                "vendor.example", "noreply.example")
NOTIFICATIONS = ("kustomer.conversation.firstmessagein", "kustomer.conversation.assigned", "kustomer.note.mention",
                 "kustomer.conversation.sla.breached")
SLA_NAMES = ("Standard", "VIP", "Social", "Enterprise", "Chat")
STATUSES = ("open", "done", "snoozed")
#: Outbound accounts: ``(channel, name, account)``, unique on ``(channel, account)``.
OUTBOUND = (("email", "Support", "support@acme-outdoors.example"), ("email", "Billing", "billing@acme-outdoors.example"),
            ("sms", "Support line", "+15555550100"), ("whatsapp", "WhatsApp", "+15555550199"), ("chat", "Web chat", "web"))
#: Resources ``GET /v1/metadata/{resource}`` knows besides ``kobject.<klass name>``.
METADATA_RESOURCES = ("company", "conversation", "customer", "message")
#: Channels of customer drafts (email most often) and the outbound account each one is sent from.
DRAFT_CHANNELS = ("email", "email", "email", "email", "sms", "sms", "chat", "whatsapp")
DRAFT_FROM = {"email": "support@acme-outdoors.example", "sms": "+15555550100", "chat": "web", "whatsapp": "+15555550199"}
#: Drafts are recent: created at most this long before the org was generated.
DRAFT_AGE_MS = 120 * DAY_MS
#: Largest number of events (generated and recorded) one conversation can hold.
_SUB_SHIFT = 16


def _words(key: str) -> str:
    """``totalSpentNum`` -> ``Total Spent``: a display name from a custom key."""
    base = re.sub(r"(Str|Txt|Num|At|Bool|Url)$", "", key)
    return " ".join(w.capitalize() for w in re.findall(r"[a-z0-9]+|[A-Z][a-z0-9]*", base))


class OrgRenderer(Renderer):
    """``Renderer`` plus the resources of the org's configuration, audit log and conversation details."""

    # --- configuration lists ----------------------------------------------------------------
    def _brand(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["brand"]
        rng = self._rng("brand", i)
        oid = coll.id_of(i)
        name = BRANDS[i % len(BRANDS)] + ("" if i < len(BRANDS) else f" {i // len(BRANDS) + 1}")
        attributes = {"name": name, "default": i == 0, "iconUrl": f"https://cdn.example.com/brands/{oid}.png" if rng.random() < 0.7 else None,
                      **self._common("brand", i)}
        return self._envelope("brand", oid, attributes, self._audit(rng), f"/v1/brands/{oid}")

    def _schedule(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["schedule"]
        rng = self._rng("schedule", i)
        oid = coll.id_of(i)
        name, zone = SCHEDULES[i % len(SCHEDULES)]
        weekend = i % len(SCHEDULES) == 2
        start, end = rng.choice((480, 540, 420)), rng.choice((1020, 1080, 1200))
        hours: Dict[str, Any] = {}
        for day in range(7):
            works = (day in (0, 6)) if weekend else (day not in (0, 6))
            hours[str(day)] = ([[start, end]] if rng.random() < 0.8 else [[start, 720], [780, end]]) if works else None
        attributes = {"name": name, "hours": hours, "timezone": zone, "default": i == 0, **self._common("schedule", i)}
        return self._envelope("schedule", oid, attributes, self._audit(rng), f"/v1/schedules/{oid}")

    def _card(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["card"]
        rng = self._rng("card", i)
        oid = coll.id_of(i)
        name = CARDS[i % len(CARDS)]
        slug = name.lower().replace(" ", "-")
        attributes = {
            "name": name,
            "description": f"Shows {name} data next to the conversation",
            "url": f"https://cards.example.com/{slug}/index.html",
            "contexts": sorted(rng.sample(("customer", "conversation", "company", "smartbar"), rng.randint(1, 3))),
            **self._common("card", i),
        }
        relationships = {"org": self._org(), "app": {"data": {"type": "app", "id": slug}}}
        return self._envelope("card", oid, attributes, relationships, f"/v1/cards/{oid}")

    def _queue(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["queue"]
        rng = self._rng("queue", i)
        oid = coll.id_of(i)
        name, display = QUEUES[i % len(QUEUES)]
        attributes = {
            "name": name,
            "displayName": display,
            "priority": 1 if i == 0 else rng.randint(1, 10),
            "itemSize": rng.choice((1, 1, 2, 3)),
            "system": i == 0,
            "description": "Work items no other queue takes" if i == 0 else f"{display} conversations",
            "restrictTransfersByUsers": rng.random() < 0.2,
            **self._common("queue", i),
        }
        return self._envelope("queue", oid, attributes, {"org": self._org(), "createdBy": self._user_ref(rng)}, f"/v1/routing/queues/{oid}")

    def _routing_setting(self, i: int) -> Dict[str, Any]:
        """The routing setting of team ``i`` (its id is the team's id)."""
        teams = self.store.colls["team"]
        rng = self._rng("routing_setting", i)
        oid = teams.id_of(i)
        queues = self._picks(rng, "queue", 4)
        capacity = {"email": rng.randint(3, 10), "chat": rng.randint(1, 4)} if rng.random() < 0.8 else {}
        attributes = {
            "enabled": rng.random() < 0.8,
            "workItemCapacity": rng.randint(1, 12),
            "capacity": capacity,
            "externalQueues": [f"ext-{rng.randint(100, 999)}"] if rng.random() < 0.15 else [],
            "deleted": False,
            **self._common("team", i),
        }
        relationships = {
            "org": self._org(),
            "team": self._ref("team", oid, "teams"),
            "modifiedBy": self._user_ref(rng),
            "queues": {"data": [{"type": "queue", "id": q} for q in queues]},
        }
        return self._envelope("team_routing_setting", oid, attributes, relationships, f"/v1/routing/settings/{oid}")

    def _satisfaction(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["satisfaction"]
        rng = self._rng("satisfaction", i)
        oid = coll.id_of(i)
        channel = ("email", "chat", "email", "email")[i % 4]
        options = rng.choice((2, 5, 10)) if i % len(SURVEYS) != 2 else 10
        questions = [{"id": f"q{k}", "type": rng.choice(("open", "radio", "checkbox")), "prompt": p}
                     for k, p in enumerate(rng.sample(("What could we do better?", "Was your issue resolved?",
                                                       "How easy was it to get help?", "Anything else?"), rng.randint(1, 3)))]
        attributes = {
            "name": SURVEYS[i % len(SURVEYS)],
            "formType": "form" if rng.random() < 0.5 else "web",
            "enabled": i != len(SURVEYS) - 1,
            "channel": channel,
            "description": "Sent after a conversation is marked done",
            "delayTime": rng.choice((0, 3600, 86400)),
            "scale": {"options": options, "type": rng.choice(("number", "emoji", "star")), "labelHigh": "Very satisfied", "labelLow": "Not satisfied"},
            "introduction": "We'd love your feedback!",
            "ratingPrompt": "How would you rate the help you received?",
            "questions": questions,
            "followUpType": rng.choice(("none", "all", "negative")),
            "criteria": {"and": [{"conversation_channel": {"operator": "eq", "value": channel}}]},
            **self._common("satisfaction", i),
        }
        return self._envelope("satisfaction", oid, attributes, self._audit(rng), f"/v1/satisfaction/{oid}")

    def _snooze(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["snooze"]
        rng = self._rng("snooze", i)
        oid = coll.id_of(i)
        name, kind, value = SNOOZES[i % len(SNOOZES)]
        if kind == "dynamic":
            value = {"day": {"type": "relative", "value": 1 if "Tomorrow" in name else 0}, "time": "09:00"}
        elif kind == "absolute":
            value = coll.created[i] + 300 * DAY_MS
        attributes = {"name": name, "enabled": rng.random() < 0.85, "type": kind, "value": value, **self._common("snooze", i)}
        return self._envelope("snooze", oid, attributes, self._audit(rng), f"/v1/snoozes/{oid}")

    def _spam_sender(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["spam_sender"]
        rng = self._rng("spam_sender", i)
        oid = coll.id_of(i)
        automated = rng.random() < 0.6
        blacklist = rng.random() < 0.75
        deleted = rng.random() < 0.1
        local = rng.choice(("noreply", "info", "deals", "bounce", "alerts", "hello")) + str(i)
        attributes = {
            "sender": f"{local}@{rng.choice(SPAM_DOMAINS)}",
            "channel": "email",
            "list": "blacklist" if blacklist else "whitelist",
            "automated": automated,
            "deleted": deleted,
            "deletedAt": iso(coll.updated[i]) if deleted else None,
            **self._common("spam_sender", i),
        }
        relationships = {
            "org": self._org(),
            "createdBy": {"data": None} if automated else self._user_ref(rng),
            "modifiedBy": self._user_ref(rng),
            "deletedBy": self._user_ref(rng) if deleted else {"data": None},
        }
        return self._envelope("spam_sender", oid, attributes, relationships, f"/v1/spam/senders/{oid}")

    def _notification(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["notification"]
        rng = self._rng("notification", i)
        oid = coll.id_of(i)
        name = rng.choice(NOTIFICATIONS)
        conversation = self._pick(rng, "conversation")
        attributes = {
            "name": name,
            "status": "read" if rng.random() < 0.6 else "unread",
            "event": {"name": name, "org": self.store.org_id, "createdAt": iso(coll.created[i]),
                      "data": {"type": "conversation", "id": conversation, "attributes": {"name": rng.choice(SUBJECTS)}}},
            **self._common("notification", i),
        }
        relationships = {"org": self._org(), "user": self._ref("user", self._id("user", coll.rel["user"][i]), "users")}
        return self._envelope("notification", oid, attributes, relationships, f"/v1/notifications/{oid}")

    def outbound_accounts(self) -> List[Dict[str, Any]]:
        """The org's outbound accounts: no id, no timestamps, unique on ``(channel, account)``."""
        return [{"type": "outbound_account", "attributes": {"channel": c, "name": n, "account": a}} for c, n, a in OUTBOUND]

    # --- SLAs -------------------------------------------------------------------------------
    def sla_versions_of(self, s: int) -> List[int]:
        """Indexes of the versions of SLA ``s``, oldest first."""
        return list(self._sla_versions.get(s, []))

    def _sla(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["sla"]
        rng = self._rng("sla", i)
        oid = coll.id_of(i)
        versions = self.sla_versions_of(i)
        vcoll = self.store.colls["sla_version"]
        attributes = {"name": SLA_NAMES[i % len(SLA_NAMES)], "currentVersion": len(versions), "createdAt": iso(coll.created[i])}
        relationships = {
            "org": self._org(),
            "createdBy": self._user_ref(rng),
            "versions": {"data": [{"type": "sla_version", "id": vcoll.id_of(v)} for v in versions]},
        }
        return self._envelope("sla", oid, attributes, relationships, f"/v1/slas/{oid}")

    def _sla_version(self, v: int) -> Dict[str, Any]:
        coll = self.store.colls["sla_version"]
        rng = self._rng("sla_version", v)
        oid = coll.id_of(v)
        s, number = coll.rel["sla"][v], coll.rel["version"][v]
        slas = self.store.colls["sla"]

        def metric(base: int) -> Dict[str, Any]:
            return {"enabled": rng.random() < 0.8, "times": {str(p): base * (6 - p) // 2 for p in range(1, 6)}}

        criteria: Dict[str, Any] = {"and": [{"conversation_channel": {"operator": "eq", "value": rng.choice(("email", "chat", "sms"))}}]}
        if rng.random() < 0.5:
            criteria["or"] = [{"conversation_priority": {"operator": "gte", "value": rng.randint(3, 5)}},
                              {"customer_tags": {"operator": "contains", "value": "vip"}}]
        attributes = {
            "name": SLA_NAMES[s % len(SLA_NAMES)],
            "description": f"Version {number}: {rng.choice(('initial targets', 'tighter chat targets', 'holiday adjustments'))}",
            "version": number,
            "hours": rng.choice(("business", "calendar")),
            "metrics": {
                "firstResponse": {**metric(3600), "basedOnHumanInteraction": rng.random() < 0.5},
                "nextReply": {**metric(7200), "basedOnHumanInteraction": False},
                "longestUnrespondedMessage": metric(14_400),
                "totalConversationOpenTime": metric(86_400),
                "totalCustomerWaitTime": metric(28_800),
            },
            "criteria": criteria,
            "createdAt": iso(coll.created[v]),
        }
        relationships = {"org": self._org(), "createdBy": self._user_ref(rng), "sla": self._ref("sla", slas.id_of(s), "slas")}
        return self._envelope("sla_version", oid, attributes, relationships, f"/v1/slas/{slas.id_of(s)}/versions/{oid}")

    # --- audit log --------------------------------------------------------------------------
    def _audit_log(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["audit_log"]
        rng = self._rng("audit_log", i)
        oid = coll.id_of(i)
        created = coll.created[i]
        object_type = AUDIT_OBJECT_TYPES[coll.rel["object_type"][i]]
        verb = AUDIT_VERBS[coll.rel["verb"][i]]
        object_id = self._id(object_type, coll.rel["object"][i])
        system = i >= self.store.generated.get("audit_log", 0) or rng.random() < 0.2
        user_id = None if system else self._pick(rng, "user")
        changes: Dict[str, Any] = {}
        if verb == "update":
            before, after = rng.sample(STATUSES, 2)
            changes = {"attributes": {"status": {"op": "replace", "before": before, "after": after},
                                      "updatedAt": {"op": "replace", "before": iso(created - rng.randint(1, 10**8)), "after": iso(created)}}}
        elif verb == "delete":
            changes = {"attributes": {"deleted": {"op": "replace", "before": False, "after": True}}}
        elif verb == "create":
            changes = {"attributes": {"createdAt": {"op": "add", "after": iso(created)}}}
        attributes = {
            "eventName": f"kustomer.{object_type}.{verb}",
            "eventVerb": verb,
            "org": self.store.org_id,
            "objectId": object_id,
            "objectType": object_type,
            "userId": user_id,
            "userType": "system" if system else "user",
            "client": "workflow" if system else rng.choice(("web", "api", "mobile")),
            "ip": None if system else "203.0.113.%d" % rng.randint(1, 254),
            "changes": changes,
            "createdAt": iso(created),
            "publishedAt": iso(created + rng.randint(0, 40)),
            "expiresAt": iso(created + 5 * 365 * DAY_MS),
        }
        relationships = {"org": self._org(), "user": self._ref("user", user_id, "users")}
        return self._envelope("audit_log", oid, attributes, relationships, f"/v1/audit-logs/{oid}")

    # --- the API key ------------------------------------------------------------------------
    def auth_token(self, key: str, token: Any, now_ms: int) -> Dict[str, Any]:
        """``GET /v1/auth/tokens/current``'s ``data`` for ``key`` (its ``roles.Token`` is ``token``)."""
        h = stable_hash("auth-token", self.store.seed, key)
        created = self.store.now0_ms - 3 * 365 * DAY_MS + h % (700 * DAY_MS)
        updated = created + stable_hash("auth-token-update", key) % (30 * DAY_MS)
        users = self.store.colls["user"]
        attributes = {
            "name": token.name,
            "lastTokenChars": key[-4:],
            "roles": sorted(token.roles),
            "ipAddress": "203.0.113.%d" % (1 + h % 254),
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "createdAt": iso(created),
            "updatedAt": iso(updated),
            "lastAccessedAt": iso(max(updated, now_ms)),
        }
        relationships = {"org": {"data": {"type": "org", "id": self.store.org_id}},
                         "user": {"data": {"type": "user", "id": users.id_of(0) if len(users) else None}}}
        oid = "%08x%08x%08x" % (created // 1000, h, stable_hash("auth-token-id", self.store.seed, key))
        return {"type": "auth_token", "id": oid, "attributes": attributes, "relationships": relationships,
                "links": {"self": "/v1/auth/tokens/current"}}

    # --- metadata ---------------------------------------------------------------------------
    def metadata_resources(self) -> List[str]:
        return list(METADATA_RESOURCES) + [f"kobject.{name}" for name in self.store.klass_names]

    def metadata(self, resource: str) -> Optional[Dict[str, Any]]:
        """``GET /v1/metadata/{resource}``'s ``data``: every custom key the renderer can emit there."""
        if resource in METADATA_RESOURCES:
            keys: Tuple[str, ...] = CUSTOM_KEYS[resource]
        elif resource.startswith("kobject.") and resource[len("kobject."):] in self.store.klass_names:
            keys = KLASSES[self.store.klass_names.index(resource[len("kobject."):])][5]
        else:
            return None
        rng = random.Random(stable_hash("metadata", self.store.seed, resource))
        since = self.store.now0_ms - 3 * 365 * DAY_MS
        properties: Dict[str, Any] = {}
        for key in keys:
            at = iso(since + int(rng.random() * 700 * DAY_MS))
            prop: Dict[str, Any] = {"type": suffix_type(key), "displayName": _words(key), "multi": False,
                                    "updatedAt": at, "modifiedAt": at}
            if key in CUSTOM_ENUMS:
                prop["enumeration"] = list(CUSTOM_ENUMS[key])
            if key.endswith("Str") or key.endswith("Txt"):
                prop["sensitive"] = {"enabled": False}
            properties[key] = prop
        return {"type": "metadata", "id": resource, "attributes": {"properties": properties},
                "relationships": {"org": self._org()}, "links": {"self": f"/v1/metadata/{resource}"}}

    # --- conversation sub-resources ---------------------------------------------------------
    def _sub_id(self, kind: str, c: int, k: int, at_ms: int) -> str:
        tag = stable_hash("tag", self.store.seed, kind) & 0xFFFFFF
        return "%08x%06x%010x" % (at_ms // 1000, tag, (c << _SUB_SHIFT) | k)

    def _generated(self, c: int) -> bool:
        return c < self.store.generated.get("conversation", 0)

    def conversation_events(self, c: int) -> List[Tuple[int, str]]:
        """``(createdAt ms, name)`` of conversation ``c``'s events, oldest first.

        About a third of generated conversations have none. The others open with a create event and
        their updates end at the conversation's generated ``updatedAt``; mutations add one event each.
        """
        rng = self._rng("event", c)
        out: List[Tuple[int, str]] = []
        if self._generated(c) and rng.random() >= 0.35:
            created = self.store.colls["conversation"].created[c]
            last = self.store.conversation_updated0[c]
            n = rng.randint(1, 8)
            middle = sorted(created + int((last - created) * rng.random()) for _ in range(max(0, n - 2)))
            out = [(created, "kustomer.conversation.create")] + [(t, "kustomer.conversation.update") for t in middle]
            if n >= 2:
                out.append((last, "kustomer.conversation.update"))
        out += self.store.extra_events.get(c, [])
        return out[: 1 << _SUB_SHIFT]

    def event(self, c: int, k: int, at_ms: int, name: str) -> Dict[str, Any]:
        rng = self._rng("event", (c << _SUB_SHIFT) | k, 1)
        conversations = self.store.colls["conversation"]
        cid = conversations.id_of(c)
        eid = self._sub_id("event", c, k, at_ms)
        if name.endswith(".create"):
            changes: Dict[str, Any] = {"attributes": {"status": {"op": "add", "after": "open"}}}
        else:
            changes = {"attributes": {"status": {"op": "replace", "before": STATUSES[(k + 1) % 3], "after": STATUSES[k % 3]}}}
        attributes = {
            "name": name,
            "type": "conversation",
            "publishedAt": iso(at_ms + rng.randint(0, 50)),
            "createdAt": iso(at_ms),
            "updatedAt": iso(at_ms),
            "modifiedAt": iso(at_ms),
            "changes": changes,
        }
        customer = conversations.rel["customer"][c]
        relationships = {
            "org": self._org(),
            "createdBy": self._user_ref(rng),
            "conversation": self._ref("conversation", cid, "conversations"),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
        }
        return self._envelope("event", eid, attributes, relationships, f"/v1/conversations/{cid}/events/{eid}")

    def conversation_forwards(self, c: int) -> List[int]:
        """Creation times (ms) of conversation ``c``'s forwards: most conversations have none."""
        rng = self._rng("forward", c)
        if not self._generated(c) or rng.random() < 0.8:
            return []
        created, last = self.store.colls["conversation"].created[c], self.store.conversation_updated0[c]
        return sorted(created + int((last - created) * rng.random()) for _ in range(rng.randint(1, 3)))

    def forward(self, c: int, k: int, at_ms: int) -> Dict[str, Any]:
        rng = self._rng("forward", (c << _SUB_SHIFT) | k, 1)
        conversations = self.store.colls["conversation"]
        cid = conversations.id_of(c)
        fid = self._sub_id("forward", c, k, at_ms)
        status = rng.choice(("sent", "sent", "sent", "draft", "scheduled", "failed"))
        updated = min(self.store.conversation_updated0[c], at_ms + rng.randint(0, 600_000)) if status != "draft" else at_ms

        def person() -> Dict[str, str]:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            return {"name": f"{first} {last}", "email": f"{first.lower()}.{last.lower().replace(chr(39), '')}@example.com"}

        text = rng.choice(SENTENCES)
        attributes = {
            "app": "postmark",
            "channel": "email",
            "from": {"name": "Acme Support", "email": "support@acme-outdoors.example"},
            "to": [person() for _ in range(rng.randint(1, 2))],
            "subject": "Fwd: " + rng.choice(SUBJECTS),
            "body": text,
            "payload": {"draftJs": {"blocks": [{"text": text, "type": "unstyled"}]}},
            "status": status,
            "sendAt": iso(updated) if status in ("sent", "scheduled", "failed") else None,
            "createdAt": iso(at_ms),
            "updatedAt": iso(max(at_ms, updated)),
            "modifiedAt": iso(max(at_ms, updated)),
        }
        customer = conversations.rel["customer"][c]
        relationships = {
            **self._audit(rng),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
            "conversation": self._ref("conversation", cid, "conversations"),
        }
        return self._envelope("forward", fid, attributes, relationships, f"/v1/conversations/{cid}/forwards/{fid}")

    def conversation_times(self, c: int) -> List[int]:
        """Creation times (ms) of conversation ``c``'s time records: about half have none."""
        rng = self._rng("time", c)
        if not self._generated(c) or rng.random() < 0.45:
            return []
        created, last = self.store.colls["conversation"].created[c], self.store.conversation_updated0[c]
        return sorted(created + int((last - created) * rng.random()) for _ in range(rng.randint(1, 5)))

    def time_record(self, c: int, k: int, at_ms: int) -> Dict[str, Any]:
        rng = self._rng("time", (c << _SUB_SHIFT) | k, 1)
        conversations = self.store.colls["conversation"]
        cid = conversations.id_of(c)
        tid = self._sub_id("time", c, k, at_ms)
        handle = rng.randint(5, 1800)
        message = rng.randint(1, 900)
        attributes = {
            "createdAt": iso(at_ms),
            "createdByTeams": self._picks(rng, "team", 1),
            "assignedUsers": self._picks(rng, "user", 1),
            "assignedTeams": self._picks(rng, "team", 1),
            "handleAt": iso(at_ms + handle * 1000),
            "handleTime": handle,
            "channels": [rng.choice(CHANNELS)],
            "messageAt": iso(at_ms + message * 1000),
            "messageTime": message,
        }
        customer = conversations.rel["customer"][c]
        relationships = {
            "org": self._org(),
            "createdBy": self._user_ref(rng),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
            "conversation": self._ref("conversation", cid, "conversations"),
        }
        return self._envelope("conversation_time", tid, attributes, relationships, f"/v1/conversations/{cid}/times/{tid}")

    def conversation_items(self, child: str, c: int) -> List[Tuple[str, Any]]:
        """``(id, render thunk)`` of one sub-list of conversation ``c`` (events, forwards, times), oldest first."""
        if child == "events":
            return [(self._sub_id("event", c, k, t), (lambda k=k, t=t, n=n: self.event(c, k, t, n)))
                    for k, (t, n) in enumerate(self.conversation_events(c))]
        if child == "forwards":
            return [(self._sub_id("forward", c, k, t), (lambda k=k, t=t: self.forward(c, k, t))) for k, t in enumerate(self.conversation_forwards(c))]
        if child == "times":
            return [(self._sub_id("time", c, k, t), (lambda k=k, t=t: self.time_record(c, k, t))) for k, t in enumerate(self.conversation_times(c))]
        raise KeyError(child)

    # --- customer sub-resources -------------------------------------------------------------
    def _customer_generated(self, c: int) -> bool:
        return c < self.store.generated.get("customer", 0)

    def customer_drafts(self, c: int) -> List[int]:
        """Creation times (ms) of customer ``c``'s drafts, oldest first: most customers have none."""
        rng = self._rng("draft", c)
        if not self._customer_generated(c) or rng.random() < 0.85:
            return []
        now = self.store.now0_ms
        start = min(now, max(self.store.colls["customer"].created[c], now - DRAFT_AGE_MS))
        return sorted(start + int((now - start) * rng.random()) for _ in range(rng.randint(1, 3)))

    def _conversation_before(self, c: int, at_ms: int) -> int:
        """The newest generated conversation of customer ``c`` opened by ``at_ms``, or -1."""
        conversations = self.store.colls["conversation"]
        owner, created = conversations.rel["customer"], conversations.created
        n = self.store.generated.get("conversation", 0)
        return max((j for j in range(n) if owner[j] == c and created[j] <= at_ms), default=-1)

    def draft(self, c: int, k: int, at_ms: int) -> Dict[str, Any]:
        """Draft ``k`` of customer ``c``: ``to`` is the customer's email or phone (None for chat)."""
        rng = self._rng("draft", (c << _SUB_SHIFT) | k, 1)
        oid = self.store.colls["customer"].id_of(c)
        did = self._sub_id("draft", c, k, at_ms)
        person = self._customer(c)["attributes"]
        channel = rng.choice(DRAFT_CHANNELS)
        conversation = self._conversation_before(c, at_ms) if rng.random() < 0.6 else -1
        updated = min(self.store.now0_ms, at_ms + rng.randint(0, 6 * 3_600_000))
        scheduled = rng.random() < 0.2
        if channel == "email":
            to: Optional[str] = person["emails"][0]["email"]
        elif channel == "chat":
            to = None
        else:
            to = person["phones"][0]["phone"] if person["phones"] else "+1555%07d" % rng.randint(0, 10**7 - 1)
        text = rng.choice(SENTENCES)
        attributes = {
            "channel": channel,
            "app": {"email": "postmark", "sms": "twilio", "chat": "chat", "whatsapp": "smooch"}[channel],
            "status": "draft",
            "subject": (("Re: " if conversation >= 0 else "") + rng.choice(SUBJECTS)) if channel == "email" else None,
            "body": text,
            "payload": {"draftJs": {"blocks": [{"text": text, "type": "unstyled"}]}},
            "to": to,
            "from": DRAFT_FROM[channel],
            "cc": [],
            "bcc": [],
            "auto": rng.random() < 0.1,
            "sendAt": iso(updated + rng.randint(1, 72) * 3_600_000) if scheduled else None,
            "createdAt": iso(at_ms),
            "updatedAt": iso(updated),
            "modifiedAt": iso(updated),
        }
        relationships = {
            "org": self._org(),
            "customer": self._ref("customer", oid, "customers"),
            "conversation": self._ref("conversation", self._id("conversation", conversation), "conversations"),
            "createdBy": self._user_ref(rng),
        }
        return self._envelope("draft", did, attributes, relationships, f"/v1/customers/{oid}/drafts/{did}")

    def customer_merges(self, c: int) -> List[int]:
        """Creation times (ms) of the merges into customer ``c``, oldest first: a few customers have one or two."""
        rng = self._rng("customer_merge", c)
        if not self._customer_generated(c) or rng.random() < 0.95:
            return []
        created, now = self.store.colls["customer"].created[c], self.store.now0_ms
        return sorted(created + int((max(created, now) - created) * rng.random()) for _ in range(rng.randint(1, 2)))

    def customer_merge(self, c: int, k: int, at_ms: int) -> Dict[str, Any]:
        """Merge ``k`` into customer ``c``: a finished merge of another customer (``source``) into it."""
        rng = self._rng("customer_merge", (c << _SUB_SHIFT) | k, 1)
        oid = self.store.colls["customer"].id_of(c)
        mid = self._sub_id("customer_merge", c, k, at_ms)
        # The merged-away customer: created before the merge, gone since (its id is under no collection tag).
        source = self._sub_id("merged_customer", c, k, at_ms - rng.randint(1, 400) * DAY_MS)
        attributes = {
            "source": source,
            "target": oid,
            "status": "done",
            "createdAt": iso(at_ms),
            "updatedAt": iso(max(at_ms, min(self.store.now0_ms, at_ms + rng.randint(200, 30_000)))),
        }
        relationships = {"org": self._org(), "createdBy": self._user_ref(rng)}
        return self._envelope("customer_merge", mid, attributes, relationships, f"/v1/customers/{oid}/merges/{mid}")

    def customer_items(self, child: str, c: int) -> List[Tuple[str, Any]]:
        """``(id, render thunk)`` of one sub-list of customer ``c`` (drafts, merges), oldest first."""
        if child == "drafts":
            return [(self._sub_id("draft", c, k, t), (lambda k=k, t=t: self.draft(c, k, t))) for k, t in enumerate(self.customer_drafts(c))]
        if child == "merges":
            return [(self._sub_id("customer_merge", c, k, t), (lambda k=k, t=t: self.customer_merge(c, k, t)))
                    for k, t in enumerate(self.customer_merges(c))]
        raise KeyError(child)
