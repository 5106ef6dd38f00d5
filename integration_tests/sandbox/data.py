"""Deterministic generation of a simulated Kustomer org, and the mutations that change it later.

``generate`` fills a ``Store`` with the skeleton of every object: when it was created, when it was
last updated, and what it points at. The same ``(records, seed, now)`` always yields the same org.
What the data reproduces about real Kustomer orgs:

* Volume split across search contexts: conversations 30%, messages 35%, customers 15%, notes 10%,
  kobjects 5%, companies 5%; plus small fixed lists (25 users, 6 teams, 30 tags, 20 shortcuts,
  4 klasses).
* Four years of history, denser towards now, so a good share of objects was last updated more than
  two years ago and only ``/v1/customers/archive/search`` sees them.
* Timestamp ties: about 1% of objects share their ``updatedAt`` with another object, and a bulk
  action once touched more than 500 conversations in the same millisecond (``BURSTS``), which is what
  breaks naive keyset pagination on ``updatedAt``.
* Referential sanity: a conversation belongs to a customer created before it, a message or note to a
  conversation created before it, a kobject to a customer and a klass.
* Soft deletes: about 2% of customers, conversations, companies, notes and kobjects are deleted
  (``deletedAt`` no later than ``updatedAt``). One Klass (``warranty-claim``) is disabled.
* Users in three statuses (``USER_STATUSES``): most active, three or four deactivated (still the
  authors and assignees of older conversations and messages) and two or three whose invitation is
  pending (never acted on anything). The API key's own user (the first) is active.
* Org configuration (brands, schedules, cards, queues, surveys, snooze options, SLAs and their
  versions), a spam list, the key user's notifications of the last week, and an append-only audit
  log (``max(50, records // 20)`` entries over the whole history, some sharing one millisecond).
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from typing import Dict, List, Mapping, Optional, Sequence

from .store import DAY_MS, DELETABLE, Collection, Store

#: Share of ``records`` per search context.
SHARES = (
    ("conversation", 0.30),
    ("message", 0.35),
    ("customer", 0.15),
    ("note", 0.10),
    ("kobject", 0.05),
    ("company", 0.05),
)
#: Sizes of the list-only types.
LIST_SIZES = {"user": 25, "team": 6, "tag": 30, "shortcut": 20}
#: Klasses (custom object types): name, display name, icon, colour, share of kobjects, custom fields.
KLASSES = (
    ("shopify-orders", "Shopify Order", "cart", "#5c6ac4", 0.45,
     ("orderNumberStr", "totalPriceNum", "orderedAt", "paidBool", "trackingUrl", "noteTxt")),
    ("ecomm-order", "E-commerce Order", "package-variant", "#f5a623", 0.25,
     ("orderIdStr", "amountNum", "placedAt", "giftBool", "receiptUrl")),
    ("subscription", "Subscription", "autorenew", "#50e3c2", 0.2,
     ("planStr", "seatsNum", "renewsAt", "activeBool", "portalUrl")),
    ("return-request", "Return Request", "keyboard-return", "#d0021b", 0.1,
     ("rmaStr", "refundNum", "requestedAt", "approvedBool", "reasonTxt", "labelUrl")),
    ("warranty-claim", "Warranty Claim", "shield-check", "#7ed321", 0.04,
     ("claimStr", "coveredNum", "filedAt", "validBool")),
)
#: Klasses switched off by the org: not in ``GET /v1/klasses`` (default ``status=enabled``), but their
#: kobjects remain in search.
DISABLED_KLASSES = frozenset({"warranty-claim"})
#: Sizes of the org-configuration lists (``sla_version`` follows from the SLAs, ``audit_log`` from
#: ``records``).
CONFIG_SIZES = {"brand": 3, "schedule": 4, "card": 5, "queue": 6, "satisfaction": 3, "snooze": 5, "spam_sender": 40,
                "notification": 30, "sla": 3}
#: Share of each deletable search context that is soft-deleted.
DELETED_SHARE = 0.02
#: Object types the audit log talks about, and its verbs (stored as indexes into these tuples).
AUDIT_OBJECT_TYPES = ("conversation", "customer", "message", "company", "note")
AUDIT_VERBS = ("create", "update", "delete")
#: A user's status, as the ``status`` relation column holds it (its index; -1, a user created later, is active).
USER_STATUSES = ("active", "deactivated", "pending")
#: Bulk actions: this many objects of the type share one ``updatedAt``, ``days_ago`` before now.
BURSTS = {"conversation": (520, 200)}

HISTORY_MS = 4 * 365 * DAY_MS
#: Generated objects are last updated at least this long before ``now``, so a touch always moves
#: an object forward in time.
GUARD_MS = 1000


def type_counts(records: int) -> Dict[str, int]:
    counts = {kind: max(1, round(records * share)) for kind, share in SHARES}
    counts.update(LIST_SIZES)
    counts["klass"] = len(KLASSES)
    counts.update(CONFIG_SIZES)
    counts["audit_log"] = max(50, records // 20)
    return counts


def generate(store: Store, records: int, bursts: Optional[Mapping[str, Sequence[int]]] = None) -> None:
    """Fills ``store`` with an org of about ``records`` searchable objects."""
    bursts = BURSTS if bursts is None else bursts
    counts = type_counts(records)
    now = store.now0_ms
    store.klass_names = [k[0] for k in KLASSES]
    store.disabled_klasses = set(DISABLED_KLASSES)
    colls = store.colls
    seed = store.seed

    # Relation columns (-1 = none).
    colls["customer"].rel.update(company=array("l"), last_conversation=array("l"), conversation_count=array("l"))
    colls["conversation"].rel.update(customer=array("l"))
    colls["message"].rel.update(conversation=array("l"))
    colls["note"].rel.update(conversation=array("l"))
    colls["kobject"].rel.update(customer=array("l"), klass=array("l"))

    # Configuration objects: created in the org's first months, edited now and then since.
    for kind in ("user", "team", "tag", "shortcut", "klass"):
        rng = random.Random(f"{seed}:{kind}")
        n = counts[kind]
        created = sorted(now - HISTORY_MS + int(rng.random() * 120 * DAY_MS) for _ in range(n))
        _fill(colls[kind], created, _updated_times(rng, created, now))

    _user_statuses(random.Random(f"{seed}:user:status"), colls["user"])

    # Companies and customers: any time in the last four years, denser recently.
    for kind in ("company", "customer"):
        rng = random.Random(f"{seed}:{kind}")
        created = _created_times(rng, counts[kind], now)
        _fill(colls[kind], created, _updated_times(rng, created, now))
    rng = random.Random(f"{seed}:customer:company")
    n_company = len(colls["company"])
    n_customer = len(colls["customer"])
    colls["customer"].rel["company"].extend(int(rng.random() * n_company) if rng.random() < 0.6 else -1 for _ in range(n_customer))
    colls["customer"].rel["last_conversation"].extend([-1] * n_customer)
    colls["customer"].rel["conversation_count"].extend([0] * n_customer)

    # Conversations: each of a customer who existed by then.
    rng = random.Random(f"{seed}:conversation")
    created = _created_times(rng, counts["conversation"], now)
    customers = _pick_parents(rng, created, colls["customer"].created, recent=None)
    _fill(colls["conversation"], created, _updated_times(rng, created, now))
    colls["conversation"].rel["customer"].extend(customers)
    last, count = colls["customer"].rel["last_conversation"], colls["customer"].rel["conversation_count"]
    for j, c in enumerate(customers):
        last[c] = j
        count[c] += 1

    # Messages and notes: each in a conversation opened shortly before.
    for kind in ("message", "note"):
        rng = random.Random(f"{seed}:{kind}")
        created = _created_times(rng, counts[kind], now)
        _fill(colls[kind], created, _updated_times(rng, created, now))
        colls[kind].rel["conversation"].extend(_pick_parents(rng, created, colls["conversation"].created, recent=40))

    # KObjects: of a customer, in one of the klasses.
    rng = random.Random(f"{seed}:kobject")
    created = _created_times(rng, counts["kobject"], now)
    _fill(colls["kobject"], created, _updated_times(rng, created, now))
    colls["kobject"].rel["customer"].extend(_pick_parents(rng, created, colls["customer"].created, recent=None))
    weights = [k[4] for k in KLASSES]
    colls["kobject"].rel["klass"].extend(rng.choices(range(len(KLASSES)), weights, k=len(created)))

    for kind in colls:
        _add_ties(random.Random(f"{seed}:{kind}:ties"), colls[kind])
    for kind, (size, days_ago) in bursts.items():
        _add_burst(random.Random(f"{seed}:{kind}:burst"), colls[kind], size, now - days_ago * DAY_MS)
    for kind in DELETABLE:
        _add_deletes(random.Random(f"{seed}:{kind}:deleted"), colls[kind])
    _generate_config(store, counts)
    store.conversation_updated0 = array("q", colls["conversation"].updated)
    for coll in colls.values():
        coll.build_keys()
    store.generated = {kind: len(coll) for kind, coll in colls.items()}


def _generate_config(store: Store, counts: Mapping[str, int]) -> None:
    """Org configuration, spam list, notifications, SLA versions and the audit log."""
    colls, seed, now = store.colls, store.seed, store.now0_ms
    for kind in ("brand", "schedule", "card", "queue", "satisfaction", "snooze", "sla", "spam_sender"):
        rng = random.Random(f"{seed}:{kind}")
        n = counts[kind]
        if kind == "spam_sender":
            created = _created_times(rng, n, now)
        else:
            created = sorted(now - HISTORY_MS + int(rng.random() * 120 * DAY_MS) for _ in range(n))
        _fill(colls[kind], created, _updated_times(rng, created, now))

    # Notifications: Kustomer drops them after 7 days, so all are from the last week.
    rng = random.Random(f"{seed}:notification")
    created = sorted(now - GUARD_MS - int(rng.random() * 7 * DAY_MS) for _ in range(counts["notification"]))
    _fill(colls["notification"], created, [min(now - GUARD_MS, c + int(rng.random() * 3_600_000)) for c in created])
    colls["notification"].rel.update(user=array("l", [0] * len(created)))

    # SLA versions: 1 to 3 per SLA, the first when the SLA was created, in creation order overall.
    rng = random.Random(f"{seed}:sla_version")
    slas = colls["sla"]
    versions = []
    for s in range(len(slas)):
        t = slas.created[s]
        for v in range(1, rng.randint(1, 3) + 1):
            versions.append((t, s, v))
            t += int(rng.random() * 300 * DAY_MS) + 1
    versions.sort()
    colls["sla_version"].rel.update(sla=array("l", [s for _, s, _ in versions]), version=array("l", [v for _, _, v in versions]))
    _fill(colls["sla_version"], [t for t, _, _ in versions], [t for t, _, _ in versions])
    slas.rel.update(versions=array("l", [sum(1 for _, s2, _ in versions if s2 == s) for s in range(len(slas))]))

    # Audit log: spread over the history, about 8% sharing their millisecond with the previous entry.
    rng = random.Random(f"{seed}:audit_log")
    created = _created_times(rng, counts["audit_log"], now)
    for j in range(1, len(created)):
        if rng.random() < 0.08:
            created[j] = created[j - 1]
    if len(created) > 10:  # one bulk action: six entries at the same instant
        k = len(created) // 2
        created[k:k + 6] = [created[k]] * 6
    audit = colls["audit_log"]
    _fill(audit, created, created)
    types = [int(rng.random() * len(AUDIT_OBJECT_TYPES)) for _ in created]
    verbs = [0 if x < 0.25 else (1 if x < 0.96 else 2) for x in (rng.random() for _ in created)]
    objects = []
    for c, t, verb in zip(created, types, verbs):
        target = colls[AUDIT_OBJECT_TYPES[t]].created
        k = bisect_right(target, c)  # objects that existed by then; a create is of the newest of them
        objects.append((k - 1 if verb == 0 else int(rng.random() * k)) if k else (0 if len(target) else -1))
    audit.rel.update(object_type=array("l", types), object=array("l", objects), verb=array("l", verbs))


def _user_statuses(rng: random.Random, users: Collection) -> None:
    """Three or four deactivated users and two or three pending invitations; the rest (and the first) active."""
    status = array("l", [0] * len(users))
    others = list(range(1, len(users)))
    if len(others) >= 7:
        deactivated, pending = rng.randint(3, 4), rng.randint(2, 3)
        picked = rng.sample(others, deactivated + pending)
        for i in picked[:deactivated]:
            status[i] = USER_STATUSES.index("deactivated")
        for i in picked[deactivated:]:
            status[i] = USER_STATUSES.index("pending")
    users.rel["status"] = status


def _add_deletes(rng: random.Random, coll: Collection) -> None:
    """Soft-deletes about ``DELETED_SHARE`` of the objects; the deletion is usually their last change."""
    n = len(coll)
    if n < 10:
        return
    created, updated = coll.created, coll.updated
    for i in rng.sample(range(n), max(1, round(n * DELETED_SHARE))):
        at = updated[i] if rng.random() < 0.7 else created[i] + int((updated[i] - created[i]) * rng.random())
        coll.deleted[i] = at


def _created_times(rng: random.Random, n: int, now: int) -> List[int]:
    """``n`` sorted creation times over the last four years, denser towards ``now``."""
    r = rng.random
    top = now - GUARD_MS
    times = [top - int(HISTORY_MS * r() ** 2) for _ in range(n)]
    times.sort()
    return times


def _updated_times(rng: random.Random, created: Sequence[int], now: int) -> List[int]:
    """Last-update times: a third updated within minutes, a third within a month, a third any time."""
    r = rng.random
    top = now - GUARD_MS
    out = []
    append = out.append
    for c in created:
        room = top - c
        x = r()
        if x < 0.35:
            gap = r() * min(room, 600_000)
        elif x < 0.65:
            gap = r() * min(room, 30 * DAY_MS)
        else:
            gap = r() * room
        append(c + int(gap))
    return out


def _pick_parents(rng: random.Random, created: Sequence[int], parent_created: Sequence[int], recent: Optional[int]) -> List[int]:
    """For each child creation time, a parent created no later (any such, or one of the latest ``recent``)."""
    r = rng.random
    out = []
    append = out.append
    n_parent = len(parent_created)
    for c in created:
        k = bisect_right(parent_created, c)
        if k == 0:
            append(int(r() * min(n_parent, 3)))
        elif recent is None:
            append(int(r() * k))
        else:
            append(k - 1 - int(r() ** 2 * min(k, recent)))
    return out


def _fill(coll: Collection, created: Sequence[int], updated: Sequence[int]) -> None:
    coll.created.extend(created)
    coll.updated.extend(updated)
    coll.rev.extend(1 + (u - c) // (7 * DAY_MS) % 9 for c, u in zip(created, updated))


def _add_ties(rng: random.Random, coll: Collection) -> None:
    """About 1% of objects take the ``updatedAt`` of another object (in groups of 2 to 5)."""
    n = len(coll)
    if n < 4:
        return
    created, updated = coll.created, coll.updated
    for _ in range(max(1, n // 200)):
        anchor = int(rng.random() * n)
        for _ in range(rng.randint(1, 4)):
            other = int(rng.random() * n)
            if created[other] <= updated[anchor]:
                updated[other] = updated[anchor]


def _add_burst(rng: random.Random, coll: Collection, size: int, at_ms: int) -> None:
    """A bulk action: ``size`` objects created before ``at_ms`` all last updated at that instant."""
    at_ms = at_ms // 1000 * 1000 + 417
    eligible = [i for i in range(len(coll)) if coll.created[i] <= at_ms]
    for i in rng.sample(eligible, min(size, len(eligible))):
        coll.updated[i] = at_ms


# --------------------------------------------------------------------------------------------------
# Mutations while serving
# --------------------------------------------------------------------------------------------------


def touch(store: Store, name: str, n: int, now_ms: int, rng: random.Random) -> List[str]:
    """Updates ``n`` random distinct objects: ``updatedAt`` becomes ``now_ms``, ``rev`` goes up.

    Kustomer stamps every change with a fresh ``updatedAt``, so an updated object jumps to the end of
    an ascending ``updatedAt`` sort (and from the archive back into live search).
    Deleted objects are never picked (a touched object is one a search still returns).
    """
    kind, klass = store.resolve(name)
    coll = store.colls[kind]
    with store.lock:
        pool = coll.alive(store.indices(kind, klass)) if coll.deleted else store.indices(kind, klass)
        chosen = rng.sample(pool, min(n, len(pool)))
        for i in chosen:
            coll.set_updated(i, max(now_ms, coll.updated[i] + 1))
            _record_change(store, kind, i, "update")
        return [coll.id_of(i) for i in chosen]


def delete(store: Store, name: str, n: int, now_ms: int, rng: random.Random) -> List[str]:
    """Soft-deletes ``n`` random objects that are not deleted yet (``deletedAt`` = ``updatedAt`` = now)."""
    kind, klass = store.resolve(name)
    if kind not in DELETABLE:
        raise ValueError(f"{name} objects cannot be deleted in the sandbox")
    coll = store.colls[kind]
    with store.lock:
        pool = coll.alive(store.indices(kind, klass))
        chosen = rng.sample(pool, min(n, len(pool)))
        for i in chosen:
            coll.delete(i, max(now_ms, coll.updated[i] + 1))
            _record_change(store, kind, i, "delete")
        return [coll.id_of(i) for i in chosen]


def _record_change(store: Store, kind: str, i: int, verb: str) -> None:
    """What Kustomer records about a change: an audit-log entry and, for a conversation, an event.

    Both are stamped with the object's new ``updatedAt`` (call with ``store.lock`` held).
    """
    at = store.colls[kind].updated[i]
    if kind == "conversation":
        name = "kustomer.conversation.create" if verb == "create" else "kustomer.conversation.update"
        store.extra_events.setdefault(i, []).append((at, name))
    if kind in AUDIT_OBJECT_TYPES:
        audit = store.colls["audit_log"]
        when = max(at, audit.created[-1] if len(audit) else 0)
        audit.append(when, when, {"object_type": AUDIT_OBJECT_TYPES.index(kind), "object": i, "verb": AUDIT_VERBS.index(verb)})


def create(store: Store, name: str, n: int, now_ms: int, rng: random.Random) -> List[str]:
    """Creates ``n`` new objects at ``now_ms`` (parents are picked among existing objects)."""
    kind, klass = store.resolve(name)
    colls = store.colls
    coll = colls[kind]
    ids = []
    with store.lock:
        for _ in range(n):
            created = max(now_ms, coll.created[-1] if len(coll) else 0)
            rels: Dict[str, int] = {}
            if kind == "customer":
                rels = {"company": _random_index(rng, colls["company"]), "last_conversation": -1, "conversation_count": 0}
            elif kind == "conversation":
                rels = {"customer": _random_index(rng, colls["customer"])}
            elif kind in ("message", "note"):
                rels = {"conversation": _random_index(rng, colls["conversation"])}
            elif kind == "kobject":
                rels = {"customer": _random_index(rng, colls["customer"]),
                        "klass": klass if klass is not None else rng.randrange(len(store.klass_names))}
            i = coll.append(created, created, rels)
            if kind == "conversation":
                store.conversation_updated0.append(created)
                if rels["customer"] >= 0:
                    customers = colls["customer"].rel
                    customers["last_conversation"][rels["customer"]] = i
                    customers["conversation_count"][rels["customer"]] += 1
            _record_change(store, kind, i, "create")
            ids.append(coll.id_of(i))
    return ids


def _random_index(rng: random.Random, coll: Collection) -> int:
    return rng.randrange(len(coll)) if len(coll) else -1
