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
    def endpoints(self) -> List[str]:
        """The Kustomer endpoints the stream reads, as contract.py names them (``GET /v1/teams``); a
        per-parent list reads its parents' search too."""
        search = "POST /v1/customers/search"
        if self.family in ("search_stream", "nested_stream"):
            return [search]
        if self.family in ("list_stream", "full_list_stream", "list_nested_stream"):
            return ["GET /v1/" + self.parameters["endpoint"].split("?")[0]]
        if self.family in ("conversation_list_stream", "customer_list_stream"):
            return [search, f"GET /v1/{self.family.split('_')[0]}s/{{id}}/{self.parameters['list']}"]
        return []


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


# --- the tables beside the manifest, checked against it ---------------------------------------------

README, DOCS_PAGE = "README.md", "docs/integrations/sources/kustomer.md"


def _table_rows(text: str, columns: int) -> List[List[str]]:
    """The rows of the Markdown tables in ``text`` that have ``columns`` cells, the first in backticks."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == columns and cells[0].startswith("`"):
            rows.append(cells)
    return rows


def stream_rows(text: str) -> Dict[str, List[str]]:
    """A document's stream table: stream name -> [stream, endpoint, sync modes, cursor, primary key]."""
    return {cells[0].strip("`"): cells for cells in _table_rows(text, 5) if cells[1] != "Required"}


def role_rows(text: str) -> Dict[str, Tuple[List[str], List[str]]]:
    """The docs page's roles table: endpoint -> (the streams that read it, the roles it needs)."""
    return {cells[0].strip("`"): ([s.strip("` ") for s in cells[1].split(",")], [r.strip("` ") for r in cells[2].split(",")])
            for cells in _table_rows(text, 3) if cells[0][1:5] in ("GET ", "POST")}


def reads_table(manifest_text: str) -> Dict[str, List[str]]:
    """api_key_roles' ``reads`` in the manifest: the endpoints each stream calls, for check's roles report."""
    raw = yaml.safe_load(manifest_text)
    api_key_roles = next(s for s in raw["streams"] if s.get("name") == "api_key_roles")
    return api_key_roles["retriever"]["record_selector"]["extractor"]["reads"]


def table_problems(root: Path = MANIFEST_PATH.parent, serves: Optional[Any] = None) -> List[str]:
    """What a stream added to (or removed from) ``root``'s manifest still needs elsewhere, each said as
    the line to add or remove and where. ``serves(method, path)``, when given, says whether the
    sandbox answers an endpoint (``Sandbox.api.serves``)."""
    from source_kustomer import contract

    manifest_text = (root / "manifest.yaml").read_text()
    streams = load(manifest_text)
    reads = reads_table(manifest_text)
    problems: List[str] = []
    for document in (README, DOCS_PAGE):
        rows = stream_rows((root / document).read_text())
        rows.pop("kobject_<klass>", None)
        for name, stream in streams.items():
            if name not in rows:
                problems.append(f"{document}: add a row for `{name}` to the stream table "
                                f"(| `{name}` | <endpoint> | <sync modes> | <cursor> | {', '.join(f'`{k}`' for k in stream.primary_key)} |)")
            elif [k.strip("` ") for k in rows[name][4].split(",")] != list(stream.primary_key):
                problems.append(f"{document}: the primary key of `{name}` is {', '.join(stream.primary_key)} in manifest.yaml")
        problems += [f"{document}: remove the row of `{name}`, which manifest.yaml does not define" for name in rows if name not in streams]
    for name, stream in streams.items():
        for endpoint in stream.endpoints:
            method, path = endpoint.split(" ", 1)
            if contract.endpoint_for(method, path.replace("{id}", "0" * 24)) is None:
                problems.append(f"source_kustomer/contract.py: add {endpoint} to ENDPOINTS, with the roles and the page of "
                                f"Kustomer's docs that document it (`{name}` calls it)")
            if name not in reads.get(endpoint, []):
                problems.append(f"manifest.yaml, api_key_roles' reads: add `{name}` under `{endpoint}` (check names the roles it needs)")
            if serves is not None and not serves(method, path):
                problems.append(f"integration_tests/sandbox/api.py: the sandbox does not serve {endpoint} (`{name}`); add a route and its data")
    named = {name for names in reads.values() for name in names} - {"kobject_<klass>"}
    problems += [f"manifest.yaml, api_key_roles' reads: remove `{name}`, which manifest.yaml does not define" for name in sorted(named - set(streams))]
    documented = role_rows((root / DOCS_PAGE).read_text())
    for endpoint, names in reads.items():
        if documented.get(endpoint, ([], []))[0] != names:
            problems.append(f"{DOCS_PAGE}, Roles per stream: the row of `{endpoint}` lists {', '.join(f'`{n}`' for n in names)} "
                            "(api_key_roles' reads in manifest.yaml)")
    problems += [f"{DOCS_PAGE}, Roles per stream: remove the row of `{endpoint}`, which no stream reads"
                 for endpoint in documented if endpoint not in reads]
    return problems
