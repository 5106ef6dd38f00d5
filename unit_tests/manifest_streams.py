"""The stream tables the tests, the docs checks and the sandbox's ground truth use, derived from
manifest.yaml: a stream is added by its manifest entry and its schema, and every table follows.

Each stream of the manifest's ``streams:`` list is one ``Stream``: its name, its family (the
definition it is made from: ``search_stream``, ``list_stream``, ``nested_stream``, ...), its
parameters (as the CDK propagates them) and its primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest.yaml"

#: The families a stream of the table can be made from (definitions/<family>), and what each reads.
FAMILIES = {
    "search_stream": "POST /v1/customers/search",
    "list_stream": "GET /v1/<endpoint>",
    "full_list_stream": "GET /v1/<endpoint>",
    "conversation_list_stream": "GET /v1/conversations/{id}/<list>",
    "customer_list_stream": "GET /v1/customers/{id}/<list>",
    "nested_stream": "the search pages of its query_context",
    "list_nested_stream": "the list pages of its endpoint",
}


@dataclass(frozen=True)
class Stream:
    name: str
    family: str  # "" for a stream written out in full (custom_attribute_metadata, api_key_roles)
    parameters: Mapping[str, Any]
    primary_key: Tuple[str, ...]

    @property
    def endpoint(self) -> Optional[str]:
        """The Kustomer path the stream reads, as contract.py names it (``GET /v1/teams``)."""
        if self.family == "search_stream":
            return "POST /v1/customers/search"
        if self.family in ("list_stream", "full_list_stream", "list_nested_stream"):
            return "GET /v1/" + self.parameters["endpoint"].split("?")[0]
        if self.family in ("conversation_list_stream", "customer_list_stream"):
            return f"GET /v1/{self.family.split('_')[0]}s/{{id}}/{self.parameters['list']}"
        if self.family == "nested_stream":
            return "POST /v1/customers/search"
        return None


def _family(entry: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """The family a raw ``streams:`` entry is made from, following named streams (definitions/streams/...)."""
    ref = entry.get("$ref")
    while isinstance(ref, str) and ref.startswith("#/definitions/streams/"):
        ref = manifest["definitions"]["streams"][ref.rsplit("/", 1)[1]].get("$ref")
    return ref.rsplit("/", 1)[1] if isinstance(ref, str) else ""


def load(manifest_text: Optional[str] = None) -> Dict[str, Stream]:
    """The manifest's streams by name (``manifest_text``: another manifest than the repository's)."""
    raw = yaml.safe_load(manifest_text if manifest_text is not None else MANIFEST_PATH.read_text())
    resolved = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(yaml.safe_dump(raw)))
    propagated = ManifestComponentTransformer().propagate_types_and_parameters("", resolved, {})
    streams: Dict[str, Stream] = {}
    for entry, stream in zip(raw["streams"], propagated["streams"]):
        parameters = dict(stream.get("$parameters") or {})
        name = stream.get("name") or parameters["name"]
        streams[name] = Stream(name, _family(entry, raw), parameters, tuple(stream.get("primary_key") or ()))
    return streams


STREAMS = load()


def of_family(*families: str) -> List[Stream]:
    return [stream for stream in STREAMS.values() if stream.family in families]


# search stream name -> Kustomer queryContext
SEARCH_STREAMS: Dict[str, str] = {s.name: s.parameters["query_context"] for s in of_family("search_stream")}
# incremental list stream name -> its endpoint, and the page size Kustomer allows on it (audit logs,
# paged by a cursor and filtered by time, are tested on their own)
_LISTS = [s for s in of_family("list_stream") if s.name != "audit_logs"]
LIST_ENDPOINTS: Dict[str, str] = {s.name: s.parameters["endpoint"] for s in _LISTS}
LIST_STREAMS: Dict[str, int] = {s.name: s.parameters.get("max_page_size", 100) for s in _LISTS}
# full-refresh list stream name -> its endpoint
FULL_LIST_ENDPOINTS: Dict[str, str] = {s.name: s.parameters["endpoint"] for s in of_family("full_list_stream")}
# nested stream name -> (its parent's search context or list endpoint, the parent's type, the paths of
# the arrays inside the parent resource)
NESTED: Dict[str, Tuple[str, str, List[List[str]]]] = {
    s.name: (
        s.parameters.get("query_context") or s.parameters["endpoint"],
        s.parameters.get("parent") or s.parameters["query_context"],
        [s.parameters["items_at"]] if isinstance(s.parameters["items_at"][0], str) else list(s.parameters["items_at"]),
    )
    for s in of_family("nested_stream", "list_nested_stream")
}
# per-parent list stream name -> (the parent's type: conversation or customer, the list under it)
PER_PARENT: Dict[str, Tuple[str, str]] = {
    s.name: (s.family.split("_")[0], s.parameters["list"]) for s in of_family("conversation_list_stream", "customer_list_stream")
}
