"""API keys and the roles they hold, as Kustomer names them.

Kustomer behaviours reproduced:

* Each endpoint needs any one of the roles ``source_kustomer.contract`` lists for it: a permission-set
  role (``org.permission.<object>.<verb>``) or its legacy form (``org.user.<object>.read``,
  ``org.admin.<object>.read``); either is enough.
* ``GET /v1/auth/tokens/current`` needs no role: any valid key may read itself.
* A key belongs to one pod (region: prod1 in the US, prod2 in the EU, prod4 in India); another pod
  refuses it on every endpoint.

Where Kustomer documents no role (teams, tags, shortcuts, cards, routing settings, notifications,
the SLA list, the current user and the endpoints the contract does not list) the sandbox assumes
one permission-set role per object, ``SANDBOX_ROLES``: its own guess, not Kustomer's word.

A key is given as ``{token: spec}``: a set of role names, ``"expired"``, or a dict
``{"roles": set, "pod": "prod2", "name": "...", "expired": bool}`` (``parse_token`` makes a ``Token``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from source_kustomer import contract

#: The sandbox's assumption (Kustomer documents no role for these): path pattern -> the roles that
#: let a key read it. Consulted only where the contract lists no role for the endpoint.
SANDBOX_ROLES: Tuple[Tuple["re.Pattern[str]", Tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), (role,)) for pattern, role in (
        (r"/v1/users/[^/]+", "org.permission.user.read"),  # /v1/users/current and /v1/users/{id}
        (r"/v1/teams(/[^/]+)?", "org.permission.team.read"),
        (r"/v1/tags(/[^/]+)?", "org.permission.tag.read"),
        (r"/v1/shortcuts(/[^/]+)?", "org.permission.shortcut.read"),
        (r"/v1/cards", "org.permission.card.read"),
        (r"/v1/routing/settings", "org.permission.routing.read"),
        (r"/v1/notifications", "org.permission.notification.read"),
        (r"/v1/slas", "org.permission.sla.read"),
        (r"/v1/customers(/[^/]+)?|/v1/companies/[^/]+/customers", "org.permission.customer.read"),
        (r"/v1/companies(/[^/]+)?", "org.permission.company.read"),
        (r"/v1/conversations(/[^/]+)?|/v1/customers/[^/]+/conversations", "org.permission.conversation.read"),
        (r"/v1/messages(/[^/]+)?|/v1/customers/[^/]+/messages", "org.permission.message.read"),
        (r"/v1/notes(/[^/]+)?", "org.permission.note.read"),
        (r"/v1/klasses/[^/]+(/[^/]+)?|/v1/(customers|companies)/[^/]+/klasses/[^/]+", "org.permission.kobject.read"),
    )
)


def _legacy(role: str) -> bool:
    return role.startswith(("org.user.", "org.admin."))


def _all_role_lists() -> Iterable[Tuple[str, ...]]:
    yield from (e.roles for e in contract.ENDPOINTS if e.roles)
    yield from (roles for _, roles in SANDBOX_ROLES)


#: The roles of the two searches (``POST /v1/customers/search`` and its archive), both forms.
SEARCH_ROLES: FrozenSet[str] = frozenset(contract.endpoint_for("POST", contract.SEARCH).roles)
#: The roles of ``GET /v1/conversations/{id}/events``, both forms.
EVENT_ROLES: FrozenSet[str] = frozenset(contract.endpoint_for("GET", "/v1/conversations/{id}/events").roles)
#: The permission-set form of every role an endpoint needs: a key that reads everything.
ALL_ROLES: FrozenSet[str] = frozenset(r for roles in _all_role_lists() for r in roles if not _legacy(r))
#: The legacy form (``org.user.*``/``org.admin.*``) of one role per endpoint where Kustomer lists one,
#: else its permission-set form: a key of an older org that reads everything.
LEGACY_ROLES: FrozenSet[str] = frozenset(next((r for r in roles if _legacy(r)), roles[0]) for roles in _all_role_lists())

#: Kustomer's pods (regions): the API host of each.
PODS = {"prod1": "api.kustomerapp.com", "prod2": "api.prod2.kustomerapp.com", "prod4": "api.prod4.kustomerapp.com"}


@dataclass(frozen=True)
class Token:
    """One API key: its roles, its pod (None: whichever pod serves it), its name, whether it expired."""

    roles: FrozenSet[str] = frozenset()
    pod: Optional[str] = None
    name: str = "Sandbox API key"
    expired: bool = False


def parse_token(spec: Any) -> Token:
    """A ``Token`` from a spec: a set of role names, ``"expired"``, a dict or a ``Token``."""
    if isinstance(spec, Token):
        return spec
    if spec == "expired":
        return Token(expired=True)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"roles", "pod", "name", "expired"}
        if unknown:
            raise ValueError(f"unknown token spec keys: {', '.join(sorted(unknown))}")
        return Token(_roles(spec.get("roles", ())), spec.get("pod"), str(spec.get("name") or Token.name), bool(spec.get("expired")))
    return Token(_roles(spec))


def _roles(roles: Any) -> FrozenSet[str]:
    if isinstance(roles, str) or not isinstance(roles, Iterable):
        raise ValueError(f"roles must be a set of role names, not {roles!r}")
    return frozenset(str(r) for r in roles)


#: Default keys: token -> spec (see ``parse_token``).
DEFAULT_TOKENS: Dict[str, Any] = {
    "sandbox-token": {"roles": ALL_ROLES, "name": "Sandbox: every role"},
    "legacy-token": {"roles": LEGACY_ROLES, "name": "Sandbox: legacy roles"},
    "expired-token": "expired",
    "norole-token": {"roles": set(), "name": "Sandbox: no role"},
    "nosearch-token": {"roles": ALL_ROLES - SEARCH_ROLES, "name": "Sandbox: no search role"},
    "noevents-token": {"roles": ALL_ROLES - EVENT_ROLES, "name": "Sandbox: no event role"},
    "eu-token": {"roles": ALL_ROLES, "pod": "prod2", "name": "Sandbox: EU pod"},
    "india-token": {"roles": ALL_ROLES, "pod": "prod4", "name": "Sandbox: India pod"},
}


@lru_cache(maxsize=4096)
def roles_needed(method: str, path: str) -> Optional[Tuple[str, ...]]:
    """The roles of which a key needs one to call ``method path`` (``()``: none needed), or None for
    a path no table knows. Call it with a path template (ids as ``{id}``) so the cache stays small."""
    endpoint = contract.endpoint_for(method, path)
    if endpoint is not None and (endpoint.roles or endpoint.any_key):
        return endpoint.roles
    return next((roles for pattern, roles in SANDBOX_ROLES if pattern.fullmatch(path)), None)
