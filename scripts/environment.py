"""The connector's settings for a real Kustomer org, from the environment (make sync, make live-check).

KUSTOMER_API_TOKEN (required), and optionally KUSTOMER_ORG (your org's name: the recommended host),
KUSTOMER_REGION (us, eu or india, without an org name), KUSTOMER_START_DATE (YYYY-MM-DDTHH:MM:SSZ)
and KUSTOMER_API_URL (another host, e.g. a local sandbox).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

_OPTIONAL = (("KUSTOMER_ORG", "org_name"), ("KUSTOMER_REGION", "region"), ("KUSTOMER_START_DATE", "start_date"),
             ("KUSTOMER_API_URL", "api_url"))


def kustomer_config() -> Optional[Dict[str, Any]]:
    """The settings, or None when no KUSTOMER_API_TOKEN is set."""
    token = os.environ.get("KUSTOMER_API_TOKEN", "").strip()
    if not token:
        return None
    config: Dict[str, Any] = {"api_token": token}
    for variable, setting in _OPTIONAL:
        if os.environ.get(variable, "").strip():
            config[setting] = os.environ[variable].strip()
    return config


def where(config: Dict[str, Any]) -> str:
    """The org a config reaches, as a person names it (never the token)."""
    return config.get("org_name") or config.get("api_url") or config.get("region", "us")
