"""Kustomer's published contract, held to: what the API refuses, and what it does where it is silent.

Every API request with a valid key is checked with ``source_kustomer.contract.problems`` (before its
roles and the rate limits). With ``contract="enforce"`` (the default) a request with problems is a
400 ``bad_request`` whose errors name each problem (the query parameter as ``source.parameter``, the
place in a search body as ``source.pointer``); with ``"record"`` it is served as before. Both keep
every offending request in ``contract_violations``; ``"off"`` checks nothing. Unknown paths and
wrong verbs keep their 404 and 405.

Where Kustomer's documents are silent the sandbox plays each plausible answer, one switch each:

* ``archive_notes``: a note query on ``/v1/customers/archive/search`` (its documented contexts leave
  notes out) is ``"refuse"``d with 400 (default), answered as if it had neither filter nor sort
  (``"ignore"``: every archived note, newest first), or ``"serve"``d like any other context.
* ``undocumented_sort``: the relied-on sorts of ``/v1/customers/search`` (``<object>_updated_at`` of
  conversations, messages, notes, kobjects and companies) are ``"honor"``ed (default), dropped
  (``"ignore"``: default order, newest first) or ``"refuse"``d with 400.
* ``undocumented_filter``: the relied-on ``company_updated_at`` criterion of ``/v1/customers/search``
  is ``"honor"``ed (default), dropped wherever it stands (``"ignore"``) or ``"refuse"``d with 400.

What these switches cover is their call, not the contract's: an archive note query is recorded as
a violation but answered per ``archive_notes``.
"""

from __future__ import annotations

import ast
import re
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from source_kustomer import contract
from .search import SearchError

CONTRACT_MODES = ("enforce", "record", "off")
ARCHIVE_NOTES = ("refuse", "ignore", "serve")
UNDOCUMENTED = ("honor", "ignore", "refuse")

_SEARCH = contract.SEARCHES[contract.SEARCH]
_GROUPS = ("and", "or", "not")
_PARAMETER = re.compile(r"^query parameter (.+) is not documented for ")
_BODY_FIELD = re.compile(r"^body field (.+) is not documented$")
_ATTRIBUTE = re.compile(r"^(filter|sort) attribute (.+) is not documented$")
_OPERATOR = re.compile(r"^operator (.+) is not documented$")
_CONTEXT = re.compile(r"^queryContext (.+) is not documented$")
#: Problems of a GET request depend only on the endpoint and the parameter names: cached up to this many.
_CACHE_SIZE = 4096


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class ContractCheck:
    """The contract check of one sandbox, and its record of offending requests (thread-safe)."""

    def __init__(self, mode: str = "enforce") -> None:
        self.mode = check_choice("contract", mode, CONTRACT_MODES)
        self._lock = threading.Lock()
        self._cache: Dict[Tuple[str, str, Tuple[str, ...]], List[str]] = {}
        #: ``{method, path, params, body, problems}`` of every request with problems, in order.
        self.violations: List[Dict[str, Any]] = []

    def check(self, method: str, path: str, template: str, params: Sequence[Tuple[str, str]], body: Any) -> List[str]:
        """The request's problems ([] if none, or if the check is off); a request with some is recorded."""
        if self.mode == "off":
            return []
        if method == "GET":
            key = (method, template, tuple(name for name, _ in params))
            found = self._cache.get(key)
            if found is None:
                found = contract.problems(method, path, params, None)
                if contract.endpoint_for(method, path) is not None:  # else the problem names this very path
                    if len(self._cache) >= _CACHE_SIZE:
                        self._cache.clear()
                    self._cache[key] = found
        else:
            found = contract.problems(method, path, params, body)
        if found:
            with self._lock:
                self.violations.append({"method": method, "path": path, "params": [tuple(p) for p in params],
                                        "body": body, "problems": list(found)})
        return found

    def snapshot(self, reset: bool = False) -> List[Dict[str, Any]]:
        with self._lock:
            out = list(self.violations)
            if reset:
                self.violations.clear()
        return out


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def sources(problem: str, body: Any) -> Optional[Dict[str, str]]:
    """Where a problem lies: ``{"parameter": name}`` or ``{"pointer": json pointer}`` (None: the endpoint)."""
    m = _PARAMETER.match(problem)
    if m:
        return {"parameter": str(_literal(m.group(1)))}
    m = _BODY_FIELD.match(problem)
    if m:
        return {"pointer": "/" + _escape(str(_literal(m.group(1))))}
    if _CONTEXT.match(problem):
        return {"pointer": "/queryContext"}
    m = _ATTRIBUTE.match(problem)
    if m:
        attribute = _literal(m.group(2))
        where = _sort_pointers(body, attribute) if m.group(1) == "sort" else _criterion_pointers(body, attribute)
        return {"pointer": next(where, "/" + ("sort" if m.group(1) == "sort" else "and"))}
    m = _OPERATOR.match(problem)
    if m:
        operator = _literal(m.group(1))
        return {"pointer": next((p + "/" + _escape(str(operator)) for p, spec in _criteria(body) if isinstance(spec, dict) and operator in spec), "")}
    if problem == "the search body is not a JSON object":
        return {"pointer": ""}
    return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _criteria(body: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``(json pointer, spec)`` of every criterion of a search body's and/or/not groups, nested ones too."""
    if not isinstance(body, dict):
        return
    for group in _GROUPS:
        value = body.get(group)
        items = [(f"{prefix}/{group}", value)] if isinstance(value, dict) else \
            [(f"{prefix}/{group}/{n}", v) for n, v in enumerate(value)] if isinstance(value, list) else []
        for where, item in items:
            if not isinstance(item, dict):
                continue
            for key, spec in item.items():
                if key in _GROUPS:
                    yield from _criteria({key: spec}, where)
                else:
                    yield f"{where}/{_escape(str(key))}", spec


def _criterion_pointers(body: Any, attribute: Any) -> Iterator[str]:
    suffix = "/" + _escape(str(attribute))
    return (where for where, _ in _criteria(body) if where.endswith(suffix))


def _sort_pointers(body: Any, attribute: Any) -> Iterator[str]:
    sort = body.get("sort") if isinstance(body, dict) else None
    items = sort if isinstance(sort, list) else [sort] if isinstance(sort, dict) else []
    return (f"/sort/{n}" if isinstance(sort, list) else "/sort"
            for n, item in enumerate(items) if isinstance(item, dict) and attribute in item)


# --- where Kustomer is silent ----------------------------------------------------------------------


def covered(problem: str, archive: bool, body: Any) -> bool:
    """Whether a silent behaviour, not the contract, answers this problem: the archive's note queries."""
    if not archive or not isinstance(body, dict) or body.get("queryContext") != "note":
        return False
    m = _ATTRIBUTE.match(problem)
    return bool(_CONTEXT.match(problem)) or (m is not None and str(_literal(m.group(2))).startswith("note_"))


def apply_switches(body: Dict[str, Any], archive: bool, archive_notes: str, undocumented_sort: str,
                   undocumented_filter: str) -> Dict[str, Any]:
    """The search body as the sandbox answers it under the silent-behaviour switches (SearchError: 400)."""
    if archive:
        if body.get("queryContext") == "note":
            if archive_notes == "refuse":
                raise SearchError("Invalid queryContext 'note' for the archive search", "/queryContext")
            if archive_notes == "ignore":
                return {key: body[key] for key in ("queryContext", "includeDeleted", "timeZone") if key in body}
        return body
    if undocumented_sort != "honor" and body.get("sort"):
        body = _switch_sort(body, undocumented_sort)
    if undocumented_filter != "honor":
        for where, _spec in _criteria(body):
            attribute = where.rsplit("/", 1)[1]
            if attribute in _SEARCH.relied_on_filters and attribute not in _SEARCH.filters:
                if undocumented_filter == "refuse":
                    raise SearchError(f"Invalid attribute {attribute!r}: it cannot be searched", where)
                body = {**body, **{g: _drop_relied_on(body[g]) for g in _GROUPS if g in body}}
                break
    return body


def _relied_on_sort(attribute: Any) -> bool:
    return attribute in _SEARCH.relied_on_sorts and attribute not in _SEARCH.sorts


def _switch_sort(body: Dict[str, Any], mode: str) -> Dict[str, Any]:
    sort = body["sort"]
    items = sort if isinstance(sort, list) else [sort]
    kept = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            kept.append(item)
            continue
        for attribute in item:
            if _relied_on_sort(attribute) and mode == "refuse":
                raise SearchError(f"Cannot sort on {attribute!r}", f"/sort/{n}" if isinstance(sort, list) else "/sort")
        rest = {k: v for k, v in item.items() if not _relied_on_sort(k)}
        if rest:
            kept.append(rest)
    return {**body, "sort": kept}


def _drop_relied_on(group: Any) -> Any:
    """An and/or/not group without its relied-on criteria (nested groups too; emptied items dropped)."""
    items = group if isinstance(group, list) else [group] if isinstance(group, dict) else None
    if items is None:
        return group
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(item)
            continue
        rest = {}
        for key, spec in item.items():
            if key in _GROUPS:
                rest[key] = _drop_relied_on(spec)
            elif not (key in _SEARCH.relied_on_filters and key not in _SEARCH.filters):
                rest[key] = spec
        if rest:
            out.append(rest)
    return out
