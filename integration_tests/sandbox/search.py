"""The search engine behind ``POST /v1/customers/search`` and ``POST /v1/customers/archive/search``.

Kustomer behaviours reproduced:

* ``queryContext`` (required) picks the object type: customer, conversation, message, note, company,
  kobject, or ``kobject_<klass name>`` for one Klass. Missing or unknown is a 400.
* Criteria: ``and`` (all must match), ``or`` (at least one, when non-empty) and ``not`` (none may
  match), each a list of (or a single) ``{"<ctx>_<attribute>": {"<op>": value}}``; groups nest
  (``{"or": [...]}`` inside ``and``). Operators: equals, contains, in, gt, gte, lt, lte, not_set.
  Attributes are the snake_case names of the resource's attributes (``conversation_updated_at``,
  ``customer_name``), ``<ctx>_custom_<field>`` for custom attributes, ``<ctx>_id`` and
  ``<ctx>_<relationship>_id``. An attribute the context does not have is a 400.
* Date values: ``YYYY-MM-DD`` (midnight in the body's ``timeZone``, default UTC), ISO-8601 with any
  number of fraction digits and ``Z`` or an offset, and ``YYYY-MM-DD HH:MM:SS+00:00`` (what Python's
  ``str(datetime)`` gives). Times compare at microsecond precision against millisecond data.
* ``sort``: ``[{"<ctx>_<attribute>": "asc"|"desc"}, ...]``; equal values are ordered by id, in the
  direction of the first sort key. Without a sort the newest ``updatedAt`` comes first.
* ``/search`` sees only objects updated in the last 730 days; ``/archive/search`` only older ones.
* Soft-deleted objects are left out unless the body has ``"includeDeleted": true``.
* What Kustomer leaves undocumented (note queries on the archive, the updatedAt sorts and the
  ``company_updated_at`` filter of ``/search`` that clients rely on) reaches the engine as the
  ``conformance`` switches rewrote it, or not at all.

Efficiency: ``updatedAt`` ranges found at the top level of ``and`` (and the live/archive split) are
answered by bisecting the collection's sorted keys, so an incremental query over a million objects
touches only the objects in its window; other criteria are then checked one object at a time.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .render import Renderer
from .store import DAY_MS, MASK, Collection, Store

OPS = ("equals", "contains", "in", "gt", "gte", "lt", "lte", "not_set")
ARCHIVE_AGE_MS = 730 * DAY_MS

_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_CAMEL = re.compile(r"_([a-z0-9])")


class SearchError(ValueError):
    """A request Kustomer would refuse with 400."""

    def __init__(self, title: str, pointer: Optional[str] = None) -> None:
        super().__init__(title)
        self.title = title
        self.pointer = pointer


def camel(snake: str) -> str:
    return _CAMEL.sub(lambda m: m.group(1).upper(), snake)


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def parse_time_us(value: Any, time_zone: str = "UTC") -> int:
    """Microseconds since the epoch of a Kustomer search date value; SearchError if unparsable."""
    if isinstance(value, bool):
        raise SearchError(f"Invalid date value {value!r}")
    if isinstance(value, (int, float)):
        return int(value * 1000)  # epoch milliseconds
    m = _DATE.match(str(value).strip())
    if not m:
        raise SearchError(f"Invalid date value {value!r}")
    year, month, day, hh, mm, ss, frac, offset = m.groups()
    try:
        seconds = calendar.timegm((int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), 0, 0, 0))
        if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hh or 0) < 24 and int(mm or 0) < 60 and int(ss or 0) < 61):
            raise ValueError
    except (ValueError, OverflowError):
        raise SearchError(f"Invalid date value {value!r}") from None
    micros = seconds * 1_000_000 + int((frac or "0")[:6].ljust(6, "0"))
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        micros -= sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60) * 1_000_000
    elif hh is None and time_zone not in ("UTC", "GMT", "Etc/UTC", None, ""):
        # A bare date is the start of that day in the request's timeZone.
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SearchError(f"Unknown timeZone {time_zone!r}", "/timeZone") from None
        local = datetime(int(year), int(month), int(day), tzinfo=zone)
        micros -= int(local.utcoffset().total_seconds()) * 1_000_000
    return micros


def iso_to_us(text: Any) -> Optional[int]:
    """Microseconds of a rendered ``...sssZ`` attribute value (None when unset or not a date)."""
    if not isinstance(text, str):
        return None
    try:
        return parse_time_us(text)
    except SearchError:
        return None


@dataclass
class Query:
    """A compiled search: where to look in the sorted keys, what else to check, how to order."""

    coll: Collection
    lo_ms: Optional[int] = None
    hi_ms: Optional[int] = None
    residual: Optional[Callable[[int], bool]] = None
    sort: List[Tuple[str, bool, Callable[[int], Any]]] = field(default_factory=list)  # (attr, descending, key)
    ids_only: bool = False
    include_deleted: bool = False


class _Rows:
    """Renders objects for criteria that are not stored columns, one cached object at a time."""

    def __init__(self, renderer: Renderer, kind: str) -> None:
        self.renderer, self.kind = renderer, kind
        self._i, self._doc = -1, None

    def doc(self, i: int) -> Dict[str, Any]:
        if i != self._i:
            self._i, self._doc = i, self.renderer.resource(self.kind, i)
        return self._doc


class Compiler:
    """Turns a search body into a ``Query`` for one collection."""

    def __init__(self, store: Store, renderer: Renderer, body: Any, archive: bool, now_ms: int) -> None:
        if not isinstance(body, dict):
            raise SearchError("Request body must be a JSON object")
        context = body.get("queryContext")
        if not context:
            raise SearchError("queryContext is required", "/queryContext")
        if not isinstance(context, str) or context not in store.contexts():
            raise SearchError(f"Invalid queryContext {context!r}", "/queryContext")
        self.store, self.renderer = store, renderer
        self.context = context
        self.kind, self.klass = store.resolve(context)
        self.coll = store.colls[self.kind]
        self.rows = _Rows(renderer, self.kind)
        self.time_zone = body.get("timeZone") or "UTC"
        self.body, self.archive, self.now_ms = body, archive, now_ms
        self._known = self._known_attributes()

    # --- attributes -------------------------------------------------------------------------
    def _known_attributes(self) -> Optional[set]:
        """Searchable attribute names of this context (None when it has no object to learn them from)."""
        self._attr_names: Dict[str, str] = {}
        self._rel_ids: Dict[str, str] = {}
        if not len(self.coll):
            return None
        sample = self.renderer.resource(self.kind, 0)
        self._attr_names = {snake(k): k for k in sample["attributes"]}
        self._rel_ids = {snake(k) + "_id": k for k in sample["relationships"]}
        return {"id", "created_at", "updated_at", "modified_at"} | set(self._attr_names) | set(self._rel_ids)

    def attribute(self, key: Any) -> str:
        prefixes = [self.context + "_"] + ([self.kind + "_"] if self.context != self.kind else [])
        for prefix in prefixes:
            if isinstance(key, str) and key.startswith(prefix) and len(key) > len(prefix):
                attr = key[len(prefix):]
                if self._known is None or attr in self._known or attr.startswith("custom_"):
                    return attr
                break
        raise SearchError(f"Invalid attribute {key!r} for queryContext {self.context}")

    def getter(self, attr: str) -> Callable[[int], Any]:
        """Value of ``attr`` for object i: microseconds for dates, plain JSON values otherwise."""
        coll = self.coll
        if attr == "updated_at":
            updated = coll.updated
            return lambda i: updated[i] * 1000
        if attr == "created_at":
            created = coll.created
            return lambda i: created[i] * 1000
        if attr == "id":
            return coll.id_of
        doc = self.rows.doc
        is_date = attr.endswith("_at")
        if attr.startswith("custom_"):
            name = attr[len("custom_"):]
            names = (name, camel(name))

            def custom(i: int) -> Any:
                values = doc(i)["attributes"].get("custom") or {}
                value = next((values[n] for n in names if n in values), None)
                return iso_to_us(value) if name.endswith(("_at", "At")) and value is not None else value

            return custom
        if attr in self._rel_ids and attr not in self._attr_names:
            rel = self._rel_ids[attr]

            def related(i: int) -> Any:
                data = (doc(i)["relationships"].get(rel) or {}).get("data")
                return data.get("id") if isinstance(data, dict) else None

            return related
        attr_name = self._attr_names.get(attr, camel(attr))
        if is_date:
            return lambda i: iso_to_us(doc(i)["attributes"].get(attr_name))
        return lambda i: doc(i)["attributes"].get(attr_name)

    # --- criteria ---------------------------------------------------------------------------
    @staticmethod
    def _items(value: Any, where: str) -> List[Any]:
        if value is None:
            return []
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
        raise SearchError(f"{where} must be an object or a list of objects", f"/{where}")

    def group(self, items: List[Any], where: str) -> List[Callable[[int], bool]]:
        """One predicate per attribute-operator pair (or nested group) of ``items``."""
        preds: List[Callable[[int], bool]] = []
        for item in items:
            for key, spec in item.items():
                if key in ("and", "or", "not"):
                    sub = self.group(self._items(spec, key), key)
                    preds.append(_combine(key, sub))
                    continue
                attr = self.attribute(key)
                if not isinstance(spec, dict) or not spec:
                    raise SearchError(f"Criterion {key!r} must be an object such as {{\"equals\": value}}", f"/{where}")
                for op, value in spec.items():
                    preds.append(self.leaf(attr, op, value))
        return preds

    def leaf(self, attr: str, op: str, value: Any) -> Callable[[int], bool]:
        if op not in OPS:
            raise SearchError(f"Invalid operator {op!r}; use one of {', '.join(OPS)}")
        is_date = attr.endswith("_at") or attr == "updated_at"
        if attr == "id" and op in ("equals", "in"):
            wanted = value if op == "in" else [value]
            if not isinstance(wanted, list):
                raise SearchError("in takes a list of values")
            indices = {j for j in (self.coll.index_of(v) for v in wanted) if j is not None}
            return indices.__contains__
        get = self.getter(attr)
        if op == "not_set":
            want_unset = value is not False and value != "false"
            return lambda i: _unset(get(i)) == want_unset
        if op == "in":
            if not isinstance(value, list):
                raise SearchError("in takes a list of values")
            wanted = [self._operand(v, is_date) for v in value]
            return lambda i: _any(get(i), lambda x: any(_equal(x, w) for w in wanted))
        operand = self._operand(value, is_date)
        if op == "equals":
            return lambda i: _any(get(i), lambda x: _equal(x, operand))
        if op == "contains":
            needle = str(value).lower()
            return lambda i: _any(get(i), lambda x: needle in (x if isinstance(x, str) else str(x)).lower())
        compare = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}[op]
        return lambda i: _any(get(i), lambda x: _ordered(compare, x, operand))

    def _operand(self, value: Any, is_date: bool) -> Any:
        return parse_time_us(value, self.time_zone) if is_date else value

    # --- whole query ------------------------------------------------------------------------
    def compile(self) -> Query:
        body = self.body
        query = Query(self.coll, ids_only=False)
        include_deleted = body.get("includeDeleted", False)
        if not isinstance(include_deleted, bool):
            raise SearchError("includeDeleted must be true or false", "/includeDeleted")
        query.include_deleted = include_deleted and bool(self.coll.deleted)
        and_items = self._items(body.get("and"), "and")
        or_preds = self.group(self._items(body.get("or"), "or"), "or")
        not_preds = self.group(self._items(body.get("not"), "not"), "not")

        # updatedAt bounds at the top level of `and` become a key range; the rest stays a predicate.
        lo_ms: Optional[int] = None
        hi_ms: Optional[int] = None
        rest: List[Dict[str, Any]] = []
        for item in and_items:
            for key, spec in item.items():
                attr = self.attribute(key) if key not in ("and", "or", "not") else None
                if attr == "updated_at" and isinstance(spec, dict) and spec:
                    leftover = {}
                    for op, value in spec.items():
                        if op not in OPS:
                            raise SearchError(f"Invalid operator {op!r}; use one of {', '.join(OPS)}")
                        bound = _ms_bounds(op, value, self.time_zone) if op in ("gt", "gte", "lt", "lte", "equals") else None
                        if bound is None:
                            leftover[op] = value
                            continue
                        lo, hi = bound
                        lo_ms = lo if lo_ms is None or (lo is not None and lo > lo_ms) else lo_ms
                        hi_ms = hi if hi_ms is None or (hi is not None and hi < hi_ms) else hi_ms
                    if leftover:
                        rest.append({key: leftover})
                else:
                    rest.append({key: spec})
        and_preds = self.group(rest, "and")

        cutoff = self.now_ms - ARCHIVE_AGE_MS
        if self.archive:
            hi_ms = cutoff - 1 if hi_ms is None else min(hi_ms, cutoff - 1)
        else:
            lo_ms = cutoff if lo_ms is None else max(lo_ms, cutoff)
        query.lo_ms, query.hi_ms = lo_ms, hi_ms

        if self.klass is not None:
            column, klass = self.coll.rel["klass"], self.klass
            and_preds.insert(0, lambda i: column[i] == klass)
        if and_preds or or_preds or not_preds:
            query.residual = _residual(and_preds, or_preds, not_preds)
        query.sort = self._sort(body.get("sort"))
        return query

    def _sort(self, spec: Any) -> List[Tuple[str, bool, Callable[[int], Any]]]:
        if spec is None or spec == []:
            return []
        items = [spec] if isinstance(spec, dict) else spec
        if not isinstance(items, list):
            raise SearchError("sort must be a list of {attribute: asc|desc}", "/sort")
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise SearchError("sort must be a list of {attribute: asc|desc}", "/sort")
            for key, direction in item.items():
                if str(direction).lower() not in ("asc", "desc"):
                    raise SearchError(f"Invalid sort direction {direction!r}", "/sort")
                attr = self.attribute(key)
                out.append((attr, str(direction).lower() == "desc", self.getter(attr)))
        return out


def _ms_bounds(op: str, value: Any, time_zone: str) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """``(lo_ms, hi_ms)`` (inclusive, None = open) of millisecond times satisfying ``op value``."""
    us = parse_time_us(value, time_zone)
    floor_ms, ceil_ms = us // 1000, -(-us // 1000)
    if op == "gte":
        return ceil_ms, None
    if op == "gt":
        return floor_ms + 1, None
    if op == "lte":
        return None, floor_ms
    if op == "lt":
        return None, ceil_ms - 1
    if us % 1000 == 0:  # equals
        return floor_ms, floor_ms
    return floor_ms + 1, floor_ms  # an empty range: no millisecond time equals it


def _combine(kind: str, preds: List[Callable[[int], bool]]) -> Callable[[int], bool]:
    if kind == "and":
        return lambda i: all(p(i) for p in preds)
    if kind == "or":
        return lambda i: not preds or any(p(i) for p in preds)
    return lambda i: not any(p(i) for p in preds)


def _residual(and_preds, or_preds, not_preds) -> Callable[[int], bool]:
    def check(i: int) -> bool:
        for p in and_preds:
            if not p(i):
                return False
        if or_preds and not any(p(i) for p in or_preds):
            return False
        return not any(p(i) for p in not_preds)

    return check


def _unset(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _any(value: Any, test: Callable[[Any], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return any(test(v) for v in value if v is not None)
    return test(value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, bool) or isinstance(b, bool):
        return str(a).lower() == str(b).lower()
    if isinstance(a, (int, float)) and isinstance(b, str):
        try:
            return a == float(b)
        except ValueError:
            return False
    return a == b


def _ordered(compare: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        try:
            return compare(a, float(b) if isinstance(b, str) else b)
        except (TypeError, ValueError):
            return False
    if isinstance(a, str) and isinstance(b, str):
        return compare(a, b)
    return False


def run(query: Query, page: int, size: int) -> Tuple[int, List[int]]:
    """``(total matches, indices of the requested page)``."""
    coll = query.coll
    lo, hi = coll.range_of(query.lo_ms, query.hi_ms)
    keys = coll.keys
    if query.include_deleted:
        dlo, dhi = coll.range_of(query.lo_ms, query.hi_ms, deleted=True)
        if dlo < dhi:
            keys = sorted(keys[lo:hi] + coll.dkeys[dlo:dhi])
            lo, hi = 0, len(keys)
    if lo >= hi:
        return 0, []
    start = (page - 1) * size
    sort = query.sort
    primary_desc = sort[0][1] if sort else True
    if query.residual is None and (not sort or (len(sort) == 1 and sort[0][0] == "updated_at")):
        total = hi - lo
        if start >= total:
            return total, []
        if not primary_desc:
            chosen = keys[lo + start: min(hi, lo + start + size)]
        else:
            end = hi - start
            chosen = keys[max(lo, end - size): end][::-1]
        return total, [k & MASK for k in chosen]

    mask = MASK
    indices = [k & mask for k in keys[lo:hi]]  # updatedAt ascending, ties by id ascending
    if query.residual is not None:
        check = query.residual
        indices = [i for i in indices if check(i)]
    if not sort or (len(sort) == 1 and sort[0][0] == "updated_at"):
        if primary_desc:
            indices.reverse()
    elif len(sort) == 1 and sort[0][0] in ("created_at", "id"):
        indices.sort(reverse=primary_desc)  # index order is creation order is id order
    else:
        indices.sort(reverse=primary_desc)
        for _attr, descending, key in reversed(sort):
            indices.sort(key=lambda i: _sort_key(key(i)), reverse=descending)
    return len(indices), indices[start:start + size]


def _sort_key(value: Any) -> Tuple[int, Any]:
    """Orders missing values first, then numbers, then strings (mixed types never compare)."""
    if value is None or isinstance(value, (list, dict)):
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))
