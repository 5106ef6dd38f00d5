"""A faithful, stateful Kustomer API v1 simulator for integration tests ("the sandbox").

    from integration_tests.sandbox import Sandbox

    with Sandbox(records=3000, seed=7) as sandbox:
        requests.post(f"{sandbox.url}/v1/customers/search", headers={"Authorization": "Bearer sandbox-token"},
                      json={"queryContext": "conversation"})
        sandbox.ids("conversation")  # the ground truth

Or from a shell: ``python -m integration_tests.sandbox --port 8080``. Modules: ``store`` (compact
columnar storage), ``data`` (seeded generation and mutations), ``render`` (JSON:API resources of the
searchable objects and list types), ``render_org`` (org configuration, SLAs, audit log, metadata,
conversation events/forwards/times, customer drafts/merges, the API key), ``search`` (the search
engine), ``api`` (auth, routing, envelopes, errors), ``roles`` (API keys, Kustomer's role names,
pods), ``conformance`` (Kustomer's published contract, enforced or recorded, and the switches where
it is silent), ``ratelimit``, ``faults``, ``server`` (HTTP transport) and ``sandbox`` (the
``Sandbox`` class and its ground truth).

Keys (``DEFAULT_TOKENS``): ``sandbox-token`` holds ``ALL_ROLES`` (reads everything),
``legacy-token`` ``LEGACY_ROLES``, ``nosearch-token`` and ``noevents-token`` lack the search and
event roles, ``norole-token`` has none, ``expired-token`` expired, ``eu-token`` and ``india-token``
belong to the prod2 and prod4 pods.
"""

from .faults import FAULT_KINDS
from .roles import ALL_ROLES, DEFAULT_TOKENS, LEGACY_ROLES, SEARCH_ROLES
from .sandbox import DEFAULT_RECORDS, FAST_KUSTOMER_LIMITS, Sandbox

__all__ = ["ALL_ROLES", "DEFAULT_RECORDS", "DEFAULT_TOKENS", "FAST_KUSTOMER_LIMITS", "FAULT_KINDS", "LEGACY_ROLES",
           "SEARCH_ROLES", "Sandbox"]
