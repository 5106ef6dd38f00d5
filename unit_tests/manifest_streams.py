"""The stream tables the tests iterate over, read from manifest.yaml so a new stream is tested at once."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import yaml

_MANIFEST = yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yaml").read_text())
_PARAMETERS = [stream["$parameters"] for stream in _MANIFEST["streams"]]

# search stream name -> Kustomer queryContext
SEARCH_STREAMS: Dict[str, str] = {p["name"]: p["query_context"] for p in _PARAMETERS if "query_context" in p}
# list stream name -> the page size Kustomer allows on its endpoint
LIST_STREAMS: Dict[str, int] = {p["name"]: p.get("max_page_size", 100) for p in _PARAMETERS if "endpoint" in p}
