"""The sandbox's object store: every simulated Kustomer object, kept compact enough for millions.

An object is not kept as JSON. Each object type (customer, conversation, ...) is a ``Collection`` of
parallel ``array`` columns: creation time, last update time, revision and the indexes of the objects it
points at (a message's conversation, a kobject's klass, ...). Everything else a resource shows is
rendered on demand by ``render.py`` from a seeded random generator, so an object costs roughly 30
bytes and a million of them fit in a few dozen megabytes.

Kustomer behaviours reproduced here:

* Object ids are 24-hex MongoDB ObjectIds whose first 8 hex digits are the creation second. The
  sandbox lays the rest out as ``<created s:8><collection tag:6><index:10>``, so the id order is the
  creation order and an id can be mapped back to its object without a dictionary.
* Search sorts by ``updatedAt`` and breaks ties by id: ``Collection.keys`` holds every object as one
  integer ``(updatedAt - EPOCH0) << SHIFT | index``, kept sorted, so an ``updatedAt`` range is two
  ``bisect`` calls and a page is a slice.
* Objects change while a client reads: ``Store.touch`` gives objects a new ``updatedAt`` and bumps
  their ``rev`` (they move to the end of an ascending sort), ``Store.create`` appends new ones.
* Soft deletes: a deleted object keeps its id and stays readable by id, but search leaves it out
  unless asked (``includeDeleted``). ``Collection.deleted`` maps its index to ``deletedAt`` and its
  sort key moves from ``keys`` to ``dkeys``, so searches without deleted objects keep their
  slice-only fast path.
"""

from __future__ import annotations

import threading
import zlib
from array import array
from bisect import bisect_left, bisect_right, insort
from typing import Dict, Iterable, List, Optional, Tuple

#: Query contexts of ``POST /v1/customers/search`` (``kobject_<klass>`` narrows ``kobject``).
QUERY_CONTEXTS = ("customer", "conversation", "message", "note", "kobject", "company")
#: Object types served only by GET list endpoints (ground truth: ``Sandbox.ids_of_list``).
LIST_TYPES = ("user", "team", "tag", "shortcut", "klass")
#: Org configuration and history served by the other GET lists (brands, schedules, ... audit logs).
CONFIG_TYPES = ("brand", "schedule", "card", "queue", "satisfaction", "snooze", "spam_sender", "notification",
                "sla", "sla_version", "audit_log")
ALL_TYPES = QUERY_CONTEXTS + LIST_TYPES + CONFIG_TYPES
#: Search contexts whose objects can be soft-deleted.
DELETABLE = ("customer", "conversation", "company", "note", "kobject")

#: URL collection segment of each type (``/v1/<segment>``). KObjects live under ``/v1/klasses/<name>``.
ENDPOINT_OF = {
    "customer": "customers",
    "conversation": "conversations",
    "message": "messages",
    "note": "notes",
    "company": "companies",
    "kobject": "kobjects",
    "user": "users",
    "team": "teams",
    "tag": "tags",
    "shortcut": "shortcuts",
    "klass": "klasses",
    "brand": "brands",
    "schedule": "schedules",
    "card": "cards",
    "queue": "routing/queues",
    "satisfaction": "satisfaction",
    "snooze": "snoozes",
    "spam_sender": "spam/senders",
    "notification": "notifications",
    "sla": "slas",
    "sla_version": "slas/versions",
    "audit_log": "audit-logs",
}
TYPE_OF_ENDPOINT = {segment: kind for kind, segment in ENDPOINT_OF.items()}

#: Sort keys count milliseconds from this instant (2010-01-01T00:00:00Z), which leaves 40 bits of
#: milliseconds (until 2044) and 23 bits of index (8.3 million objects per type) in a signed int64.
EPOCH0_MS = 1_262_304_000_000
SHIFT = 23
MASK = (1 << SHIFT) - 1
MAX_OBJECTS_PER_TYPE = MASK + 1

DAY_MS = 86_400_000


def stable_hash(*parts: object) -> int:
    """A process-independent hash (Python's ``hash`` of a str changes per process)."""
    return zlib.crc32(":".join(str(p) for p in parts).encode())


class Collection:
    """All objects of one type, as parallel columns indexed by creation order."""

    def __init__(self, kind: str, tag: int) -> None:
        self.kind = kind
        self.tag = tag & 0xFFFFFF
        self.created = array("q")
        self.updated = array("q")
        self.rev = array("l")
        #: Sorted ``(updatedAt, index)`` keys of the objects not deleted: the order search uses.
        self.keys = array("q")
        #: The same keys for the soft-deleted objects, and ``index -> deletedAt`` (ms) of those.
        self.dkeys = array("q")
        self.deleted: Dict[int, int] = {}
        #: Relation columns, e.g. ``rel["conversation"][i]`` is the conversation index of message i.
        self.rel: Dict[str, array] = {}

    def __len__(self) -> int:
        return len(self.created)

    # --- ids --------------------------------------------------------------------------------
    def id_of(self, i: int) -> str:
        return "%08x%06x%010x" % (self.created[i] // 1000, self.tag, i)

    def index_of(self, object_id: object) -> Optional[int]:
        """The index of an id of this collection, or None (unknown id, other type, bad format)."""
        if not isinstance(object_id, str) or len(object_id) != 24:
            return None
        try:
            tag = int(object_id[8:14], 16)
            i = int(object_id[14:], 16)
        except ValueError:
            return None
        if tag != self.tag or i >= len(self.created):
            return None
        return i if self.id_of(i) == object_id.lower() else None

    # --- sort keys --------------------------------------------------------------------------
    def key(self, i: int) -> int:
        return ((self.updated[i] - EPOCH0_MS) << SHIFT) | i

    @staticmethod
    def key_bound(ms: int) -> int:
        """The smallest key of any object updated at ``ms`` or later."""
        return (max(ms, EPOCH0_MS) - EPOCH0_MS) << SHIFT

    def range_of(self, lo_ms: Optional[int], hi_ms: Optional[int], deleted: bool = False) -> Tuple[int, int]:
        """Positions ``[lo, hi)`` in ``keys`` (``dkeys`` if ``deleted``) of the objects with
        ``lo_ms <= updatedAt <= hi_ms``."""
        keys = self.dkeys if deleted else self.keys
        lo = 0 if lo_ms is None else bisect_left(keys, self.key_bound(lo_ms))
        if hi_ms is None:
            hi = len(keys)
        elif hi_ms < EPOCH0_MS:
            hi = 0
        else:
            hi = bisect_left(keys, self.key_bound(hi_ms + 1))
        return lo, max(lo, hi)

    def build_keys(self) -> None:
        base = EPOCH0_MS
        updated = self.updated
        deleted = self.deleted
        if deleted:
            self.keys = array("q", sorted(((updated[i] - base) << SHIFT) | i for i in range(len(updated)) if i not in deleted))
            self.dkeys = array("q", sorted(((updated[i] - base) << SHIFT) | i for i in deleted))
        else:
            self.keys = array("q", sorted(((updated[i] - base) << SHIFT) | i for i in range(len(updated))))
            self.dkeys = array("q")

    def is_deleted(self, i: int) -> bool:
        return i in self.deleted

    def alive(self, indices: Iterable[int]) -> List[int]:
        """``indices`` without the soft-deleted objects (order kept)."""
        deleted = self.deleted
        return [i for i in indices if i not in deleted] if deleted else list(indices)

    # --- mutation ---------------------------------------------------------------------------
    def append(self, created_ms: int, updated_ms: int, rels: Dict[str, int]) -> int:
        i = len(self.created)
        if i >= MAX_OBJECTS_PER_TYPE:
            raise OverflowError(f"more than {MAX_OBJECTS_PER_TYPE} {self.kind} objects")
        self.created.append(created_ms)
        self.updated.append(updated_ms)
        self.rev.append(1)
        for name, column in self.rel.items():
            column.append(rels.get(name, -1))
        insort(self.keys, self.key(i))
        return i

    def set_updated(self, i: int, updated_ms: int) -> None:
        """Moves object ``i`` to a new ``updatedAt`` (and a new place in the search order)."""
        keys = self.dkeys if i in self.deleted else self.keys
        old = self.key(i)
        pos = bisect_left(keys, old)
        if pos < len(keys) and keys[pos] == old:
            del keys[pos]
        self.updated[i] = updated_ms
        self.rev[i] += 1
        insort(keys, self.key(i))

    def delete(self, i: int, at_ms: int) -> None:
        """Soft-deletes object ``i`` at ``at_ms`` (a change like any other: ``updatedAt`` moves too)."""
        if i in self.deleted:
            return
        old = self.key(i)
        pos = bisect_left(self.keys, old)
        if pos < len(self.keys) and self.keys[pos] == old:
            del self.keys[pos]
        self.deleted[i] = at_ms
        self.updated[i] = max(at_ms, self.updated[i])
        self.rev[i] += 1
        insort(self.dkeys, self.key(i))


class Store:
    """Every collection of one simulated org, plus the lock that makes it safe to serve and mutate."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.seed = seed
        self.now0_ms = now_ms
        self.lock = threading.RLock()
        self._child_indexes: Dict[str, "ChildIndex"] = {}
        self.colls: Dict[str, Collection] = {kind: Collection(kind, stable_hash("tag", seed, kind)) for kind in ALL_TYPES}
        self.klass_names: List[str] = []
        #: Names of the Klasses that are disabled (still searchable, left out of ``GET /v1/klasses``).
        self.disabled_klasses: set = set()
        #: How many objects of each type ``generate`` made (later ones were created while serving).
        self.generated: Dict[str, int] = {}
        #: Conversation index -> ``(ms, event name)`` of the events recorded by mutations while serving.
        self.extra_events: Dict[int, List[Tuple[int, str]]] = {}
        #: Each conversation's ``updatedAt`` as generated: its generated events end there.
        self.conversation_updated0 = array("q")
        #: Per-instance singletons referenced by every object (org, brand, SLAs, queues).
        self.org_id = "%08x%016x" % (1_420_070_400 + stable_hash("org", seed) % 31_536_000, stable_hash("org-id", seed) * 0x9E3779B97F4A7C15 % (1 << 64))

    def child_index(self, kind: str) -> "ChildIndex":
        """The messages or notes (``kind``) of each conversation, built on first use."""
        index = self._child_indexes.get(kind)
        if index is None:
            index = self._child_indexes[kind] = ChildIndex(self.colls[kind].rel["conversation"])
        return index

    def coll(self, kind: str) -> Collection:
        return self.colls[kind]

    # --- naming -----------------------------------------------------------------------------
    def resolve(self, name: str) -> Tuple[str, Optional[int]]:
        """Maps a context or endpoint name to ``(type, klass index or None)``.

        Accepts query contexts (``customer``), ``kobject_<klass name>``, endpoint names (``users``,
        ``customers``) and type names (``user``). Raises KeyError for anything else.
        """
        if name in self.colls:
            return name, None
        if name in TYPE_OF_ENDPOINT:
            return TYPE_OF_ENDPOINT[name], None
        if name.startswith("kobject_") and name[len("kobject_"):] in self.klass_names:
            return "kobject", self.klass_names.index(name[len("kobject_"):])
        raise KeyError(name)

    def contexts(self) -> List[str]:
        """Every search context this org answers: the six base ones and one per Klass."""
        return list(QUERY_CONTEXTS) + [f"kobject_{name}" for name in self.klass_names]

    def indices(self, kind: str, klass: Optional[int] = None) -> Iterable[int]:
        coll = self.colls[kind]
        if klass is None:
            return range(len(coll))
        column = coll.rel["klass"]
        return [i for i in range(len(coll)) if column[i] == klass]

    # --- ground truth -----------------------------------------------------------------------
    def ids(self, name: str, include_deleted: bool = True) -> set:
        """Ids of a context or type; soft-deleted objects only with ``include_deleted``."""
        kind, klass = self.resolve(name)
        coll = self.colls[kind]
        with self.lock:
            indices = self.indices(kind, klass)
            if not include_deleted:
                indices = coll.alive(indices)
            return {coll.id_of(i) for i in indices}

    def deleted_ids(self, name: str) -> set:
        kind, klass = self.resolve(name)
        coll = self.colls[kind]
        with self.lock:
            return {coll.id_of(i) for i in coll.deleted if klass is None or coll.rel["klass"][i] == klass}

    def updated_at_ms(self, name: str, object_id: str) -> Optional[int]:
        kind, _ = self.resolve(name)
        coll = self.colls[kind]
        with self.lock:
            i = coll.index_of(object_id)
            return None if i is None else coll.updated[i]


class ChildIndex:
    """The children (messages or notes) of each conversation, from their ``conversation`` column.

    The column as it was on first use is kept sorted by conversation (two arrays, 16 bytes a child)
    and bisected; children created later are few and found by a scan of the column's tail.
    """

    def __init__(self, column: "array") -> None:
        self.column = column
        self.size = len(column)
        self.order = array("l", sorted(range(self.size), key=column.__getitem__))  # stable: ascending per parent
        self.keys = array("l", (column[j] for j in self.order))

    def of(self, parent: int) -> List[int]:
        """Indexes of ``parent``'s children, ascending."""
        lo, hi = bisect_left(self.keys, parent), bisect_right(self.keys, parent)
        column = self.column
        return list(self.order[lo:hi]) + [j for j in range(self.size, len(column)) if column[j] == parent]
