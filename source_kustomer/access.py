"""What an API key may read: its roles against the ones each endpoint needs, its region, its expiry.

- ``refusal`` words a 401 or 403 from Kustomer for the person who has to fix it.
- ``KeyRolesExtractor`` reads the key's own roles (``GET /v1/auth/tokens/current``) and tells, before any
  sync, which streams the key cannot read and which role would fix each.
"""

import logging
import re
from dataclasses import InitVar, dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_kustomer.contract import ENDPOINTS, ORG_HOST, REGIONS, SEARCH, endpoint_for

logger = logging.getLogger("airbyte")

_POD = re.compile(rb"pod ([a-z0-9]+) but request is being handled by ([a-z0-9]+)", re.IGNORECASE)
_KEYS = "Settings > Security > API Keys"


def refusal(response: requests.Response) -> str:
    """Why Kustomer refused the key (401 or 403), and what to do: a key of another region, an expired
    key, a wrong key, or one without the role the endpoint needs (Kustomer answers 401 or 403 for that)."""
    body = response.content or b""
    region = _wrong_region(body, response.url or "")
    if region:
        return region
    if b"expired token" in body.lower():
        return f"Kustomer says the API key has expired. Create a new key in Kustomer ({_KEYS}) and put it in the source's API Token."
    method = response.request.method if response.request is not None else "GET"
    endpoint = endpoint_for(method or "GET", urlsplit(response.url or "").path)
    what = endpoint.key if endpoint else f"{method} {urlsplit(response.url or '').path}"
    roles = f"one of the roles {_roles(endpoint.roles)}" if endpoint and endpoint.roles else "the role Kustomer requires for it"
    said = _said(response)
    if endpoint is not None and endpoint.any_key:  # no role needed: only the key itself can be wrong
        return f"Kustomer rejected the API key ({said}). Copy it again from {_KEYS}, or create a new one."
    if response.status_code == 403:
        return f"Kustomer refused {what} ({said}): the API key lacks {roles}. Add it to the key ({_KEYS}) and sync again."
    return (
        f"Kustomer rejected the API key for {what} ({said}). Either the key is wrong (copy it again from {_KEYS}) "
        f"or it lacks {roles}: Kustomer answers 401 for a missing role too."
    )


def _wrong_region(body: bytes, url: str) -> Optional[str]:
    found = _POD.search(body)
    if not found:
        return None
    pod, serving = found.group(1).decode().lower(), found.group(2).decode().lower()
    region = next((name for name, (region_pod, _, _) in REGIONS.items() if region_pod == pod), None)
    if region is None:
        return f"This API key belongs to another Kustomer region (pod {pod}) than {urlsplit(url).netloc} ({serving}). Set Organization Name."
    _, host, where = REGIONS[region]
    return (
        f"This API key belongs to Kustomer's region in {where} (pod {pod}), but it was sent to {urlsplit(url).netloc} "
        f"({serving}). Set Organization Name to your org's name ({ORG_HOST.format(org='<org>')} routes to its "
        f"region by itself), or set Region to {region} ({host})."
    )


def _said(response: requests.Response) -> str:
    """Kustomer's own words from an error body, in either of its two forms, else the status."""
    try:
        errors = response.json().get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], dict) else {}
        return str(first.get("title") or first.get("message") or first.get("code") or response.status_code)[:200]
    except (ValueError, AttributeError):
        return str(response.status_code)


def _roles(roles: Sequence[str]) -> str:
    return ", ".join(roles)


@dataclass
class KeyRolesExtractor(RecordExtractor):
    """The API key's own record (``GET /v1/auth/tokens/current``), read with the roles it lacks.

    Kustomer gives each endpoint a list of roles (any one suffices, see ``contract.py``); a key
    without them gets 403 (401 from older orgs) on that endpoint only. ``reads`` names, for each
    endpoint the connector calls, the streams that call it. Every stream the key cannot read is
    named in one warning with the roles that would fix it, and listed in the record's
    ``unreadable_streams``. Without any search role almost nothing can be read: that is a config
    error naming the roles to add, which fails ``check`` (this is the stream it reads).
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    reads: Mapping[str, List[str]] = field(default_factory=dict)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        unknown = [key for key in self.reads if key not in {e.key for e in ENDPOINTS}]
        if unknown:
            raise ValueError(f"KeyRolesExtractor reads endpoints contract.py does not list: {unknown}")

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = response.json() if response.content else {}
        token = body.get("data") if isinstance(body, dict) else None
        if not isinstance(token, dict):
            return
        attributes = token.get("attributes") if isinstance(token.get("attributes"), dict) else {}
        held = set(attributes.get("roles") or [])
        lacking = self.lacking(held)
        search = endpoint_for("POST", SEARCH)
        if search is not None and search.key in lacking:
            raise AirbyteTracedException(
                message=(
                    f"The API key cannot search Kustomer: it has none of the roles {_roles(search.roles)}. Customers, "
                    "conversations, messages, notes, companies, custom objects and every stream read through them "
                    f"need one. Add one of them to the key ({_KEYS})."
                ),
                failure_type=FailureType.config_error,
            )
        unreadable = [
            {"stream": stream, "endpoint": key, "needs_one_of": list(endpoint_for(*key.split(" ", 1)).roles)}
            for key, streams in self.reads.items() if key in lacking for stream in streams
        ]
        if unreadable:
            logger.warning(
                "The API key cannot read these streams, and a sync that selects them ends each with a config error: "
                + "; ".join(f"{u['stream']} (add one of {_roles(u['needs_one_of'])})" for u in unreadable)
                + f". Add the roles in Kustomer ({_KEYS}) or leave the streams out of the connection."
            )
        attributes = {key: value for key, value in attributes.items() if key != "lastTokenChars"}
        yield {**token, "attributes": attributes, "unreadable_streams": unreadable}

    def lacking(self, held: Iterable[str]) -> Dict[str, Tuple[str, ...]]:
        """The endpoints of ``reads`` the roles in ``held`` do not open: endpoint key -> its roles."""
        held = set(held)
        found = {}
        for key in self.reads:
            endpoint = endpoint_for(*key.split(" ", 1))
            if endpoint is not None and endpoint.roles and not held.intersection(endpoint.roles):
                found[key] = endpoint.roles
        return found
