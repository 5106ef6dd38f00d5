"""Kustomer answers that only their bodies, their path or their host tell apart.

``KustomerErrorHandler`` words a refused key, retries a page garbled or cut short on the way, refuses
an answer from another host and reads the statuses that mean "nothing here" as empty; every other
answer goes to the declarative handler it wraps.
"""

import logging
from dataclasses import InitVar, dataclass, field
from typing import Any, List, Mapping, Optional, Union
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategy import BackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers import ErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config

from source_kustomer.access import refusal
from source_kustomer.pages import NOT_JSON, parsed_body

logger = logging.getLogger("airbyte")



@dataclass
class KustomerErrorHandler(ErrorHandler):
    """The Kustomer answers that only their bodies (or their path) tell apart, checked without parsing
    every page again.

    - A refused key (401 or 403): an expired key, a wrong one, one of another region or one
      without the endpoint's role, told apart by the body and the endpoint (``access.refusal``): a
      config error that says what to do.
    - A page garbled on the way still has status 200; only its body, not JSON, shows it: retried.
    - A page that holds fewer objects than Kustomer's own ``meta`` promises (a search page short of
      ``min(pageSize, total - offset)``, a list page short of ``pageSize`` though ``links.next``
      follows) lost objects on the way; page numbers would then skip them: retried, and the sync
      fails if it persists, rather than end with a gap.
    - An answer that came from another host after a redirect is refused: the token stayed behind
      (requests drops it when the host changes), and neither is the other host's data used.
    - The statuses in ``read_as_empty`` mean there is nothing to read (404: no custom attributes, a
      parent deleted for good; 403 where the answer only adds to other streams): ignored, a 403 with
      a warning naming the role.

    A declarative ``predicate`` filter would decode every response's body again with the standard
    json module (20 ms per 2 MB search page, for each such filter); this handler looks for the words
    in the raw bytes of 401/403 bodies and parses a 2xx body once for everyone (``parsed_body``).
    Every other answer goes to the declarative ``handler``, whose retries and backoff it keeps.
    """

    handler: ErrorHandler
    parameters: InitVar[Mapping[str, Any]]
    config: Config = field(default_factory=dict)
    read_as_empty: List[int] = field(default_factory=list)

    @property
    def max_retries(self) -> Optional[int]:
        return self.handler.max_retries

    @property
    def max_time(self) -> Optional[int]:
        return self.handler.max_time

    @property
    def backoff_strategies(self) -> Optional[List[BackoffStrategy]]:
        return getattr(self.handler, "backoff_strategies", None)

    def interpret_response(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response):
            status, body = response_or_exception.status_code, response_or_exception.content or b""
            if status in self.read_as_empty:
                if status == 403:
                    logger.warning(f"{refusal(response_or_exception)} Read as none meanwhile.")
                return ErrorResolution(ResponseAction.IGNORE, None, f"Kustomer answered {status}: nothing to read.")
            if status in (401, 403):
                return ErrorResolution(ResponseAction.FAIL, FailureType.config_error, refusal(response_or_exception))
            moved_to = _other_host(response_or_exception)
            if moved_to:
                return ErrorResolution(
                    ResponseAction.FAIL,
                    FailureType.config_error,
                    f"The API host redirected the request to {moved_to}. The connector sends the API key only to "
                    "Kustomer and does not follow it there; check the region, org name or API URL in the settings.",
                )
            if 200 <= status < 300:
                page = parsed_body(response_or_exception) if body and not body.isspace() else NOT_JSON
                if not isinstance(page, dict):
                    return ErrorResolution(
                        ResponseAction.RETRY, FailureType.transient_error, "Kustomer answered with a body that is not JSON; retrying."
                    )
                missing = _missing_from_page(page)
                if missing:
                    return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error, missing)
        return self.handler.interpret_response(response_or_exception)


def _other_host(response: requests.Response) -> Optional[str]:
    """The host a redirect ended on, if it is not the one first asked."""
    if not response.history:
        return None
    first, last = urlsplit(response.history[0].url), urlsplit(response.url)
    return last.netloc if (first.hostname, first.port) != (last.hostname, last.port) else None


def _missing_from_page(page: Mapping[str, Any]) -> Optional[str]:
    """Why a page holds fewer objects than its ``meta`` and ``links`` say it must, if it does."""
    data, meta = page.get("data"), page.get("meta")
    if not isinstance(data, list) or not isinstance(meta, dict):
        return None
    size, number, total = meta.get("pageSize"), meta.get("page"), meta.get("total")
    if not isinstance(size, int) or size <= 0:
        return None
    if isinstance(total, int) and isinstance(number, int) and number >= 1:
        expected = max(0, min(size, total - (number - 1) * size))
    elif (page.get("links") or {}).get("next"):
        expected = size
    else:
        return None
    if len(data) >= expected:
        return None
    return f"Kustomer sent {len(data)} of the {expected} objects page {number} should hold; asking again."
