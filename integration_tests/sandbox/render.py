"""Renders stored objects as the JSON:API resources Kustomer's API v1 returns.

Every resource is ``{type, id, attributes, relationships, links: {self}}``. Attributes are camelCase,
timestamps are ISO-8601 UTC with milliseconds (``2024-01-02T03:04:05.678Z``), custom attributes sit
under ``attributes.custom`` with a type suffix (``Str``, ``Num``, ``At``, ``Bool``, ``Txt``, ``Url``).

Relationships come in the three shapes Kustomer uses: to-one ``{data: {type, id}, links: {self}}``,
link-only ``{links: {self}}`` and to-many ``{data: [...]}``. Quirks reproduced on purpose:

* a customer has one link relationship per Klass, flagged ``meta: {kobject: true}``;
* a KObject's ``klass`` relationship spells its links key ``link`` (singular);
* a conversation carries ``sla`` both as an attribute (an object) and as a relationship;
* a note carries ``userMentions`` (to-many data, often empty) and ``teamMentions``;
* a message's ``meta.to``/``cc``/``bcc`` are sometimes a string, sometimes an object, sometimes an
  array; some messages have ``relationships.shortcuts.data``, and those with attachments list them
  in ``relationships.attachments.data`` where Kustomer documents it (``GET
  /v1/conversations/{id}/messages?include=attachments``), elsewhere only with ``search_attachments``;
* an attachment as ``GET /v1/conversations/{id}/attachments`` lists it: ``name``, ``contentType``,
  ``contentLength``, ``redacted``, its ``message``, ``links.self`` under the message and a signed
  ``links.related`` download URL (``attachment_ids=False``: no ``id``, as in Kustomer's example);
* a user resource has no status: deactivated users and pending invitations look like active ones
  (only ``GET /v1/users``' filters tell them apart); pending users never author or own anything.

``drift=True`` plays an org whose conversations changed shape: an attribute the connector never saw
(``sandboxDrift``) and ``priority`` as a string.

Soft-deleted customers, conversations, companies, notes and kobjects show ``deleted: true`` and a
``deletedAt``; custom attribute keys come from ``CUSTOM_KEYS`` (and ``data.KLASSES``), the same
tables ``GET /v1/metadata/{resource}`` is built from.

Values not stored in the ``Store`` (names, emails, statuses, ...) come from a random generator seeded
by the object's index (and, for the parts that change on update, its ``rev``), so a resource renders
identically every time until the object is touched.
"""

from __future__ import annotations

import random
import time
from typing import Any, Dict, List, Optional, Tuple

from .data import KLASSES, USER_STATUSES
from .store import Store, stable_hash

FIRST = ("Ada", "Ben", "Chloe", "Diego", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena",
         "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Ximena",
         "Yusuf", "Zoe", "Amir", "Bea", "Carlos", "Dana", "Emeka", "Freya", "Goran", "Ines", "Jonas", "Keiko")
LAST = ("Nguyen", "Smith", "Garcia", "Okafor", "Kowalski", "Rossi", "Haddad", "Tanaka", "Müller", "Silva",
        "Johansson", "O'Brien", "Patel", "Dubois", "Kim", "Novak", "Cohen", "Ivanova", "Mensah", "López",
        "Andersen", "Moreau", "Schmidt", "Yilmaz", "Costa", "Fischer", "Park", "Walsh", "Ali", "Bauer")
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka",
             "Tyrell", "Soylent", "Cyberdyne", "Aperture", "Monarch", "Gringotts", "Oscorp", "Pied Piper",
             "Dunder Mifflin", "Prestige", "Massive Dynamic", "Nakatomi", "Oceanic", "Sirius", "Zorg")
SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Co", "Group", "SA", "BV")
CITIES = (("Brooklyn", "NY", "US", "11201"), ("Austin", "TX", "US", "73301"), ("Berlin", "BE", "DE", "10115"),
          ("Lyon", "ARA", "FR", "69001"), ("Toronto", "ON", "CA", "M5H"), ("Lagos", "LA", "NG", "100001"),
          ("Osaka", "27", "JP", "530-0001"), ("Porto", "13", "PT", "4000"), ("Denver", "CO", "US", "80202"),
          ("Leeds", "ENG", "GB", "LS1"), ("Sydney", "NSW", "AU", "2000"), ("Monterrey", "NL", "MX", "64000"))
STREETS = ("Main St", "Oak Ave", "Harbour Rd", "Kastanienallee", "Rue Mercière", "King St W", "Elm Way")
CHANNELS = ("email", "chat", "sms", "facebook", "instagram", "whatsapp", "twitter-dm", "voice")
SUBJECTS = ("Where is my order?", "Refund request", "Can't log in", "Damaged item", "Change of address",
            "Question about my invoice", "Cancel subscription", "Wrong size delivered", "Promo code not working",
            "Thanks!", "Account locked", "Shipping to Canada?", "Item missing from box", "Re: your return")
SENTENCES = ("Hi there, I placed an order last week and it still hasn't arrived.",
             "Could you please help me reset my password?", "The package arrived damaged, photos attached.",
             "I was charged twice for the same order.", "Thanks so much for the quick help!",
             "Can I change the delivery address on my order?", "Is there a way to pause my subscription?",
             "The tracking link says delivered but I have nothing.", "I'd like to return these shoes.",
             "Following up on my previous message, any news?", "Happy to help! I've issued a full refund.",
             "I've escalated this to our shipping team.", "Your replacement ships tomorrow.")
TAGS = ("billing", "refund", "shipping", "damaged", "vip", "login", "bug", "feature-request", "cancel",
        "subscription", "address-change", "promo", "wholesale", "fraud-check", "returns", "warranty",
        "urgent", "follow-up", "escalated", "positive", "negative", "spam", "press", "partnership",
        "international", "backorder", "gift", "loyalty", "survey", "churn-risk")
COLORS = ("#e74c3c", "#3498db", "#2ecc71", "#f1c40f", "#9b59b6", "#1abc9c", "#e67e22", "#34495e")
TEAMS = ("Tier 1 Support", "Tier 2 Support", "Billing", "Returns", "VIP Concierge", "Social Media")
SHORTCUTS = ("Greeting", "Refund issued", "Return label", "Tracking info", "Password reset", "Escalation",
             "Closing", "Out of stock", "Address change", "Promo code", "Subscription paused", "Sizing guide",
             "Shipping times", "Damaged item", "Warranty claim", "Holiday hours", "Survey request",
             "Order cancelled", "Apology credit", "Follow up")
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_MX", "ja_JP", "pt_BR", None)
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin",
         "Asia/Tokyo", None)
ROLES = ("org.admin.read", "org.admin.spam.read", "org.permission.read", "org.user.read",
         "org.permission.search.create", "org.permission.search.update",
         "org.permission.search_global.create", "org.permission.search_preview.create")

#: Type tags of singleton families that objects point at but no endpoint lists (role groups).
_FAMILIES = {"role_group": 3}
#: Suffix of a custom attribute key -> its type in ``GET /v1/metadata/{resource}``.
SUFFIX_TYPES = (("Str", "string"), ("Txt", "text"), ("Num", "number"), ("At", "date"), ("Bool", "boolean"), ("Url", "url"))
#: Values of the custom attributes that are drop-downs (metadata lists them as ``enumeration``).
CUSTOM_ENUMS = {"tierStr": ("bronze", "silver", "gold", "platinum"), "industryStr": ("retail", "saas", "travel", "finance")}
#: Custom attribute keys each resource may carry (each object has about 70% of them). KObject keys are
#: in ``data.KLASSES``. ``GET /v1/metadata/{resource}`` is generated from these tables.
CUSTOM_KEYS = {
    "customer": ("tierStr", "totalSpentNum", "lastOrderAt", "vipBool", "notesTxt", "profileUrl"),
    "company": ("industryStr", "employeesNum", "renewalAt", "partnerBool"),
    "conversation": ("orderNumberStr", "refundAmountNum", "followUpAt", "escalatedBool", "reasonTxt", "recordingUrl"),
    "message": (),
}


def suffix_type(key: str) -> str:
    """The metadata type of a custom attribute key, from its suffix (``totalSpentNum`` -> number)."""
    return next(kind for suffix, kind in SUFFIX_TYPES if key.endswith(suffix))


def iso(ms: int) -> str:
    """``2024-01-02T03:04:05.678Z``: Kustomer's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower().replace(" ", "-") if ch.isalnum() or ch == "-")


class Renderer:
    """Turns ``(type, index)`` into a Kustomer resource dict."""

    #: Messages carry ``relationships.attachments`` everywhere (search, lists), not only where documented.
    search_attachments = False
    #: Conversations drift: an undocumented attribute, and ``priority`` as a string.
    drift = False

    def __init__(self, store: Store) -> None:
        self.store = store
        self._acting: Tuple[int, List[int]] = (-1, [])
        self._base = {kind: stable_hash("render", store.seed, kind) * 10**12
                      for kind in list(store.colls) + ["attachment", "event", "forward", "time", "routing_setting", "draft", "customer_merge"]}
        versions = store.colls["sla_version"]
        #: SLA index -> its version indexes (oldest first); versions never change while serving.
        self._sla_versions: Dict[int, List[int]] = {}
        for v in range(len(versions)):
            self._sla_versions.setdefault(versions.rel["sla"][v], []).append(v)
        self._family_ids = {
            family: ["%08x%06x%010x" % ((store.now0_ms // 1000) - 4 * 365 * 86400, stable_hash("fam", store.seed, family) & 0xFFFFFF, k)
                     for k in range(count)]
            for family, count in _FAMILIES.items()
        }

    # --- helpers ----------------------------------------------------------------------------
    def _note_count(self, conversation: int) -> int:
        """Kustomer counts a conversation's notes (the ones its notes list serves) in ``noteCount``."""
        notes = self.store.colls["note"]
        return sum(1 for j in self.store.child_index("note").of(conversation) if not notes.is_deleted(j))

    def _rng(self, kind: str, i: int, rev: int = 0) -> random.Random:
        return random.Random(self._base[kind] + i + rev * 10**20)

    def _id(self, kind: str, i: int) -> Optional[str]:
        coll = self.store.colls[kind]
        return coll.id_of(i) if 0 <= i < len(coll) else None

    def _acting_users(self) -> List[int]:
        """Users who can author or own objects: active and deactivated ones (a pending invitation never acted)."""
        users = self.store.colls["user"]
        if self._acting[0] != len(users):
            status = users.rel.get("status")
            pending = USER_STATUSES.index("pending")
            self._acting = (len(users), [u for u in range(len(users)) if status is None or status[u] != pending])
        return self._acting[1]

    def _pick(self, rng: random.Random, kind: str) -> Optional[str]:
        if kind == "user":
            acting = self._acting_users()
            return self._id(kind, acting[rng.randrange(len(acting))]) if acting else None
        n = len(self.store.colls[kind])
        return self._id(kind, rng.randrange(n)) if n else None

    def _picks(self, rng: random.Random, kind: str, most: int) -> List[str]:
        pool: Any = self._acting_users() if kind == "user" else range(len(self.store.colls[kind]))
        n = len(pool)
        return [self._id(kind, k) for k in rng.sample(pool, min(n, rng.randint(0, most)))] if n else []

    def _ref(self, rtype: str, oid: Optional[str], path: str) -> Dict[str, Any]:
        if oid is None:
            return {"data": None}
        return {"data": {"type": rtype, "id": oid}, "links": {"self": f"/v1/{path}/{oid}"}}

    def _user_ref(self, rng: random.Random) -> Dict[str, Any]:
        return self._ref("user", self._pick(rng, "user"), "users")

    def _family(self, family: str, rng: random.Random) -> str:
        return rng.choice(self._family_ids[family])

    def _sla_pick(self, rng: random.Random) -> Tuple[Optional[str], Optional[str], int]:
        """``(sla id, sla_version id, version number)`` of an SLA that applied to an object."""
        slas = self.store.colls["sla"]
        if not len(slas):
            return None, None, 0
        s = rng.randrange(len(slas))
        v = rng.choice(self._sla_versions.get(s) or [-1])
        versions = self.store.colls["sla_version"]
        return slas.id_of(s), (versions.id_of(v) if v >= 0 else None), (versions.rel["version"][v] if v >= 0 else 1)

    def _deletion(self, kind: str, i: int) -> Dict[str, Any]:
        """``deleted`` and ``deletedAt`` of a deletable object."""
        at = self.store.colls[kind].deleted.get(i)
        return {"deleted": at is not None, "deletedAt": iso(at) if at is not None else None}

    def _common(self, kind: str, i: int) -> Dict[str, Any]:
        coll = self.store.colls[kind]
        created, updated = coll.created[i], coll.updated[i]
        vr = self._rng(kind, i, coll.rev[i])
        modified = updated if vr.random() < 0.75 else created + int((updated - created) * vr.random())
        return {"createdAt": iso(created), "updatedAt": iso(updated), "modifiedAt": iso(modified)}

    def _org(self) -> Dict[str, Any]:
        return self._ref("org", self.store.org_id, "orgs")

    def _audit(self, rng: random.Random) -> Dict[str, Any]:
        return {"org": self._org(), "createdBy": self._user_ref(rng), "modifiedBy": self._user_ref(rng)}

    @staticmethod
    def _envelope(rtype: str, oid: str, attributes: Dict[str, Any], relationships: Dict[str, Any], self_link: str) -> Dict[str, Any]:
        return {"type": rtype, "id": oid, "attributes": attributes, "relationships": relationships, "links": {"self": self_link}}

    # --- entry points -----------------------------------------------------------------------
    def resource(self, kind: str, i: int) -> Dict[str, Any]:
        return getattr(self, "_" + kind)(i)

    def attachment_count(self, i: int) -> int:
        """How many attachments message ``i`` has (most have none)."""
        rng = self._rng("attachment", i)
        return 0 if rng.random() < 0.8 else rng.randint(1, 3)

    def attachment_id(self, i: int, k: int) -> str:
        coll = self.store.colls["message"]
        return "%08x%06x%010x" % (coll.created[i] // 1000, stable_hash("tag", self.store.seed, "attachment") & 0xFFFFFF, i * 4 + k)

    def _attachment_attributes(self, i: int, k: int) -> Dict[str, Any]:
        rng = self._rng("attachment", i * 4 + k + 1)
        ext, ctype = rng.choice((("png", "image/png"), ("jpg", "image/jpeg"), ("pdf", "application/pdf"), ("txt", "text/plain")))
        return {"name": f"{rng.choice(('receipt', 'photo', 'label', 'invoice', 'screenshot'))}-{k + 1}.{ext}",
                "contentType": ctype, "contentLength": rng.randint(2_000, 4_000_000), "redacted": rng.random() < 0.03}

    def attachment(self, i: int, k: int) -> Dict[str, Any]:
        """Attachment ``k`` of message ``i``, as ``include=attachments`` lists it under ``included``."""
        mid = self._id("message", i)
        aid = self.attachment_id(i, k)
        return self._envelope("attachment", aid, self._attachment_attributes(i, k),
                              {"org": self._org(), "message": self._ref("message", mid, "messages")},
                              f"/v1/messages/{mid}/attachments/{aid}")

    def attachment_item(self, i: int, k: int, with_id: bool = True) -> Dict[str, Any]:
        """Attachment ``k`` of message ``i`` as ``GET /v1/conversations/{id}/attachments`` lists it
        (without ``id`` when ``with_id`` is False: the id is then only in ``links.self``)."""
        mid = self._id("message", i)
        aid = self.attachment_id(i, k)
        item: Dict[str, Any] = {"type": "attachment", "id": aid}
        if not with_id:
            del item["id"]
        item.update(
            attributes=self._attachment_attributes(i, k),
            relationships={"org": self._org(), "message": {"data": {"type": "message", "id": mid}}},
            links={"self": f"/v1/messages/{mid}/attachments/{aid}",
                   "related": f"https://kustomer-sandbox.example/attachments/{aid}?X-Amz-Expires=600"},
        )
        return item

    def message(self, i: int, attachments: Optional[bool] = None) -> Dict[str, Any]:
        """Message ``i``; ``attachments`` forces (or drops) ``relationships.attachments`` whatever ``search_attachments`` says."""
        return self._message(i, attachments)

    # --- query contexts ---------------------------------------------------------------------
    def _person(self, rng: random.Random) -> Dict[str, str]:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        handle = _slug(f"{first}.{last}").replace("'", "") + str(rng.randint(1, 999))
        return {"first": first, "last": last, "handle": handle}

    def _customer(self, i: int) -> Dict[str, Any]:
        store = self.store
        coll = store.colls["customer"]
        rng = self._rng("customer", i)
        vr = self._rng("customer", i, coll.rev[i])
        oid = coll.id_of(i)
        p = self._person(rng)
        created, updated = coll.created[i], coll.updated[i]
        email = f"{p['handle']}@{rng.choice(('gmail.com', 'yahoo.com', 'outlook.com', 'proton.me', 'icloud.com'))}"
        phone = "+1%03d555%04d" % (rng.randint(201, 989), rng.randint(0, 9999))
        city = rng.choice(CITIES)
        company_index = coll.rel["company"][i]
        last_conv = coll.rel["last_conversation"][i]
        counts = coll.rel["conversation_count"][i]
        done = min(counts, int(counts * vr.random() + 0.5))
        snoozed = 1 if counts - done > 1 and vr.random() < 0.2 else 0
        last_activity = updated - int(vr.random() * min(updated - created, 86_400_000))

        def maybe(items: List[Any], p_empty: float = 0.5) -> List[Any]:
            return [] if rng.random() < p_empty else items

        attributes: Dict[str, Any] = {
            "name": f"{p['first']} {p['last']}",
            "displayName": f"{p['first']} {p['last']}",
            "displayColor": rng.choice(("teal", "purple", "orange", "blue", "green", "red")),
            "displayIcon": rng.choice(("account", "account-circle", "star", "heart")),
            "firstName": p["first"],
            "lastName": p["last"],
            "username": p["handle"] if rng.random() < 0.4 else None,
            "externalId": f"cus_{rng.getrandbits(48):012x}" if rng.random() < 0.5 else None,
            "externalIds": maybe([{"externalId": f"shop-{rng.randint(10**6, 10**7)}", "verified": rng.random() < 0.5, "createdAt": iso(created)}], 0.4),
            "sharedExternalIds": maybe([{"externalId": f"legacy-{rng.randint(1000, 9999)}", "verified": False, "createdAt": iso(created)}], 0.85),
            "emails": [{"email": email, "verified": rng.random() < 0.7, "type": "home"}]
            + maybe([{"email": f"{p['handle']}@work-{rng.randint(1, 99)}.example.com", "verified": False, "type": "work"}], 0.7),
            "sharedEmails": maybe([{"email": f"family.{p['last'].lower()}@gmail.com", "verified": False, "type": "other"}], 0.85),
            "phones": maybe([{"phone": phone, "verified": rng.random() < 0.3, "type": rng.choice(("mobile", "home", "work"))}], 0.3),
            "sharedPhones": maybe([{"phone": "+1%03d555%04d" % (rng.randint(201, 989), rng.randint(0, 9999)), "verified": False, "type": "home"}], 0.9),
            "whatsapps": maybe([{"phone": phone, "verified": True}], 0.8),
            "sharedWhatsapps": maybe([{"phone": phone, "verified": False}], 0.95),
            "facebookIds": maybe([{"pageId": str(rng.randint(10**14, 10**15)), "userId": str(rng.randint(10**15, 10**16)), "name": f"{p['first']} {p['last']}"}], 0.8),
            "instagramIds": maybe([{"userId": str(rng.randint(10**15, 10**16)), "username": p["handle"]}], 0.85),
            "smoochIds": maybe([f"{rng.getrandbits(96):024x}"], 0.9),
            "socials": maybe([{"type": "twitter", "userid": str(rng.randint(10**8, 10**9)), "username": p["handle"], "url": f"https://twitter.com/{p['handle']}", "verified": rng.random() < 0.2}], 0.6),
            "sharedSocials": maybe([{"type": "facebook", "userid": str(rng.randint(10**8, 10**9)), "username": p["handle"], "url": f"https://facebook.com/{p['handle']}", "verified": False}], 0.9),
            "urls": maybe([{"url": f"https://{p['handle']}.example.net", "type": "website"}], 0.7),
            "locations": maybe([{"type": "home", "address": f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {city[0]}, {city[1]} {city[3]}, {city[2]}",
                                 "address1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "city": city[0], "regionCode": city[1],
                                 "countryCode": city[2], "zipCode": city[3]}], 0.5),
            "activeUsers": [],
            "watchers": self._picks(rng, "user", 2) if rng.random() < 0.1 else [],
            "recentLocation": {"updatedAt": iso(last_activity)} if rng.random() < 0.5 else None,
            **self._common("customer", i),
            "lastActivityAt": iso(last_activity),
            "lastCustomerActivityAt": iso(last_activity),
            "lastSeenAt": iso(last_activity) if vr.random() < 0.6 else None,
            "lastMessageAt": iso(last_activity) if counts else None,
            "signedUpAt": iso(created - int(rng.random() * 400 * 86_400_000)) if rng.random() < 0.4 else None,
            "birthdayAt": "%04d-%02d-%02dT00:00:00.000Z" % (rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.2 else None,
            "lastConversation": (
                {"id": self._id("conversation", last_conv), "channels": [rng.choice(CHANNELS)], "tags": self._picks(vr, "tag", 2),
                 "sentiment": {"polarity": vr.choice((-1, 0, 1)), "confidence": round(vr.random(), 3)}}
                if last_conv >= 0 else None
            ),
            "conversationCounts": {"all": counts, "open": counts - done - snoozed, "done": done, "snoozed": snoozed},
            "preview": {"previewAt": iso(last_activity), "type": "message", "subject": rng.choice(SUBJECTS), "text": rng.choice(SENTENCES), "channel": rng.choice(CHANNELS)} if counts else {},
            "lastMessageIn": {"sentAt": iso(last_activity), "channel": rng.choice(CHANNELS)} if counts else {},
            "lastMessageOut": {"sentAt": iso(last_activity)} if counts and vr.random() < 0.7 else {},
            "lastMessageUnrespondedTo": {"sentAt": iso(last_activity)} if counts and vr.random() < 0.2 else {},
            **self._deletion("customer", i),
            "tags": self._picks(vr, "tag", 3) if vr.random() < 0.3 else [],
            "custom": self._custom(rng, vr, "customer", {"tierStr": lambda r: r.choice(CUSTOM_ENUMS["tierStr"]),
                                                         "totalSpentNum": lambda r: round(r.random() * 5000, 2),
                                                         "lastOrderAt": lambda r: iso(created + int((updated - created) * r.random())),
                                                         "vipBool": lambda r: r.random() < 0.1,
                                                         "notesTxt": lambda r: r.choice(SENTENCES),
                                                         "profileUrl": lambda r: f"https://admin.example.com/customers/{oid}"}),
            "progressiveStatus": vr.choice(("open", "done", "snoozed")) if counts else None,
            "verified": rng.random() < 0.4,
            "rev": coll.rev[i],
            "recentItems": [],
            "satisfactionLevel": {"sentByTeams": [], "lastSatisfaction": None} if counts else {},
            "roleGroupVersions": [],
            "accessOverride": [],
            "sentiment": {"polarity": vr.choice((-1, 0, 0, 1)), "confidence": round(vr.random(), 3)} if counts else None,
            "avatarUrl": f"https://avatars.example.com/{oid}.png" if rng.random() < 0.3 else None,
            "locale": rng.choice(LOCALES),
            "timeZone": rng.choice(ZONES),
            "gender": rng.choice(("female", "male", None, None)),
            "presence": vr.choice(("offline", "offline", "online")),
            "unmaskingWindow": None,
            "defaultLang": rng.choice(("en_us", "en_gb", "fr", "de", None)),
            "companyName": None,
        }
        relationships: Dict[str, Any] = {
            "org": self._org(),
            "createdBy": self._user_ref(rng),
            "modifiedBy": self._user_ref(vr),
            "messages": {"links": {"self": f"/v1/customers/{oid}/messages"}},
        }
        if company_index >= 0:
            cr = self._rng("company", company_index)
            attributes["companyName"] = self._company_name(cr)
            relationships["company"] = self._ref("company", self._id("company", company_index), "companies")
        for name in store.klass_names:
            relationships[name] = {"links": {"self": f"/v1/customers/{oid}/klasses/{name}"}, "meta": {"kobject": True}}
        return self._envelope("customer", oid, attributes, relationships, f"/v1/customers/{oid}")

    @staticmethod
    def _custom(rng: random.Random, vr: random.Random, resource: str, makers: Dict[str, Any]) -> Dict[str, Any]:
        """Custom attributes: which keys an object has is fixed; ``Num``/``At``/``Bool`` values change on update.

        The keys are ``CUSTOM_KEYS[resource]`` (the metadata endpoint lists the same ones).
        """
        out = {}
        for name in CUSTOM_KEYS[resource]:
            make = makers[name]
            if rng.random() < 0.7:
                out[name] = make(vr if name.endswith(("Num", "At", "Bool")) else rng)
        return out

    @staticmethod
    def _company_name(rng: random.Random) -> str:
        return f"{rng.choice(COMPANIES)} {rng.choice(SUFFIXES)}"

    def _company(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["company"]
        rng = self._rng("company", i)
        vr = self._rng("company", i, coll.rev[i])
        oid = coll.id_of(i)
        name = self._company_name(rng)
        domain = _slug(name.split()[0]) + rng.choice((".com", ".io", ".co.uk", ".de", ".example"))
        city = rng.choice(CITIES)
        attributes = {
            "name": name,
            "externalId": f"acct-{rng.randint(10**5, 10**6)}" if rng.random() < 0.5 else None,
            "domains": [domain] + ([f"{_slug(name.split()[0])}.net"] if rng.random() < 0.2 else []),
            "emails": [{"email": f"support@{domain}", "type": "work"}] if rng.random() < 0.7 else [],
            "phones": [{"phone": "+1%03d555%04d" % (rng.randint(201, 989), rng.randint(0, 9999)), "type": "work"}] if rng.random() < 0.5 else [],
            "whatsapps": [{"phone": "+1%03d555%04d" % (rng.randint(201, 989), rng.randint(0, 9999))}] if rng.random() < 0.1 else [],
            "socials": [{"type": "linkedin", "username": _slug(name), "url": f"https://linkedin.com/company/{_slug(name)}"}] if rng.random() < 0.4 else [],
            "urls": [{"url": f"https://www.{domain}", "type": "website"}],
            "locations": [{"type": "work", "address": f"{rng.randint(1, 999)} {rng.choice(STREETS)}, {city[0]}, {city[1]} {city[3]}, {city[2]}"}] if rng.random() < 0.6 else [],
            "tags": self._picks(vr, "tag", 2) if vr.random() < 0.3 else [],
            "custom": self._custom(rng, vr, "company", {"industryStr": lambda r: r.choice(CUSTOM_ENUMS["industryStr"]),
                                                        "employeesNum": lambda r: r.randint(1, 20000),
                                                        "renewalAt": lambda r: iso(coll.updated[i] + int(r.random() * 365 * 86_400_000)),
                                                        "partnerBool": lambda r: r.random() < 0.2}),
            **self._deletion("company", i),
            "rev": coll.rev[i],
            **self._common("company", i),
        }
        relationships = {**self._audit(rng), "customers": {"links": {"self": f"/v1/companies/{oid}/customers"}}}
        for name in self.store.klass_names:
            relationships[name] = {"links": {"self": f"/v1/companies/{oid}/klasses/{name}"}, "meta": {"kobject": True}}
        return self._envelope("company", oid, attributes, relationships, f"/v1/companies/{oid}")

    def _conversation(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["conversation"]
        rng = self._rng("conversation", i)
        vr = self._rng("conversation", i, coll.rev[i])
        oid = coll.id_of(i)
        created, updated = coll.created[i], coll.updated[i]
        channel = rng.choice(CHANNELS)
        status = vr.choice(("done", "done", "done", "open", "snoozed"))
        inbound = rng.randint(1, 6)
        outbound = vr.randint(0, inbound + 1)
        first_in = created + rng.randint(0, 5000)
        first_out = first_in + rng.randint(60_000, 86_400_000) if outbound else None
        last_activity = max(created, updated - int(vr.random() * min(updated - created, 3_600_000)))
        ended = status == "done"
        sla_id, sla_version_id, sla_version = self._sla_pick(rng)
        breached = vr.random() < 0.15
        assigned_users = self._picks(vr, "user", 1)
        attributes = {
            "name": rng.choice(SUBJECTS),
            "preview": rng.choice(SENTENCES),
            "channels": [channel] + ([rng.choice(CHANNELS)] if rng.random() < 0.1 else []),
            "status": status,
            "messageCount": inbound + outbound,
            "noteCount": self._note_count(i),
            "satisfaction": vr.choice((None, None, None, 0, 1, 2, 3, 4, 5)),
            **self._common("conversation", i),
            "lastActivityAt": iso(last_activity),
            "spam": rng.random() < 0.02,
            "ended": ended,
            "endedAt": iso(last_activity) if ended else None,
            "endedReason": vr.choice(("user", "inactivity", "workflow")) if ended else None,
            "endedByType": vr.choice(("user", "workflow")) if ended else None,
            "tags": self._picks(vr, "tag", 3),
            "suggestedTags": [{"tag": t, "confidence": round(rng.random(), 3)} for t in self._picks(rng, "tag", 2)],
            "predictions": [],
            "suggestedShortcuts": [{"shortcut": s, "confidence": round(rng.random(), 3)} for s in self._picks(rng, "shortcut", 1)],
            "firstMessageIn": {"sentAt": iso(first_in), "channel": channel, "directionType": "initial-in"},
            "firstMessageOut": {"sentAt": iso(first_out), "channel": channel, "createdByTeams": []} if first_out else {},
            "lastMessageIn": {"sentAt": iso(max(first_in, last_activity - 60_000)), "channel": channel},
            "lastMessageOut": {"sentAt": iso(last_activity), "channel": channel} if first_out else {},
            "lastMessageAt": iso(last_activity),
            "lastMessageUnrespondedTo": {"sentAt": iso(last_activity)} if status == "open" else {},
            "lastMessageDirection": "out" if first_out and status != "open" else "in",
            "assignedUsers": assigned_users,
            "assignedTeams": self._picks(vr, "team", 1),
            "firstResponse": {"createdAt": iso(first_out), "sentAt": iso(first_out), "time": first_out - first_in, "businessTime": (first_out - first_in) // 2,
                              "assignedUsers": assigned_users} if first_out else {},
            "lastResponse": {"createdAt": iso(last_activity), "sentAt": iso(last_activity), "time": rng.randint(1000, 9_000_000)} if first_out else {},
            "firstDone": {"createdAt": iso(last_activity), "assignedUsers": assigned_users} if ended else {},
            "lastDone": {"createdAt": iso(last_activity), "assignedUsers": assigned_users} if ended else {},
            "doneCount": (1 + vr.randint(0, 1)) if ended else 0,
            "direction": rng.choice(("in", "in", "in", "out")),
            "outboundMessageCount": outbound,
            "inboundMessageCount": inbound,
            "priority": rng.randint(1, 5),
            "custom": self._custom(rng, vr, "conversation", {"orderNumberStr": lambda r: f"#{r.randint(1000, 99999)}",
                                                             "refundAmountNum": lambda r: round(r.random() * 300, 2),
                                                             "followUpAt": lambda r: iso(updated + int(r.random() * 7 * 86_400_000)),
                                                             "escalatedBool": lambda r: r.random() < 0.1,
                                                             "reasonTxt": lambda r: r.choice(SENTENCES),
                                                             "recordingUrl": lambda r: f"https://calls.example.com/{oid}.mp3"}),
            "totalOpen": {"businessTime": rng.randint(0, 10**7), "time": rng.randint(0, 10**8)},
            "totalDone": {"businessTime": rng.randint(0, 10**7), "time": rng.randint(0, 10**8)} if ended else {},
            "totalSnooze": {"time": rng.randint(0, 10**7)} if status == "snoozed" else {},
            "sla": {
                "id": sla_id,
                "version": sla_version,
                "name": rng.choice(("Standard", "VIP", "Social")),
                "breached": breached,
                "status": "breached" if breached else ("satisfied" if ended else "active"),
                "summary": {"firstBreachAt": iso(first_in + 3_600_000) if breached else None, "satisfiedAt": iso(last_activity) if ended else None},
                "matchedAt": iso(first_in),
                "metrics": {"firstResponse": {"breachAt": iso(first_in + 3_600_000), "satisfiedAt": iso(first_out) if first_out else None}},
            },
            "snooze": {"status": "snoozed", "time": iso(updated + 86_400_000)} if status == "snoozed" else {},
            "snoozeCount": 1 if status == "snoozed" else 0,
            "reopenCount": vr.randint(0, 1),
            "linkedConversations": [],
            "mergedTarget": False,
            "pinned": [],
            "rev": coll.rev[i],
            "defaultLang": "en_us",
            "locale": rng.choice(LOCALES),
            "importedAt": iso(created) if rng.random() < 0.05 else None,
            "externalId": f"zd-{rng.randint(10**6, 10**7)}" if rng.random() < 0.05 else None,
            **self._deletion("conversation", i),
        }
        customer = coll.rel["customer"][i]
        relationships = {
            "messages": {"links": {"self": f"/v1/conversations/{oid}/messages"}},
            "org": self._org(),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
            "brand": self._ref("brand", self._pick(rng, "brand"), "brands"),
            "createdBy": self._user_ref(rng),
            "modifiedBy": self._user_ref(vr),
            "sla": self._ref("sla", sla_id, "slas"),
            "slaVersion": self._ref("sla_version", sla_version_id, "slas/versions"),
            "queue": self._ref("queue", self._pick(rng, "queue"), "routing/queues"),
        }
        if ended:
            relationships["endedBy"] = self._user_ref(vr)
        if self.drift:
            attributes["priority"] = str(attributes["priority"])
            attributes["sandboxDrift"] = "new in this org"
        return self._envelope("conversation", oid, attributes, relationships, f"/v1/conversations/{oid}")

    def _recipients(self, rng: random.Random, n_max: int) -> Any:
        """An email recipient field in one of the shapes Kustomer emits: string, object or array."""
        def address() -> str:
            return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower().replace(chr(39), '')}@example.com"
        shape = rng.random()
        if shape < 0.35:
            return address()
        if shape < 0.6:
            return {"email": address(), "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}
        if shape < 0.85:
            return [{"email": address(), "name": rng.choice(FIRST)} for _ in range(rng.randint(1, n_max))]
        return [address() for _ in range(rng.randint(1, n_max))]

    def _message(self, i: int, with_attachments: Optional[bool] = None) -> Dict[str, Any]:
        store = self.store
        coll = store.colls["message"]
        rng = self._rng("message", i)
        vr = self._rng("message", i, coll.rev[i])
        oid = coll.id_of(i)
        created = coll.created[i]
        conversation = coll.rel["conversation"][i]
        conversations = store.colls["conversation"]
        customer = conversations.rel["customer"][conversation] if 0 <= conversation < len(conversations) else -1
        channel = rng.choice(CHANNELS)
        direction = "in" if rng.random() < 0.55 else "out"
        text = rng.choice(SENTENCES)
        if channel == "email":
            meta: Dict[str, Any] = {"from": f"{rng.choice(FIRST).lower()}@example.org", "to": self._recipients(rng, 3), "subject": rng.choice(SUBJECTS)}
            if rng.random() < 0.4:
                meta["cc"] = self._recipients(rng, 2)
            if rng.random() < 0.15:
                meta["bcc"] = self._recipients(rng, 2)
        elif channel in ("sms", "whatsapp", "voice"):
            meta = {"from": "+1555%07d" % rng.randint(0, 10**7 - 1), "to": "+1555%07d" % rng.randint(0, 10**7 - 1)}
        else:
            meta = {"sessionId": "%024x" % rng.getrandbits(96)}
        attributes = {
            "channel": channel,
            "app": {"email": "postmark", "chat": "chat", "sms": "twilio", "whatsapp": "smooch", "voice": "twilio"}.get(channel, channel),
            "size": len(text) + rng.randint(0, 4000),
            "direction": direction,
            "directionType": rng.choice(("initial-in", "followup-in")) if direction == "in" else rng.choice(("response-out", "initial-out")),
            "preview": text[:100],
            "subject": meta.get("subject"),
            "meta": meta,
            "status": vr.choice(("received",) if direction == "in" else ("sent", "sent", "delivered", "read", "error")),
            "responseTime": rng.randint(1000, 9_000_000) if direction == "out" else None,
            "assignedTeams": self._picks(rng, "team", 1),
            "assignedUsers": self._picks(rng, "user", 1),
            "auto": rng.random() < 0.1,
            "sentAt": iso(created),
            **self._common("message", i),
            "redacted": vr.random() < 0.01,
            "createdByTeams": self._picks(rng, "team", 1) if direction == "out" else [],
            "rev": coll.rev[i],
            "reactions": [],
            "lang": rng.choice(("en", "en", "en", "fr", "de", "es")),
            "externalId": f"<{rng.getrandbits(64):016x}@mail.example.com>" if channel == "email" else None,
            "location": None,
            "source": rng.choice(("api", "app", "workflow")),
        }
        relationships: Dict[str, Any] = {
            "org": self._org(),
            "modifiedBy": self._user_ref(vr),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
            "conversation": self._ref("conversation", self._id("conversation", conversation), "conversations"),
            "createdBy": self._user_ref(rng),
        }
        if direction == "out" and rng.random() < 0.3:
            relationships["shortcuts"] = {"data": [{"type": "shortcut", "id": s} for s in self._picks(rng, "shortcut", 2)]}
        attachments = self.attachment_count(i) if (self.search_attachments if with_attachments is None else with_attachments) else 0
        if attachments:
            relationships["attachments"] = {"data": [{"type": "attachment", "id": self.attachment_id(i, k)} for k in range(attachments)]}
        return self._envelope("message", oid, attributes, relationships, f"/v1/messages/{oid}")

    def _note(self, i: int) -> Dict[str, Any]:
        store = self.store
        coll = store.colls["note"]
        rng = self._rng("note", i)
        vr = self._rng("note", i, coll.rev[i])
        oid = coll.id_of(i)
        conversation = coll.rel["conversation"][i]
        conversations = store.colls["conversation"]
        customer = conversations.rel["customer"][conversation] if 0 <= conversation < len(conversations) else -1
        mentions = self._picks(rng, "user", 2) if rng.random() < 0.4 else []
        team_mentions = self._picks(rng, "team", 1) if rng.random() < 0.1 else []
        body = vr.choice(("Customer called, ", "FYI: ", "Escalating: ", "Resolved - ", "")) + rng.choice(SENTENCES)
        if mentions:
            body = " ".join(f"@[{m}]" for m in mentions) + " " + body
        attributes = {
            "body": body,
            **self._common("note", i),
            "createdByTeams": self._picks(rng, "team", 1),
            **self._deletion("note", i),
            "externalId": None,
        }
        relationships = {
            **self._audit(rng),
            "customer": self._ref("customer", self._id("customer", customer), "customers"),
            "conversation": self._ref("conversation", self._id("conversation", conversation), "conversations"),
            "userMentions": {"data": [{"type": "user", "id": m} for m in mentions]},
            "teamMentions": {"data": [{"type": "team", "id": t} for t in team_mentions]},
        }
        return self._envelope("note", oid, attributes, relationships, f"/v1/notes/{oid}")

    def _kobject(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["kobject"]
        rng = self._rng("kobject", i)
        vr = self._rng("kobject", i, coll.rev[i])
        oid = coll.id_of(i)
        klass = coll.rel["klass"][i]
        name, display, icon, _color, _share, fields = KLASSES[klass]
        created, updated = coll.created[i], coll.updated[i]
        custom: Dict[str, Any] = {}
        for field in fields:
            r = vr if field.endswith(("Bool", "At")) else rng
            if field.endswith("Str"):
                custom[field] = f"{field[:3].upper()}-{r.randint(10000, 999999)}"
            elif field.endswith("Num"):
                custom[field] = round(r.random() * 500, 2)
            elif field.endswith("At"):
                custom[field] = iso(created + int((updated - created) * r.random()))
            elif field.endswith("Bool"):
                custom[field] = r.random() < 0.5
            elif field.endswith("Url"):
                custom[field] = f"https://shop.example.com/{name}/{oid}"
            elif field.endswith("Txt"):
                custom[field] = r.choice(SENTENCES)
        attributes = {
            "externalId": f"{name}-{rng.randint(10**6, 10**7)}",
            "title": f"{display} {custom.get(fields[0], oid[-6:])}",
            "description": rng.choice(SENTENCES) if rng.random() < 0.5 else None,
            "icon": icon,
            "images": [{"url": f"https://cdn.example.com/{oid}.jpg"}] if rng.random() < 0.2 else [],
            "custom": custom,
            "tags": self._picks(vr, "tag", 1) if vr.random() < 0.2 else [],
            **self._common("kobject", i),
            "roleGroupVersions": [],
            "attribution": {"source": rng.choice(("api", "integration", "workflow"))},
            **self._deletion("kobject", i),
        }
        klass_id = self._id("klass", klass)
        relationships = {
            **self._audit(rng),
            # Kustomer spells this one key ``link``, not ``links``.
            "klass": {"data": {"type": "klass", "id": klass_id}, "link": {"self": f"/v1/klasses/{klass_id}"}},
            "customer": self._ref("customer", self._id("customer", coll.rel["customer"][i]), "customers"),
        }
        return self._envelope("kobject", oid, attributes, relationships, f"/v1/klasses/{name}/{oid}")

    # --- list-only types --------------------------------------------------------------------
    def _user(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["user"]
        rng = self._rng("user", i)
        oid = coll.id_of(i)
        created = coll.created[i]
        if i == 0:
            name, email, user_type = "Sandbox API Key", f"{oid}@machine.kustomerapp.com", "machine"
        else:
            first, last = FIRST[(i * 7) % len(FIRST)], LAST[(i * 11) % len(LAST)]
            name, email, user_type = f"{first} {last}", f"{first.lower()}.{_slug(last).replace(chr(39), '')}@example-org.com", "user"
        attributes = {
            "name": name,
            "displayName": name.split()[0] if user_type == "user" else name,
            "userType": user_type,
            "email": email,
            "emailVerifiedAt": iso(created + 3_600_000) if user_type == "user" else None,
            "firstEmailVerifiedAt": iso(created + 3_600_000) if user_type == "user" else None,
            "mobile": "+1555%07d" % rng.randint(0, 10**7 - 1) if rng.random() < 0.3 else None,
            "avatarUrl": f"https://avatars.example.com/{oid}.png" if rng.random() < 0.5 else None,
            "emailSignature": f"-- \n{name}" if user_type == "user" else None,
            "roleGroups": [self._family("role_group", rng)],
            "roles": list(ROLES) if user_type == "machine" else ["org.user.read", "org.permission.read"],
            "password": {"allowNewAt": iso(created), "updatedAt": iso(created), "expiresAt": None} if user_type == "user" else {},
            **self._common("user", i),
            "deletedAt": None,
        }
        relationships = {"org": self._org(), "createdBy": self._ref("user", coll.id_of(0), "users"), "modifiedBy": self._ref("user", coll.id_of(0), "users")}
        return self._envelope("user", oid, attributes, relationships, f"/v1/users/{oid}")

    def _team(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["team"]
        rng = self._rng("team", i)
        oid = coll.id_of(i)
        name = TEAMS[i % len(TEAMS)] + ("" if i < len(TEAMS) else f" {i // len(TEAMS) + 1}")
        users = self.store.colls["user"]
        members = [users.id_of(u) for u in sorted(rng.sample(range(1, len(users)), min(len(users) - 1, rng.randint(2, 8))))] if len(users) > 1 else []
        attributes = {
            "name": name,
            "displayName": name,
            "icon": rng.choice(("account-group", "headset", "cash", "truck", "star", "twitter")),
            "members": members,
            "roleGroups": [self._family("role_group", rng)],
            **self._common("team", i),
            "deleted": False,
            "deletedAt": None,
        }
        return self._envelope("team", oid, attributes, self._audit(rng), f"/v1/teams/{oid}")

    def _tag(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["tag"]
        rng = self._rng("tag", i)
        oid = coll.id_of(i)
        attributes = {
            "name": TAGS[i % len(TAGS)] + ("" if i < len(TAGS) else f"-{i // len(TAGS) + 1}"),
            "color": rng.choice(COLORS),
            **self._common("tag", i),
            "deleted": False,
            "deletedAt": None,
        }
        return self._envelope("tag", oid, attributes, self._audit(rng), f"/v1/tags/{oid}")

    def _shortcut(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["shortcut"]
        rng = self._rng("shortcut", i)
        vr = self._rng("shortcut", i, coll.rev[i])
        oid = coll.id_of(i)
        name = SHORTCUTS[i % len(SHORTCUTS)] + ("" if i < len(SHORTCUTS) else f" {i // len(SHORTCUTS) + 1}")
        attributes = {
            "name": name,
            "draft": {"body": vr.choice(SENTENCES), "channel": rng.choice(("email", "chat", "sms"))} if rng.random() < 0.8 else None,
            "conversation": {"status": "done"} if rng.random() < 0.3 else None,
            "payload": {"body": vr.choice(SENTENCES), "subject": rng.choice(SUBJECTS)},
            "isPrivate": rng.random() < 0.2,
            "deleted": False,
            "rev": coll.rev[i],
            "appDisabled": False,
            **self._common("shortcut", i),
        }
        return self._envelope("shortcut", oid, attributes, self._audit(rng), f"/v1/shortcuts/{oid}")

    def _klass(self, i: int) -> Dict[str, Any]:
        coll = self.store.colls["klass"]
        rng = self._rng("klass", i)
        oid = coll.id_of(i)
        name, display, icon, color, _share, fields = KLASSES[i % len(KLASSES)]
        attributes = {
            "name": name,
            "displayName": display,
            "icon": icon,
            "color": color,
            "status": "disabled" if name in self.store.disabled_klasses else "enabled",
            "appDisabled": False,
            "mixins": [],
            "description": f"{display} records synced from the store",
            "attributes": {f: {"displayName": f, "type": suffix_type(f)} for f in fields},
            **self._common("klass", i),
        }
        return self._envelope("klass", oid, attributes, self._audit(rng), f"/v1/klasses/{oid}")
