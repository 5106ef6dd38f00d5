"""A faithful, stateful Kustomer API v1 simulator for integration tests ("the sandbox").

    from integration_tests.sandbox import Sandbox

    with Sandbox(records=3000, seed=7) as sandbox:
        requests.post(f"{sandbox.url}/v1/customers/search", headers={"Authorization": "Bearer sandbox-token"},
                      json={"queryContext": "conversation"})
        sandbox.ids("conversation")  # the ground truth

Or from a shell: ``python -m integration_tests.sandbox --port 8080``. Modules: ``store`` (compact
columnar storage), ``data`` (seeded generation and mutations), ``render`` (JSON:API resources of the
searchable objects and list types), ``render_org`` (org configuration, SLAs, audit log, metadata,
conversation events/forwards/times, customer drafts/merges), ``search`` (the search engine), ``api`` (auth, routing,
envelopes, errors), ``ratelimit``, ``faults``, ``server`` (HTTP transport) and ``sandbox`` (the
``Sandbox`` class and its ground truth).
"""

from .api import DEFAULT_TOKENS
from .faults import FAULT_KINDS
from .sandbox import DEFAULT_RECORDS, FAST_KUSTOMER_LIMITS, Sandbox

__all__ = ["DEFAULT_RECORDS", "DEFAULT_TOKENS", "FAST_KUSTOMER_LIMITS", "FAULT_KINDS", "Sandbox"]
