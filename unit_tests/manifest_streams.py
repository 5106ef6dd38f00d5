"""The stream tables the tests iterate over, read from manifest.yaml so a new stream is tested at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import yaml

_MANIFEST = yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yaml").read_text())


def _of_family(family: str) -> List[Dict[str, Any]]:
    """The $parameters of the streams that are a `$ref` to definitions/<family>."""
    return [s["$parameters"] for s in _MANIFEST["streams"] if s.get("$ref") == f"#/definitions/{family}"]


# search stream name -> Kustomer queryContext
SEARCH_STREAMS: Dict[str, str] = {p["name"]: p["query_context"] for p in _of_family("search_stream")}
# incremental list stream name -> its endpoint, and the page size Kustomer allows on it (audit logs,
# paged by a cursor and filtered by time, are tested on their own)
_LISTS = [p for p in _of_family("list_stream") + _of_family("users_by_status") if p["name"] != "audit_logs"]
LIST_ENDPOINTS: Dict[str, str] = {p["name"]: p["endpoint"] for p in _LISTS}
LIST_STREAMS: Dict[str, int] = {p["name"]: p.get("max_page_size", 100) for p in _LISTS}
